#pragma once

#include "messages/cluster.hpp"
#include "messages/nostr/keys.hpp"

#include <string>
#include <string_view>

namespace ferry::cluster {

/// A fresh challenge: 32 random bytes as 64 lowercase hex characters.
std::string make_challenge();

/// What a node signs to prove its key to a peer: SHA-256 over a protocol
/// label, the peer's challenge and the signer's name and pubkey, so a
/// signature answers one challenge for one identity and nothing else.
nostr::bytes32 challenge_digest(std::string_view challenge,
                                const member_heartbeat& signer);

/// `signer`'s BIP-340 signature (128 hex) over `challenge_digest`.
std::string sign_challenge(std::string_view challenge,
                           const member_heartbeat& signer,
                           const nostr::keypair& keys);

/// Checks that `signature` (128 hex) is `signer.pubkey`'s signature over
/// `challenge_digest(challenge, signer)`.
/// @returns an empty string when it is, otherwise why not.
std::string check_challenge_signature(std::string_view challenge,
                                      const member_heartbeat& signer,
                                      std::string_view signature);

} // namespace ferry::cluster
