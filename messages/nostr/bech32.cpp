#include "messages/nostr/bech32.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace ferry::nostr {

namespace {

constexpr std::string_view charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

uint32_t polymod(const std::vector<uint8_t>& values) {
  constexpr std::array<uint32_t, 5> generator{0x3b6a57b2, 0x26508e6d,
                                              0x1ea119fa, 0x3d4233dd,
                                              0x2a1462b3};
  uint32_t chk = 1;
  for (auto v : values) {
    auto top = chk >> 25;
    chk = (chk & 0x1ffffff) << 5 ^ v;
    for (size_t i = 0; i < 5; ++i)
      if ((top >> i) & 1)
        chk ^= generator[i];
  }
  return chk;
}

std::vector<uint8_t> expand_hrp(std::string_view hrp) {
  std::vector<uint8_t> result;
  for (auto c : hrp)
    result.push_back(static_cast<uint8_t>(c) >> 5);
  result.push_back(0);
  for (auto c : hrp)
    result.push_back(static_cast<uint8_t>(c) & 31);
  return result;
}

/// Regroups bits, e.g. 8-bit bytes into 5-bit groups; nullopt when `pad`
/// is off and the input leaves non-zero or whole spare groups.
std::optional<std::vector<uint8_t>>
regroup(const std::vector<uint8_t>& in, int from, int to, bool pad) {
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  const uint32_t max = (1u << to) - 1;
  for (auto v : in) {
    if (v >> from)
      return std::nullopt;
    acc = acc << from | v;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push_back(static_cast<uint8_t>((acc >> bits) & max));
    }
  }
  if (pad) {
    if (bits > 0)
      out.push_back(static_cast<uint8_t>((acc << (to - bits)) & max));
  } else if (bits >= from || ((acc << (to - bits)) & max) != 0) {
    return std::nullopt;
  }
  return out;
}

} // namespace

std::string bech32_encode(std::string_view hrp,
                          const std::vector<uint8_t>& bytes) {
  auto data = *regroup(bytes, 8, 5, true);
  auto values = expand_hrp(hrp);
  values.insert(values.end(), data.begin(), data.end());
  values.insert(values.end(), 6, 0);
  auto mod = polymod(values) ^ 1;
  std::string result{hrp};
  result += '1';
  for (auto d : data)
    result += charset[d];
  for (int i = 0; i < 6; ++i)
    result += charset[(mod >> (5 * (5 - i))) & 31];
  return result;
}

std::optional<bech32_data> bech32_decode(std::string_view text) {
  bool lower = false;
  bool upper = false;
  for (auto c : text) {
    if (c < 33 || c > 126)
      return std::nullopt;
    lower |= std::islower(static_cast<unsigned char>(c)) != 0;
    upper |= std::isupper(static_cast<unsigned char>(c)) != 0;
  }
  if (lower && upper)
    return std::nullopt;
  auto sep = text.rfind('1');
  if (sep == std::string_view::npos || sep == 0 || sep + 7 > text.size())
    return std::nullopt;
  std::string hrp;
  for (auto c : text.substr(0, sep))
    hrp += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::vector<uint8_t> data;
  for (auto c : text.substr(sep + 1)) {
    auto pos = charset.find(
      static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (pos == std::string_view::npos)
      return std::nullopt;
    data.push_back(static_cast<uint8_t>(pos));
  }
  auto values = expand_hrp(hrp);
  values.insert(values.end(), data.begin(), data.end());
  if (polymod(values) != 1)
    return std::nullopt;
  data.resize(data.size() - 6);
  auto bytes = regroup(data, 5, 8, false);
  if (!bytes)
    return std::nullopt;
  return bech32_data{std::move(hrp), std::move(*bytes)};
}

std::string to_npub(const bytes32& pubkey) {
  return bech32_encode("npub", {pubkey.begin(), pubkey.end()});
}

std::optional<bytes32> from_npub(std::string_view text) {
  auto decoded = bech32_decode(text);
  if (!decoded || decoded->hrp != "npub" || decoded->bytes.size() != 32)
    return std::nullopt;
  bytes32 result;
  std::copy(decoded->bytes.begin(), decoded->bytes.end(), result.begin());
  return result;
}

} // namespace ferry::nostr
