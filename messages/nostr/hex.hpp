#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::nostr {

/// 32 raw bytes: an event id, a public key, a secret key or a SHA-256 digest.
using bytes32 = std::array<uint8_t, 32>;

/// 64 raw bytes: a BIP-340 signature.
using bytes64 = std::array<uint8_t, 64>;

/// Lowercase hex of `n` bytes.
std::string to_hex(const uint8_t* data, size_t n);

template <size_t N>
std::string to_hex(const std::array<uint8_t, N>& xs) {
  return to_hex(xs.data(), N);
}

/// Decodes exactly `2 * n` lowercase hex characters into `out`.
/// Uppercase, odd lengths and any other character are rejected (NIP-01 wants lowercase).
/// @returns false on any violation; `out` is then unspecified.
bool from_hex(std::string_view hex, uint8_t* out, size_t n);

template <size_t N>
bool from_hex(std::string_view hex, std::array<uint8_t, N>& out) {
  return from_hex(hex, out.data(), N);
}

} // namespace ferry::nostr
