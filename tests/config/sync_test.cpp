#include "config/config.hpp"

#include "config_test_util.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <utility>

using namespace ferry::config;
using ferry::config::test::load_error;

namespace {

/// One `[[sync.server]]` table with the required keys plus `extra` lines.
std::string server(const std::string& id, const std::string& extra = {}) {
  return "[[sync.server]]\nid = \"" + id
         + "\"\nurl = \"wss://relay.example.com\"\nfilters = [{ kinds = [1] }]\n"
         + extra;
}

} // namespace

TEST_CASE("[[sync.server]] tables parse like the admin API's bodies",
          "[config][sync]") {
  auto pin = std::string(64, 'b');
  auto result = load_string(R"(
[[sync.server]]
id = "primary"
url = "WSS://Relay.Example.com:443/"
enabled = false
auth_pubkey = ")" + std::string(64, 'a') + R"("
filters = [{ kinds = [1, 30023], "#t" = ["nostr"] }, { authors = [")"
                              + std::string(64, 'c') + R"("], since = 10 }]
direction = "both"
mode = "negentropy"
overlap_window_seconds = 60
relay_info_mode = "required"
auth = { type = "nip42", mode = "always" }

[sync.server.tls]
mode = "required"
hostname = "relay.example.com"
ca_certfile = "/etc/ferry/ca.pem"
client_certfile = "/etc/ferry/node.crt"
client_keyfile = "/etc/ferry/node.key"
pins = [{ type = "spki_sha256", value = ")" + pin + R"(" }]

[sync.server.metadata]
owner = "ops"
weight = 1.5
tags = ["a", "b"]

[[sync.server]]
id = "plain"
url = "ws://127.0.0.1:7000"
filters = [{}]
tls = { mode = "disabled" }
)",
                            "ferry.toml");
  if (!result)
    FAIL(ferry::config::test::error_text(result.error()));
  const auto& servers = result->sync.servers;
  REQUIRE(servers.size() == 2);
  auto expected = ferry::parse_sync_server(R"({
    "id": "primary", "url": "wss://relay.example.com", "enabled": false,
    "auth_pubkey": ")" + std::string(64, 'a') + R"(",
    "filters": [{"kinds": [1, 30023], "#t": ["nostr"]},
                {"authors": [")" + std::string(64, 'c') + R"("], "since": 10}],
    "direction": "both", "mode": "negentropy", "overlap_window_seconds": 60,
    "relay_info_mode": "required", "auth": {"type": "nip42", "mode": "always"},
    "tls": {"mode": "required", "hostname": "relay.example.com",
            "ca_certfile": "/etc/ferry/ca.pem",
            "client_certfile": "/etc/ferry/node.crt",
            "client_keyfile": "/etc/ferry/node.key",
            "pins": [{"type": "spki_sha256", "value": ")" + pin + R"("}]},
    "metadata": {"owner": "ops", "tags": ["a", "b"], "weight": 1.5}})");
  REQUIRE(expected);
  // toml++ keeps a table's keys sorted, hence metadata's order above.
  CHECK(ferry::to_json(servers[0]) == ferry::to_json(*expected));
  CHECK(servers[0].url == "wss://relay.example.com");
  CHECK(servers[1].id == "plain");
  CHECK(servers[1].url == "ws://127.0.0.1:7000");
  CHECK(servers[1].tls.mode == "disabled");

  auto same = load_string(server("a") + server("b"), "ferry.toml");
  auto other = load_string(server("a") + server("c"), "ferry.toml");
  REQUIRE(same);
  REQUIRE(other);
  CHECK_FALSE(*same == *other);
  CHECK(*same == *load_string(server("a") + server("b"), "ferry.toml"));
}

TEST_CASE("no [[sync.server]] means no servers", "[config][sync]") {
  auto result = load_string("[sync]\nserver = []\n", "ferry.toml");
  REQUIRE(result);
  CHECK(result->sync.servers.empty());
  CHECK(*result == config{});
}

TEST_CASE("a bad [[sync.server]] names the file and the key", "[config][sync]") {
  // Each TOML text with the error it must give.
  const std::pair<std::string, std::string> cases[] = {
    {"[[sync.server]]\nid = \"a\"\nurl = \"https://relay.example\"\n"
     "filters = [{}]\n",
     "ferry.toml: sync.server[0].url: expected a ws:// or wss:// URL"},
    {server("a") + server("b", "filters2 = 1\n"),
     "ferry.toml: sync.server[1].filters2: unknown key"},
    {"[[sync.server]]\nid = \"a\"\nurl = \"wss://r.example\"\n"
     "filters = [{ kinds = [\"x\"] }]\n",
     "ferry.toml: sync.server[0].filters[0].kinds: must be a list of "
     "integers in [0, 65535]"},
    {"[[sync.server]]\nurl = \"wss://r.example\"\nfilters = [{}]\n",
     "ferry.toml: sync.server[0].id: required"},
    {server("a", "relay_info_mode = \"sometimes\"\n"),
     "ferry.toml: sync.server[0].relay_info_mode: expected one of "
     "required, best_effort, disabled"},
    {server("a", "[sync.server.tls]\npins = [{ value = \"x\" }]\n"),
     "ferry.toml: sync.server[0].tls.pins[0].value: expected 64 hex "
     "characters or base64 of 32 bytes"},
    {server("a", "auth = { mode = \"later\" }\n"),
     "ferry.toml: sync.server[0].auth.mode: expected one of "
     "on_challenge, always, never"},
    {server("a", "overlap_window_seconds = 100000\n"),
     "ferry.toml: sync.server[0].overlap_window_seconds: expected an "
     "integer in 0..86400"},
    {server("a", "[sync.server.metadata]\nwhen = 1979-05-27\n"),
     "ferry.toml: sync.server[0].metadata.when: expected a string, a "
     "finite number, a boolean, an array or a table, got 1979-05-27"},
    {server("a", "[sync.server.metadata]\nx = nan\n"),
     "ferry.toml: sync.server[0].metadata.x: expected a string, a "
     "finite number, a boolean, an array or a table, got nan"},
  };
  for (const auto& [toml, error] : cases) {
    INFO(toml);
    CHECK(load_error(toml) == error);
  }
}

TEST_CASE("sync.server must be an array of tables", "[config][sync]") {
  CHECK(load_error("[sync]\nserver = 5\n")
        == "ferry.toml: sync.server: expected an array of tables "
           "([[sync.server]]), got 5");
  CHECK(load_error("[sync]\nserver = [1]\n")
        == "ferry.toml: sync.server[0]: expected a table, got 1");
  CHECK(load_error("[sync.server]\nid = \"a\"\n")
        == "ferry.toml: sync.server: expected an array of tables "
           "([[sync.server]]), got a table");
  CHECK(load_error("sync = 1\n") == "ferry.toml: sync: expected a table, got 1");
}

TEST_CASE("sync server ids are unique", "[config][sync]") {
  CHECK(load_error(server("a") + server("b") + server("a"))
        == "ferry.toml: sync.server[2].id: duplicate id \"a\", also in "
           "sync.server[0]");
}
