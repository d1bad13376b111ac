#pragma once

#include "messages/nostr/filter.hpp"
#include "messages/nostr/negentropy.hpp"
#include "store/event_store.hpp"

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

/// The NIP-77 part of a RELAY CONNECTION's catch-up: reconciles the local
/// store with the remote over each of the server's filters, one session at
/// a time, and collects the ids each side lacks. A time window whose set is
/// too big (here: more than `max_items` local events; there: NEG-ERR
/// `blocked:`) is split in two, so a huge relay is reconciled within both
/// sides' limits. Pure protocol logic (the connection does the I/O), so it
/// is tested against the engine's server side in-process.
class neg_catchup {
public:
  struct limits {
    /// Local events in one session; a bigger window is split.
    size_t max_items = 1'000'000;
    /// Largest query we send, binary bytes.
    size_t frame_size_limit = nostr::negentropy::default_frame_size_limit;
    /// A session taking more rounds than this is broken (a hostile or buggy
    /// remote could go on forever).
    size_t max_rounds = 1000;
    /// Halvings of one filter's time range before giving up.
    int max_splits = 40;
    /// Read the local set of each window here, in `start` / `on_message`.
    /// Off, a window's read is handed to the caller (`kind::scan`): at a
    /// million events it takes a few hundred ms, too long for an actor's
    /// scheduler thread.
    bool scan_inline = true;
    /// With one filter: when its whole range holds nothing locally, answer
    /// `kind::page` instead of reconciling. Against an empty set the remote
    /// would list every id it holds and each would be fetched by id: the
    /// remote looks every one up and parses the id lists, we keep them in
    /// sets. Paging with REQ gets the same events in index order (measured:
    /// page_instead in actors/sync/relay_negentropy.cpp).
    bool page_when_empty = false;
  };

  /// The local set the caller reads (on any thread) and hands to `on_items`.
  struct scan_request {
    nostr::filter filter;
    int64_t now = 0;
    size_t max_items = 0;
  };

  /// What the connection does next.
  struct action {
    enum class kind {
      /// Nothing (a message for another session, a late answer).
      none,
      /// Send `frames`, in order.
      send,
      /// Every window is reconciled (`frames` may hold a last NEG-CLOSE).
      done,
      /// The remote does not speak NIP-77 usefully: catch up with REQ.
      fallback,
      /// The reconciliation broke after it had started working.
      fail,
      /// Send `frames`, then read `scan` and pass the result to `on_items`
      /// (only without `scan_inline`).
      scan,
      /// The remote wants NIP-42 first (`reason`): authenticate, then
      /// call `resume`, which opens the refused window again.
      authenticate,
      /// Nothing to reconcile (`page_when_empty`): send `frames`, then
      /// catch up with REQ pages over the same range instead.
      page,
    };
    action() = default;
    action(kind what, std::vector<std::string> frames = {},
           std::string reason = {})
      : what(what), frames(std::move(frames)), reason(std::move(reason)) {
      // nop
    }

    kind what = kind::none;
    std::vector<std::string> frames;
    std::string reason;
    scan_request scan;
  };

  /// @param since Reconcile only events from here on (0: all), on top of
  ///              each filter's own since / until.
  neg_catchup(const store::event_store& store, std::vector<nostr::filter> filters,
              int64_t since, int64_t now, limits lim);

  /// Opens the first session.
  action start();

  /// After `kind::authenticate`: opens the refused window again.
  action resume();

  /// The local set `kind::scan` asked for.
  action on_items(caf::expected<store::item_scan> scan);

  /// A NEG-MSG from the remote.
  action on_message(std::string_view sub_id, std::string_view hex);

  /// A NEG-ERR from the remote.
  action on_error(std::string_view sub_id, std::string_view reason);

  /// A NOTICE from the remote: before any NEG-MSG it means the remote did
  /// not understand NEG-OPEN.
  action on_notice(std::string_view text);

  /// The session waiting for an answer ("" when none).
  const std::string& session() const {
    return session_;
  }

  /// The remote answered at least one NEG-MSG.
  bool answered() const {
    return answered_;
  }

  /// Ids found since the last call: we need them, or the remote does.
  std::vector<nostr::bytes32> take_need();
  std::vector<nostr::bytes32> take_have();

  /// The newest created_at among the local events reconciled.
  int64_t newest_local() const {
    return newest_local_;
  }

  // Counters over the whole catch-up.
  uint64_t sessions = 0;
  uint64_t rounds = 0;
  uint64_t splits = 0;
  uint64_t have_count = 0;
  uint64_t need_count = 0;
  uint64_t bytes_sent = 0;

private:
  /// One filter over [lo, hi] (hi empty: open-ended).
  struct window {
    size_t filter = 0;
    int64_t lo = 0;
    std::optional<int64_t> hi;
    int depth = 0;
  };

  /// Opens the next window, splitting those too big here.
  action open_next(std::vector<std::string> frames);

  /// Opens the session of `scanning_` over its local set.
  action open_scanned(caf::expected<store::item_scan> scan,
                      std::vector<std::string> frames);

  /// Halves `w` (at the front of the queue). @returns false when it cannot.
  bool split(const window& w);

  nostr::filter filter_of(const window& w) const;

  std::string frame(std::string_view verb, std::string_view tail);

  const store::event_store* store_;
  std::vector<nostr::filter> filters_;
  int64_t now_;
  limits limits_;
  std::deque<window> windows_;
  window current_;
  /// The window whose local set is being read.
  std::optional<window> scanning_;
  std::string session_;
  std::unique_ptr<nostr::negentropy::client> client_;
  size_t session_rounds_ = 0;
  uint64_t next_session_ = 1;
  bool answered_ = false;
  /// A window was refused for want of AUTH once; a second refusal is final.
  bool auth_retried_ = false;
  int64_t newest_local_ = 0;
  std::vector<nostr::bytes32> need_;
  std::vector<nostr::bytes32> have_;
};

} // namespace ferry
