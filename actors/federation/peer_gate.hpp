#pragma once

#include "messages/nostr/filter.hpp"
#include "messages/nostr/hex.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <vector>

namespace ferry {

/// What the relay lets federation peers do, by their node keys; the
/// FEDERATION MANAGER writes it, every client session of the relay reads it.
///   - Refused: the keys of peers whose link is not active (pending,
///     suspended, revoked or removed). A client authenticated as one of them
///     gets `restricted:` for REQ, COUNT, EVENT and NEG-OPEN, and no live
///     events.
///   - Limited: the keys of active peers offered some collections. Such a
///     client may read only within them: each filter of its REQ, COUNT or
///     NEG-OPEN must lie within one filter of those collections
///     (`within`), else `restricted:`. A peer offered no collection reads
///     what any client may.
class peer_gate {
public:
  /// Replaces the refused keys.
  void assign(std::set<nostr::bytes32> keys) {
    std::lock_guard<std::mutex> guard{mutex_};
    refused_ = std::move(keys);
    empty_ = refused_.empty() && limited_.empty();
  }

  /// Replaces the limited keys, each with the filters it may read within.
  void assign_limits(std::map<nostr::bytes32, std::vector<nostr::filter>> limits) {
    std::lock_guard<std::mutex> guard{mutex_};
    limited_ = std::move(limits);
    empty_ = refused_.empty() && limited_.empty();
  }

  /// Whether any of `keys` (a session's authenticated pubkeys) is refused.
  bool refuses(const std::set<nostr::bytes32>& keys) const {
    // The common case, no peer to watch, costs one atomic load.
    if (keys.empty() || empty_.load(std::memory_order_relaxed))
      return false;
    std::lock_guard<std::mutex> guard{mutex_};
    for (const auto& key : keys)
      if (refused_.count(key) != 0)
        return true;
    return false;
  }

  /// Whether a session authenticated as `keys` asks beyond what one of them
  /// may read with `filters`.
  bool exceeds(const std::set<nostr::bytes32>& keys,
               const std::vector<nostr::filter>& filters) const;

private:
  mutable std::mutex mutex_;
  std::set<nostr::bytes32> refused_;
  std::map<nostr::bytes32, std::vector<nostr::filter>> limited_;
  std::atomic<bool> empty_{true};
};

/// Every event `f` can match, `bound` matches too, judged from the filters
/// alone (conservatively: a condition of `bound` must appear in `f` at least
/// as narrow). `limit` plays no part.
bool within(const nostr::filter& f, const nostr::filter& bound);

} // namespace ferry
