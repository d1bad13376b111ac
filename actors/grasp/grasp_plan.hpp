#pragma once

#include "messages/grasp.hpp"
#include "messages/nostr/filter.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

/// The pure part of GRASP-02 sync: what to do on each relay given what is
/// wanted, in flight and confirmed, and which filters carry it. GRASP SYNC
/// feeds it its state and executes the answer; the tests feed it tables.
namespace ferry::grasp {

/// Tunables of the plan (config `[grasp]`).
struct plan_config {
  /// Away longer than this (or never confirmed): the relay's confirmed state
  /// is cleared and it is synced fully; within it, a `since` catch-up.
  std::chrono::seconds resync_after{15 * 60};
  /// A catch-up starts this long before the relay was last seen connected.
  std::chrono::seconds overlap{5 * 60};
  /// A full reconciliation runs at a random time in this range after the
  /// last full sync.
  std::chrono::seconds reconcile_min{23 * 3600};
  std::chrono::seconds reconcile_max{25 * 3600};
  /// Most repositories (`#a`) or root ids (`#e`) in one filter.
  size_t group_size = 100;
  /// Most filters in one REQ.
  size_t max_filters_per_subscription = 10;
  /// Most live filters on one relay before its subscriptions consolidate.
  size_t max_filters_per_relay = 100;
};

/// The state of our connection to a relay, as GRASP SYNC drives it.
enum class link_state : uint8_t {
  /// No connection and none asked for.
  idle,
  /// `connect` sent; waiting for `connected` or `lost`.
  connecting,
  connected,
};

/// @relates link_state
std::string to_string(link_state x);

/// Repositories and root ids, sorted and unique.
struct item_set {
  std::set<std::string> repos;
  std::set<std::string> roots;
  /// Layer 1 (the relay's announcements) is part of it.
  bool announcements = false;

