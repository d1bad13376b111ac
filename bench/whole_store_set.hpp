#pragma once

// The NIP-77 item set of `{}`, built from a store as a relay builds it: the
// store's read of the created_at index plus item_set's constructor (what
// bench_scale and bench_item_set time).

#include "messages/nostr/negentropy.hpp"
#include "store/column_families.hpp"
#include "store/event_store.hpp"

#include <rocksdb/db.h>

#include <chrono>
#include <ctime>
#include <limits>
#include <memory>
#include <stdexcept>
#include <thread>

namespace ferry::bench {

/// Brings a store just opened to rest and returns the seconds it took: takes
/// and releases a snapshot, as a node's first read does, then waits (up to 3
/// minutes) until no column family has a compaction running or pending.
/// RocksDB marks its bottommost files that hold deletions for a rewrite (to
/// zero their sequence numbers) only once the first snapshot after opening is
/// released: bench_scale's builds 2-7 ran beside that rewrite of a 1M-event
/// store (a third of the CPU samples) and took ~50% longer, while the store
/// reported no compaction pending when it was opened.
inline double settle(const store::event_store& store) {
  const auto start = std::chrono::steady_clock::now();
  store.db()->ReleaseSnapshot(store.db()->GetSnapshot());
  auto busy = [&store] {
    for (uint32_t i = 0; i < store::cf_count; ++i) {
      auto* family = store.handle(static_cast<store::cf>(i));
      uint64_t running = 0;
      uint64_t pending = 0;
      if ((store.db()->GetIntProperty(family, "rocksdb.num-running-compactions", &running)
           && running > 0)
          || (store.db()->GetIntProperty(family, "rocksdb.compaction-pending", &pending)
              && pending > 0))
        return true;
    }
    return false;
  };
  auto waited = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  while (busy() && waited() < 180)
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  return waited();
}

inline nostr::negentropy::item_set_ptr whole_store_set(const store::event_store& store) {
  auto scan = store.negentropy_items(nostr::filter{}, std::time(nullptr),
                                     std::numeric_limits<size_t>::max());
  if (!scan)
    throw std::runtime_error("negentropy_items failed");
  return std::make_shared<const nostr::negentropy::item_set>(std::move(scan->items));
}

} // namespace ferry::bench
