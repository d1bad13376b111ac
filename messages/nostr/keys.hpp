#pragma once

#include "messages/nostr/event.hpp"
#include "messages/nostr/hex.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace ferry::nostr {

/// A secp256k1 key pair; `pubkey` is the BIP-340 x-only public key.
struct keypair {
  bytes32 secret{};
  bytes32 pubkey{};
};

/// Fills `out` with `n` bytes from the OS's secure random source (aborts the
/// process when that fails: nothing may go on without it).
void random_bytes(uint8_t* out, size_t n);

/// A fresh key pair from the OS's secure random source.
keypair generate_keypair();

/// The key pair of a secret key; nullopt when the secret is not a valid scalar.
std::optional<keypair> keypair_from_secret(const bytes32& secret);

/// BIP-340 signature of a 32-byte message (with fresh auxiliary randomness).
bytes64 sign_hash(const bytes32& hash, const keypair& keys);

/// Sets `ev.pubkey`, then `ev.id` and `ev.sig` from the event's content.
void sign_event(event& ev, const keypair& keys);

} // namespace ferry::nostr
