#include "messages/nostr/nip42.hpp"

#include "messages/nostr/event.hpp"
#include "messages/nostr/relay_url.hpp"

#include <catch2/catch.hpp>

using namespace ferry::nostr;

namespace {

constexpr int64_t now = 1700000000;
const std::string relay = "wss://relay.example.com";
const std::string challenge = "c-123";

const keypair& keys() {
  static auto k = generate_keypair();
  return k;
}

/// An AUTH event with hand-picked tags, signed, so each rule can be broken
/// on its own.
event signed_event(std::vector<tag> tags, uint32_t kind = client_auth_kind,
                   int64_t created_at = now) {
  event ev;
  ev.kind = kind;
  ev.created_at = created_at;
  ev.tags = std::move(tags);
  sign_event(ev, keys());
  return ev;
}

std::string verify(const event& ev, std::string_view url = relay) {
  return verify_auth_event(ev, url, challenge, now);
}

} // namespace

TEST_CASE("an AUTH event made here verifies here", "[nip42]") {
  auto ev = make_auth_event(keys(), relay, challenge, now);
  CHECK(ev.kind == 22242);
  CHECK(ev.created_at == now);
  CHECK(ev.pubkey == keys().pubkey);
  CHECK(ev.content.empty());
  CHECK(ev.tags == std::vector<tag>{{"relay", relay}, {"challenge", challenge}});
  CHECK(check_event(ev).empty());
  CHECK(verify(ev).empty());
}

TEST_CASE("the relay tag is compared after normalization", "[nip42]") {
  auto ev = make_auth_event(keys(), "WSS://Relay.Example.com:443/", challenge, now);
  CHECK(verify(ev).empty());
  CHECK(verify(ev, "wss://relay.example.com/").empty());
  auto with_path = make_auth_event(keys(), "wss://relay.example.com/nostr/", challenge, now);
  CHECK(verify(with_path, "wss://relay.example.com/nostr").empty());
  CHECK(verify(with_path) == "relay tag does not name this relay");
  CHECK(verify(ev, "ws://relay.example.com") == "relay tag does not name this relay");
  CHECK(verify(ev, "wss://relay.example.com:8443")
        == "relay tag does not name this relay");
  CHECK(verify(ev, "wss://other.example.com") == "relay tag does not name this relay");
  auto bogus = make_auth_event(keys(), "https://relay.example.com", challenge, now);
  CHECK(verify(bogus) == "relay tag is not a ws:// or wss:// URL");
}

TEST_CASE("each NIP-42 rule refuses on its own", "[nip42]") {
  std::vector<tag> good{{"relay", relay}, {"challenge", challenge}};
  CHECK(verify(signed_event(good, 1)) == "event kind is 1, not 22242");
  CHECK(verify(signed_event(good, client_auth_kind, now - 601))
        == "event created_at is more than 600 s away from now");
  CHECK(verify(signed_event(good, client_auth_kind, now + 601))
        == "event created_at is more than 600 s away from now");
  CHECK(verify(signed_event(good, client_auth_kind, now - 600)).empty());
  CHECK(verify_auth_event(signed_event(good, client_auth_kind, now - 30), relay,
                          challenge, now, 10)
        == "event created_at is more than 10 s away from now");
  CHECK(verify(signed_event({{"relay", relay}}))
        == "event needs exactly one challenge tag");
  CHECK(verify(signed_event({{"relay", relay}, {"challenge", challenge},
                             {"challenge", challenge}}))
        == "event needs exactly one challenge tag");
  CHECK(verify(signed_event({{"relay", relay}, {"challenge", "other"}}))
        == "challenge tag does not match the challenge");
  CHECK(verify(signed_event({{"challenge", challenge}}))
        == "event needs exactly one relay tag");
  CHECK(verify(signed_event({{"relay", relay}, {"relay", relay},
                             {"challenge", challenge}}))
        == "event needs exactly one relay tag");
  CHECK(verify_auth_event(signed_event({{"relay", relay}, {"challenge", ""}}),
                          relay, "", now)
        == "no challenge was issued");

  auto tampered = make_auth_event(keys(), relay, challenge, now);
  tampered.content = "changed";
  CHECK(verify(tampered).rfind("event is not authentic: ", 0) == 0);
  auto bad_sig = make_auth_event(keys(), relay, challenge, now);
  bad_sig.sig[0] ^= 1;
  CHECK(verify(bad_sig).rfind("event is not authentic: ", 0) == 0);
}

TEST_CASE("an unparsable expected URL is compared byte for byte", "[nip42]") {
  auto ev = make_auth_event(keys(), "wss://relay.example.com", challenge, now);
  CHECK(verify(ev, "relay.example.com") == "relay tag does not name this relay");
}
