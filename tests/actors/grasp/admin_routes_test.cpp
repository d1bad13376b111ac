// The GRASP subsystem's admin routes (/api/v1/grasp) through a real CONTROL
// PLANE, in front of a mock INSPECTOR.

#include "tests/fixtures/control_plane.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

using namespace ferry;
using namespace ferry::test;
using Catch::Matchers::Contains;

TEST_CASE_METHOD(control_plane_fixture,
                 "the control plane serves the GRASP repository API",
                 "[control_plane]") {
  REQUIRE(start() != 0);
  auto all = get("/api/v1/grasp/repos", bearer());
  CHECK(all.response.status == 200);
  CHECK(parse_json(all).as_array().at(0).as_object().at("address")
        == "30617:ab:x");
  // The address travels percent-encoded or as it is.
  for (auto path : {"/api/v1/grasp/repos/30617:ab:x",
                    "/api/v1/grasp/repos/30617%3Aab%3Ax"}) {
    auto one = get(path, bearer());
    CHECK(one.response.status == 200);
    CHECK(parse_json(one).at("address") == "30617:ab:x");
  }
  CHECK_THAT(error_message(get("/api/v1/grasp/repos/30617:cd:y", bearer()),
                           404),
             Contains("30617:cd:y"));
  error_message(post("/api/v1/grasp/repos", bearer()), 405);
  error_message(get("/api/v1/grasp/relays", bearer()), 404);
  error_message(get("/api/v1/grasp/repos/a/b", bearer()), 404);
  error_message(get("/api/v1/grasp/repos"), 401);
  slot->set(inspector_actor{});
  error_message(get("/api/v1/grasp/repos", bearer()), 503);
}
