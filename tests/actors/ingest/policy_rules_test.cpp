#include "actors/ingest/policy_rules.hpp"

#include "messages/nostr/bech32.hpp"
#include "tests/store/store_fixture.hpp"

#include <catch2/catch.hpp>

using namespace ferry;
using ferry::store::test::make_event;

namespace {

constexpr int64_t now = 1'700'000'000;

struct rules_fixture {
  nostr::keypair alice = nostr::generate_keypair();
  nostr::keypair bob = nostr::generate_keypair();
  config::policy_config cfg;

  ingest_item item(const nostr::keypair& keys, uint32_t kind = 1,
                   std::string content = "hi", int64_t created_at = now,
                   std::string source = "client") {
    ingest_item x;
    x.data = make_event(keys, kind, created_at, {}, std::move(content));
    x.source = std::move(source);
    x.source_info = "192.0.2.1";
    return x;
  }

  policy_verdict judge(const ingest_item& x, double at = 0) {
    policy_rules rules{cfg};
    return rules.judge(x, now, at);
  }
};

} // namespace

TEST_CASE_METHOD(rules_fixture, "no rules accept everything", "[policy]") {
  policy_rules rules{cfg};
  CHECK(rules.empty());
  CHECK(rules.judge(item(alice), now, 0).action == policy_action::accept);
}

TEST_CASE_METHOD(rules_fixture, "denied pubkeys are blocked, others pass",
                 "[policy]") {
  cfg.denied_pubkeys = {nostr::to_hex(alice.pubkey)};
  auto v = judge(item(alice));
  CHECK(v.action == policy_action::reject);
  CHECK(v.message == "blocked: this pubkey may not write here");
  CHECK(judge(item(bob)).action == policy_action::accept);
}

TEST_CASE_METHOD(rules_fixture, "an allow list lets only its pubkeys write",
                 "[policy]") {
  cfg.allowed_pubkeys = {nostr::to_hex(alice.pubkey)};
  CHECK(judge(item(alice)).action == policy_action::accept);
  auto v = judge(item(bob));
  CHECK(v.action == policy_action::reject);
  CHECK(v.message.rfind("blocked: ", 0) == 0);
}

TEST_CASE_METHOD(rules_fixture, "kinds are allowed and denied", "[policy]") {
  SECTION("denied") {
    cfg.denied_kinds = {4};
    CHECK(judge(item(alice, 4)).message == "blocked: kind 4 is not accepted here");
    CHECK(judge(item(alice, 1)).action == policy_action::accept);
  }
  SECTION("allowed") {
    cfg.allowed_kinds = {1, 7};
    CHECK(judge(item(alice, 7)).action == policy_action::accept);
    CHECK(judge(item(alice, 30023)).action == policy_action::reject);
  }
}

TEST_CASE_METHOD(rules_fixture, "content size and tag count are capped",
                 "[policy]") {
  cfg.max_content_bytes = 5;
  CHECK(judge(item(alice, 1, "12345")).action == policy_action::accept);
  CHECK(judge(item(alice, 1, "123456")).message
        == "blocked: content is 6 bytes, more than the 5 allowed");
  cfg.max_content_bytes = 0;
  cfg.max_tags = 1;
  auto x = item(alice);
  x.data = make_event(alice, 1, now, {{"t", "a"}, {"t", "b"}});
  CHECK(judge(x).message == "blocked: 2 tags, more than the 1 allowed");
}

TEST_CASE_METHOD(rules_fixture, "created_at must be inside the window",
                 "[policy]") {
  cfg.max_age_seconds = 100;
  cfg.max_future_seconds = 10;
  CHECK(judge(item(alice, 1, "", now - 100)).action == policy_action::accept);
  CHECK(judge(item(alice, 1, "", now - 101)).message
        == "blocked: created_at is more than 100 seconds in the past");
  CHECK(judge(item(alice, 1, "", now + 10)).action == policy_action::accept);
  CHECK(judge(item(alice, 1, "", now + 11)).message
        == "blocked: created_at is more than 10 seconds in the future");
}

