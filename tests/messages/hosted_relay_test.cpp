#include "messages/hosted_relay.hpp"

#include "messages/error.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <string>

using namespace ferry;

namespace {

const std::string owner
  = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

/// A body the API accepts, with `extra` keys spliced in before the end.
std::string body(const std::string& extra = {}) {
  return R"({"id":"club","subdomain":"club","schema":"club_relay",)"
         R"("info":{"name":"Club","pubkey":")"
         + owner + R"("})" + extra + "}";
}

/// The error text `parse_hosted_relay` gives for `json`.
std::string failure(const std::string& json, const std::string& id = {}) {
  auto result = parse_hosted_relay(json, id);
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == static_cast<uint8_t>(ec::invalid_input));
  return render(result.error());
}

} // namespace

TEST_CASE("a minimal hosted relay gets the defaults", "[hosted_relay]") {
  auto r = parse_hosted_relay(body());
  REQUIRE(r);
  CHECK(r->id == "club");
  CHECK(r->subdomain == "club");
  CHECK(r->schema == "club_relay");
  CHECK(r->status == hosted_status::active);
  CHECK(r->info.name == "Club");
  CHECK(r->info.pubkey == owner);
  CHECK(r->policy_json == "{}");
  CHECK_FALSE(r->blossom_enabled);
  CHECK_FALSE(r->livekit_enabled);
  CHECK_FALSE(r->synced);
}

TEST_CASE("every editable field is read", "[hosted_relay]") {
  auto r = parse_hosted_relay(body(
    R"(,"status":"delinquent","policy":{"public_join":true},)"
    R"("groups":{"enabled":true},"management":{"enabled":false},)"
    R"("push":{"enabled":true},"blossom_enabled":true,"livekit_enabled":true)"));
  REQUIRE(r);
  CHECK(r->status == hosted_status::delinquent);
  CHECK(r->policy_json == R"({"public_join":true})");
  CHECK(r->groups_json == R"({"enabled":true})");
  CHECK(r->push_json == R"({"enabled":true})");
  CHECK(r->blossom_enabled);
  CHECK(r->livekit_enabled);
}

TEST_CASE("bad hosted relays are refused naming the field", "[hosted_relay]") {
  using Catch::Matchers::StartsWith;
  CHECK_THAT(failure("[1]"), StartsWith("body: expected a JSON object"));
  CHECK_THAT(failure("{"), StartsWith("body: invalid JSON"));
  CHECK_THAT(failure(R"({"subdomain":"a","schema":"a","info":{"pubkey":")"
                     + owner + R"("}})"),
             StartsWith("id: required"));
  CHECK_THAT(failure(body(R"(,"id":"other")")),
             StartsWith("id: duplicate key"));
  CHECK_THAT(failure(body(), "another"), StartsWith("id: differs"));
  CHECK_THAT(failure(body(R"(,"color":"red")")),
             StartsWith("color: unknown key"));
  CHECK_THAT(failure(body(R"(,"synced":true)")),
             StartsWith("synced: set by the node"));
  CHECK_THAT(failure(body(R"(,"status":"paused")")),
             StartsWith("status: expected one of active, inactive, "
                        "delinquent"));
  CHECK_THAT(failure(body(R"(,"policy":[])")),
             StartsWith("policy: expected a JSON object"));
  CHECK_THAT(failure(body(R"(,"blossom_enabled":"yes")")),
             StartsWith("blossom_enabled: expected true or false"));
  for (std::string bad : {std::string{}, std::string{"-club"},
                          std::string{"club-"}, std::string{"Club"},
                          std::string{"a.b"}, std::string{"under_score"},
                          std::string(64, 'a')}) {
    INFO("subdomain " << bad);
    auto json = R"({"id":"x","subdomain":")" + bad
                + R"(","schema":"s","info":{"pubkey":")" + owner + R"("}})";
    CHECK_THAT(failure(json), StartsWith("subdomain: expected one DNS label"));
  }
  for (auto bad : {"", "1abc", "with-dash", "Upper", "sp ace"}) {
    INFO("schema " << bad);
    auto json = R"({"id":"x","subdomain":"x","schema":")" + std::string{bad}
                + R"(","info":{"pubkey":")" + owner + R"("}})";
    CHECK_THAT(failure(json), StartsWith("schema: expected"));
  }
  CHECK_THAT(failure(R"({"id":"x","subdomain":"x","schema":"s","info":{}})"),
             StartsWith("info.pubkey: required"));
  CHECK_THAT(failure(R"({"id":"x","subdomain":"x","schema":"s",)"
                     R"("info":{"pubkey":"ABC"}})"),
             StartsWith("info.pubkey: expected 64 lowercase hex"));
  CHECK_THAT(failure(R"({"id":"x","subdomain":"x","schema":"s",)"
                     R"("info":{"pubkey":")"
                     + owner + R"(","banner":""}})"),
             StartsWith("info.banner: unknown key"));
  CHECK_THAT(failure(R"({"id":"-x","subdomain":"x","schema":"s",)"
                     R"("info":{"pubkey":")"
                     + owner + R"("}})"),
             StartsWith("id: expected 1 to 64"));
}

