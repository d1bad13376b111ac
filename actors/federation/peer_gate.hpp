#pragma once

#include "messages/nostr/filter.hpp"
#include "messages/nostr/hex.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace ferry {

/// What the relay lets federation peers do, by their node keys; the
/// FEDERATION MANAGER writes it, every client session of the relay reads it.
///   - Refused: keys that may not read (REQ, COUNT, NEG-OPEN, NEG-MSG, live
///     events) or may not write (EVENT), each with the `restricted:` text
///     the client gets: peers whose link is not active (pending, suspended,
///     revoked, removed) or is paused on our side get neither; in
///     `[federation] mode = "subscribe"` no peer reads, in "publish" no peer
///     writes.
///   - Limited: the keys of active peers offered some collections. Such a
///     client may read only within them: each filter of its REQ, COUNT or
///     NEG-OPEN must lie within one filter of those collections
///     (`within`), else `restricted:`. A peer offered no collection reads
///     what any client may.
class peer_gate {
public:
  /// Per refused key, the reason its client is told.
  using refusals = std::map<nostr::bytes32, std::string>;

  /// Replaces the refused keys.
  void assign(refusals reads, refusals writes) {
    std::lock_guard<std::mutex> guard{mutex_};
    refused_reads_ = std::move(reads);
    refused_writes_ = std::move(writes);
    update_empty();
  }

  /// Replaces the limited keys, each with the filters it may read within.
  void assign_limits(std::map<nostr::bytes32, std::vector<nostr::filter>> limits) {
    std::lock_guard<std::mutex> guard{mutex_};
    limited_ = std::move(limits);
    update_empty();
  }

  /// Why a session authenticated as `keys` may not read; empty: it may.
  std::string read_refusal(const std::set<nostr::bytes32>& keys) const {
    return refusal(refused_reads_, keys);
  }

  /// Why a session authenticated as `keys` may not write; empty: it may.
  std::string write_refusal(const std::set<nostr::bytes32>& keys) const {
    return refusal(refused_writes_, keys);
  }

  /// Whether a session authenticated as `keys` asks beyond what one of them
  /// may read with `filters`.
  bool exceeds(const std::set<nostr::bytes32>& keys,
               const std::vector<nostr::filter>& filters) const;

private:
  std::string refusal(const refusals& refused,
                      const std::set<nostr::bytes32>& keys) const {
    // The common case, no peer to watch, costs one atomic load.
    if (keys.empty() || empty_.load(std::memory_order_relaxed))
      return {};
    std::lock_guard<std::mutex> guard{mutex_};
    for (const auto& key : keys)
      if (auto i = refused.find(key); i != refused.end())
        return i->second;
    return {};
  }

  /// Call with `mutex_` held.
  void update_empty() {
    empty_ = refused_reads_.empty() && refused_writes_.empty()
             && limited_.empty();
  }

  mutable std::mutex mutex_;
  refusals refused_reads_;
  refusals refused_writes_;
  std::map<nostr::bytes32, std::vector<nostr::filter>> limited_;
  std::atomic<bool> empty_{true};
};

/// Every event `f` can match, `bound` matches too, judged from the filters
/// alone (conservatively: a condition of `bound` must appear in `f` at least
/// as narrow). `limit` plays no part.
bool within(const nostr::filter& f, const nostr::filter& bound);

} // namespace ferry
