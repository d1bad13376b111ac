#include "messages/cluster/cursor_claim.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using namespace ferry::cluster;

namespace {

heard_claim claim(const std::string& member, int64_t cursor, int64_t heard_ms,
                  const std::string& server = "s",
                  const std::string& definition = "d1") {
  return {{member, server, cursor, definition}, heard_ms};
}

} // namespace

TEST_CASE("a cursor claim reads back what it wrote and refuses bad fields",
          "[cluster][cursor_claim]") {
  cursor_claim c{"node-a", "damus", 1700000000, "ab12"};
  auto back = parse_cursor_claim(to_json(c));
  REQUIRE(back);
  CHECK(*back == c);
  CHECK(cursor_claim_id("node-a", "damus") == "node-a/damus");
  CHECK_FALSE(parse_cursor_claim("[]"));
  CHECK_FALSE(parse_cursor_claim(R"({"member":"a","server":"s","definition":"d"})"));
  CHECK_FALSE(parse_cursor_claim(
    R"({"member":"a","server":"s","definition":"d","cursor":0})"));
  CHECK_FALSE(parse_cursor_claim(
    R"({"member":"a/b","server":"s","definition":"d","cursor":5})"));
  CHECK_FALSE(parse_cursor_claim(
    R"({"member":"a","server":"","definition":"d","cursor":5})"));
}

TEST_CASE("a claim counts only once a reconciliation that started after it "
          "was heard completed",
          "[cluster][cursor_claim]") {
  std::vector<heard_claim> claims{claim("node-a", 500, 1000),
                                  claim("node-a", 900, 3000),
                                  claim("node-c", 700, 1000)};
  // No link from node-a reconciled yet (or it never completed: 0).
  CHECK_FALSE(adoptable_cursor(claims, {}, "s", "d1"));
  CHECK_FALSE(adoptable_cursor(claims, {{"node-a", 0}}, "s", "d1"));
  // A reconciliation that started before the claim was heard may have
  // missed events the claim covers.
  CHECK_FALSE(adoptable_cursor(claims, {{"node-a", 999}}, "s", "d1"));
  // One that started after covers the first claim only.
  CHECK(adoptable_cursor(claims, {{"node-a", 1000}}, "s", "d1") == 500);
  CHECK(adoptable_cursor(claims, {{"node-a", 2000}}, "s", "d1") == 500);
  CHECK(adoptable_cursor(claims, {{"node-a", 3000}}, "s", "d1") == 900);
  // The greatest confirmed claim of any member.
  CHECK(adoptable_cursor(claims, {{"node-a", 2000}, {"node-c", 1500}}, "s",
                         "d1")
        == 700);
  // Another definition of the server, or another server: nothing.
  CHECK_FALSE(adoptable_cursor(claims, {{"node-a", 5000}}, "s", "d2"));
  CHECK_FALSE(adoptable_cursor(claims, {{"node-a", 5000}}, "t", "d1"));
}

TEST_CASE("the members whose claims wait for a reconciliation",
          "[cluster][cursor_claim]") {
  std::vector<heard_claim> claims{claim("node-a", 500, 1000),
                                  claim("node-a", 900, 3000),
                                  claim("node-b", 700, 1000, "t"),
                                  claim("node-c", 800, 1000, "s", "old")};
  std::map<std::string, std::string> defs{{"s", "d1"}, {"t", "d1"}};
  auto waiting = awaiting_confirmation(claims, {{"node-a", 2000}}, defs);
  // node-a's newer claim, node-b's never confirmed one; node-c's claim is
  // for a definition that is gone.
  CHECK(waiting == std::map<std::string, int64_t>{{"node-a", 900},
                                                  {"node-b", 700}});
  CHECK(awaiting_confirmation(claims, {{"node-a", 3000}, {"node-b", 1000}},
                              defs)
          .empty());
}
