#include "messages/error.hpp"
#include "messages/federation.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/nip98.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace ferry;

namespace {

const std::string key_a(64, 'a');
const std::string key_b(64, 'b');

const std::string good_peer
  = R"({"endpoint":"wss://relay.b.example","admin_url":"https://admin.b.example:7448/",)"
    R"("filters":[{"kinds":[1]}],"collections":["repos"],"mode":"paused"})";

std::string failure_of(const std::string& body) {
  auto def = parse_peer_definition(body, "b");
  return def ? "no error" : render(def.error());
}

versioned_status at(link_status status, uint64_t a, uint64_t b) {
  versioned_status x;
  x.status = status;
  x.version.set(key_a, a);
  x.version.set(key_b, b);
  return x;
}

} // namespace

TEST_CASE("a peer definition parses, normalizes and round-trips",
          "[federation]") {
  auto def = parse_peer_definition(good_peer, "b");
  REQUIRE(def);
  CHECK(def->name == "b");
  CHECK(def->admin_url == "https://admin.b.example:7448");
  CHECK(def->mode == peer_mode::paused);
  CHECK(def->collections == std::vector<std::string>{"repos"});
  auto again = parse_peer_definition(to_json(*def));
  REQUIRE(again);
  CHECK(*again == *def);
}

