#pragma once

#include "store/event_store.hpp"

#include <cstdint>

namespace ferry::store {

/// Whether some stored event expires (NIP-40) after second `after` and at
/// or before second `through`: a read that excluded the events expired at
/// `after` then excludes exactly the same events at `through` when there is
/// none. One seek in the `by_expiration` family.
bool expires_within(const event_store& store, int64_t after, int64_t through);

} // namespace ferry::store
