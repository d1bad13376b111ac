#include "config/config.hpp"

#include "config_test_util.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

using namespace ferry::config;
using ferry::config::test::load_error;
using Catch::Matchers::StartsWith;

TEST_CASE("the infra section loads every key", "[config]") {
  auto result = load_string(R"(
[infra]
enabled = true
api_url = "https://zooid.example.com/api/"
relay_domain = "relays.example.com"
roles = { member = { pubkeys = ["79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"], can_invite = true } }
request_timeout_ms = 2500
retry_base_ms = 10
retry_cap_ms = 80
max_attempts = 3
[infra.blossom]
endpoint = "https://s3.example.com"
region = "eu-1"
bucket = "media"
access_key = "AK"
secret_key = "SK"
[infra.livekit]
server_url = "wss://lk.example.com"
api_key = "k"
api_secret = "s"
)",
                            "ferry.toml");
  if (!result)
    FAIL(ferry::config::test::error_text(result.error()));
  auto& infra = result->infra;
  CHECK(infra.active());
  // Trailing slashes go, so paths append cleanly.
  CHECK(infra.api_url == "https://zooid.example.com/api");
  CHECK(infra.relay_domain == "relays.example.com");
  auto roles = boost::json::parse(infra.roles_json);
  CHECK(roles.at("member").at("can_invite").as_bool());
  CHECK(infra.request_timeout_ms == 2500);
  CHECK(infra.retry_base_ms == 10);
  CHECK(infra.retry_cap_ms == 80);
  CHECK(infra.max_attempts == 3);
  CHECK(infra.blossom.bucket == "media");
  CHECK(infra.livekit.api_secret == "s");
}

TEST_CASE("infra is idle without an api_url or when disabled", "[config]") {
  auto defaults = load_string("", "ferry.toml");
  REQUIRE(defaults);
  CHECK_FALSE(defaults->infra.active());
  auto disabled = load_string("[infra]\nenabled = false\napi_url = "
                              "\"http://127.0.0.1:9000\"\nrelay_domain = "
                              "\"example.com\"\n",
                              "ferry.toml");
  REQUIRE(disabled);
  CHECK_FALSE(disabled->infra.active());
}

TEST_CASE("bad infra values name the key", "[config]") {
  CHECK_THAT(load_error("[infra]\napi_url = \"http://zooid.example.com\"\n"
                        "relay_domain = \"example.com\"\n"),
             StartsWith("ferry.toml: infra.api_url: expected empty, an "
                        "https:// URL, or an http:// URL to a loopback"));
  CHECK_THAT(load_error("[infra]\napi_url = \"ftp://127.0.0.1\"\n"),
             StartsWith("ferry.toml: infra.api_url: expected"));
  CHECK_THAT(load_error("[infra]\napi_url = \"https://a.example/?x=1\"\n"),
             StartsWith("ferry.toml: infra.api_url: expected"));
  CHECK(load_error("[infra]\napi_url = \"http://[::1]:8080\"\n"
                   "relay_domain = \"example.com\"\n")
        == "no error");
  CHECK(load_error("[infra]\napi_url = \"http://localhost:8080\"\n"
                   "relay_domain = \"example.com\"\n")
        == "no error");
  CHECK(load_error("[infra]\napi_url = \"https://zooid.example.com\"\n")
        == "ferry.toml: infra.relay_domain: expected a DNS name when "
           "infra.api_url is set, got \"\"");
  CHECK_THAT(load_error("[infra]\nrelay_domain = \"Example.COM\"\n"),
             StartsWith("ferry.toml: infra.relay_domain: expected empty or a "
                        "lowercase DNS name"));
  CHECK_THAT(load_error("[infra]\nretry_base_ms = 100\nretry_cap_ms = 50\n"),
             StartsWith("ferry.toml: infra.retry_cap_ms: expected at least "
                        "infra.retry_base_ms (100), got 50"));
  CHECK_THAT(load_error("[infra]\nmax_attempts = 0\n"),
             StartsWith("ferry.toml: infra.max_attempts: expected an integer "
                        "in 1..1000, got 0"));
  CHECK_THAT(load_error("[infra]\nroles = { admin = { pubkeys = [\"x\"] } }\n"),
             StartsWith("ferry.toml: infra.roles.admin.pubkeys[0]: expected "
                        "64 lowercase hex"));
  CHECK_THAT(load_error("[infra]\nroles = { admin = { can_ban = true } }\n"),
             StartsWith("ferry.toml: infra.roles.admin.can_ban: unknown key"));
  CHECK_THAT(load_error("[infra]\nroles = { admin = true }\n"),
             StartsWith("ferry.toml: infra.roles.admin: expected a table"));
  CHECK_THAT(load_error("[infra.blossom]\nbucket = 3\n"),
             StartsWith("ferry.toml: infra.blossom.bucket: expected a string"));
  CHECK_THAT(load_error("[infra]\ncolor = 1\n"),
             StartsWith("ferry.toml: infra.color: unknown key"));
}
