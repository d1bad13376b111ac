#pragma once

#include "messages/nostr/hex.hpp"
#include "messages/nostr/id_hash.hpp"

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ferry {

/// The event ids this node's relay connections are fetching right now, each
/// with the fetcher asking for it. Two sources reconciled at the same time
/// find the same missing events (a rejoining cluster member's peers, relays
/// that carry the same authors): the first fetcher to ask for an id claims
/// it and the others leave it to that one, so each event is downloaded once.
/// A claim lasts while its REQ is open; a fetcher that left ids to another
/// one looks at them again once it has nothing else to do (id_fetcher).
/// Thread-safe: connections run on any scheduler thread. At most every open
/// fetch REQ's ids are held (connections x REQs x batch size).
class fetch_claims {
public:
  /// A new fetcher's identity.
  uint64_t new_owner();

  /// Claims `id` for `owner` unless another fetcher holds it.
  /// @returns true when `owner` holds it now.
  bool try_claim(const nostr::bytes32& id, uint64_t owner);

  /// True when a fetcher other than `owner` holds `id`.
  bool held_by_other(const nostr::bytes32& id, uint64_t owner) const;

  /// Gives back those of `ids` that `owner` holds.
  void release(const std::vector<nostr::bytes32>& ids, uint64_t owner);

  /// Ids claimed (all fetchers).
  size_t size() const;

private:
  mutable std::mutex mutex_;
  std::unordered_map<nostr::bytes32, uint64_t, nostr::id_hash> owners_;
  uint64_t next_owner_ = 1;
};

} // namespace ferry
