#pragma once

#include "messages/nostr/filter.hpp"
#include "messages/nostr/negentropy.hpp"
#include "store/event_store.hpp"

#include <caf/expected.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ferry {

/// Where item sets come from: a snapshot marker and a reader.
struct item_source {
  /// Changes whenever anything is written to the store (RocksDB's latest
  /// sequence number), so equal markers mean equal contents.
  std::function<uint64_t()> snapshot;
  /// The (created_at, id) of the events matching a filter; at most
  /// `max_items`, `over_limit` when more match.
  std::function<caf::expected<store::item_scan>(const nostr::filter& f,
                                                int64_t now, size_t max_items)>
    read;
};

/// Reads item sets from `store` (which must outlive every user).
item_source store_item_source(const store::event_store& store);

/// Bounds of an item_set_cache (`[relay.negentropy]`).
struct item_set_cache_config {
  /// Bytes all live item sets and sessions may hold together.
  size_t max_bytes = size_t{256} << 20;
  /// Events one item set may hold.
  size_t max_items = 1000000;
  /// Threads that build item sets.
  size_t build_threads = 2;
};

/// What one negentropy session costs besides its item set: the engine, the
/// session's table entries and its id, rounded up.
inline constexpr size_t neg_session_bytes = 1024;

/// The counters of an item_set_cache.
struct item_set_cache_stats {
  /// Bytes of the live item sets (each counted once) and sessions.
  uint64_t bytes = 0;
  uint64_t max_bytes = 0;
  /// Live leases (sessions holding an item set).
  uint64_t sessions = 0;
  /// Live item sets.
  uint64_t item_sets = 0;
  /// Item sets read from the store.
  uint64_t builds = 0;
  /// Leases that got an item set built (or being built) for another one.
  uint64_t shared = 0;
  /// Requests refused because the budget was full.
  uint64_t refusals = 0;
};

/// One session's hold on an item set and on its share of the memory budget;
/// destroying it gives both back (the set's bytes when it was the last
/// holder).
class item_set_lease {
public:
  struct ledger;

  item_set_lease(std::shared_ptr<ledger> owner,
                 nostr::negentropy::item_set_ptr items);
  ~item_set_lease();

  item_set_lease(const item_set_lease&) = delete;
  item_set_lease& operator=(const item_set_lease&) = delete;

  const nostr::negentropy::item_set_ptr& items() const {
    return items_;
  }

private:
  std::shared_ptr<ledger> owner_;
  nostr::negentropy::item_set_ptr items_;
};

using item_set_lease_ptr = std::unique_ptr<item_set_lease>;

/// The outcome of `item_set_cache::acquire`: a lease, or why there is none.
struct item_set_result {
  item_set_lease_ptr lease;
  /// A NEG-ERR reason with its NIP-01 prefix ("blocked: ...", "error: ...").
  std::string error;
};

/// The node's negentropy item sets (NIP-77): sessions that reconcile the
/// same filter over the same store snapshot share one immutable set, every
/// set and session is counted against one memory budget, and sets are built
/// on threads of their own, never on the actor scheduler's.
///
/// Thread-safe. Sets are dropped as soon as no session holds them.
class item_set_cache {
public:
  using callback = std::function<void(item_set_result)>;

  item_set_cache(item_source source, item_set_cache_config config);

  /// Stops the build threads (see `stop`).
  ~item_set_cache();

  item_set_cache(const item_set_cache&) = delete;
  item_set_cache& operator=(const item_set_cache&) = delete;

  /// Gets the item set of `f` (with `now` for NIP-40 expiry) and calls
  /// `done` exactly once with a lease or the reason for none: on the
  /// calling thread when the set is live already, otherwise on a build
  /// thread. Identical requests while a build runs wait for that build.
  void acquire(const nostr::filter& f, int64_t now, callback done);

  using read_callback = std::function<void(caf::expected<store::item_scan>)>;

  /// Reads the items of `f` (at most `max_items`) on a build thread and
  /// calls `done` there with them: our own sync client's local set, which
  /// its session owns alone, so it is neither shared nor counted. After
  /// `stop`, `done` gets an error at once.
  void read(const nostr::filter& f, int64_t now, size_t max_items,
            read_callback done);

  item_set_cache_stats stats() const;

  /// Finishes the running builds, refuses the queued ones and joins the
  /// threads; later requests are refused. Call before the source goes away.
  void stop();

private:
  struct build_job {
    std::string key;
    uint64_t generation = 0;
    nostr::filter filter;
    int64_t now = 0;
    /// Set for a plain `read` (nothing cached).
    read_callback reader;
    size_t max_items = 0;
  };

  void run_builds();
  void build(build_job& job);

  item_source source_;
  item_set_cache_config config_;
  std::shared_ptr<item_set_lease::ledger> ledger_;
  /// Guarded by the ledger's mutex.
  std::deque<build_job> queue_;
  bool stopping_ = false;
  std::condition_variable queued_;
  std::vector<std::thread> builders_;
};

} // namespace ferry
