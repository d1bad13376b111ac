#include "messages/nostr/relay_url.hpp"

#include <catch2/catch.hpp>

using namespace ferry::nostr;

namespace {

relay_url parse_ok(std::string_view text) {
  relay_url url;
  auto reason = parse_relay_url(text, url);
  if (!reason.empty())
    FAIL(std::string{text} + ": " + reason);
  return url;
}

} // namespace

TEST_CASE("relay URLs split into their parts", "[relay_url]") {
  auto url = parse_ok("wss://Relay.Example:8443/a/b?x=Y");
  CHECK(url.secure);
  CHECK(url.host == "relay.example");
  CHECK(url.port == 8443);
  CHECK(url.path == "/a/b");
  CHECK(url.query == "x=Y");
  auto plain = parse_ok("ws://127.0.0.1");
  CHECK_FALSE(plain.secure);
  CHECK(plain.port == 80);
  CHECK(plain.path.empty());
  auto v6 = parse_ok("wss://[2001:DB8::1]:7447");
  CHECK(v6.host == "[2001:db8::1]");
  CHECK(v6.port == 7447);
  CHECK(parse_ok("wss://[::1]").port == 443);
}

TEST_CASE("relay URLs normalize", "[relay_url]") {
  CHECK(normalize_relay_url("wss://relay.example.com/") == "wss://relay.example.com");
  CHECK(normalize_relay_url("WS://RELAY.example.com:80") == "ws://relay.example.com");
  CHECK(normalize_relay_url("ws://relay.example.com:443") == "ws://relay.example.com:443");
  CHECK(normalize_relay_url("wss://h/P//") == "wss://h/P//");
  CHECK(normalize_relay_url("wss://h?q") == "wss://h?q");
  CHECK(normalize_relay_url("wss://h/?q") == "wss://h?q");
  CHECK(normalize_relay_url("http://h").empty());
}

TEST_CASE("malformed relay URLs are refused with a reason", "[relay_url]") {
  relay_url url;
  for (auto [text, reason] : std::vector<std::pair<std::string, std::string>>{
         {"", "expected a ws:// or wss:// URL"},
         {"relay.example.com", "expected a ws:// or wss:// URL"},
         {"wss:/relay.example.com", "expected a ws:// or wss:// URL"},
         {"wss://", "expected a URL with a host"},
         {"wss://:443", "expected a URL with a host"},
         {"wss:///path", "expected a URL with a host"},
         {"wss://h:", "expected a port in 1..65535"},
         {"wss://h:x", "expected a port in 1..65535"},
         {"wss://h:123456", "expected a port in 1..65535"},
         {"wss://h#f", "a relay URL cannot have a fragment"},
         {"wss://a@h", "a relay URL cannot carry a user name or password"},
         {"wss://h /", "expected a URL without spaces, control or non-ASCII characters"},
         {"wss://h\t", "expected a URL without spaces, control or non-ASCII characters"},
         {"wss://h\xc3\xa9", "expected a URL without spaces, control or non-ASCII characters"},
         {"wss://.h", "expected a host of letters, digits, '.', '-' and '_', or an "
                      "IPv6 literal in brackets"},
         {"wss://[::1", "expected a host of letters, digits, '.', '-' and '_', or an "
                        "IPv6 literal in brackets"},
         {"wss://[xyz]", "expected a host of letters, digits, '.', '-' and '_', or an "
                         "IPv6 literal in brackets"},
       }) {
    CAPTURE(text);
    CHECK(parse_relay_url(text, url) == reason);
  }
}

TEST_CASE("same_relay ignores trailing slashes only", "[relay_url]") {
  auto same = [](std::string_view a, std::string_view b) {
    return same_relay(parse_ok(a), parse_ok(b));
  };
  CHECK(same("wss://h", "wss://h/"));
  CHECK(same("wss://h/x", "wss://h/x/"));
  CHECK(same("wss://H:443", "wss://h"));
  CHECK_FALSE(same("wss://h", "ws://h"));
  CHECK_FALSE(same("wss://h", "wss://h:444"));
  CHECK_FALSE(same("wss://h/x", "wss://h/y"));
  CHECK_FALSE(same("wss://h/X", "wss://h/x"));
  CHECK_FALSE(same("wss://h?a", "wss://h"));
}
