#pragma once

#include "messages/nostr/keys.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::nostr {

/// A decoded bech32 string (BIP-173): its human-readable part and data.
struct bech32_data {
  std::string hrp;
  std::vector<uint8_t> bytes;
};

/// Encodes `bytes` under `hrp` as bech32 (lowercase, checksummed).
std::string bech32_encode(std::string_view hrp, const std::vector<uint8_t>& bytes);

/// Decodes a bech32 string; nullopt on a bad checksum, mixed case, an
/// invalid character or padding.
std::optional<bech32_data> bech32_decode(std::string_view text);

/// NIP-19: the public key as `npub1...`.
std::string to_npub(const bytes32& pubkey);

/// NIP-19: the public key in `npub1...`; nullopt unless it is one.
std::optional<bytes32> from_npub(std::string_view text);

} // namespace ferry::nostr
