#pragma once

// The NIP-77 item set of `{}`, built from a store as a relay builds it: the
// store's read of the created_at index plus item_set's constructor (what
// bench_scale and bench_item_set time).

#include "messages/nostr/negentropy.hpp"
#include "store/event_store.hpp"

#include <ctime>
#include <limits>
#include <memory>
#include <stdexcept>

namespace ferry::bench {

inline nostr::negentropy::item_set_ptr whole_store_set(const store::event_store& store) {
  auto scan = store.negentropy_items(nostr::filter{}, std::time(nullptr),
                                     std::numeric_limits<size_t>::max());
  if (!scan)
    throw std::runtime_error("negentropy_items failed");
  return std::make_shared<const nostr::negentropy::item_set>(std::move(scan->items));
}

} // namespace ferry::bench
