// The sync subsystem's admin routes (/api/v1/sync) through a real CONTROL
// PLANE, in front of a mock SYNC MANAGER that parses definitions for real.

#include "actors/runtime/admin_route.hpp"
#include "tests/fixtures/control_plane.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

using namespace ferry;
using namespace ferry::test;
using Catch::Matchers::Contains;

TEST_CASE_METHOD(control_plane_fixture,
                 "the control plane serves the sync server API",
                 "[control_plane]") {
  REQUIRE(start() != 0);
  const std::string good_body
    = R"({"url":"wss://relay.example","filters":[{"kinds":[1]}]})";
  SECTION("PUT creates (201) or replaces (200)") {
    auto created = put("/api/v1/sync/servers/b", good_body, bearer());
    CHECK(created.response.status == 201);
    CHECK(parse_json(created).at("created") == true);
    auto replaced = put("/api/v1/sync/servers/a", good_body, bearer());
    CHECK(replaced.response.status == 200);
    CHECK(parse_json(replaced).at("created") == false);
  }
  SECTION("PUT with a bad field answers 400 naming it") {
    auto r = put("/api/v1/sync/servers/b",
                 R"({"url":"wss://relay.example","filters":[{"kinds":["x"]}]})",
                 bearer());
    CHECK(r.response.status == 400);
    auto err = parse_json(r).at("error");
    CHECK(err.at("code") == 400);
    CHECK(err.at("field") == "filters[0].kinds");
    CHECK_THAT(std::string{err.at("message").as_string()},
               Contains("filters[0].kinds: "));
    auto bad_url = parse_json(
      put("/api/v1/sync/servers/b", R"({"url":"http://x","filters":[{}]})",
          bearer()));
    CHECK(bad_url.at("error").at("field") == "url");
  }
  SECTION("GET one, GET all, DELETE") {
    auto one = get("/api/v1/sync/servers/a", bearer());
    CHECK(one.response.status == 200);
    CHECK(parse_json(one).at("running") == true);
    CHECK_THAT(error_message(get("/api/v1/sync/servers/zz", bearer()), 404),
               Contains("zz"));
    auto all = get("/api/v1/sync/servers", bearer());
    CHECK(all.response.status == 200);
    CHECK(parse_json(all).as_array().size() == 1);
    auto gone = del("/api/v1/sync/servers/a", bearer());
    CHECK(gone.response.status == 200);
    CHECK(parse_json(gone).at("result") == "deleted");
    error_message(del("/api/v1/sync/servers/zz", bearer()), 404);
  }
  SECTION("start, stop and sync-now") {
    CHECK(parse_json(post("/api/v1/sync/servers/a/start", bearer()))
            .at("result")
          == "started");
    CHECK(parse_json(post("/api/v1/sync/servers/a/stop", bearer()))
            .at("result")
          == "stopped");
    // The manager's refusal of a stopped server is a 400 without a field.
    auto r = post("/api/v1/sync/servers/a/sync-now", bearer());
    CHECK(error_message(r, 400) == "sync server a is not running");
    CHECK_FALSE(parse_json(r).at("error").as_object().contains("field"));
    error_message(post("/api/v1/sync/servers/zz/start", bearer()), 404);
    error_message(post("/api/v1/sync/servers/zz/sync-now", bearer()), 404);
  }
  SECTION("stats and health") {
    auto one = get("/api/v1/sync/servers/a/stats", bearer());
    CHECK(one.response.status == 200);
    CHECK(parse_json(one).at("received") == 5);
    error_message(get("/api/v1/sync/servers/zz/stats", bearer()), 404);
    auto all = get("/api/v1/sync/stats", bearer());
    CHECK(all.response.status == 200);
    CHECK(parse_json(all).at("servers") == 1);
    auto ok = get("/api/v1/sync/health", bearer());
    CHECK(ok.response.status == 200);
    CHECK(parse_json(ok).at("status") == "ok");
    auto sick = sys.spawn(mock_sync_manager, true);
    sync_slot->set(sick);
    auto degraded = get("/api/v1/sync/health", bearer());
    CHECK(degraded.response.status == 503);
    CHECK(parse_json(degraded).at("status") == "degraded");
    caf::anon_send_exit(sick, caf::exit_reason::user_shutdown);
  }
  SECTION("wrong method, unknown path, no auth, no manager") {
    error_message(post("/api/v1/sync/servers", bearer()), 405);
    error_message(post("/api/v1/sync/servers/a", bearer()), 405);
    error_message(get("/api/v1/sync/servers/a/start", bearer()), 405);
    error_message(post("/api/v1/sync/servers/a/stats", bearer()), 405);
    error_message(put("/api/v1/sync/stats", "{}", bearer()), 405);
    error_message(post("/api/v1/sync/servers/a/explode", bearer()), 404);
    error_message(get("/api/v1/sync/nothing", bearer()), 404);
    error_message(get("/api/v1/sync/servers"), 401);
    error_message(put("/api/v1/sync/servers/a", good_body), 401);
    sync_slot->set(sync_manager_actor{});
    error_message(get("/api/v1/sync/servers", bearer()), 503);
  }
}

TEST_CASE("sync errors map to HTTP statuses", "[control_plane]") {
  CHECK(sync_status_for(caf::make_error(ec::not_found, "x")) == 404);
  CHECK(sync_status_for(caf::make_error(ec::invalid_input, "x")) == 400);
  CHECK(sync_status_for(caf::make_error(ec::storage_failure, "x")) == 500);
  CHECK(sync_status_for(caf::make_error(caf::sec::request_timeout)) == 504);
  CHECK(sync_status_for(caf::make_error(caf::sec::request_receiver_down))
        == 503);
  CHECK(field_of("filters[1].kinds: must be a list") == "filters[1].kinds");
  CHECK(field_of("sync server a is not running").empty());
  CHECK(field_of("no colon").empty());
}
