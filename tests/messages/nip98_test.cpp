#include "messages/nostr/nip98.hpp"

#include "messages/nostr/event.hpp"
#include "messages/nostr/sha256.hpp"

#include <catch2/catch.hpp>

using namespace ferry::nostr;

namespace {

constexpr int64_t now = 1700000000;
const std::string url = "http://127.0.0.1:7448/api/v1/actors";

const keypair& keys() {
  static auto k = generate_keypair();
  return k;
}

/// A header for a hand-built event, so each rule can be broken on its own.
std::string header_for(event ev) {
  sign_event(ev, keys());
  return "Nostr " + base64_encode(to_json(ev));
}

event auth_event(std::vector<tag> tags) {
  event ev;
  ev.kind = http_auth_kind;
  ev.created_at = now;
  ev.tags = std::move(tags);
  return ev;
}

std::string verify(const std::string& header, std::string_view body = {},
                   std::string_view method = "GET") {
  return verify_http_auth(header, url, method, body, now, nullptr);
}

} // namespace

TEST_CASE("base64 round-trips every tail length", "[nip98]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  for (size_t n = 0; n < all.size(); n += 37) {
    auto text = all.substr(0, n);
    CAPTURE(n);
    CHECK(base64_decode(base64_encode(text)) == text);
  }
}

TEST_CASE("base64 decoding is strict", "[nip98]") {
  CHECK(base64_decode("Zm9v") == std::string{"foo"});
  CHECK(base64_decode("Zg==") == std::string{"f"});
  CHECK_FALSE(base64_decode("Zg"));       // missing padding
  CHECK_FALSE(base64_decode("Zg=="
                            "Zg=="));     // padding in the middle
  CHECK_FALSE(base64_decode("Z==="));     // too much padding
  CHECK_FALSE(base64_decode("Zh=="));     // non-zero bits under padding
  CHECK_FALSE(base64_decode("Zm9v\n"));   // whitespace
  CHECK_FALSE(base64_decode("Zm-_"));     // URL-safe alphabet
}

TEST_CASE("a NIP-98 header made here verifies here", "[nip98]") {
  SECTION("without a body") {
    auto header = make_http_auth(keys(), url, "GET", "", now);
    REQUIRE(header.rfind("Nostr ", 0) == 0);
    http_auth_event who;
    CHECK(verify_http_auth(header, url, "GET", "", now, &who).empty());
    CHECK(who.pubkey == keys().pubkey);
    CHECK(who.created_at == now);
  }
  SECTION("with a body") {
    auto header = make_http_auth(keys(), url, "POST", R"({"a":1})", now);
    CHECK(verify(header, R"({"a":1})", "POST").empty());
    CHECK_FALSE(verify(header, R"({"a":2})", "POST").empty());
  }
  SECTION("at the edges of the time window") {
    auto early = make_http_auth(keys(), url, "GET", "", now - 60);
    auto late = make_http_auth(keys(), url, "GET", "", now + 60);
    CHECK(verify(early).empty());
    CHECK(verify(late).empty());
  }
  SECTION("with the scheme in another case") {
    auto header = make_http_auth(keys(), url, "GET", "", now);
    CHECK(verify("nostr " + header.substr(6)).empty());
  }
}

TEST_CASE("two requests alike signed in the same second are two events",
          "[nip98]") {
  http_auth_event first;
  http_auth_event second;
  REQUIRE(verify_http_auth(make_http_auth(keys(), url, "GET", "", now), url,
                           "GET", "", now, &first)
            .empty());
  REQUIRE(verify_http_auth(make_http_auth(keys(), url, "GET", "", now), url,
                           "GET", "", now, &second)
            .empty());
  CHECK(first.id != second.id);
}

TEST_CASE("a NIP-98 memory takes each event once while its window lasts",
          "[nip98]") {
  using verdict = http_auth_memory::verdict;
  auto id = [](uint8_t n) {
    bytes32 x{};
    x[0] = n;
    return x;
  };
  http_auth_memory memory{2};
  SECTION("a second use inside the window is refused, even at its end") {
    CHECK(memory.admit(id(1), now, now) == verdict::fresh);
    CHECK(memory.admit(id(1), now, now) == verdict::reused);
    CHECK(memory.admit(id(1), now, now + http_auth_window) == verdict::reused);
    // Past the window the verifier refuses it; the memory lets it go.
    CHECK(memory.admit(id(1), now, now + http_auth_window + 1)
          == verdict::fresh);
  }
  SECTION("an event dated ahead is kept until its own window ends") {
    CHECK(memory.admit(id(1), now + 60, now) == verdict::fresh);
    CHECK(memory.admit(id(1), now + 60, now + 120) == verdict::reused);
    CHECK(memory.size() == 1);
  }
  SECTION("when full, new events are refused until the oldest expires") {
    CHECK(memory.admit(id(1), now - 30, now) == verdict::fresh);
    CHECK(memory.admit(id(2), now, now) == verdict::fresh);
    CHECK(memory.admit(id(3), now, now) == verdict::full);
    // The memory still knows both: none was forgotten to make room.
    CHECK(memory.admit(id(1), now - 30, now) == verdict::reused);
    CHECK(memory.admit(id(2), now, now) == verdict::reused);
    CHECK(memory.seconds_until_room(now) == 31);
    CHECK(memory.admit(id(3), now, now + 30) == verdict::full);
    CHECK(memory.admit(id(3), now, now + 31) == verdict::fresh);
    CHECK(memory.size() == 2);
  }
}

