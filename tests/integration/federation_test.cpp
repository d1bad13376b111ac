// Federation between real `ferry node` processes on loopback: the
// registration handshake and every answer it can get, approval and
// passwords, status mirroring both ways (concurrent changes settle on the
// more restrictive status), the identity pin (a peer restarted with a new
// key is refused until a reset), pause and resume from the cursor, and
// removals that reach a peer that was down, or that a peer finds by
// verifying.

#include "messages/nostr/event.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/nip42.hpp"
#include "messages/nostr/nip98.hpp"
#include "tests/integration/federation_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

using namespace ferry;
using namespace std::chrono_literals;
using sync_test::ids_of;
using sync_test::logs;

namespace {

namespace json = boost::json;
using namespace fed_test;

/// The body of a registration from a test "node" that no one calls back.
std::string registration(const std::string& name,
                         const std::string& extra = {}) {
  return R"({"name":")" + name
         + R"(","endpoint":"ws://127.0.0.1:1","admin_url":"http://127.0.0.1:1")"
         + extra + "}";
}

/// The answer carries the node's key and its signature over the caller's
/// own Authorization header for the URL called: proof of who answered.
void check_proof(fed_node& node, const net::http_result& res,
                 const std::string& method, const std::string& target) {
  auto v = body_of(res);
  CHECK(v.at("pubkey").as_string() == node.pubkey());
  nostr::http_auth_event signer;
  auto why = nostr::verify_http_auth(std::string{v.at("proof").as_string()},
                                     node.admin_url() + target, method,
                                     node.last_authorization, test::unix_now(),
                                     &signer);
  CHECK(why == "");
  CHECK(nostr::to_hex(signer.pubkey) == node.pubkey());
}

