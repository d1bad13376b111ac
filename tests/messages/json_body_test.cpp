#include "messages/json_body.hpp"

#include "messages/error.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace ferry;

namespace {

/// The error text of a failed parse.
template <class T>
std::string failure(const caf::expected<T>& result) {
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == static_cast<uint8_t>(ec::invalid_input));
  return render(result.error());
}

boost::json::value value(std::string_view text) {
  return boost::json::parse(text);
}

} // namespace

TEST_CASE("field paths name nested keys and array items", "[json_body]") {
  CHECK(json_body::child("", "id") == "id");
  CHECK(json_body::child("tls", "mode") == "tls.mode");
  CHECK(json_body::item("tls.pins", 2) == "tls.pins[2]");
  CHECK(json_body::fail("tls.mode", "required") == "tls.mode: required");
}

TEST_CASE("duplicate keys are found in nested objects and arrays", "[json_body]") {
  CHECK(json_body::duplicate_key(R"({"a":1,"b":2})") == "");
  CHECK(json_body::duplicate_key(R"({"a":1,"a":2})")
        == "a: duplicate key");
  CHECK(json_body::duplicate_key(R"({"a":{"b":1,"c":{"d":1,"d":2}}})")
        == "a.c.d: duplicate key");
  auto in_array = R"({"filters":[{"kinds":[1]},{"limit":1,"limit":2}]})";
  CHECK(json_body::duplicate_key(in_array) == "filters[1].limit: duplicate key");
  // Texts that are no JSON object are left to boost::json to name.
  CHECK(json_body::duplicate_key("[1]") == "");
  CHECK(json_body::duplicate_key("{") == "");
}

TEST_CASE("bodies and records that are no JSON object are named",
          "[json_body]") {
  using Catch::Matchers::StartsWith;
  auto body = json_body::parse_body(R"({"a":[1]})");
  REQUIRE(body);
  CHECK(body->at("a").as_array().size() == 1);
  CHECK_THAT(failure(json_body::parse_body("{")),
             StartsWith("body: invalid JSON: "));
  CHECK(failure(json_body::parse_body("[]"))
        == "body: expected a JSON object");
  CHECK(failure(json_body::parse_body(R"({"a":1,"a":1})"))
        == "a: duplicate key");
  REQUIRE(json_body::parse_object(R"({"a":1,"a":2})"));
  CHECK_THAT(failure(json_body::parse_object("nope")),
             StartsWith("invalid JSON: "));
  CHECK(failure(json_body::parse_object("3")) == "expected a JSON object");
}

TEST_CASE("field readers take the right type and name the field otherwise",
          "[json_body]") {
  std::string text;
  CHECK(json_body::read_string(value(R"("abc")"), "name", text).empty());
  CHECK(text == "abc");
  CHECK(json_body::read_string(value("1"), "name", text)
        == "name: expected a string");
  CHECK(json_body::read_string(value(R"("abcd")"), "name", text, 3)
        == "name: longer than 3 characters");
  CHECK(json_body::read_string(value(R"("abc")"), "name", text, 3).empty());

  bool flag = false;
  CHECK(json_body::read_bool(value("true"), "on", flag).empty());
  CHECK(flag);
  CHECK(json_body::read_bool(value("1"), "on", flag)
        == "on: expected true or false");

  int64_t number = 0;
  CHECK(json_body::read_int(value("-5"), "at", number).empty());
  CHECK(number == -5);
  CHECK(json_body::read_int(value("1.5"), "at", number)
        == "at: expected an integer");

  uint64_t count = 0;
  CHECK(json_body::read_count(value("18446744073709551615"), "n", count)
          .empty());
  CHECK(count == UINT64_MAX);
  CHECK(json_body::read_count(value("7"), "n", count).empty());
  CHECK(count == 7);
  CHECK(json_body::read_count(value("-1"), "n", count)
        == "n: expected a non-negative integer");

  CHECK(json_body::read_object_text(value(R"({"x": [1, 2]})"), "meta", text)
          .empty());
  CHECK(text == R"({"x":[1,2]})");
  CHECK(json_body::read_object_text(value("[]"), "meta", text)
        == "meta: expected a JSON object");

  auto obj = value(R"({"type":"a","mode":"b","extra":1})").as_object();
  CHECK(json_body::unknown_keys(obj, "auth", {"type", "mode"})
        == "auth.extra: unknown key");
  CHECK(json_body::unknown_keys(obj, "", {"type", "mode", "extra"}).empty());
}

TEST_CASE("ids and hex keys are checked by their rules", "[json_body]") {
  CHECK(json_body::is_lower_hex64(std::string(64, 'a')));
  CHECK_FALSE(json_body::is_lower_hex64(std::string(64, 'A')));
  CHECK_FALSE(json_body::is_lower_hex64(std::string(63, 'a')));
  CHECK(json_body::is_definition_id("relay-1.eu_west"));
  CHECK(json_body::is_definition_id(std::string(64, 'a')));
  CHECK_FALSE(json_body::is_definition_id(std::string(65, 'a')));
  CHECK_FALSE(json_body::is_definition_id(""));
  CHECK_FALSE(json_body::is_definition_id("-relay"));
  CHECK_FALSE(json_body::is_definition_id("Relay"));
  CHECK_FALSE(json_body::is_definition_id("a/b"));
}