  bool empty() const {
    return repos.empty() && roots.empty() && !announcements;
  }
};

/// Everything the decision reads.
struct plan_state {
  /// `repo_sync`, by address.
  std::map<std::string, repo_sync_entry> wanted;
  /// `relay_sync`, by URL.
  std::map<std::string, relay_sync_entry> relays;
  /// In flight (open batches), by relay URL.
  std::map<std::string, item_set> pending;
  /// Connections that are not idle, by relay URL.
  std::map<std::string, link_state> links;
};

/// One batch worth of fetching: items with the same `since`.
struct fetch {
  std::vector<std::string> repos;
  std::vector<std::string> roots;
  bool announcements = false;
  /// Only events from this unix time on (a catch-up); none: everything.
  std::optional<int64_t> since;
};

/// What to do with one relay.
enum class action_kind : uint8_t {
  /// Connect, then send the fetches.
  connect,
  /// Send the fetches on the live connection (AddFilters).
  add,
  /// Close the connection: nobody wants the relay.
  drop,
  /// Close the connection: another cluster member runs the relay. Its
  /// record stays, for when the relay comes back here.
  release,
  /// Erase the relay's `relay_sync` record: unwanted and away so long that
  /// its confirmed state would be cleared anyway.
  forget,
};

/// @relates action_kind
std::string to_string(action_kind x);

struct relay_action {
  action_kind kind = action_kind::connect;
  std::string relay;
  /// Clear the relay's confirmed state first: a full resync (away too long,
  /// never confirmed) or the daily reconciliation. On a live connection,
  /// its subscriptions are closed and opened afresh.
  bool full = false;
  std::vector<fetch> fetches;
};

/// The relays every repository wants, inverted: relay → repositories and
/// root ids.
std::map<std::string, item_set> wanted_by_relay(
  const std::map<std::string, repo_sync_entry>& wanted);

/// actions = wanted − pending − confirmed, per relay, sorted by relay:
/// - a wanted (or bootstrap) idle relay is connected: fully (confirmed state
///   cleared) when it was never fully synced, was away more than
///   `resync_after` or its reconciliation is due; otherwise what it had
///   confirmed catches up from `last_connected − overlap` and the rest is
///   fetched fully;
/// - a connected relay gets only what is neither pending nor confirmed, or
///   a full reconciliation once due and nothing is in flight;
/// - a connecting relay waits;
/// - a relay nobody wants is dropped (never a bootstrap relay), and its
///   record forgotten once it is away longer than `resync_after`;
/// - a wanted (or bootstrap) relay for which `runs_here` says false (in a
///   cluster: another member owns it) is left alone, and released when a
///   connection to it is open or opening.
/// An empty `runs_here` runs every relay here.
std::vector<relay_action>
decide(const plan_state& state, int64_t now, const plan_config& config,
       const std::function<bool(const std::string&)>& runs_here = {});

/// The unix time of the next full reconciliation after a full sync at
/// `now`: `now` plus a duration in [reconcile_min, reconcile_max] picked by
/// `random` (any 64-bit value, e.g. from a seeded engine).
int64_t next_reconcile_at(int64_t now, uint64_t random,
                          const plan_config& config);

// -- filters ------------------------------------------------------------------

/// Kinds of the broad fallback filter: every NIP-34 event and NIP-22 comment,
/// of any repository.
extern const std::vector<uint32_t> broad_kinds;

/// Filters of one fetch, each with the fetch's `since`:
/// - layer 1, when it includes the announcements: kinds 30617 and 30618;
/// - layer 2: per group of at most `group_size` repositories, `#a` and `#A`
///   (NIP-22 comments name the repository in `A`);
/// - layer 3: per group of at most `group_size` root ids, `#e` and `#E`.
std::vector<nostr::filter> build_filters(const fetch& f,
                                         const plan_config& config);

/// The role of a live subscription on a relay.
enum class sub_layer : uint8_t {
  /// Layer 1; never consolidated.
  announcements,
  /// Layers 2 and 3.
  tagged,
  /// The broad fallback.
  broad,
};

/// What a REQ on a relay is for.
enum class sub_role : uint8_t {
  /// Everything its filters match, then live: it stays open after EOSE.
  fetch,
  /// The stored part of a catch-up (filters with `since`): CLOSEd once its
  /// batch settles, since its `since` would hide back-dated arrivals.
  catchup,
  /// The live part of a catch-up (same filters without `since`, `limit`
  /// 0): opened with it, it stays open after EOSE.
  tail,
};

/// One REQ open on a relay.
struct live_subscription {
  std::string id;
  sub_layer layer = sub_layer::tagged;
  sub_role role = sub_role::fetch;
  std::vector<nostr::filter> filters;
  /// Its batch settled (or it never had one): it only carries live events,
  /// so it may be replaced.
  bool settled = false;
};

/// The live tail of catch-up filters: without `since`, `limit` 0, so it
/// returns nothing stored and lets every new arrival through, however old
/// its created_at.
std::vector<nostr::filter> live_tail(std::vector<nostr::filter> filters);

/// How to shrink a relay's live subscriptions.
struct consolidation {
  /// Subscriptions to CLOSE.
  std::vector<std::string> close;
  /// Live-only filters (no `since`, `limit` 0) replacing them; empty when
  /// a broad subscription already covers everything.
  std::vector<nostr::filter> open;
  /// `open` is the broad fallback.
  bool broad = false;
};

/// Decides whether `incoming` more filters fit on a relay holding `live`.
/// When the total would exceed `max_filters_per_relay`, the settled layer
/// 2/3 subscriptions are merged into full groups; when even that does not
/// fit, they give way to one broad filter of `broad_kinds`. Catch-up
/// subscriptions do not count: they close once settled.
/// @returns nullopt when everything fits or nothing can be merged.
std::optional<consolidation>
consolidate(const std::vector<live_subscription>& live, size_t incoming,
            const plan_config& config);

/// The repositories (`#a`/`#A`) and root ids (`#e`/`#E`) filters name.
item_set items_of(const std::vector<nostr::filter>& filters);

/// Splits filters into REQs of at most `max_filters_per_subscription`.
std::vector<std::vector<nostr::filter>>
split_filters(std::vector<nostr::filter> filters, const plan_config& config);

} // namespace ferry::grasp
