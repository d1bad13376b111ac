#include "messages/nostr/filter.hpp"

#include <catch2/catch.hpp>

#include <utility>

using namespace ferry::nostr;

namespace {

std::string hex_of(uint8_t b) {
  bytes32 x;
  x.fill(b);
  return to_hex(x);
}

const std::string alice = hex_of(0xaa);
const std::string bob = hex_of(0xbb);
const std::string carol = hex_of(0xcc);

event make_event(uint8_t id, const std::string& pubkey, uint32_t kind, int64_t created_at,
                 std::vector<tag> tags) {
  event ev;
  ev.id.fill(id);
  REQUIRE(from_hex(pubkey, ev.pubkey));
  ev.kind = kind;
  ev.created_at = created_at;
  ev.tags = std::move(tags);
  return ev;
}

// Four events whose tags probe the #x rules: only a one-letter tag name counts,
// only the first value counts, and case matters.
std::vector<event> corpus() {
  return {
    make_event(0x01, alice, 1, 100, {{"e", "x"}, {"p", bob}}),
    make_event(0x02, bob, 0, 200, {{"t", "nostr"}, {"T", "Big"}}),
    make_event(0x03, alice, 30023, 300, {{"d", "slug"}, {"e"}, {"ee", "x"}}),
    make_event(0x04, carol, 7, 400, {{"e", "y", "x"}}),
  };
}

filter parsed(const std::string& json) {
  filter f;
  INFO(json);
  REQUIRE(parse_filter(json, f) == "");
  return f;
}

// Which corpus events match, as a string of 0/1 for readable failures.
std::string matched(const filter& f) {
  std::string out;
  for (auto& ev : corpus())
    out += f.matches(ev) ? '1' : '0';
  return out;
}

} // namespace