/// The value of the first sample of `family` in `node`'s /metrics whose
/// labels include every one of `labels` (each as `key="value"`); -1 when
/// there is none.
double metric(fed_node& node, const std::string& family,
              const std::vector<std::string>& labels) {
  auto text = node.call("GET", "/metrics").response.body;
  size_t at = 0;
  while ((at = text.find(family + "{", at)) != std::string::npos) {
    auto end = text.find('\n', at);
    auto line = text.substr(at, end - at);
    at = end;
    if (std::all_of(labels.begin(), labels.end(), [&](const auto& label) {
          return line.find(label) != std::string::npos;
        }))
      return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

/// Whether `node`'s last handshake with its peer `name` ended in `status`
/// (registered, pending, failed, skipped).
bool handshake_is(fed_node& node, const std::string& name,
                  const std::string& status) {
  auto p = node.peer(name);
  return p.is_object() && p.at("handshake").at("status") == status.c_str();
}

/// `node`'s removal notices to peers with `result` (delivered, or retry:
/// put back for a later try); -1 before the first.
double delete_notices(fed_node& node, const std::string& result) {
  return metric(node, "ferry_federation_notices_total",
                {"kind=\"delete\"", "result=\"" + result + "\""});
}

/// The notifications `node` still owes its peers, removed links included
/// (the federation manager's status); -1 while it does not answer.
int64_t notices_pending(fed_node& node) {
  auto res = node.call("GET", "/api/v1/actors/federation-manager");
  if (!res.error.empty() || res.response.status != 200)
    return -1;
  auto status = body_of(res).at("status").as_object();
  auto pending = status.if_contains("notices_pending");
  return pending && pending->is_int64() ? pending->get_int64() : -1;
}

/// The operator of `node` sets its link `link` to `status`.
void set_status(fed_node& node, const std::string& link,
                const std::string& status) {
  REQUIRE(node.call("POST", "/api/v1/federation/peers/" + link + "/status",
                    R"({"status":")" + status + R"("})")
            .response.status
          == 200);
}

/// Restarts `node` (same store) with a new key and `config`; `observer`
/// must then report a mismatch on its link `link`: the old key still
/// pinned, the new one named, /health degraded.
void restart_with_new_key(fed_node& node, const std::string& config,
                          fed_node& observer, const std::string& link) {
  auto old_key = node.pubkey();
  node.stop();
  node.keys = nostr::generate_keypair();
  node.configure(config);
  node.start();
  if (!test::poll_until([&] {
        auto p = observer.peer(link);
        return p.is_object()
               && p.at("pin_mismatch") == json::value(node.pubkey());
      }))
    FAIL(observer.label << " never noticed the new key of " << node.label
                        << "\n" << both(node, observer));
  CHECK(observer.peer(link).at("pinned") == json::value(old_key));
  auto health = observer.call("GET", "/health");
  CHECK(health.response.status == 503);
  CHECK(health.response.body.find("federation peer " + link + " refused")
        != std::string::npos);
}

/// A defines B as its peer, B accepts any registration; both start, and A
/// exchanges events with B.
void link_and_exchange(fed_node& a, fed_node& b) {
  a.configure(fed_section("deny", "name = \"a\"\n") + a.peer_table(b));
  b.configure(fed_section("auto_accept", "name = \"b\"\n"));
  b.start();
  a.start();
  if (!test::poll_until([&] { return a.exchanging("b"); }))
    FAIL("A never connected to B\n" << both(a, b));
}

} // namespace

TEST_CASE("registration answers 200, 202, 401, 403, 409, 503 and 400 "
          "naming the field",
          "[integration][federation]") {
  auto k1 = nostr::generate_keypair();
  auto k2 = nostr::generate_keypair();
  const std::string target = "/api/v1/federation/register";

  SECTION("federation off: 503; a peer asks its status first and skips "
          "the registration") {
    fed_node b{"b"};
    b.configure("");
    b.start();
    auto res = b.signed_call(k1, "POST", target, registration("k1"));
    CHECK(res.response.status == 503);
    fed_node a{"a"};
    a.configure(fed_section("deny") + a.peer_table(b));
    a.start();
    if (!test::poll_until([&] { return handshake_is(a, "b", "skipped"); }))
      FAIL("A did not record a skipped registration\n" << both(a, b));
    auto h = a.peer("b").at("handshake");
    CHECK(h.at("success") == false);
    CHECK(h.at("http_status") == 503);
    CHECK(std::string{h.at("message").as_string()}.find(
            "federation is disabled on the peer")
          != std::string::npos);
  }

  SECTION("auto_accept: 200, then 409; bad input 400 and nothing changed") {
    fed_node b{"b"};
    b.configure(fed_section("auto_accept"));
    b.start();
    // Unsigned: no way in.
    CHECK(b.call("POST", target, registration("k1")).response.status == 401);
    auto status = b.signed_call(k2, "GET", "/api/v1/federation/status");
    REQUIRE(status.response.status == 200);
    CHECK(body_of(status).at("incoming") == "auto_accept");
    CHECK(body_of(status).at("enabled") == true);
    check_proof(b, status, "GET", "/api/v1/federation/status");
    auto first = b.signed_call(k1, "POST", target, registration("k1"));
    INFO(first.response.body);
    REQUIRE(first.response.status == 200);
    CHECK(body_of(first).at("link_id") == "k1");
    CHECK(body_of(first).at("status") == "active");
    check_proof(b, first, "POST", target);
    auto again = b.signed_call(k1, "POST", target, registration("k1"));
    CHECK(again.response.status == 409);
    CHECK(body_of(again).at("link_id") == "k1");
    // Another key from k1's relay is k1 with a new identity, whatever name
    // it asks for: refused and reported, not a second link.
    auto k3 = nostr::generate_keypair();
    auto usurper = b.signed_call(k3, "POST", target, registration("k3"));
    INFO(usurper.response.body);
    CHECK(usurper.response.status == 403);
    CHECK(error_field(usurper) == "link_id");
    CHECK(b.peer("k1").at("pin_mismatch") == json::value(nostr::to_hex(k3.pubkey)));
    CHECK(b.peer("k1").at("pinned") == json::value(nostr::to_hex(k1.pubkey)));
    CHECK(metric(b, "ferry_federation_pin_mismatches_total", {"peer=\"k1\""})
          == 1);
    // k1 keeps its link meanwhile (a claim refuses the claiming key only)...
    auto claim
      = b.signed_call(k3, "GET", "/api/v1/federation/link?link_id=k1");
    CHECK(claim.response.status == 403);
    CHECK(b.signed_call(k1, "GET", "/api/v1/federation/collections")
            .response.status
          == 200);
    CHECK(b.call("GET", "/health").response.status == 503);
    // ...and its next call dismisses the claim.
    CHECK(b.signed_call(k1, "GET", "/api/v1/federation/link").response.status
          == 200);
    CHECK(b.peer("k1").at("pin_mismatch") == "");
    CHECK(b.call("GET", "/health").response.status == 200);
    for (auto [body, field] :
         {std::pair<std::string, std::string>{
            R"({"endpoint":"ws://127.0.0.1:1","admin_url":"ftp://x"})",
            "admin_url"},
          {R"({"endpoint":"http://x","admin_url":"http://127.0.0.1:1"})",
           "endpoint"},
          {R"({"admin_url":"http://127.0.0.1:1","endpoint":"ws://x","x":1})",
           "x"},
          {"not json", "body"}}) {
      auto bad = b.signed_call(k2, "POST", target, body);
      INFO(body << " -> " << bad.response.body);
      CHECK(bad.response.status == 400);
      CHECK(error_field(bad) == field);
    }
    CHECK(b.peer_count() == 1);
    auto peer = b.peer("k1");
    REQUIRE(peer.is_object());
    CHECK(peer.at("pinned") == json::value(nostr::to_hex(k1.pubkey)));
    CHECK(peer.at("direction") == "incoming");
    // The link is there for its key only.
    CHECK(b.signed_call(k1, "GET", "/api/v1/federation/link").response.status
          == 200);
    CHECK(b.signed_call(k2, "GET", "/api/v1/federation/link").response.status
          == 404);
  }

  SECTION("deny: 403") {
    fed_node b{"b"};
    b.configure(fed_section("deny"));
    b.start();
    auto res = b.signed_call(k1, "POST", target, registration("k1"));
    CHECK(res.response.status == 403);
    CHECK(b.peer_count() == 0);
  }

  SECTION("require_password: 401 without or with a wrong one, 200 with it") {
    fed_node b{"b"};
    b.configure(fed_section("require_password", "password = \"s3cret\"\n"));
    b.start();
    auto none = b.signed_call(k1, "POST", target, registration("k1"));
    CHECK(none.response.status == 401);
    CHECK(error_field(none) == "password");
    auto wrong = b.signed_call(k1, "POST", target,
                               registration("k1", R"(,"password":"nope")"));
    CHECK(wrong.response.status == 401);
    CHECK(body_of(wrong).at("error").at("message") == "wrong password");
    CHECK(b.peer_count() == 0);
    auto right = b.signed_call(k1, "POST", target,
                               registration("k1", R"(,"password":"s3cret")"));
    CHECK(right.response.status == 200);
    // The password is in no log line.
    CHECK(b.process->output().find("s3cret") == std::string::npos);
  }

  SECTION("require_approval: 202, pending until the operator approves") {
    fed_node b{"b"};
    b.configure(fed_section("require_approval"));
    b.start();
    auto res = b.signed_call(k1, "POST", target, registration("k1"));
    CHECK(res.response.status == 202);
    CHECK(b.peer_status("k1") == "pending");
    CHECK(b.call("POST", "/api/v1/federation/peers/k1/approve")
            .response.status
          == 200);
    CHECK(b.peer_status("k1") == "active");
    auto link = b.signed_call(k1, "GET", "/api/v1/federation/link");
    REQUIRE(link.response.status == 200);
    CHECK(body_of(link).at("status") == "active");
    CHECK(body_of(link).at("version").at(b.pubkey()) == 1);
    // Approving twice is a conflict.
    CHECK(b.call("POST", "/api/v1/federation/peers/k1/approve")
            .response.status
          == 409);
    // Bad operator input: 400 naming the field, nothing changed.
    auto bad = b.call("POST", "/api/v1/federation/peers/k1/status",
                      R"({"status":"gone"})");
    CHECK(bad.response.status == 400);
    CHECK(error_field(bad) == "status");
    auto bad_put = b.call("PUT", "/api/v1/federation/peers/c",
                          R"({"endpoint":"ws://127.0.0.1:1","admin_url":"x",)"
                          R"("filters":[{"kinds":[1]}]})");
    CHECK(bad_put.response.status == 400);
    CHECK(error_field(bad_put) == "admin_url");
    auto bad_collection
      = b.call("PUT", "/api/v1/federation/peers/c",
               R"({"endpoint":"ws://127.0.0.1:1","admin_url":"http://127.0.0.1:1",)"
               R"("filters":[{"kinds":[1]}],"collections":["none"]})");
    CHECK(bad_collection.response.status == 400);
    CHECK(error_field(bad_collection) == "collections[0]");
    CHECK(b.peer_count() == 1);
    CHECK(b.peer_status("k1") == "active");
    CHECK(b.call("POST", "/api/v1/federation/peers/nope/reset")
            .response.status
          == 404);
  }
}

TEST_CASE("registrations waiting for approval are capped, and wrong "
          "passwords cost time",
          "[integration][federation]") {
  const std::string target = "/api/v1/federation/register";
  // Each from its own relay: a second key for one endpoint is that link's
  // pin mismatch, not a new registration.
  auto registration_at = [](int n, const std::string& extra = {}) {
    return R"({"name":"k)" + std::to_string(n)
           + R"(","endpoint":"ws://127.0.0.1:)" + std::to_string(n)
           + R"(","admin_url":"http://127.0.0.1:1")" + extra + "}";
  };

  SECTION("past federation.max_pending_links: 429, nothing stored") {
    fed_node b{"b"};
    b.configure(fed_section("require_approval", "max_pending_links = 2\n"));
    b.start();
    for (int n : {1, 2})
      CHECK(b.signed_call(nostr::generate_keypair(), "POST", target,
                          registration_at(n))
              .response.status
            == 202);
    auto over = b.signed_call(nostr::generate_keypair(), "POST", target,
                              registration_at(3));
    INFO(over.response.body);
    CHECK(over.response.status == 429);
    CHECK(std::string{body_of(over).at("error").at("message").as_string()}
            .find("federation.max_pending_links")
          != std::string::npos);
    CHECK(b.peer_count() == 2);
    CHECK(b.peer("k3").is_null());
    // An approved link waits no more: room for one more.
    CHECK(b.call("POST", "/api/v1/federation/peers/k1/approve")
            .response.status
          == 200);
    CHECK(b.signed_call(nostr::generate_keypair(), "POST", target,
                        registration_at(4))
            .response.status
          == 202);
    CHECK(b.peer_count() == 3);
  }

  // Before, auto_accept admitted every registration: strangers' keys could
  // make the node connect to and serve any number of peers.
  SECTION("auto_accept past federation.max_incoming_links: 429, nothing "
          "stored") {
    fed_node b{"b"};
    b.configure(fed_section("auto_accept", "max_incoming_links = 2\n"));
    b.start();
    for (int n : {1, 2})
      CHECK(b.signed_call(nostr::generate_keypair(), "POST", target,
                          registration_at(n))
              .response.status
            == 200);
    auto over = b.signed_call(nostr::generate_keypair(), "POST", target,
                              registration_at(3));
    INFO(over.response.body);
    CHECK(over.response.status == 429);
    CHECK(std::string{body_of(over).at("error").at("message").as_string()}
            .find("federation.max_incoming_links")
          != std::string::npos);
    CHECK(b.peer_count() == 2);
    CHECK(b.peer("k3").is_null());
    // A revoked link is no longer admitted: room for one more.
    CHECK(b.call("POST", "/api/v1/federation/peers/k1/status",
                  R"({"status":"revoked"})")
            .response.status
          == 200);
    CHECK(b.signed_call(nostr::generate_keypair(), "POST", target,
                        registration_at(4))
            .response.status
          == 200);
    CHECK(b.peer_count() == 3);
  }

  SECTION("require_password: after 10 wrong passwords the next is not "
          "checked (429)") {
    fed_node b{"b"};
    b.configure(fed_section("require_password", "password = \"s3cret\"\n"));
    b.start();
    for (int n = 1; n <= 10; ++n) {
      auto wrong = b.signed_call(nostr::generate_keypair(), "POST", target,
                                 registration_at(n, R"(,"password":"nope")"));
      INFO(n << ": " << wrong.response.body);
      CHECK(wrong.response.status == 401);
    }
    auto right = registration_at(11, R"(,"password":"s3cret")");
    auto limited = b.signed_call(nostr::generate_keypair(), "POST", target,
                                 right);
    INFO(limited.response.body);
    CHECK(limited.response.status == 429);
    CHECK(error_field(limited) == "password");
    CHECK(b.peer_count() == 0);
  }
}