TEST_CASE("a stored hosted relay reads back identically", "[hosted_relay]") {
  auto r = parse_hosted_relay(body(R"(,"groups":{"enabled":true})"));
  REQUIRE(r);
  r->synced = true;
  r->sync_error = "POST /relay/club: HTTP 500";
  r->created_at = 1700000000;
  r->updated_at = 1700000100;
  r->changed_seq = 42;
  auto back = parse_stored_hosted_relay(to_json(*r));
  REQUIRE(back);
  CHECK(to_json(*back) == to_json(*r));
  CHECK(back->changed_seq == 42);
  CHECK(back->sync_error == r->sync_error);
}

TEST_CASE("the editable JSON leaves out what the node sets and reads back "
          "as the same definition",
          "[hosted_relay]") {
  auto r = parse_hosted_relay(body(R"(,"status":"inactive",)"
                                   R"("push":{"enabled":true})"));
  REQUIRE(r);
  auto plain = to_editable_json(*r);
  r->synced = true;
  r->sync_error = "POST /relay/club: HTTP 500";
  r->changed_seq = 42;
  r->updated_at = 1700000100;
  // What one node set does not make its definition differ from another's.
  CHECK(to_editable_json(*r) == plain);
  for (auto key : {"synced", "sync_error", "created_at", "updated_at",
                   "changed_seq"})
    CHECK(plain.find(std::string{"\""} + key + "\"") == std::string::npos);
  auto back = parse_hosted_relay(plain);
  REQUIRE(back);
  CHECK(to_editable_json(*back) == plain);
  CHECK(back->status == hosted_status::inactive);
  CHECK(back->push_json == R"({"enabled":true})");
  CHECK_FALSE(back->synced);
}

TEST_CASE("a patch merges objects, replaces values and keeps node fields",
          "[hosted_relay]") {
  auto base = parse_hosted_relay(
    body(R"(,"policy":{"public_join":true,"strip_signatures":false})"));
  REQUIRE(base);
  base->synced = true;
  base->changed_seq = 7;
  auto patched = patch_hosted_relay(
    *base, R"({"info":{"name":"Renamed"},"policy":{"public_join":null},)"
           R"("status":"inactive"})");
  REQUIRE(patched);
  CHECK(patched->info.name == "Renamed");
  CHECK(patched->info.pubkey == owner);
  CHECK(patched->policy_json == R"({"strip_signatures":false})");
  CHECK(patched->status == hosted_status::inactive);
  CHECK(patched->synced);
  CHECK(patched->changed_seq == 7);
  auto bad = patch_hosted_relay(*base, R"({"info":{"pubkey":null}})");
  REQUIRE_FALSE(bad);
  CHECK_THAT(render(bad.error()),
             Catch::Matchers::StartsWith("info.pubkey: required"));
  auto renamed = patch_hosted_relay(*base, R"({"id":"other"})");
  REQUIRE_FALSE(renamed);
  CHECK_THAT(render(renamed.error()), Catch::Matchers::StartsWith("id: differs"));
  auto node_field = patch_hosted_relay(*base, R"({"sync_error":""})");
  REQUIRE_FALSE(node_field);
  CHECK_THAT(render(node_field.error()),
             Catch::Matchers::StartsWith("sync_error: set by the node"));
}

TEST_CASE("activity entries round-trip and only failures carry an error",
          "[hosted_relay]") {
  activity_entry e;
  e.seq = 9;
  e.relay = "club";
  e.type = activity_type::fail_relay_sync;
  e.at = 1700000000;
  e.error = "PATCH /relay/club: HTTP 503";
  e.failures = 2;
  auto back = parse_activity_entry(to_json(e));
  REQUIRE(back);
  CHECK(back->seq == 9);
  CHECK(back->type == activity_type::fail_relay_sync);
  CHECK(back->error == e.error);
  CHECK(back->failures == 2);
  e.type = activity_type::create_relay;
  auto json = boost::json::parse(to_json(e)).as_object();
  CHECK_FALSE(json.contains("error"));
  CHECK(json.at("type").as_string() == "create_relay");
  CHECK(is_change(activity_type::deactivate_relay));
  CHECK_FALSE(is_change(activity_type::fail_relay_sync));
  CHECK_FALSE(is_change(activity_type::complete_relay_sync));
}