TEST_CASE("behind a TLS proxy either scheme names the host and target, "
          "nothing else does",
          "[nip98]") {
  const std::string where = "admin.example:7448/api/v1/actors";
  auto signed_for = [](const std::string& u) {
    return make_http_auth(keys(), u, "GET", "", now);
  };
  auto check = [&](const std::string& u) {
    http_auth_event who;
    auto why = verify_http_auth_either_scheme(signed_for(u), where, "GET", "",
                                              now, &who);
    if (why.empty())
      CHECK(who.pubkey == keys().pubkey);
    return why;
  };
  CHECK(check("http://" + where).empty());
  CHECK(check("https://" + where).empty());
  for (const std::string& bad :
       {"ftp://" + where, "https://" + where + "/x",
        std::string{"https://other.example:7448/api/v1/actors"},
        "https:/" + where, where}) {
    CAPTURE(bad);
    CHECK(check(bad) == "u tag does not match the request URL");
  }
  // The plain check stays exact: https is not http.
  CHECK(verify_http_auth(signed_for("https://" + where), "http://" + where,
                         "GET", "", now, nullptr)
        == "u tag does not match the request URL");
}

TEST_CASE("a NIP-98 header is refused for each broken rule", "[nip98]") {
  auto good_tags = std::vector<tag>{{"u", url}, {"method", "GET"}};
  SECTION("scheme") {
    auto header = make_http_auth(keys(), url, "GET", "", now);
    CHECK(verify("Bearer " + header.substr(6)) == "not a Nostr authorization");
    CHECK(verify("") == "not a Nostr authorization");
  }
  SECTION("encoding") {
    CHECK(verify("Nostr !!!!") == "token is not valid base64");
    CHECK(verify("Nostr " + base64_encode("{}")).rfind("token is not a Nostr event", 0)
          == 0);
  }
  SECTION("kind") {
    auto ev = auth_event(good_tags);
    ev.kind = 1;
    CHECK(verify(header_for(ev)) == "event kind is 1, not 27235");
  }
  SECTION("id and signature") {
    auto ev = auth_event(good_tags);
    sign_event(ev, keys());
    auto forged = ev;
    forged.content = "changed after signing";
    CHECK(verify("Nostr " + base64_encode(to_json(forged)))
            .rfind("event is not authentic", 0)
          == 0);
    forged = ev;
    forged.id = compute_id(forged);
    forged.sig[0] ^= 1;
    CHECK(verify("Nostr " + base64_encode(to_json(forged)))
            .rfind("event is not authentic", 0)
          == 0);
  }
  SECTION("created_at") {
    auto stale = auth_event(good_tags);
    stale.created_at = now - 61;
    CHECK_FALSE(verify(header_for(stale)).empty());
    auto future = auth_event(good_tags);
    future.created_at = now + 61;
    CHECK_FALSE(verify(header_for(future)).empty());
  }
  SECTION("u tag") {
    CHECK(verify(header_for(auth_event({{"method", "GET"}})))
          == "event needs exactly one u tag");
    CHECK(verify(header_for(auth_event({{"u", url}, {"u", url}, {"method", "GET"}})))
          == "event needs exactly one u tag");
    CHECK(verify(header_for(auth_event({{"u", url + "/x"}, {"method", "GET"}})))
          == "u tag does not match the request URL");
    CHECK(verify(header_for(auth_event({{"u", url + "?"}, {"method", "GET"}})))
          == "u tag does not match the request URL");
  }
  SECTION("method tag") {
    CHECK(verify(header_for(auth_event({{"u", url}})))
          == "event needs exactly one method tag");
    CHECK(verify(header_for(auth_event({{"u", url}, {"method", "get"}})))
          == "method tag does not match the request method");
    CHECK(verify(header_for(auth_event(good_tags)), "", "POST")
          == "method tag does not match the request method");
  }
  SECTION("payload tag") {
    CHECK(verify(header_for(auth_event({{"u", url}, {"method", "POST"}})), "x",
                 "POST")
          == "event has no payload tag for the request body");
    auto wrong = auth_event(
      {{"u", url}, {"method", "POST"}, {"payload", to_hex(sha256("y"))}});
    CHECK(verify(header_for(wrong), "x", "POST")
          == "payload tag does not match the request body");
    // A payload tag with an empty body must be the hash of "".
    auto empty_ok = auth_event(
      {{"u", url}, {"method", "GET"}, {"payload", to_hex(sha256(""))}});
    CHECK(verify(header_for(empty_ok)).empty());
    CHECK(verify(header_for(wrong), "", "POST")
          == "payload tag does not match the request body");
    auto twice = auth_event({{"u", url},
                             {"method", "POST"},
                             {"payload", to_hex(sha256("x"))},
                             {"payload", to_hex(sha256("x"))}});
    CHECK(verify(header_for(twice), "x", "POST")
          == "event has more than one payload tag");
  }
}