TEST_CASE("a peer's status mirror and link check refuse bad input naming "
          "the field, and change nothing",
          "[integration][federation]") {
  fed_node b{"b"};
  b.configure(fed_section("auto_accept"));
  b.start();
  auto k1 = nostr::generate_keypair();
  REQUIRE(b.signed_call(k1, "POST", "/api/v1/federation/register",
                        registration("k1"))
            .response.status
          == 200);
  auto before = b.peer("k1");
  REQUIRE(before.at("status") == "active");
  const std::string mirror = "/api/v1/federation/status";
  auto version = R"({")" + nostr::to_hex(k1.pubkey) + R"(":1})";
  for (auto [body, field] : {
         std::pair<std::string, std::string>{R"({"status":"suspended"})",
                                             "version"},
         {R"({"status":"gone","version":)" + version + "}", "status"},
         {R"({"version":)" + version + "}", "status"},
         {R"({"status":"suspended","version":)" + version + R"(,"x":1})",
          "x"},
         {"[]", "body"},
       }) {
    auto bad = b.signed_call(k1, "POST", mirror, body);
    INFO(body << " -> " << bad.response.body);
    CHECK(bad.response.status == 400);
    CHECK(error_field(bad) == field);
  }
  for (auto query : {"?x=1", "?link_id=k1&x=1"}) {
    auto bad = b.signed_call(k1, "GET",
                             std::string{"/api/v1/federation/link"} + query);
    INFO(query << " -> " << bad.response.body);
    CHECK(bad.response.status == 400);
    CHECK(error_field(bad) == "x");
  }
  auto after = b.peer("k1");
  CHECK(after.at("status") == "active");
  CHECK(after.at("version") == before.at("version"));
  // The same mirror, well formed, is taken.
  auto good = b.signed_call(k1, "POST", mirror,
                            R"({"status":"suspended","version":)" + version
                              + "}");
  INFO(good.response.body);
  CHECK(good.response.status == 200);
  CHECK(b.peer_status("k1") == "suspended");
}

TEST_CASE("a node with a wrong password for its peer is refused once and "
          "asks no more until its operator gives the right one",
          "[integration][federation]") {
  fed_node a{"a"};
  fed_node b{"b"};
  b.configure(fed_section("require_password",
                          "name = \"b\"\npassword = \"s3cret\"\n"));
  a.configure(fed_section("deny", "name = \"a\"\n")
              + a.peer_table(b, "password = \"wrong\"\n"));
  b.start();
  a.start();
  if (!test::poll_until([&] { return handshake_is(a, "b", "failed"); }))
    FAIL("A never recorded the refusal\n" << both(a, b));
  auto h = a.peer("b").at("handshake");
  INFO(json::serialize(h));
  CHECK(h.at("success") == false);
  CHECK(h.at("http_status") == 401);
  CHECK(h.at("message") == "wrong password");
  CHECK(a.peer("b").at("pinned") == "");
  CHECK(b.peer_count() == 0);
  // Only its operator can mend a wrong password: A does not repeat it on
  // its own, whatever the interval (1 s here).
  auto refused_once = [&] {
    return metric(a, "ferry_federation_handshakes_total",
                  {"result=\"failed\""})
             == 1
           && metric(b, "ferry_federation_registrations_total",
                     {"status=\"401\""})
                == 1;
  };
  CHECK(refused_once());
  CHECK_FALSE(test::poll_until([&] { return !refused_once(); }, 3500ms));

  // The right password: a new handshake, registered.
  auto put = a.call("PUT", "/api/v1/federation/peers/b",
                    R"({"endpoint":")" + b.relay_url() + R"(","admin_url":")"
                      + b.admin_url()
                      + R"(","filters":[{"kinds":[1]}],"password":"s3cret"})");
  INFO(put.response.body);
  REQUIRE(put.response.status == 200);
  CHECK(body_of(put).at("password_set") == true);
  CHECK_FALSE(body_of(put).as_object().contains("password"));
  if (!test::poll_until([&] { return handshake_is(a, "b", "registered"); }))
    FAIL("A never registered with the right password\n" << both(a, b));
  CHECK(a.peer("b").at("handshake").at("success") == true);
  CHECK(a.peer("b").at("handshake").at("http_status") == 200);
  CHECK(a.peer("b").at("pinned") == json::value(b.pubkey()));
  CHECK(b.peer("a").at("pinned") == json::value(a.pubkey()));
  CHECK(metric(a, "ferry_federation_handshakes_total",
               {"result=\"registered\""})
        == 1);
  if (!test::poll_until([&] { return a.exchanging("b"); }))
    FAIL("A never connected to B\n" << both(a, b));
  // Neither node writes the password down.
  CHECK(a.process->output().find("s3cret") == std::string::npos);
  CHECK(b.process->output().find("s3cret") == std::string::npos);
}

TEST_CASE("a peer that takes longer than an interval to refuse a wrong "
          "password is asked once, not once more per interval",
          "[integration][federation]") {
  fed_node a{"a"};
  fed_node b{"b"};
  // A hash of 7,000,000 PBKDF2 rounds: checking any password against it
  // takes B ~1.5 s, longer than A's interval (1 s) and well within the 5 s
  // B's admin API waits for its federation manager. No password matches.
  b.configure(fed_section("require_password",
                          "name = \"b\"\npassword_hash = \"pbkdf2-sha256$7000000$"
                          "00112233445566778899aabbccddeeff$"
                          + std::string(64, '0') + "\"\n"));
  a.configure(fed_section("deny", "name = \"a\"\n")
              + a.peer_table(b, "password = \"wrong\"\n"));
  b.start();
  a.start();
  if (!test::poll_until([&] { return handshake_is(a, "b", "failed"); }, 15s))
    FAIL("A never recorded the refusal\n" << both(a, b));
  if (a.peer("b").at("handshake").at("http_status") == 504) {
    // ASan's interceptors make the same check take B over 5 s.
    WARN("B took longer to check the password than its admin API waits "
         "(a sanitized build?): this test's premise does not hold here");
    return;
  }
  CHECK(a.peer("b").at("handshake").at("http_status") == 401);
  // Probes sent while the registration was in flight get their answers
  // after it: none of them may register again.
  auto refusals = [&] {
    return metric(b, "ferry_federation_registrations_total", {"status=\"401\""});
  };
  CHECK_FALSE(test::poll_until([&] { return refusals() != 1; }, 4500ms));
  CHECK(refusals() == 1);
  CHECK(metric(a, "ferry_federation_handshakes_total", {"result=\"failed\""}) == 1);
}

