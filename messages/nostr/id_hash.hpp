#pragma once

#include "messages/nostr/hex.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>

namespace ferry::nostr {

/// A random number drawn once per process: the seed of `hash_id`.
inline uint64_t id_hash_seed() {
  static const uint64_t value = [] {
    std::random_device device;
    return (uint64_t{device()} << 32) ^ device();
  }();
  return value;
}

/// A hash of all 32 bytes of `id`, seeded per process (MurmurHash3's
/// finalizer over each eight bytes in turn, starting from the seed).
///
/// Not the id's own bits: ids a remote or a client sends (a NIP-77 peer's
/// have and need lists, a filter's ids) are any 32 bytes they like, and even
/// checked ids can be ground to share 20-odd chosen bits in a few hundred
/// thousand tries. Keyed by their prefix, such ids piled into one bucket
/// and made every insert scan all the others. Whoever chooses the ids
/// cannot see the seed, so cannot choose where they land.
inline uint64_t hash_id(const bytes32& id) {
  uint64_t h = id_hash_seed();
  for (size_t offset = 0; offset < id.size(); offset += sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, id.data() + offset, sizeof(word));
    h ^= word;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
  }
  return h;
}

/// `hash_id` for hash sets and maps of event ids and pubkeys.
struct id_hash {
  size_t operator()(const bytes32& id) const {
    return static_cast<size_t>(hash_id(id));
  }
};

} // namespace ferry::nostr
