#include "messages/nostr/event.hpp"

#include "tests/messages/test_vectors.hpp"

#include <catch2/catch.hpp>

using namespace ferry;
using namespace ferry::nostr;

// tests/interop/make_vectors.mjs signed these with nostr-tools: tricky contents
// (control bytes, short escapes, quotes, DEL, U+2028, emoji, CJK, long text)
// times several tag sets. An id that recomputes here means Ferry's canonical
// serialization is byte-identical to nostr-tools'.
TEST_CASE("events signed by nostr-tools recompute and verify", "[event]") {
  auto lines = test::read_vector_lines("nostr_tools_events.jsonl");
  REQUIRE(lines.size() >= 40);
  for (auto& line : lines) {
    CAPTURE(line);
    event ev;
    REQUIRE(parse_event(line, ev) == "");
    CHECK(to_hex(compute_id(ev)) == line.substr(7, 64));
    CHECK(verify_signature(ev));
    CHECK(check_event(ev) == "");
  }
}

TEST_CASE("events signed by nostr-tools serialize to the bytes JSON.stringify wrote",
          "[event]") {
  for (auto& line : test::read_vector_lines("nostr_tools_events.jsonl")) {
    CAPTURE(line);
    event ev;
    REQUIRE(parse_event(line, ev) == "");
    auto json = to_json(ev);
    CHECK(json == line);
    event again;
    REQUIRE(parse_event(json, again) == "");
    CHECK(test::same_event(again, ev));
  }
}

TEST_CASE("the nostr-tools vectors cover the tricky characters", "[event]") {
  // Guards the generator: if a template is dropped, the interop test above
  // silently stops covering it.
  std::string all;
  for (auto& line : test::read_vector_lines("nostr_tools_events.jsonl"))
    all += line;
  for (auto needle : {R"(\u0000)", R"(\u0001)", R"(\u001f)", R"(\b)", R"(\f)", R"(\r)",
                      R"(\t)", R"(\n)", R"(\")", R"(\\)", "/", "\x7f", "\xe2\x80\xa8",
                      "\xe2\x80\xa9", "\xe2\x80\x8d", "\xe6\x97\xa5"}) {
    CAPTURE(needle);
    CHECK(all.find(needle) != std::string::npos);
  }
}