TEST_CASE("two nodes: approval, events both ways, pause and resume from the "
          "cursor, status mirrored both ways",
          "[integration][federation]") {
  fed_node a{"a"};
  fed_node b{"b"};
  a.configure(fed_section("deny", "name = \"a\"\n") + a.peer_table(b));
  b.configure(fed_section("require_approval", "name = \"b\"\n"));
  b.start();
  a.start();
  // A registers; B holds it pending.
  REQUIRE(test::poll_until([&] { return b.peer_status("a") == "pending"; }));
  REQUIRE(test::poll_until(
          [&] { return handshake_is(a, "b", "pending"); }));
  auto view = a.peer("b");
  CHECK(view.at("pinned") == json::value(b.pubkey()));
  CHECK(view.at("handshake").at("http_status") == 202);
  CHECK(view.at("handshake").at("remote_link_id") == "a");
  CHECK(b.peer("a").at("pinned") == json::value(a.pubkey()));
  CHECK_FALSE(a.exchanging("b"));

  // B approves: A learns it and starts exchanging.
  REQUIRE(b.call("POST", "/api/v1/federation/peers/a/approve").response.status
          == 200);
  if (!test::poll_until([&] { return a.exchanging("b"); }))
    FAIL("A never connected to B\n" << both(a, b));
  CHECK(a.peer_status("b") == "active");

  auto alice = nostr::generate_keypair();
  auto now = test::unix_now();
  // Old events on B, each with a large content so bytes tell re-downloads.
  std::vector<nostr::event> old_events;
  for (int i = 0; i < 10; ++i)
    old_events.push_back(test::make_note(
      alice, now - 100 + i, "old " + std::to_string(i) + std::string(2000, 'x')));
  sync_test::publish(b.relay_port, old_events);
  // Large too: the bytes A sent tell it went out.
  auto from_a = test::make_note(alice, now, "from a" + std::string(3000, 'y'));
  sync_test::publish(a.relay_port, {from_a});
  auto old_ids = sync_test::id_set(old_events);
  if (!test::poll_until([&] {
        return ids_of(a.relay_port, sync_test::ids_filter(old_ids)).size()
                 == old_ids.size()
               && ids_of(b.relay_port, sync_test::ids_filter(
                                         {sync_test::hex_id(from_a)}))
                    .size()
                    == 1;
      }))
    FAIL("events did not cross\n" << both(a, b));

  // A's metrics count the link's traffic per peer (read from its sync
  // server every interval_seconds).
  if (!test::poll_until([&] {
        return metric(a, "ferry_federation_events_total",
                      {"peer=\"b\"", "direction=\"in\""})
                 >= 10
               && metric(a, "ferry_federation_events_total",
                         {"peer=\"b\"", "direction=\"out\""})
                    >= 1
               && metric(a, "ferry_federation_bytes_total",
                         {"peer=\"b\"", "direction=\"in\""})
                    > 10 * 2000
               && metric(a, "ferry_federation_bytes_total",
                         {"peer=\"b\"", "direction=\"out\""})
                    > 3000;
      }))
    FAIL("A's per-peer metrics did not count the traffic\n"
         << a.call("GET", "/metrics").response.body);

  // Paused: nothing moves.
  REQUIRE(a.call("POST", "/api/v1/federation/peers/b/pause").response.status
          == 200);
  REQUIRE(test::poll_until([&] { return !a.exchanging("b"); }));
  auto cursor = a.sync_stats("b").at("cursor").as_int64();
  CHECK(cursor > 0);
  // Newer than the cursor without waiting for the clock to pass it.
  const auto after_cursor = std::max<int64_t>(test::unix_now(), cursor + 1);
  std::vector<nostr::event> new_events{
    test::make_note(alice, after_cursor, "new 1"),
    test::make_note(alice, after_cursor, "new 2")};
  sync_test::publish(b.relay_port, new_events);
  auto new_ids = sync_test::id_set(new_events);
  // Two intervals of the federation manager and a few of the sync code: a
  // paused link that moved anything fails at once.
  CHECK_FALSE(test::poll_until(
    [&] { return !ids_of(a.relay_port, sync_test::ids_filter(new_ids)).empty(); },
    2500ms));
  CHECK(a.peer("b").at("mode") == "paused");

  // Resumed: only what is newer than the cursor comes.
  REQUIRE(a.call("POST", "/api/v1/federation/peers/b/resume").response.status
          == 200);
  if (!test::poll_until([&] {
        return ids_of(a.relay_port, sync_test::ids_filter(new_ids)).size()
               == 2;
      }))
    FAIL("resume did not bring the new events\n" << both(a, b));
  auto stats = a.sync_stats("b");
  INFO(json::serialize(stats));
  // The resumed connection keeps the stored cursor and gets only the new
  // events: nothing synced before comes again (each old event alone is
  // 2 kB, so the bytes show a re-download).
  CHECK(stats.at("cursor").as_int64() >= cursor);
  CHECK(stats.at("accepted").as_int64() == 2);
  CHECK(stats.at("duplicate").as_int64() == 0);
  CHECK(stats.at("received").as_int64() == 2);
  CHECK(stats.at("bytes_received").as_int64() < 2000);
  // The peer's view shows what its link exchanged: the same counters.
  auto exchange = a.peer("b").at("exchange");
  INFO(json::serialize(exchange));
  CHECK(exchange.at("cursor") == stats.at("cursor"));
  CHECK(exchange.at("received").as_int64() == 2);
  CHECK(exchange.at("bytes_received") == stats.at("bytes_received"));

  // B suspends: mirrored to A, which stops exchanging.
  set_status(b, "a", "suspended");
  if (!test::poll_until([&] { return a.peer_status("b") == "suspended"; }))
    FAIL("A never heard of the suspension\n" << both(a, b));
  REQUIRE(test::poll_until([&] { return !a.exchanging("b"); }));
  // A reactivates: mirrored to B.
  set_status(a, "b", "active");
  if (!test::poll_until([&] { return b.peer_status("a") == "active"; }))
    FAIL("B never heard of the reactivation\n" << both(a, b));
  REQUIRE(test::poll_until([&] { return a.exchanging("b"); }));

  // Both change at once: A suspends, B revokes. Whatever the order, both
  // end revoked (the more restrictive), and revoked stays.
  std::thread at_a([&] {
    a.call("POST", "/api/v1/federation/peers/b/status",
           R"({"status":"suspended"})");
  });
  b.call("POST", "/api/v1/federation/peers/a/status", R"({"status":"revoked"})");
  at_a.join();
  if (!test::poll_until([&] {
        return a.peer_status("b") == "revoked"
               && b.peer_status("a") == "revoked";
      }))
    FAIL("the concurrent change did not settle on revoked: A has "
         << a.peer_status("b") << ", B has " << b.peer_status("a") << "\n"
         << both(a, b));
  auto again = a.call("POST", "/api/v1/federation/peers/b/status",
                      R"({"status":"active"})");
  CHECK(again.response.status == 409);
  CHECK_FALSE(a.exchanging("b"));
}

