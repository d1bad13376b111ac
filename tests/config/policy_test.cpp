#include "config/config.hpp"

#include "config_test_util.hpp"
#include "messages/nostr/bech32.hpp"
#include "messages/nostr/keys.hpp"

#include <catch2/catch.hpp>

using namespace ferry::config;
using ferry::config::test::load_error;

TEST_CASE("[policy] reads every rule", "[config][policy]") {
  auto keys = ferry::nostr::generate_keypair();
  auto hex = ferry::nostr::to_hex(keys.pubkey);
  auto result = load_string(
    "[policy]\n"
    "allowed_pubkeys = [\"" + ferry::nostr::to_npub(keys.pubkey) + "\"]\n"
    "denied_pubkeys = [\"" + std::string(64, 'a') + "\"]\n"
    "allowed_kinds = [1, 7]\ndenied_kinds = [4]\n"
    "max_content_bytes = 1000\nmax_tags = 50\n"
    "max_age_seconds = 3600\nmax_future_seconds = 60\n"
    "auth_required_for_writes = true\n"
    "[policy.rate_limit.ip]\nrate = 2.5\nburst = 10\n"
    "[policy.rate_limit.pubkey]\nrate = 1\nburst = 5\n"
    "[policy.remember_refused]\nmax_entries = 10\nttl_seconds = 60\n"
    "[policy.plugin]\ncommand = \"/opt/p.js\"\ntimeout_ms = 500\n"
    "fallback = \"accept\"\n",
    "ferry.toml");
  REQUIRE(result);
  const auto& p = result->policy;
  // The npub is kept as hex.
  CHECK(p.allowed_pubkeys == std::vector<std::string>{hex});
  CHECK(p.denied_pubkeys == std::vector<std::string>{std::string(64, 'a')});
  CHECK(p.allowed_kinds == std::vector<int64_t>{1, 7});
  CHECK(p.denied_kinds == std::vector<int64_t>{4});
  CHECK(p.max_content_bytes == 1000);
  CHECK(p.max_tags == 50);
  CHECK(p.max_age_seconds == 3600);
  CHECK(p.max_future_seconds == 60);
  CHECK(p.auth_required_for_writes);
  CHECK(p.rate_ip.rate == 2.5);
  CHECK(p.rate_ip.burst == 10);
  CHECK(p.rate_pubkey.rate == 1.0);
  CHECK_FALSE(p.rate_source.enabled());
  CHECK(p.remember_refused.max_entries == 10);
  CHECK(p.remember_refused.ttl == std::chrono::seconds{60});
  CHECK(p.plugin.command == "/opt/p.js");
  CHECK(p.plugin.timeout == std::chrono::milliseconds{500});
  CHECK(p.plugin.fallback == "accept");
  CHECK(p.has_rules());
}

TEST_CASE("the default policy has no rules", "[config][policy]") {
  auto result = load_string("", "ferry.toml");
  REQUIRE(result);
  CHECK_FALSE(result->policy.has_rules());
  CHECK(result->policy.plugin.command.empty());
}

TEST_CASE("bad [policy] values name the key and the expectation",
          "[config][policy]") {
  CHECK(load_error("[policy]\ndenied_pubkeys = [\"npub1nope\"]\n")
        == "ferry.toml: policy.denied_pubkeys[0]: expected 64 lowercase hex "
           "characters or an npub1... key, got \"npub1nope\"");
  CHECK(load_error("[policy]\nallowed_pubkeys = \"abc\"\n")
        == "ferry.toml: policy.allowed_pubkeys: expected an array of pubkeys "
           "(hex or npub), got \"abc\"");
  CHECK(load_error("[policy]\ndenied_kinds = [70000]\n")
        == "ferry.toml: policy.denied_kinds[0]: expected an event kind, an "
           "integer in 0..65535, got 70000");
  CHECK(load_error("[policy]\nmax_tags = -1\n")
        == "ferry.toml: policy.max_tags: expected an integer in "
           "0..9223372036854775807 (0: no limit), got -1");
  CHECK(load_error("[policy.rate_limit.ip]\nrate = -1.0\n")
        == "ferry.toml: policy.rate_limit.ip.rate: expected events per "
           "second, a number of at least 0 (0: no limit), got -1.0");
  CHECK(load_error("[policy.rate_limit.source]\nrate = 5\n")
        == "ferry.toml: policy.rate_limit.source.burst: expected at least 1 "
           "when policy.rate_limit.source.rate is set, got 0");
  CHECK(load_error("[policy.plugin]\nfallback = \"maybe\"\n")
        == "ferry.toml: policy.plugin.fallback: expected \"accept\" or "
           "\"reject\", got \"maybe\"");
  CHECK(load_error("[policy.plugin]\ntimeout_ms = 0\n")
        == "ferry.toml: policy.plugin.timeout_ms: expected an integer in "
           "1..600000, got 0");
  CHECK(load_error("[policy]\nmax_size = 3\n")
        == "ferry.toml: policy.max_size: unknown key");
}