TEST_CASE_METHOD(rules_fixture,
                 "clients must authenticate as the author when required, "
                 "synced events need not",
                 "[policy]") {
  cfg.auth_required_for_writes = true;
  auto x = item(alice);
  CHECK(judge(x).message.rfind("auth-required: ", 0) == 0);
  x.authed = nostr::to_hex(bob.pubkey);
  CHECK(judge(x).message.rfind("restricted: ", 0) == 0);
  x.authed = nostr::to_hex(alice.pubkey);
  CHECK(judge(x).action == policy_action::accept);
  CHECK(judge(item(alice, 1, "", now, "sync:s1")).action
        == policy_action::accept);
}

TEST_CASE_METHOD(rules_fixture, "the IP bucket holds burst events and refills "
                                "at its rate",
                 "[policy]") {
  cfg.rate_ip = {2.0, 3};
  policy_rules rules{cfg};
  auto x = item(alice);
  for (int i = 0; i < 3; ++i)
    CHECK(rules.judge(x, now, 10.0).action == policy_action::accept);
  auto v = rules.judge(x, now, 10.0);
  CHECK(v.action == policy_action::reject);
  CHECK(v.message == "rate-limited: too many events from this IP address; "
                     "slow down");
  // Another address has its own bucket.
  auto other = item(alice);
  other.source_info = "192.0.2.2";
  CHECK(rules.judge(other, now, 10.0).action == policy_action::accept);
  // Half a second at 2/s is one token.
  CHECK(rules.judge(x, now, 10.5).action == policy_action::accept);
  CHECK(rules.judge(x, now, 10.5).action == policy_action::reject);
  CHECK(rules.counts().rate_limited == 2);
  // Synced events have no IP bucket.
  CHECK(rules.judge(item(alice, 1, "", now, "sync:s1"), now, 10.5).action
        == policy_action::accept);
}

TEST_CASE_METHOD(rules_fixture, "pubkey and source buckets", "[policy]") {
  SECTION("pubkey") {
    cfg.rate_pubkey = {1.0, 1};
    policy_rules rules{cfg};
    CHECK(rules.judge(item(alice), now, 0).action == policy_action::accept);
    CHECK(rules.judge(item(alice), now, 0).message.rfind("rate-limited: ", 0)
          == 0);
    CHECK(rules.judge(item(bob), now, 0).action == policy_action::accept);
  }
  SECTION("source") {
    cfg.rate_source = {1.0, 2};
    policy_rules rules{cfg};
    auto s1 = item(alice, 1, "", now, "sync:s1");
    CHECK(rules.judge(s1, now, 0).action == policy_action::accept);
    CHECK(rules.judge(s1, now, 0).action == policy_action::accept);
    CHECK(rules.judge(s1, now, 0).message
          == "rate-limited: too many events from this source; slow down");
    CHECK(rules.judge(item(alice, 1, "", now, "sync:s2"), now, 0).action
          == policy_action::accept);
  }
}

TEST_CASE_METHOD(rules_fixture, "an event refused by a rule takes no token",
                 "[policy]") {
  cfg.rate_ip = {1.0, 1};
  cfg.denied_kinds = {4};
  policy_rules rules{cfg};
  CHECK(rules.judge(item(alice, 4), now, 0).action == policy_action::reject);
  CHECK(rules.judge(item(alice, 1), now, 0).action == policy_action::accept);
}

TEST_CASE("token buckets forget full buckets once there are many",
          "[policy]") {
  token_buckets buckets{{1.0, 1}};
  for (size_t i = 0; i <= token_buckets::prune_above; ++i)
    buckets.take("k" + std::to_string(i), 0);
  CHECK(buckets.size() == token_buckets::prune_above + 1);
  // Two seconds later all are full again: the next new key prunes them.
  buckets.take("late", 2.0);
  CHECK(buckets.size() == 1);
}

TEST_CASE("a client's remote address gives its IP", "[policy]") {
  CHECK(address_of("192.0.2.1:4000") == "192.0.2.1");
  CHECK(address_of("[::1]:4000") == "::1");
  CHECK(address_of("") == "");
}