TEST_CASE("a peer restarted with another key is refused until a reset",
          "[integration][federation]") {
  fed_node a{"a"};
  fed_node b{"b"};
  link_and_exchange(a, b);
  auto first_key = b.pubkey();
  CHECK(a.peer("b").at("pinned") == json::value(first_key));
  CHECK(a.peer("b").at("last_seen").as_int64() > 0);
  CHECK(metric(a, "ferry_federation_handshakes_total",
               {"result=\"registered\""})
        == 1);

  // B comes back with a new key (same store, same link with A).
  restart_with_new_key(b, fed_section("auto_accept", "name = \"b\"\n"), a,
                       "b");
  REQUIRE(test::poll_until([&] { return !a.exchanging("b"); }));
  // The console shows the refused key in place of the pinned one.
  auto [listed, peers] = a.console({"peers"});
  INFO(peers);
  CHECK(listed == 0);
  auto row = peers.substr(peers.find("\nb "));
  row = row.substr(0, row.find('\n', 1));
  CHECK(row.find("MISMATCH " + b.pubkey().substr(0, 12))
        != std::string::npos);
  auto alice = nostr::generate_keypair();
  auto during = test::make_note(alice, test::unix_now(), "during mismatch");
  sync_test::publish(b.relay_port, {during});
  CHECK_FALSE(test::poll_until(
    [&] {
      return !ids_of(a.relay_port,
                     sync_test::ids_filter({sync_test::hex_id(during)}))
                .empty();
    },
    2s));

  // The operator accepts the new key: reset, twice (idempotent). B is down
  // meanwhile, so nothing pins it again before we look: pin, cursor and
  // last_seen are gone.
  b.stop();
  for (int i = 0; i < 2; ++i) {
    auto reset = a.call("POST", "/api/v1/federation/peers/b/reset");
    REQUIRE(reset.response.status == 200);
    CHECK(body_of(reset).at("pinned") == "");
    CHECK(body_of(reset).at("pin_mismatch") == "");
    CHECK(body_of(reset).at("last_seen") == 0);
  }
  auto cleared = a.peer("b");
  INFO(json::serialize(cleared));
  CHECK(cleared.at("last_seen") == 0);
  CHECK(cleared.at("exchange").is_null());
  CHECK_FALSE(a.sync_stats("b").is_object());
  b.start();
  if (!test::poll_until([&] {
        auto p = a.peer("b");
        return p.is_object() && p.at("pinned") == json::value(b.pubkey())
               && p.at("pin_mismatch") == json::value("");
      }))
    FAIL("the reset did not pin the new key\n" << both(a, b));
  if (!test::poll_until([&] {
        return ids_of(a.relay_port,
                      sync_test::ids_filter({sync_test::hex_id(during)}))
                 .size()
               == 1;
      }))
    FAIL("events did not flow after the reset\n" << both(a, b));
  CHECK(a.call("GET", "/health").response.status == 200);
  CHECK(a.peer("b").at("last_seen").as_int64() > 0);
  CHECK(metric(a, "ferry_federation_handshakes_total",
               {"result=\"registered\""})
        == 2);

  // Resetting a peer never contacted succeeds too.
  REQUIRE(a.call("PUT", "/api/v1/federation/peers/nowhere",
                 R"({"endpoint":"ws://127.0.0.1:1","admin_url":"http://127.0.0.1:1",)"
                 R"("filters":[{"kinds":[1]}]})")
            .response.status
          == 201);
  CHECK(a.call("POST", "/api/v1/federation/peers/nowhere/reset")
          .response.status
        == 200);
}

TEST_CASE("removals reach a peer that was down, and a peer finds a removed "
          "link by verifying",
          "[integration][federation]") {
  fed_node a{"a"};
  fed_node b{"b"};
  link_and_exchange(a, b);

  SECTION("A deletes while B is down; A restarts; B gets it when back") {
    b.stop();
    // A notice B cannot take waits in the peer's view, retried with
    // backoff.
    set_status(a, "b", "suspended");
    if (!test::poll_until([&] {
          auto pending = a.peer("b").at("pending").as_array();
          return pending.size() == 1 && pending[0].at("kind") == "status"
                 && pending[0].at("attempts").as_int64() >= 1
                 && pending[0].at("next_at").as_int64() > 0;
        }))
      FAIL("A's status notice to B never backed off\n"
           << json::serialize(a.peer("b")) << "\n" << both(a, b));
    REQUIRE(a.call("DELETE", "/api/v1/federation/peers/b").response.status
            == 200);
    CHECK(a.peer_count() == 0);
    CHECK_FALSE(a.sync_stats("b").is_object());
    // The removal replaces the status notice, and backs off just the same.
    if (!test::poll_until([&] { return delete_notices(a, "retry") >= 1; }))
      FAIL("A's removal notice was never tried\n" << both(a, b));
    CHECK(notices_pending(a) == 1);
    // The sender restarts with the notification still owed; B, back while
    // A is down, still has the link until A tells it.
    a.stop();
    a.configure(fed_section("deny", "name = \"a\"\n"));
    b.start();
    CHECK(b.peer_count() == 1);
    a.start();
    if (!test::poll_until([&] { return b.peer_count() == 0; }))
      FAIL("B never heard of the removal\n" << both(a, b));
    CHECK(test::wait_for_output(*a.process, "peer b took the removal"));
    CHECK(test::poll_until([&] { return notices_pending(a) == 0; }));
  }

  SECTION("B deletes while A is down; A, back at another admin address, "
          "finds out by verifying") {
    a.stop();
    REQUIRE(b.call("DELETE", "/api/v1/federation/peers/a").response.status
            == 200);
    CHECK(b.peer_count() == 0);
    // B's notice goes to the admin address A registered, where nobody
    // answers any more: only A's own verification can tell it.
    a.admin_port = test::free_port();
    a.configure(fed_section("deny", "name = \"a\"\n") + a.peer_table(b));
    a.start();
    if (!test::wait_for_output(*a.process,
                               "removed peer b: the peer no longer has the "
                               "link \\(verify answered 404\\)"))
      FAIL("A never removed its side\n" << both(a, b));
    CHECK(a.peer_count() == 0);
    CHECK_FALSE(a.sync_stats("b").is_object());
    CHECK(a.process->output().find("removed the link; removing ours")
          == std::string::npos);
  }

  SECTION("B deletes while A is down; A comes back without the link: its "
          "404 counts as done") {
    a.stop();
    REQUIRE(b.call("DELETE", "/api/v1/federation/peers/a").response.status
            == 200);
    if (!test::poll_until([&] { return delete_notices(b, "retry") >= 1; }))
      FAIL("B's removal notice was never tried\n" << both(a, b));
    CHECK(notices_pending(b) == 1);
    CHECK(delete_notices(b, "delivered") == -1);
    // A's store is lost and its operator no longer defines B: A knows no
    // link with B and answers B's notice 404.
    std::filesystem::remove_all(a.dir.file("data"));
    a.configure(fed_section("deny", "name = \"a\"\n"));
    a.start();
    if (!test::wait_for_output(*b.process,
                               "peer a took the removal of the link", 60s))
      FAIL("B's notice never counted as done\n" << both(a, b));
    CHECK(delete_notices(b, "delivered") == 1);
    CHECK(test::poll_until([&] { return notices_pending(b) == 0; }));
    CHECK(a.peer_count() == 0);
  }
}

