#pragma once

#include "messages/nostr/hex.hpp"

#include <atomic>
#include <mutex>
#include <set>

namespace ferry {

/// The node keys of federation peers whose link is not active (pending,
/// suspended, revoked or removed): the FEDERATION MANAGER writes them, every
/// client session of the relay reads them, and a client authenticated as one
/// of them gets `restricted:` for REQ, COUNT, EVENT and NEG-OPEN, and no
/// live events.
class peer_gate {
public:
  /// Replaces the refused keys.
  void assign(std::set<nostr::bytes32> keys) {
    std::lock_guard<std::mutex> guard{mutex_};
    refused_ = std::move(keys);
    empty_ = refused_.empty();
  }

  /// Whether any of `keys` (a session's authenticated pubkeys) is refused.
  bool refuses(const std::set<nostr::bytes32>& keys) const {
    // The common case, no refused peer, costs one atomic load.
    if (keys.empty() || empty_.load(std::memory_order_relaxed))
      return false;
    std::lock_guard<std::mutex> guard{mutex_};
    for (const auto& key : keys)
      if (refused_.count(key) != 0)
        return true;
    return false;
  }

private:
  mutable std::mutex mutex_;
  std::set<nostr::bytes32> refused_;
  std::atomic<bool> empty_{true};
};

} // namespace ferry
