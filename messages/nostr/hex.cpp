#include "messages/nostr/hex.hpp"

#include <array>

namespace ferry::nostr {

namespace {

constexpr char digits[] = "0123456789abcdef";

// Nibble value of each byte, or -1. Only lowercase is accepted: NIP-01 ids and
// keys are lowercase, and accepting both would give one event two spellings.
constexpr std::array<int8_t, 256> make_nibbles() {
  std::array<int8_t, 256> table{};
  for (auto& x : table)
    x = -1;
  for (int i = 0; i < 10; ++i)
    table['0' + i] = static_cast<int8_t>(i);
  for (int i = 0; i < 6; ++i)
    table['a' + i] = static_cast<int8_t>(10 + i);
  return table;
}

constexpr auto nibbles = make_nibbles();

} // namespace

std::string to_hex(const uint8_t* data, size_t n) {
  std::string out(2 * n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 0x0f];
  }
  return out;
}

bool from_hex(std::string_view hex, uint8_t* out, size_t n) {
  if (hex.size() != 2 * n)
    return false;
  for (size_t i = 0; i < n; ++i) {
    auto hi = nibbles[static_cast<uint8_t>(hex[2 * i])];
    auto lo = nibbles[static_cast<uint8_t>(hex[2 * i + 1])];
    if ((hi | lo) < 0)
      return false;
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return true;
}

} // namespace ferry::nostr