TEST_CASE("console peers, peer, peer-pause, peer-resume and peer-reset",
          "[integration][federation][console]") {
  fed_node a{"a"};
  fed_node b{"b"};
  link_and_exchange(a, b);

  auto [listed, peers] = a.console({"peers"});
  INFO(peers);
  CHECK(listed == 0);
  CHECK(peers.rfind("NAME ", 0) == 0);
  CHECK(peers.find("HANDSHAKE") != std::string::npos);
  auto row = peers.substr(peers.find("\nb "));
  CHECK(row.find("outgoing") != std::string::npos);
  CHECK(row.find("active") != std::string::npos);
  CHECK(row.find(b.pubkey().substr(0, 12)) != std::string::npos);
  CHECK(row.find("registered (200)") != std::string::npos);
  CHECK(row.find(b.relay_url()) != std::string::npos);
  auto [b_listed, b_peers] = b.console({"peers"});
  CHECK(b_listed == 0);
  CHECK(b_peers.find("\na ") != std::string::npos);
  CHECK(b_peers.find("incoming") != std::string::npos);

  auto [shown, peer] = a.console({"peer", "b"});
  INFO(peer);
  CHECK(shown == 0);
  CHECK(peer.find(b.pubkey()) != std::string::npos);
  CHECK(peer.find("handshake.status") != std::string::npos);
  auto [as_json, json_text] = a.console({"--json", "peer", "b"});
  REQUIRE(as_json == 0);
  auto parsed = json::parse(json_text);
  CHECK(parsed.at("pinned") == json::value(b.pubkey()));
  CHECK(parsed.at("status") == "active");
  CHECK(parsed.at("exchange").at("connected") == true);
  CHECK(peer.find("exchange.bytes_received") != std::string::npos);

  auto [paused, pause_text] = a.console({"peer-pause", "b"});
  CHECK(paused == 0);
  CHECK(pause_text == "b: paused (mode paused, link active)\n");
  CHECK(a.peer("b").at("mode") == "paused");
  REQUIRE(test::poll_until([&] { return !a.exchanging("b"); }));
  auto [resumed, resume_text] = a.console({"peer-resume", "b"});
  CHECK(resumed == 0);
  CHECK(resume_text == "b: resumed (mode sync, link active)\n");
  if (!test::poll_until([&] { return a.exchanging("b"); }))
    FAIL("the resumed peer did not connect\n" << both(a, b));

  // A reset clears the pin (the next handshake pins again); twice is fine.
  for (int i = 0; i < 2; ++i) {
    auto [reset, reset_text] = a.console({"peer-reset", "b"});
    CHECK(reset == 0);
    CHECK(reset_text.rfind("b: reset: pin, cursor and last_seen cleared", 0)
          == 0);
  }

  // Wrong names fail (1), wrong arguments are usage errors (2).
  auto [unknown, unknown_text] = a.console({"peer-pause", "nope"});
  CHECK(unknown == 1);
  CHECK(unknown_text.find("no federation peer nope") != std::string::npos);
  auto [usage, usage_text] = a.console({"peer-reset"});
  CHECK(usage == 2);
  CHECK(usage_text.find("usage: peer-reset NAME") != std::string::npos);
  auto [help, help_text] = a.console({"help"});
  CHECK(help == 0);
  for (auto command : {"peers", "peer NAME", "peer-reset NAME",
                       "peer-pause NAME", "peer-resume NAME"})
    CHECK(help_text.find("\n  " + std::string{command})
          != std::string::npos);
}

TEST_CASE("console peers on a node without federation says it is off",
          "[integration][federation][console]") {
  fed_node n{"n"};
  n.configure("");
  n.start();
  auto [status, text] = n.console({"peers"});
  CHECK(status == 1);
  CHECK(text.find("federation is disabled") != std::string::npos);
}

namespace {

/// The EVENT frames a REQ for `ev`'s id gets on `ws` before EOSE.
std::vector<std::string> stored_events(net::simple_ws_client& ws,
                                       const nostr::event& ev) {
  auto sub = sync_test::hex_id(ev).substr(0, 16);
  REQUIRE(ws.send("[\"REQ\",\"" + sub + "\","
                  + sync_test::ids_filter({sync_test::hex_id(ev)}) + "]")
            .empty());
  std::vector<std::string> frames;
  REQUIRE(test::receive_until(ws, "[\"EOSE\",\"" + sub + "\"", &frames));
  return frames;
}

/// Whether `frame` is the refusal of a peer whose link is not active.
bool restricted(const std::optional<std::string>& frame) {
  return frame
         && frame->find("restricted: the federation link with this node is "
                        "not active")
              != std::string::npos;
}

} // namespace

TEST_CASE("the relay refuses a suspended or revoked peer's node key: no "
          "events in or out",
          "[integration][federation]") {
  fed_node a{"a"};
  fed_node b{"b"};
  b.relay_extra = "auth_required = true\n";
  link_and_exchange(a, b);

  // As A's node key on B's relay: served while the link is active, with a
  // live subscription open.
  net::simple_ws_client as_a;
  authenticate(as_a, b.relay_port, a.keys);
  REQUIRE(as_a.send(R"(["REQ","live",{"kinds":[1]}])").empty());
  REQUIRE(test::receive_until(as_a, "[\"EOSE\",\"live\""));

  // B suspends the link: from now on A's key gets nothing and gives nothing.
  set_status(b, "a", "suspended");
  // Anyone else is served as before (B's relay asks every client to
  // authenticate).
  net::simple_ws_client as_other;
  authenticate(as_other, b.relay_port, nostr::generate_keypair());
  auto alice = nostr::generate_keypair();
  auto note = test::make_note(alice, test::unix_now(), "while suspended");
  REQUIRE(as_other.send(sync_test::event_frame(note)).empty());
  auto stored = test::receive_until(as_other, "[\"OK\"");
  REQUIRE(stored);
  REQUIRE(stored->find(",true,") != std::string::npos);
  std::vector<std::string> before_closed;
  CHECK(restricted(test::receive_until(as_a, "[\"CLOSED\",\"live\"",
                                       &before_closed)));
  for (const auto& frame : before_closed)
    CHECK(frame.find(sync_test::hex_id(note)) == std::string::npos);

  REQUIRE(as_a.send(R"(["REQ","again",{"kinds":[1]}])").empty());
  CHECK(restricted(test::receive_until(as_a, "[\"CLOSED\",\"again\"")));
  REQUIRE(as_a.send(R"(["COUNT","c",{"kinds":[1]}])").empty());
  CHECK(restricted(test::receive_until(as_a, "[\"CLOSED\",\"c\"")));
  auto from_a = test::make_note(alice, test::unix_now(), "from a's key");
  REQUIRE(as_a.send(sync_test::event_frame(from_a)).empty());
  auto ok = test::receive_until(as_a, "[\"OK\"");
  CHECK(restricted(ok));
  CHECK(ok->find(",false,") != std::string::npos);
  REQUIRE(as_a.send(R"(["NEG-OPEN","n",{"kinds":[1]},"61"])").empty());
  CHECK(restricted(test::receive_until(as_a, "[\"NEG-ERR\",\"n\"")));
  // The refused event was not stored; the other client's is served.
  CHECK(stored_events(as_other, from_a).empty());
  CHECK(stored_events(as_other, note).size() == 1);

  // Revoked is refused just the same; a fresh connection changes nothing.
  set_status(b, "a", "revoked");
  net::simple_ws_client again;
  authenticate(again, b.relay_port, a.keys);
  REQUIRE(again.send(R"(["REQ","r",{"kinds":[1]}])").empty());
  CHECK(restricted(test::receive_until(again, "[\"CLOSED\",\"r\"")));
}

