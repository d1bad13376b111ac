#pragma once

#include <chrono>
#include <cstdint>

namespace ferry {

/// Wall-clock seconds since the epoch: Nostr's `created_at` time base. Actor
/// timers and durations use CAF's clock instead, which tests can drive.
inline int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Wall-clock milliseconds since the epoch: for moments one node compares
/// with each other (never with another node's).
inline int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace ferry
