#pragma once

#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

/// What follows one answered page of paging a filter with REQ `limit` +
/// `until`, newest first. The rules, which `ferry sync` (req_pager below)
/// and a relay connection's catch-up (actors/sync/req_catchup.cpp) share:
/// - a relay may cap a page below the limit asked for without saying so, so
///   the paging ends only with an empty page;
/// - `until` is inclusive: events sharing the oldest second of a page are
///   asked for again (they come back as duplicates);
/// - a full page holding nothing but its `until` second cannot be paged by
///   `until`: that second alone is asked for (since = until = it) with a
///   doubled limit, up to `most_per_page`, until an answer is not full; the
///   paging then goes on below it. A second even the largest page cannot
///   hold is reported (`crowded`) and stepped past;
/// - only events the page's filter matches count: a relay that ignores
///   `until` (or any condition) answers with events beyond the page, and
///   paging by them would ask for the same page forever.
struct page_outcome {
  /// The next page's filter; none: the paging has ended.
  std::optional<nostr::filter> next;
  /// Set when `next` asks for a crowded second alone: the page the paging
  /// goes on with after it (`after_page`'s `resume` then).
  std::optional<nostr::filter> resume;
  /// A second that held more events than the relay serves in a page
  /// (`limit`), stepped past: its events beyond that are not asked for.
  struct crowded_second {
    int64_t second = 0;
    uint64_t limit = 0;
  };
  std::optional<crowded_second> crowded;
};

/// Decides what follows the page `sent`, which matched `received` events,
/// the oldest of them at `oldest`. `resume` is the page outcome's `resume`
/// when `sent` asked for a crowded second. `most_per_page` is the largest
/// limit a crowded second is asked for with.
page_outcome after_page(const nostr::filter& sent, uint64_t received,
                        int64_t oldest, std::optional<nostr::filter> resume,
                        uint64_t most_per_page);

/// Pages one filter of a relay's history by the rules of `after_page`, one
/// page open at a time: what `ferry sync` does instead of a NIP-77
/// reconciliation when the store holds nothing the filter matches (every id
/// would be needed, and fetching each by id costs both sides more than
/// reading them in index order). Not an actor and no I/O: the owner sends
/// the frames it returns and feeds in the relay's EVENT and EOSE for the
/// page it `owns`; it calls `fill` only when it has room for a page. Only
/// events the page's filter matches are counted and to be stored.
class req_pager {
public:
  struct options {
    /// Events asked for per page (a smaller `limit` of the filter wins).
    uint64_t page_size = 5000;
    /// The largest limit a crowded second is asked for with.
    uint64_t most_per_page = 50000;
    /// Subscription ids are this prefix and a counter.
    std::string sub_prefix = "page-";
  };

  req_pager(nostr::filter f, options opts);

  /// The next page's REQ when one is due and none is open; empty otherwise.
  std::string fill();

  /// Whether `sub_id` is the open page's subscription.
  bool owns(std::string_view sub_id) const {
    return open_ && sub_id == sub_id_;
  }

  /// An event the relay sent on the open page. @returns whether the page's
  /// filter matches it (only then is it counted, and the owner stores it).
  bool on_event(const nostr::event& ev);

  struct after_eose {
    /// The CLOSE of the answered page (a relay keeps a REQ open after its
    /// EOSE, for live events).
    std::string close;
    /// Set when a second held more events than the relay serves in a page.
    std::string warning;
  };

  /// The open page's EOSE: decides the next page (or the end).
  after_eose on_eose();

  /// A page is asked for and not yet answered.
  bool open() const {
    return open_;
  }

  /// The paging has ended: the last page came back empty.
  bool done() const {
    return !open_ && !due_;
  }

  /// REQs sent so far.
  uint64_t pages() const {
    return pages_;
  }

  /// Events received so far, over all pages (duplicates at page bounds
  /// included).
  uint64_t received() const {
    return received_total_;
  }

private:
  options opts_;
  /// The filter of the page due next (set) or none when the paging ended.
  std::optional<nostr::filter> due_;
  /// What the paging goes on with once a crowded second is read.
  std::optional<nostr::filter> resume_;
  /// The open page's filter.
  nostr::filter sent_;
  std::string sub_id_;
  bool open_ = false;
  uint64_t received_ = 0;
  int64_t oldest_ = 0;
  uint64_t pages_ = 0;
  uint64_t received_total_ = 0;
};

} // namespace ferry