TEST_CASE("every interval_seconds a NIP-77 reconciliation brings what the "
          "live tail missed",
          "[integration][federation]") {
  fed_node a{"a"};
  fed_node b{"b"};
  link_and_exchange(a, b);
  if (!test::poll_until([&] {
        auto stats = a.sync_stats("b");
        return stats.is_object() && stats.at("catchup_complete").as_bool();
      }))
    FAIL("A never caught up with B\n" << both(a, b));
  auto rounds = a.sync_stats("b").at("neg_rounds").as_int64();
  // Back-dated below the live subscription's start: only a reconciliation
  // finds it.
  auto alice = nostr::generate_keypair();
  auto late = test::make_note(alice, test::unix_now() - 3600, "back-dated");
  sync_test::publish(b.relay_port, {late});
  // More rounds run on the same connection, without a reconnect.
  if (!test::poll_until([&] {
        return a.sync_stats("b").at("neg_rounds").as_int64() > rounds
               && ids_of(a.relay_port,
                         sync_test::ids_filter({sync_test::hex_id(late)}))
                      .size()
                    == 1;
      }))
    FAIL("no reconciliation brought the back-dated event\n"
         << json::serialize(a.sync_stats("b")) << "\n" << both(a, b));
  CHECK(a.sync_stats("b").at("duplicate").as_int64() == 0);
}

TEST_CASE("three nodes: a node linked with two peers passes each one's "
          "events to the other, and a link one side suspends stops only that "
          "link",
          "[integration][federation]") {
  fed_node a{"a"};
  fed_node b{"b"};
  fed_node c{"c"};
  a.configure(fed_section("deny", "name = \"a\"\n") + a.peer_table(b)
              + a.peer_table(c));
  b.configure(fed_section("auto_accept", "name = \"b\"\n"));
  c.configure(fed_section("auto_accept", "name = \"c\"\n"));
  b.start();
  c.start();
  a.start();
  auto all_logs = [&] { return both(a, b) + "--- C ---\n" + test::output_tail(*c.process); };
  if (!test::poll_until([&] { return a.exchanging("b") && a.exchanging("c"); }))
    FAIL("A never connected to both peers\n" << all_logs());
  auto holds = [](fed_node& n, const nostr::event& ev) {
    return ids_of(n.relay_port, sync_test::ids_filter({sync_test::hex_id(ev)}))
             .size()
           == 1;
  };
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  auto from_b = test::make_note(keys, now, "from b");
  auto from_c = test::make_note(keys, now, "from c");
  sync_test::publish(b.relay_port, {from_b});
  sync_test::publish(c.relay_port, {from_c});
  if (!test::poll_until([&] { return holds(c, from_b) && holds(b, from_c); },
                        20s))
    FAIL("B's and C's notes did not cross through A\n" << all_logs());

  // C suspends its link with A; the status is mirrored on A's side.
  auto res = c.call("POST", "/api/v1/federation/peers/a/status",
                    R"({"status":"suspended"})");
  INFO(res.response.body);
  REQUIRE(res.response.status < 300);
  if (!test::poll_until([&] { return a.peer_status("c") == "suspended"; }))
    FAIL("A did not see C suspend the link\n" << all_logs());
  auto later = test::make_note(keys, now + 1, "later from b");
  sync_test::publish(b.relay_port, {later});
  if (!test::poll_until([&] { return holds(a, later); }, 20s))
    FAIL("the A-B link stopped with the A-C one\n" << all_logs());
  CHECK(a.peer_status("b") == "active");
  // Nothing crosses the suspended link: any arrival ends the wait early.
  CHECK_FALSE(test::poll_until([&] { return holds(c, later); }, 3s));
}

namespace {

/// Sends `frame` as `ws` and returns the first answer starting with `verb`
/// for `id`.
std::optional<std::string> answer(net::simple_ws_client& ws,
                                  const std::string& frame,
                                  const std::string& verb,
                                  const std::string& id) {
  REQUIRE(ws.send(frame).empty());
  return test::receive_until(ws, "[\"" + verb + "\",\"" + id + "\"");
}

bool says(const std::optional<std::string>& frame, const std::string& text) {
  return frame && frame->find(text) != std::string::npos;
}

/// Sends `ev` as `ws` and returns its OK.
std::optional<std::string> send_event(net::simple_ws_client& ws,
                                      const nostr::event& ev) {
  return answer(ws, sync_test::event_frame(ev), "OK", sync_test::hex_id(ev));
}

} // namespace

TEST_CASE("a reset on the side a peer registered with pins the same link "
          "again at the peer's next call, with its key old or new",
          "[integration][federation]") {
  fed_node a{"a"};
  fed_node b{"b"};
  // A tells B where to call it back: its public admin URL, not its bind
  // address.
  auto a_public = "http://localhost:" + std::to_string(a.admin_port);
  auto a_config = fed_section("deny", "name = \"a\"\npublic_admin_url = \""
                                        + a_public + "/\"\n")
                  + a.peer_table(b);
  a.configure(a_config);
  b.configure(fed_section("auto_accept", "name = \"b\"\n"));
  b.start();
  a.start();
  if (!test::poll_until([&] { return a.exchanging("b"); }))
    FAIL("A never connected to B\n" << both(a, b));
  CHECK(b.peer("a").at("pinned") == json::value(a.pubkey()));
  CHECK(b.peer("a").at("admin_url") == json::value(a_public));
  auto holds = [](fed_node& n, const nostr::event& ev) {
    return ids_of(n.relay_port, sync_test::ids_filter({sync_test::hex_id(ev)}))
             .size()
           == 1;
  };
  auto alice = nostr::generate_keypair();

  // These routes take no body, or `{}`: anything else is refused naming
  // the key (or the body), and changes nothing.
  for (auto route : {"reset", "pause", "resume", "approve"}) {
    auto target = std::string{"/api/v1/federation/peers/a/"} + route;
    auto extra = b.call("POST", target, R"({"force":true})");
    CHECK(extra.response.status == 400);
    CHECK(error_field(extra) == "force");
    auto list = b.call("POST", target, "[]");
    CHECK(list.response.status == 400);
    CHECK(error_field(list) == "body");
  }
  CHECK(b.peer("a").at("pinned") == json::value(a.pubkey()));
  CHECK(b.peer("a").at("mode") == "sync");

  // B resets its side: the link stays, unpinned, until A's next call.
  auto reset = b.call("POST", "/api/v1/federation/peers/a/reset", "{}");
  REQUIRE(reset.response.status == 200);
  CHECK(body_of(reset).at("pinned") == "");
  if (!test::poll_until([&] {
        auto p = b.peer("a");
        return p.is_object() && p.at("pinned") == json::value(a.pubkey());
      }))
    FAIL("A's next call did not pin the link again\n" << both(a, b));
  // The same link on both sides: no fallback name on B, nothing removed
  // on A.
  CHECK(b.peer_count() == 1);
  CHECK(a.peer_count() == 1);
  CHECK(a.peer("b").at("handshake").at("success") == true);
  CHECK(a.peer("b").at("handshake").at("remote_link_id") == "a");
  auto after_reset = test::make_note(alice, test::unix_now(), "after reset");
  sync_test::publish(b.relay_port, {after_reset});
  if (!test::poll_until([&] { return holds(a, after_reset); }, 20s))
    FAIL("events did not flow after the reset\n" << both(a, b));

  // B's status change reaches A at the public URL it gave.
  set_status(b, "a", "suspended");
  if (!test::poll_until([&] { return a.peer_status("b") == "suspended"; }))
    FAIL("A never heard of the suspension\n" << both(a, b));
  set_status(b, "a", "active");
  REQUIRE(test::poll_until([&] { return a.peer_status("b") == "active"; }));

  // A comes back with a new key: B reports the mismatch and A keeps its
  // link (no 404 that would make it drop it).
  restart_with_new_key(a, a_config, b, "a");
  CHECK(metric(b, "ferry_federation_pin_mismatches_total", {"peer=\"a\""})
        == 1);
  CHECK(a.peer_count() == 1);

  // B's operator accepts it: the same link, pinned to the new key.
  REQUIRE(b.call("POST", "/api/v1/federation/peers/a/reset").response.status
          == 200);
  if (!test::poll_until([&] {
        auto p = b.peer("a");
        return p.is_object() && p.at("pinned") == json::value(a.pubkey())
               && p.at("pin_mismatch") == "";
      }))
    FAIL("the reset did not pin A's new key\n" << both(a, b));
  CHECK(b.peer_count() == 1);
  CHECK(a.peer_count() == 1);
  CHECK(b.call("GET", "/health").response.status == 200);
  auto new_key_note = test::make_note(alice, test::unix_now(), "new key");
  sync_test::publish(a.relay_port, {new_key_note});
  if (!test::poll_until([&] { return holds(b, new_key_note); }, 20s))
    FAIL("events did not flow after the new key was pinned\n" << both(a, b));
}

