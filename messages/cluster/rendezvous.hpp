#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::cluster {

/// The form of a key that ownership hashes: a relay URL normalized
/// (`nostr::normalize_relay_url`) and without trailing slashes in its path,
/// so every spelling `nostr::same_relay` calls one relay has one owner; any
/// other key (a hosted relay's id) as it is.
std::string rendezvous_key(std::string_view key);

/// The weight of `member` for `key` (already in rendezvous form): the first
/// 8 bytes, big-endian, of SHA-256 over the key's length (8 bytes,
/// big-endian), the key and the member name. The length prefix keeps
/// ("ab", "c") and ("a", "bc") apart.
uint64_t rendezvous_weight(std::string_view key, std::string_view member);

/// The owner of `key` (any spelling: it is put in rendezvous form first)
/// among `members` by rendezvous (highest random weight) hashing: the member
/// with the greatest weight; on equal weights, the greater name. Depends
/// only on the set of members, not on their order, so every node with the
/// same live set picks the same owner. Adding a member moves to it only the
/// keys it now wins; removing one moves only the keys it owned.
/// @returns nothing when `members` is empty.
std::optional<std::string>
rendezvous_owner(std::string_view key,
                 const std::vector<std::string>& members);

} // namespace ferry::cluster
