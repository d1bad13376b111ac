#include "messages/nostr/bech32.hpp"
#include "messages/nostr/hex.hpp"

#include <catch2/catch.hpp>

using namespace ferry::nostr;

namespace {

bytes32 bytes_of(const std::string& hex) {
  bytes32 result;
  REQUIRE(from_hex(hex, result));
  return result;
}

} // namespace

TEST_CASE("npub encodes NIP-19's example key", "[bech32]") {
  // The example of NIP-19.
  auto key = bytes_of(
    "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d");
  CHECK(to_npub(key)
        == "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6");
  auto back = from_npub(
    "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6");
  REQUIRE(back);
  CHECK(*back == key);
}

TEST_CASE("bech32 decodes BIP-173's valid strings and refuses the invalid",
          "[bech32]") {
  for (auto valid : {"A12UEL5L", "a12uel5l",
                     "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
                     "?1ezyfcl"})
    CHECK(bech32_decode(valid));
  for (auto invalid : {"pzry9x0s0muk",   // no separator
                       "1pzry9x0s0muk",  // empty hrp
                       "x1b4n0q5v",      // invalid data character
                       "li1dgmt3",       // checksum too short
                       "A1G7SGD8",       // checksum computed over uppercase
                       "a12UEL5L",       // mixed case
                       "10a06t8",        // empty hrp
                       "1qzzfhee"})      // empty hrp
    CHECK_FALSE(bech32_decode(invalid));
}

TEST_CASE("npub round-trips and refuses other prefixes and lengths",
          "[bech32]") {
  auto keys = generate_keypair();
  auto npub = to_npub(keys.pubkey);
  CHECK(npub.rfind("npub1", 0) == 0);
  CHECK(from_npub(npub) == keys.pubkey);
  auto nsec = bech32_encode("nsec", {keys.secret.begin(), keys.secret.end()});
  CHECK_FALSE(from_npub(nsec));
  CHECK_FALSE(from_npub(bech32_encode("npub", {1, 2, 3})));
  auto flipped = npub;
  flipped.back() = flipped.back() == 'q' ? 'p' : 'q';
  CHECK_FALSE(from_npub(flipped));
}