TEST_CASE("filters select the events they describe", "[filter]") {
  auto [json, expected] = GENERATE_REF(table<std::string, std::string>({
    {"{}", "1111"},
    {R"({"kinds":[1,7]})", "1001"},
    {R"({"kinds":[7,1,7]})", "1001"},
    {R"({"authors":[")" + alice + R"("]})", "1010"},
    {R"({"authors":[")" + carol + R"(",")" + bob + R"("]})", "0101"},
    {R"({"ids":[")" + hex_of(0x04) + R"(",")" + hex_of(0x02) + R"("]})", "0101"},
    {R"({"since":200})", "0111"},
    {R"({"until":200})", "1100"},
    {R"({"since":200,"until":300})", "0110"},
    {R"({"since":300,"until":200})", "0000"},
    {R"({"#e":["x"]})", "1000"},
    {R"({"#e":["x","y"]})", "1001"},
    {R"({"#t":["nostr"]})", "0100"},
    {R"({"#T":["nostr"]})", "0000"},
    {R"({"#T":["Big"]})", "0100"},
    {R"({"#d":["slug"],"kinds":[30023]})", "0010"},
    {R"({"#e":["x"],"#p":[")" + bob + R"("]})", "1000"},
    {R"({"#e":["y"],"#p":[")" + bob + R"("]})", "0000"},
    {R"({"authors":[")" + alice + R"("],"kinds":[30023]})", "0010"},
    {R"({"kinds":[]})", "0000"},
    {R"({"ids":[]})", "0000"},
    {R"({"authors":[]})", "0000"},
    {R"({"#e":[]})", "0000"},
    {R"({"limit":1})", "1111"},
    {R"({"limit":0,"kinds":[0]})", "0100"},
  }));
  CAPTURE(json);
  CHECK(matched(parsed(json)) == expected);
}

TEST_CASE("lists are sorted and deduplicated when parsed", "[filter]") {
  auto f = parsed(R"({"kinds":[7,1,7,0],"authors":[")" + bob + R"(",")" + alice + R"(",")"
                  + bob + R"("],"#e":["b","a","b"],"#A":["z"]})");
  REQUIRE(f.kinds.has_value());
  CHECK(*f.kinds == std::vector<uint32_t>{0, 1, 7});
  REQUIRE(f.authors.has_value());
  REQUIRE(f.authors->size() == 2);
  CHECK(to_hex((*f.authors)[0]) == alice);
  CHECK(to_hex((*f.authors)[1]) == bob);
  REQUIRE(f.tags.size() == 2);
  CHECK(f.tags[0].letter == 'A');
  CHECK(f.tags[1].letter == 'e');
  CHECK(f.tags[1].values == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(f.ids.has_value());
  CHECK_FALSE(f.since.has_value());
}

TEST_CASE("a filter serializes in NIP-01 order and parses back", "[filter]") {
  auto f = parsed(R"({"limit":10,"until":500,"since":5,"#p":[")" + bob
                  + R"("],"#e":["q\"uote"],"kinds":[3,1],"authors":[")" + alice
                  + R"("],"ids":[")" + hex_of(0x01) + R"("]})");
  auto json = to_json(f);
  CHECK(json
        == R"({"ids":[")" + hex_of(0x01) + R"("],"authors":[")" + alice
             + R"("],"kinds":[1,3],"#e":["q\"uote"],"#p":[")" + bob
             + R"("],"since":5,"until":500,"limit":10})");
  auto again = parsed(json);
  CHECK(to_json(again) == json);
  CHECK(to_json(filter{}) == "{}");
}

TEST_CASE("limit does not change which events match", "[filter]") {
  auto f = parsed(R"({"kinds":[1,7],"limit":1})");
  REQUIRE(f.limit == 1u);
  CHECK(matched(f) == "1001");
}

TEST_CASE("an event matches a filter list when any filter matches", "[filter]") {
  auto events = corpus();
  std::vector<filter> fs = {parsed(R"({"kinds":[0]})"), parsed(R"({"since":400})")};
  CHECK(matches_any(fs, events[1]));
  CHECK(matches_any(fs, events[3]));
  CHECK_FALSE(matches_any(fs, events[0]));
  CHECK_FALSE(matches_any({}, events[0]));
}

TEST_CASE("malformed filters are rejected with a reason", "[filter]") {
  const std::string hex_list = "a list of 64-character lowercase hex strings";
  auto [json, reason] = GENERATE_REF(table<std::string, std::string>({
    {R"({"search":"x"})", "unknown filter field: search"},
    {R"({"#ab":["x"]})", "unknown filter field: #ab"},
    {R"({"#1":["x"]})", "unknown filter field: #1"},
    {R"({"#":["x"]})", "unknown filter field: #"},
    {R"({"ids":[")" + std::string(64, 'A') + R"("]})", "ids must be " + hex_list},
    {R"({"ids":["abcd"]})", "ids must be " + hex_list},
    {R"({"ids":"abcd"})", "ids must be " + hex_list},
    {R"({"authors":[1]})", "authors must be " + hex_list},
    {R"({"kinds":[65536]})", "kinds must be a list of integers in [0, 65535]"},
    {R"({"kinds":[-1]})", "kinds must be a list of integers in [0, 65535]"},
    {R"({"kinds":[1.5]})", "kinds must be a list of integers in [0, 65535]"},
    {R"({"kinds":"1"})", "kinds must be a list of integers in [0, 65535]"},
    {R"({"#e":[1]})", "#e must be a list of strings"},
    {R"({"#e":"x"})", "#e must be a list of strings"},
    {R"({"limit":-1})", "limit must be a non-negative integer"},
    {R"({"since":1.5})", "since must be a non-negative integer"},
    {R"({"until":"5"})", "until must be a non-negative integer"},
    {R"({"until":null})", "until must be a non-negative integer"},
    {R"({"kinds":[1],"kinds":[2]})", "duplicate filter field: kinds"},
    {R"({"#e":["a"],"#e":["b"]})", "duplicate filter field: #e"},
    {R"({"limit":1} x)", "incomplete json or trailing content"},
    {R"({"limit":1} {})", "trailing content after the filter"},
    {"[]", "filter must be a json object"},
    {"{\"#e\":[\"\xff\"]}", "invalid utf-8"},
  }));
  CAPTURE(json);
  filter f;
  std::string got;
  REQUIRE_NOTHROW(got = parse_filter(json, f));
  CHECK(got == reason);
}

TEST_CASE("lists longer than the limit are rejected", "[filter]") {
  filter_parse_limits limits;
  limits.max_values = 3;
  filter f;
  CHECK(parse_filter(R"({"kinds":[1,2,3]})", f, limits) == "");
  CHECK(parse_filter(R"({"kinds":[1,2,3,4]})", f, limits) == "kinds has more than 3 values");
  CHECK(parse_filter(R"({"#t":["a","b","c","d"]})", f, limits)
        == "#t has more than 3 values");
  auto four_ids = R"({"ids":[")" + hex_of(1) + R"(",")" + hex_of(2) + R"(",")" + hex_of(3)
                  + R"(",")" + hex_of(4) + R"("]})";
  CHECK(parse_filter(four_ids, f, limits) == "ids has more than 3 values");
  CHECK(parse_filter(four_ids, f) == "");
}

TEST_CASE("filters inside a REQ message parse in place", "[filter]") {
  auto message = R"(["REQ","sub",{"kinds":[1]},{"#p":[")" + bob + R"("]}])";
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded{message};
  simdjson::ondemand::document doc;
  REQUIRE(parser.iterate(padded).get(doc) == simdjson::SUCCESS);
  simdjson::ondemand::array items;
  REQUIRE(doc.get_array().get(items) == simdjson::SUCCESS);
  std::vector<filter> fs;
  size_t index = 0;
  for (auto item : items) {
    simdjson::ondemand::value v;
    REQUIRE(std::move(item).get(v) == simdjson::SUCCESS);
    if (index++ < 2)
      continue;
    filter f;
    REQUIRE(parse_filter(v, f) == "");
    fs.push_back(std::move(f));
  }
  REQUIRE(fs.size() == 2);
  auto events = corpus();
  CHECK(matches_any(fs, events[0]));
  CHECK_FALSE(matches_any(fs, events[1]));
}

TEST_CASE("a reused filter object does not keep old conditions", "[filter]") {
  filter f;
  REQUIRE(parse_filter(R"({"kinds":[1],"#e":["x"]})", f) == "");
  REQUIRE(parse_filter(R"({"since":300})", f) == "");
  CHECK_FALSE(f.kinds.has_value());
  CHECK(f.tags.empty());
  CHECK(matched(f) == "0011");
}
