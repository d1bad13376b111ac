#include "net/request_target.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace ferry::net;
using Catch::Matchers::Contains;

namespace {

request_target parsed(const std::string& target) {
  auto result = parse_request_target(target);
  INFO(target);
  if (auto why = std::get_if<std::string>(&result))
    FAIL("refused: " << *why);
  return std::get<request_target>(result);
}

std::string refusal(const std::string& target) {
  auto result = parse_request_target(target);
  INFO(target);
  REQUIRE(std::holds_alternative<std::string>(result));
  return std::get<std::string>(result);
}

using segments = std::vector<std::string>;

} // namespace

TEST_CASE("origin-form targets split into decoded segments",
          "[request_target]") {
  CHECK(parsed("/").segments.empty());
  CHECK(parsed("/health").segments == segments{"health"});
  CHECK(parsed("/api/v1/actors/writer/stop").segments
        == segments{"api", "v1", "actors", "writer", "stop"});
  // Decoded after the split: an escaped '/' stays inside its segment.
  CHECK(parsed("/api/v1/grasp/repos/30617%3Aab%3Ax").segments.back()
        == "30617:ab:x");
  CHECK(parsed("/api/v1/actors/writer%2Fstop").segments
        == segments{"api", "v1", "actors", "writer/stop"});
  CHECK(parsed("/a/%2F%2F").segments == segments{"a", "//"});
  // Case is kept: routing decides, and it is case-sensitive.
  CHECK(parsed("/API/v1").segments == segments{"API", "v1"});
  // Sub-delimiters, ':' and '@' are path characters.
  CHECK(parsed("/x/a:b@c!$&'()*+,;=").segments.back() == "a:b@c!$&'()*+,;=");
}

TEST_CASE("the query is split off and kept raw", "[request_target]") {
  auto t = parsed("/api/v1/actors?x=%2F&y");
  CHECK(t.segments == segments{"api", "v1", "actors"});
  CHECK(t.has_query);
  CHECK(t.query == "x=%2F&y");
  auto empty = parsed("/api?");
  CHECK(empty.has_query);
  CHECK(empty.query.empty());
  CHECK_FALSE(parsed("/api").has_query);
  CHECK_THAT(refusal("/api?x=%zz"), Contains("query"));
}

TEST_CASE("targets that are not in origin form are refused",
          "[request_target]") {
  CHECK(refusal("") == "empty request target");
  CHECK_THAT(refusal("xapi/v1/actors"), Contains("must start with '/'"));
  CHECK_THAT(refusal("api"), Contains("must start with '/'"));
  CHECK_THAT(refusal("http://127.0.0.1/api/v1/actors"),
             Contains("absolute-form"));
  CHECK_THAT(refusal("HTTP://127.0.0.1:7448/api"), Contains("absolute-form"));
  CHECK_THAT(refusal("127.0.0.1:7448"), Contains("must start with '/'"));
  CHECK_THAT(refusal("*"), Contains("asterisk-form"));
  CHECK_THAT(refusal("//api/v1/actors"), Contains("'//'"));
  CHECK_THAT(refusal("//"), Contains("'//'"));
}

TEST_CASE("odd paths are refused, not normalised", "[request_target]") {
  for (auto target : {"/./api/v1/actors", "/api/v1/../v1/actors", "/api/.",
                      "/api/..", "/.."})
    CHECK_THAT(refusal(target), Contains("dot segments"));
  // Escaped dots are unreserved characters, refused as non-canonical.
  for (auto target : {"/%2e/api", "/api/%2E%2E/x", "/api/.%2e"})
    CHECK_THAT(refusal(target), Contains("not canonical"));
  for (auto target : {"/api/v1/actors/", "/api//v1", "/api/v1/actors//"})
    CHECK_THAT(refusal(target), Contains("empty path segment"));
  CHECK_THAT(refusal("/%61pi/v1/actors"), Contains("'%61'"));
  CHECK_THAT(refusal("/%61pi/v1/actors"), Contains("write 'a'"));
  CHECK_THAT(refusal("/api/v1/actors/writer/st%6Fp"), Contains("not canonical"));
  CHECK_THAT(refusal("/api/v1/actors#x"), Contains("fragment"));
  CHECK_THAT(refusal("/api/v1/actors/#"), Contains("fragment"));
}

TEST_CASE("bad bytes and broken escapes are refused", "[request_target]") {
  for (auto target : {"/api/%", "/api/%4", "/api/%zz", "/api/%4g", "/%"})
    CHECK_THAT(refusal(target), Contains("broken percent escape"));
  for (auto target : {"/api/%00", "/api/%0a", "/api/%7F", "/a%1Fb"})
    CHECK_THAT(refusal(target), Contains("control character"));
  for (std::string target :
       {std::string{"/api/v1 /x"}, std::string{"/api\t"},
        std::string{"/api\r\n"}, std::string{"/api\x7f"},
        std::string{"/caf\xc3\xa9"}, std::string{"/a\0b", 4}})
    CHECK_THAT(refusal(target), Contains("not allowed"));
  for (auto target : {"/a\"b", "/a<b>", "/a\\b", "/a{b}", "/a|b", "/a^b",
                      "/a`b", "/a[b]"})
    CHECK_THAT(refusal(target), Contains("must be percent-encoded"));
}

TEST_CASE("query strings decode into one value per key", "[request_target]") {
  auto decoded = [](const std::string& query) {
    auto result = decode_query(query);
    INFO(query);
    if (auto why = std::get_if<std::string>(&result))
      FAIL("refused: " << *why);
    return std::get<std::vector<query_parameter>>(result);
  };
  auto refused = [](const std::string& query) {
    auto result = decode_query(query);
    INFO(query);
    REQUIRE(std::holds_alternative<std::string>(result));
    return std::get<std::string>(result);
  };
  CHECK(decoded("").empty());
  auto params = decoded("limit=10&ids=a%2Cb&q=x+y&flag");
  REQUIRE(params.size() == 4);
  CHECK(params[0].key == "limit");
  CHECK(params[0].value == "10");
  CHECK(params[1].value == "a,b");
  CHECK(params[2].value == "x y");
  CHECK(params[3].key == "flag");
  CHECK(params[3].value.empty());
  CHECK(decoded("a=1&").size() == 1);
  CHECK_THAT(refused("limit=1&limit=2"), Contains("'limit' given twice"));
  CHECK_THAT(refused("=1"), Contains("empty parameter name"));
  CHECK_THAT(refused("a=1&&b=2"), Contains("empty parameter name"));
  CHECK_THAT(refused("a=%zz"), Contains("broken percent escape"));
  CHECK_THAT(refused("a=%0A"), Contains("control character"));
}
