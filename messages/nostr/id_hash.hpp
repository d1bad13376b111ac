#pragma once

#include "messages/nostr/hex.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string_view>

namespace ferry::nostr {

/// A random number drawn once per process: the seed of `hash_bytes`.
inline uint64_t id_hash_seed() {
  static const uint64_t value = [] {
    std::random_device device;
    return (uint64_t{device()} << 32) ^ device();
  }();
  return value;
}

/// A hash of `bytes`, seeded per process: MurmurHash3's finalizer over
/// each eight bytes in turn (the last ones zero-padded), starting from the
/// seed mixed with the length.
///
/// For keys others choose. Ids a remote or a client sends (a NIP-77 peer's
/// have and need lists, a filter's ids) are any 32 bytes they like, and even
/// checked ids can be ground to share 20-odd chosen bits in a few hundred
/// thousand tries; a filter's tag values are any strings. Hashed by their
/// own bits (an id's first eight bytes) or by an unseeded hash
/// (std::hash), such keys can be made to pile into one bucket, and every
/// insert and lookup there scans all the others. Whoever chooses the keys
/// cannot see the seed, so cannot choose where they land.
inline uint64_t hash_bytes(std::string_view bytes) {
  auto mix = [](uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
  };
  uint64_t h = id_hash_seed() ^ (bytes.size() * 0x9e3779b97f4a7c15ull);
  size_t offset = 0;
  for (; offset + sizeof(uint64_t) <= bytes.size(); offset += sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + offset, sizeof(word));
    h = mix(h ^ word);
  }
  if (offset < bytes.size()) {
    uint64_t word = 0;
    std::memcpy(&word, bytes.data() + offset, bytes.size() - offset);
    h = mix(h ^ word);
  }
  return h;
}

/// `hash_bytes` of an event id or pubkey.
inline uint64_t hash_id(const bytes32& id) {
  return hash_bytes(
    std::string_view{reinterpret_cast<const char*>(id.data()), id.size()});
}

/// `hash_id` for hash sets and maps of event ids and pubkeys.
struct id_hash {
  size_t operator()(const bytes32& id) const {
    return static_cast<size_t>(hash_id(id));
  }
};

/// `hash_bytes` for hash sets and maps keyed by strings others choose.
struct seeded_string_hash {
  size_t operator()(std::string_view text) const {
    return static_cast<size_t>(hash_bytes(text));
  }
};

} // namespace ferry::nostr
