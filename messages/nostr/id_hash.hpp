#pragma once

#include "messages/nostr/hex.hpp"

#include <cstddef>
#include <cstring>

namespace ferry::nostr {

/// Hash of an event id for hash sets and maps: ids are SHA-256 digests, so
/// their first eight bytes are already uniformly distributed. Only for ids
/// the node computed or checked; keys a client chooses freely need a hash
/// over all their bytes (actors/relay/subscription_index).
struct id_hash {
  size_t operator()(const bytes32& id) const {
    size_t h;
    std::memcpy(&h, id.data(), sizeof(h));
    return h;
  }
};

} // namespace ferry::nostr