TEST_CASE("the side a peer registered with refuses it at its relay while "
          "paused there, and serves or takes nothing its mode forbids",
          "[integration][federation]") {
  fed_node a{"a"};
  fed_node b{"b"};
  // B asks every client to authenticate, so A's sync connection is known
  // by its key; B's own clients authenticate with keys of their own.
  b.relay_extra = "auth_required = true\n";
  auto holds = [](fed_node& n, const nostr::event& ev) {
    if (n.relay_extra.empty())
      return ids_of(n.relay_port,
                    sync_test::ids_filter({sync_test::hex_id(ev)}))
               .size()
             == 1;
    net::simple_ws_client ws;
    authenticate(ws, n.relay_port, nostr::generate_keypair());
    return stored_events(ws, ev).size() == 1;
  };
  // REQ, COUNT and NEG-OPEN of `ws` all get `why`.
  auto refuses_reads = [](net::simple_ws_client& ws, const std::string& why) {
    CHECK(says(answer(ws, R"(["REQ","r",{"kinds":[1]}])", "CLOSED", "r"), why));
    CHECK(says(answer(ws, R"(["COUNT","c",{"kinds":[1]}])", "CLOSED", "c"),
               why));
    CHECK(says(answer(ws, R"(["NEG-OPEN","n",{"kinds":[1]},"61"])", "NEG-ERR",
                      "n"),
               why));
  };
  auto publish_on_b = [&](const nostr::event& ev) {
    net::simple_ws_client ws;
    authenticate(ws, b.relay_port, nostr::generate_keypair());
    REQUIRE(says(send_event(ws, ev),
                 ",true,"));
  };
  auto alice = nostr::generate_keypair();
  auto start = [&](const std::string& a_mode, const std::string& b_mode) {
    a.configure(fed_section("deny", "name = \"a\"\nmode = \"" + a_mode + "\"\n")
                + a.peer_table(b));
    b.configure(
      fed_section("auto_accept", "name = \"b\"\nmode = \"" + b_mode + "\"\n"));
    b.start();
    a.start();
    if (!test::poll_until([&] {
          auto p = b.peer("a");
          return p.is_object() && p.at("pinned") == json::value(a.pubkey());
        }))
      FAIL("A never registered with B\n" << both(a, b));
  };

  SECTION("B pauses A: nothing in or out until B resumes") {
    start("sync", "sync");
    if (!test::poll_until([&] { return a.exchanging("b"); }))
      FAIL("A never connected to B\n" << both(a, b));
    REQUIRE(b.call("POST", "/api/v1/federation/peers/a/pause").response.status
            == 200);
    net::simple_ws_client as_a;
    authenticate(as_a, b.relay_port, a.keys);
    const std::string paused = "restricted: this node paused its federation "
                               "link with yours";
    refuses_reads(as_a, paused);
    auto refused = test::make_note(alice, test::unix_now(), "refused");
    auto ok = send_event(as_a, refused);
    CHECK(says(ok, ",false,"));
    CHECK(says(ok, paused));

    auto on_b = test::make_note(alice, test::unix_now(), "on b while paused");
    auto on_a = test::make_note(alice, test::unix_now(), "on a while paused");
    publish_on_b(on_b);
    sync_test::publish(a.relay_port, {on_a});
    CHECK_FALSE(test::poll_until(
      [&] { return holds(a, on_b) || holds(b, on_a); }, 2500ms));

    REQUIRE(b.call("POST", "/api/v1/federation/peers/a/resume").response.status
            == 200);
    // A's key is served again both ways, and B's event from the pause
    // reaches A over the link. (A's own events refused during the pause
    // count as refused on A's side: only a reconciliation offers them
    // again.)
    CHECK(says(answer(as_a, R"(["REQ","again",{"kinds":[1]}])", "EOSE",
                      "again"),
               "EOSE"));
    auto after = test::make_note(alice, test::unix_now(), "after resume");
    CHECK(says(send_event(as_a, after),
               ",true,"));
    if (!test::poll_until([&] { return holds(a, on_b); }, 30s))
      FAIL("B's event did not reach A after B resumed\n"
           << json::serialize(a.sync_stats("b")) << "\n" << both(a, b));
    CHECK_FALSE(holds(b, refused));
  }

  SECTION("B subscribes only: A's key reads nothing, its events come in") {
    start("publish", "subscribe");
    net::simple_ws_client as_a;
    authenticate(as_a, b.relay_port, a.keys);
    refuses_reads(as_a, "restricted: this node does not serve its events to "
                        "federation peers");
    auto direct = test::make_note(alice, test::unix_now(), "direct");
    CHECK(says(send_event(as_a, direct),
               ",true,"));
    // A publishes only: its events reach B over the link.
    auto from_a = test::make_note(alice, test::unix_now(), "from a");
    sync_test::publish(a.relay_port, {from_a});
    if (!test::poll_until([&] { return holds(b, from_a); }, 20s))
      FAIL("A's event did not reach B\n" << both(a, b));
  }

  SECTION("B publishes only: A's key reads, its events are refused") {
    start("subscribe", "publish");
    net::simple_ws_client as_a;
    authenticate(as_a, b.relay_port, a.keys);
    auto refused = test::make_note(alice, test::unix_now(), "refused");
    auto ok = send_event(as_a, refused);
    CHECK(says(ok, ",false,"));
    CHECK(says(ok, "restricted: this node takes no events from federation "
                   "peers"));
    CHECK(says(answer(as_a, R"(["REQ","r",{"kinds":[1]}])", "EOSE", "r"),
               "EOSE"));
    // A subscribes only: B's events reach A over the link.
    auto from_b = test::make_note(alice, test::unix_now(), "from b");
    publish_on_b(from_b);
    if (!test::poll_until([&] { return holds(a, from_b); }, 20s))
      FAIL("B's event did not reach A\n" << both(a, b));
    CHECK_FALSE(holds(b, refused));
  }
}
