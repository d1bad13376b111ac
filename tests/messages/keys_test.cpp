#include "messages/nostr/keys.hpp"

#include <catch2/catch.hpp>

using namespace ferry::nostr;

namespace {

template <size_t N>
std::array<uint8_t, N> from_hex_or_fail(std::string_view hex) {
  std::array<uint8_t, N> out{};
  REQUIRE(from_hex(hex, out));
  return out;
}

// BIP-340 test vector #0: secret key 3, aux 0, message 0.
const std::string bip340_pubkey
  = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";
const std::string bip340_sig
  = "e907831f80848d1069a5371b402410364bdf1c5f8307b0084c55f1ce2dca8215"
    "25f66a4a85ea8b71e482a74f382d2ce5ebeee8fdb2172f477df4900d310536c0";

bytes32 scalar(uint8_t last) {
  bytes32 x{};
  x[31] = last;
  return x;
}

event bip340_event() {
  event ev;
  ev.id = bytes32{};
  ev.pubkey = from_hex_or_fail<32>(bip340_pubkey);
  ev.sig = from_hex_or_fail<64>(bip340_sig);
  return ev;
}

event some_event() {
  event ev;
  ev.created_at = 1700000000;
  ev.kind = 1;
  ev.tags = {{"t", "ferry"}};
  ev.content = "hello from ferry";
  return ev;
}

} // namespace

TEST_CASE("the BIP-340 vector 0 secret key gives its public key", "[keys]") {
  auto keys = keypair_from_secret(scalar(3));
  REQUIRE(keys.has_value());
  CHECK(to_hex(keys->pubkey) == bip340_pubkey);
  CHECK(keys->secret == scalar(3));
}

TEST_CASE("the BIP-340 vector 0 signature verifies and a tampered one does not",
          "[keys]") {
  auto ev = bip340_event();
  CHECK(verify_signature(ev));
  auto tampered = ev;
  tampered.sig[63] ^= 0x01;
  CHECK_FALSE(verify_signature(tampered));
  auto other_message = ev;
  other_message.id[0] = 1;
  CHECK_FALSE(verify_signature(other_message));
  // BIP-340 vector 5: a public key that is not on the curve.
  auto off_curve = ev;
  off_curve.pubkey = from_hex_or_fail<32>(
    "eefdea4cdb677750a420fee807eacf21eb9898ae79b9768766e4faa04a2d4a34");
  CHECK_FALSE(verify_signature(off_curve));
  // The verification cache must not confuse the two keys afterwards.
  CHECK(verify_signature(ev));
}

TEST_CASE("secret keys outside the curve order are refused", "[keys]") {
  CHECK_FALSE(keypair_from_secret(bytes32{}).has_value());
  auto order = from_hex_or_fail<32>(
    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
  CHECK_FALSE(keypair_from_secret(order).has_value());
  auto order_minus_one = order;
  order_minus_one[31] = 0x40;
  CHECK(keypair_from_secret(order_minus_one).has_value());
}

TEST_CASE("a generated key pair is fresh and self-consistent", "[keys]") {
  auto a = generate_keypair();
  auto b = generate_keypair();
  CHECK(a.secret != b.secret);
  CHECK(a.pubkey != b.pubkey);
  auto again = keypair_from_secret(a.secret);
  REQUIRE(again.has_value());
  CHECK(again->pubkey == a.pubkey);
}

TEST_CASE("a signed event passes the full check", "[keys]") {
  auto keys = generate_keypair();
  auto ev = some_event();
  sign_event(ev, keys);
  CHECK(ev.pubkey == keys.pubkey);
  CHECK(ev.id == compute_id(ev));
  CHECK(check_event(ev) == "");
  event back;
  REQUIRE(parse_event(to_json(ev), back) == "");
  CHECK(check_event(back) == "");
  ev.content += "!";
  CHECK(check_event(ev) == "event id does not match its content");
}

TEST_CASE("a signature from another key does not verify", "[keys]") {
  auto alice = generate_keypair();
  auto mallory = generate_keypair();
  auto ev = some_event();
  sign_event(ev, alice);
  ev.sig = sign_hash(ev.id, mallory);
  CHECK(check_event(ev) == "bad signature");
}

TEST_CASE("signing twice uses fresh randomness and both signatures verify", "[keys]") {
  auto keys = *keypair_from_secret(scalar(3));
  event ev;
  ev.pubkey = keys.pubkey;
  ev.id = scalar(42);
  auto first = sign_hash(ev.id, keys);
  auto second = sign_hash(ev.id, keys);
  CHECK(first != second);
  ev.sig = first;
  CHECK(verify_signature(ev));
  ev.sig = second;
  CHECK(verify_signature(ev));
}

TEST_CASE("a hand-built key pair with an invalid secret signs nothing valid", "[keys]") {
  keypair bogus;
  bogus.pubkey = from_hex_or_fail<32>(bip340_pubkey);
  auto sig = sign_hash(bytes32{}, bogus);
  CHECK(sig == bytes64{});
}