TEST_CASE("a bad peer definition names the field at fault", "[federation]") {
  CHECK(failure_of(R"({"admin_url":"http://x","filters":[{}]})")
        == "endpoint: required");
  CHECK(failure_of(R"({"endpoint":"ws://x","admin_url":"ftp://x","filters":[{}]})")
          .rfind("admin_url: expected an http:// or https:// URL", 0)
        == 0);
  CHECK(failure_of(R"({"endpoint":"ws://x","admin_url":"http://x/api","filters":[{}]})")
          .rfind("admin_url:", 0)
        == 0);
  CHECK(failure_of(R"({"endpoint":"ws://x","admin_url":"http://x","filters":[]})")
        == "filters: expected at least one filter");
  CHECK(failure_of(R"({"endpoint":"ws://x","admin_url":"http://x","filters":[{"kinds":"x"}]})")
          .rfind("filters[0].kinds:", 0)
        == 0);
  CHECK(failure_of(R"({"endpoint":"ws://x","admin_url":"http://x","filters":[{}],"mode":"off"})")
        == "mode: expected one of sync, paused");
  CHECK(failure_of(R"({"name":"c","endpoint":"ws://x","admin_url":"http://x","filters":[{}]})")
        == "name: does not match the name in the path");
  CHECK(failure_of(R"({"endpoint":"ws://x","admin_url":"http://x","filters":[{}],"x":1})")
        == "x: unknown key");
  CHECK(failure_of(R"({"endpoint":"ws://x","admin_url":"http://x","filters":[{}],"collections":["A B"]})")
          .rfind("collections[0]:", 0)
        == 0);
}

TEST_CASE("a peer record survives its JSON form", "[federation]") {
  peer_record r;
  r.def = *parse_peer_definition(good_peer, "b");
  r.def.password = "secret";
  r.incoming = true;
  r.status = link_status::suspended;
  r.version.set(key_a, 2);
  r.version.set(key_b, 1);
  r.pinned = key_b;
  r.pin_mismatch = key_a;
  r.released_pin = key_a;
  r.last_seen = 1700000000;
  r.handshake = {true, "registered", "ok", "a", 200, "", 1700000001};
  r.pending.push_back({"status", 3, 1700000100});
  r.removed = true;
  auto back = parse_peer_record(to_json(r));
  REQUIRE(back);
  CHECK(to_json(*back) == to_json(r));
  CHECK(back->version == r.version);
  CHECK(back->def.password == "secret");
  CHECK(back->released_pin == key_a);
}

TEST_CASE("settling link statuses: the newer wins, concurrent changes take "
          "the more restrictive, revoked stays",
          "[federation]") {
  // B saw A's change and made its own: B's is newer.
  auto s = settle(at(link_status::suspended, 1, 0),
                  at(link_status::active, 1, 1));
  CHECK(s.status == link_status::active);
  CHECK(s.version == at(link_status::active, 1, 1).version);
  // Ours is newer: theirs is ignored.
  s = settle(at(link_status::suspended, 2, 1), at(link_status::active, 1, 1));
  CHECK(s.status == link_status::suspended);
  // Concurrent: the more restrictive, with both histories; the same on
  // both sides.
  auto a_side = settle(at(link_status::suspended, 1, 0),
                       at(link_status::revoked, 0, 1));
  auto b_side = settle(at(link_status::revoked, 0, 1),
                       at(link_status::suspended, 1, 0));
  CHECK(a_side.status == link_status::revoked);
  CHECK(b_side.status == link_status::revoked);
  CHECK(a_side.version == b_side.version);
  CHECK(a_side.version == at(link_status::active, 1, 1).version);
  a_side = settle(at(link_status::active, 1, 0),
                  at(link_status::suspended, 0, 1));
  CHECK(a_side.status == link_status::suspended);
  // A revoked link stays revoked, even against a newer change.
  s = settle(at(link_status::revoked, 1, 0), at(link_status::active, 1, 1));
  CHECK(s.status == link_status::revoked);
  s = settle(at(link_status::active, 2, 0), at(link_status::revoked, 1, 0));
  CHECK(s.status == link_status::revoked);
}

TEST_CASE("a password is kept as a salted PBKDF2 hash", "[federation]") {
  auto hash = hash_password("open sesame");
  CHECK(hash.find("open sesame") == std::string::npos);
  CHECK(hash.rfind("pbkdf2-sha256$", 0) == 0);
  CHECK(is_password_hash(hash));
  CHECK(password_matches("open sesame", hash));
  CHECK_FALSE(password_matches("open sesame!", hash));
  CHECK_FALSE(password_matches("", hash));
  // A fresh salt each time.
  CHECK(hash_password("open sesame") != hash);
  CHECK_FALSE(is_password_hash("sha256$abc"));
  CHECK_FALSE(is_password_hash("pbkdf2-sha256$0$00$" + key_a));
  CHECK_FALSE(password_matches("x", "not a hash"));
}

TEST_CASE("a version vector reads back from its JSON, naming a bad field",
          "[federation]") {
  auto v = at(link_status::active, 3, 1).version;
  auto back = parse_version(to_json(v), "version");
  REQUIRE(back);
  CHECK(*back == v);
  auto bad = parse_version(R"({"xyz":1})", "version");
  REQUIRE_FALSE(bad);
  CHECK(render(bad.error()).rfind("version.xyz:", 0) == 0);
  bad = parse_version("{\"" + key_a + "\":-1}", "version");
  REQUIRE_FALSE(bad);
  CHECK(render(bad.error()).rfind("version." + key_a + ":", 0) == 0);
}

TEST_CASE("an answer's proof holds for the https URL a caller signed when "
          "the answering node serves http behind a TLS-terminating proxy",
          "[federation]") {
  auto a = nostr::generate_keypair();
  auto b = nostr::generate_keypair();
  auto now = int64_t{1'700'000'000};
  const std::string https_url = "https://admin.b.example/api/v1/federation/link";
  // What B's admin API sees behind the proxy: http, the Host and target.
  const std::string seen_url = "http://admin.b.example/api/v1/federation/link";
  auto authorization = nostr::make_http_auth(a, https_url, "GET", "", now);
  auto b_key = nostr::to_hex(b.pubkey);

  SECTION("B signs for the URL in the caller's u tag") {
    auto proof = answer_proof(b, authorization, seen_url, "GET", now);
    CHECK(proven_key(proof, https_url, "GET", authorization, now) == b_key);
  }
  SECTION("a proof for the http URL B saw holds too") {
    auto proof = nostr::make_http_auth(b, seen_url, "GET", authorization, now);
    CHECK(proven_key(proof, https_url, "GET", authorization, now) == b_key);
  }
  SECTION("a proof over another call, host, method or time proves nothing") {
    auto proof = answer_proof(b, authorization, seen_url, "GET", now);
    auto other = nostr::make_http_auth(a, https_url, "GET", "", now + 1);
    CHECK(proven_key(proof, https_url, "GET", other, now) == "");
    CHECK(proven_key(proof, "https://admin.c.example/api/v1/federation/link",
                     "GET", authorization, now)
          == "");
    CHECK(proven_key(proof, https_url, "DELETE", authorization, now) == "");
    CHECK(proven_key(proof, https_url, "GET", authorization, now + 3600)
          == "");
    CHECK(proven_key("Nostr e30=", https_url, "GET", authorization, now)
          == "");
  }
  SECTION("without a u tag in the caller's header B signs the URL it saw") {
    auto proof = answer_proof(b, "Bearer x", seen_url, "GET", now);
    CHECK(proven_key(proof, seen_url, "GET", "Bearer x", now) == b_key);
  }
}
