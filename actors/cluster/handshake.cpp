#include "actors/cluster/handshake.hpp"

#include "messages/nostr/event.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/sha256.hpp"

#include <openssl/rand.h>

#include <stdexcept>

namespace ferry::cluster {

namespace {

/// Bumped if what is signed ever changes, so old and new nodes refuse each
/// other instead of misreading.
constexpr std::string_view label = "ferry-cluster-join/1";

} // namespace

std::string make_challenge() {
  nostr::bytes32 bytes;
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
    throw std::runtime_error("OpenSSL RAND_bytes failed");
  return nostr::to_hex(bytes);
}

nostr::bytes32 challenge_digest(std::string_view challenge,
                                const member_heartbeat& signer) {
  std::string text;
  text.reserve(label.size() + challenge.size() + signer.name.size()
               + signer.pubkey.size() + 3);
  text.append(label).append("\n").append(challenge).append("\n");
  text.append(signer.name).append("\n").append(signer.pubkey);
  return nostr::sha256(text);
}

std::string sign_challenge(std::string_view challenge,
                           const member_heartbeat& signer,
                           const nostr::keypair& keys) {
  return nostr::to_hex(
    nostr::sign_hash(challenge_digest(challenge, signer), keys));
}

std::string check_challenge_signature(std::string_view challenge,
                                      const member_heartbeat& signer,
                                      std::string_view signature) {
  // The event verifier checks a signature over `id` with `pubkey`: exactly
  // a BIP-340 check of the digest.
  nostr::event probe;
  if (!nostr::from_hex(signer.pubkey, probe.pubkey))
    return "pubkey is not 64 lowercase hex characters";
  if (!nostr::from_hex(signature, probe.sig))
    return "signature is not 128 lowercase hex characters";
  probe.id = challenge_digest(challenge, signer);
  if (!nostr::verify_signature(probe))
    return "signature does not prove the key " + signer.pubkey
           + " for this challenge";
  return {};
}

} // namespace ferry::cluster
