// The admin route table: how a parsed path and a method resolve, and that the
// one table every subsystem adds to is consistent.

#include "actors/runtime/admin_route.hpp"

#include "actors/runtime/control_plane.hpp"
#include "net/request_target.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <stdexcept>
#include <variant>

using namespace ferry;

namespace {

void no_op(control_plane_pointer, const admin_exchange_ptr&,
           const admin_route_args&) {
  // A handler the resolution tests never call.
}

admin_router sample_router() {
  using access = admin_access;
  return admin_router{{
    {"GET", "/health", access::open_health, no_op},
    {"GET", "/api/v1/things", access::credentials, no_op},
    {"POST", "/api/v1/things", access::credentials, no_op},
    {"GET", "/api/v1/things/{id}", access::credentials, no_op},
    {"PUT", "/api/v1/things/{id}", access::credentials, no_op},
    {"POST", "/api/v1/things/{id}/parts/{part}", access::credentials, no_op},
    {"GET", "/mixed", access::open_health, no_op},
    {"POST", "/mixed", access::credentials, no_op},
  }};
}

std::vector<std::string> segments_of(const std::string& target) {
  auto parsed = net::parse_request_target(target);
  REQUIRE(std::holds_alternative<net::request_target>(parsed));
  return std::get<net::request_target>(parsed).segments;
}

/// A pattern's segments as written, `{name}` placeholders included.
std::vector<std::string> pattern_segments(const std::string& pattern) {
  std::vector<std::string> result;
  for (size_t start = 1; start <= pattern.size();) {
    auto slash = std::min(pattern.find('/', start), pattern.size());
    result.push_back(pattern.substr(start, slash - start));
    start = slash + 1;
  }
  return result;
}

bool is_placeholder(const std::string& segment) {
  return segment.front() == '{' && segment.back() == '}';
}

/// Whether some one path matches both patterns.
bool overlap(const std::string& a, const std::string& b) {
  auto xs = pattern_segments(a);
  auto ys = pattern_segments(b);
  if (xs.size() != ys.size())
    return false;
  for (size_t i = 0; i < xs.size(); ++i)
    if (xs[i] != ys[i] && !is_placeholder(xs[i]) && !is_placeholder(ys[i]))
      return false;
  return true;
}

/// The pattern with each placeholder filled in, as a request would send it.
std::string sample_target(const std::string& pattern) {
  std::string target;
  for (const auto& segment : pattern_segments(pattern))
    target += "/" + (is_placeholder(segment) ? std::string{"x"} : segment);
  return target;
}

} // namespace

TEST_CASE("a route resolves by path and method", "[admin_route]") {
  auto router = sample_router();
  const auto& routes = router.routes();
  SECTION("literal paths and placeholders") {
    auto x = router.resolve("GET", segments_of("/api/v1/things"));
    CHECK(x.route == &routes[1]);
    auto y = router.resolve("PUT", segments_of("/api/v1/things/a%3Ab"));
    CHECK(y.route == &routes[4]);
    CHECK(y.args.at("id") == "a:b");
    CHECK_THROWS_AS(y.args.at("part"), std::out_of_range);
    auto z = router.resolve("POST", segments_of("/api/v1/things/t/parts/p"));
    CHECK(z.route == &routes[5]);
    CHECK(z.args.at("id") == "t");
    CHECK(z.args.at("part") == "p");
  }
  SECTION("a known path with another method names the allowed ones") {
    auto x = router.resolve("DELETE", segments_of("/api/v1/things/a"));
    CHECK(x.route == nullptr);
    CHECK(x.allowed == "GET, PUT");
    CHECK(router.resolve("PATCH", segments_of("/api/v1/things")).allowed
          == "GET, POST");
  }
  SECTION("an unknown path has no route and allows nothing") {
    for (auto target : {"/", "/api", "/api/v1/things/a/b",
                        "/api/v1/things/a/parts", "/Health", "/health/x"}) {
      INFO(target);
      auto x = router.resolve("GET", segments_of(target));
      CHECK(x.route == nullptr);
      CHECK(x.allowed.empty());
      CHECK_FALSE(x.open);
    }
  }
  SECTION("a path is open only when every route on it is") {
    CHECK(router.resolve("GET", segments_of("/health")).open);
    CHECK(router.resolve("POST", segments_of("/health")).open);
    CHECK_FALSE(router.resolve("GET", segments_of("/mixed")).open);
    CHECK_FALSE(router.resolve("GET", segments_of("/api/v1/things")).open);
  }
}

TEST_CASE("the one route table is consistent", "[admin_route]") {
  const auto& routes = admin_routes().routes();
  REQUIRE_FALSE(routes.empty());
  for (size_t i = 0; i < routes.size(); ++i) {
    const auto& x = routes[i];
    INFO(x.method << " " << x.pattern);
    // Each pattern is a canonical target once filled in, so a request can
    // spell it, and then it reaches this very route.
    auto target = sample_target(x.pattern);
    CHECK(admin_routes().resolve(x.method, segments_of(target)).route == &x);
    CHECK(static_cast<bool>(x.handler));
    // No request could reach two routes: the table's order decides nothing.
    for (size_t j = i + 1; j < routes.size(); ++j) {
      INFO("and " << routes[j].method << " " << routes[j].pattern);
      CHECK_FALSE((x.method == routes[j].method
                   && overlap(x.pattern, routes[j].pattern)));
    }
  }
  // Only health, metrics and the status page (which holds no data) are ever
  // open.
  for (const auto& x : routes)
    if (x.access == admin_access::open_health)
      CHECK((x.pattern == "/health" || x.pattern == "/metrics"
             || x.pattern == "/status"));
}
