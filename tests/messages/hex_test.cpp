#include "messages/nostr/hex.hpp"

#include <catch2/catch.hpp>

using namespace ferry::nostr;

TEST_CASE("bytes encode to lowercase hex and decode back", "[hex]") {
  const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  auto hex = to_hex(bytes, sizeof(bytes));
  CHECK(hex == "00017f80abff");
  uint8_t back[sizeof(bytes)] = {};
  REQUIRE(from_hex(hex, back, sizeof(back)));
  CHECK(std::equal(std::begin(bytes), std::end(bytes), std::begin(back)));
}

TEST_CASE("a 32-byte array round-trips through hex", "[hex]") {
  bytes32 x{};
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<uint8_t>(i * 37);
  bytes32 y{};
  REQUIRE(from_hex(to_hex(x), y));
  CHECK(x == y);
}

TEST_CASE("hex that is not exactly lowercase of the right length is rejected", "[hex]") {
  auto bad = GENERATE(as<std::string>{}, "", "0", "000", "00000000", "AB", "aB", "0g",
                      " 0", "0x", "zz");
  CAPTURE(bad);
  uint8_t out[2] = {};
  auto n = bad.size() == 2 ? 1 : 2;
  CHECK_FALSE(from_hex(bad, out, n));
}
