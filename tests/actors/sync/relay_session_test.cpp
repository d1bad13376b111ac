// The limits a relay connection takes from its remote's NIP-11 document
// belong to one session: what an earlier document said must not shape the
// pages and fetches of a later session.

#include "actors/sync/relay_session.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

using namespace ferry;

namespace {

boost::json::object document(const char* text) {
  return boost::json::parse(text).as_object();
}

/// The session holds exactly these figures.
void check_limits(const relay_session& session, uint64_t max_limit,
                  uint64_t max_subscriptions, uint64_t page_size) {
  CHECK(session.remote_max_limit == max_limit);
  CHECK(session.remote_max_subscriptions == max_subscriptions);
  CHECK(session.page_size == page_size);
}

constexpr auto ours = relay_session::our_page_size;

} // namespace

TEST_CASE("a session takes the remote's max_limit and max_subscriptions",
          "[relay_session]") {
  relay_session session;
  auto info = document(
    R"({"limitation":{"max_limit":500,"max_subscriptions":3}})");
  relay_conn::take_remote_limits(session, &info);
  check_limits(session, 500, 3, 500);

  SECTION("a max_limit above our page size leaves our page size") {
    auto larger = document(R"({"limitation":{"max_limit":100000}})");
    relay_conn::take_remote_limits(session, &larger);
    check_limits(session, 100000, 0, ours);
  }
}

TEST_CASE("a later session keeps none of the limits an earlier document "
          "declared",
          "[relay_session]") {
  relay_session session;
  auto earlier = document(
    R"({"limitation":{"max_limit":20,"max_subscriptions":3}})");
  relay_conn::take_remote_limits(session, &earlier);
  REQUIRE(session.page_size == 20);

  SECTION("the remote raised its limits") {
    auto later = document(
      R"({"limitation":{"max_limit":1000,"max_subscriptions":64}})");
    relay_conn::take_remote_limits(session, &later);
    check_limits(session, 1000, 64, 1000);
  }
  SECTION("the remote declares none any more") {
    auto later = document(R"({"name":"relay","limitation":{}})");
    relay_conn::take_remote_limits(session, &later);
    check_limits(session, 0, 0, ours);
  }
  SECTION("its document could not be read this time") {
    relay_conn::take_remote_limits(session, nullptr);
    check_limits(session, 0, 0, ours);
  }
  SECTION("limits that are not positive integers count as none") {
    auto later = document(
      R"({"limitation":{"max_limit":-5,"max_subscriptions":"3"}})");
    relay_conn::take_remote_limits(session, &later);
    check_limits(session, 0, 0, ours);
  }
}
