#include "messages/nostr/event.hpp"

#include "tests/messages/test_vectors.hpp"

#include <catch2/catch.hpp>

#include <utility>

using namespace ferry;
using namespace ferry::nostr;

namespace {

// The first line of real_events.jsonl, spelled out so each rejection below is
// a visible one-token edit of a valid event.
const std::string event_id = "2be17aa3031bdcb006f0fce80c146dea9c1c0268b0af2398bb673365c6444d45";
const std::string event_pubkey
  = "f86c44a2de95d9149b51c6a29afeabba264c18e2fa7c49de93424a0c56947785";
const std::string event_sig
  = "a5d9290ef9659083c490b303eb7ee41356d8778ff19f2f91776c8dc4443388a6"
    "4ffcf336e61af4c25c05ac3ae952d1ced889ed655b67790891222aaa15b99fdd";
const std::string valid_json
  = R"({"id":")" + event_id + R"(","pubkey":")" + event_pubkey
    + R"(","created_at":1640839235,"kind":4,"tags":[["p","13adc511de7e1cfcf1c6b7f6365fb5a03442d7bcacf565ea57fa7770912c023d"]],"content":"uRuvYr585B80L6rSJiHocw==?iv=oh6LVqdsYYol3JfFnXTbPA==","sig":")"
    + event_sig + R"("})";

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  if (pos == std::string::npos)
    throw std::logic_error("test edit not found: " + from);
  return s.replace(pos, from.size(), to);
}

event parsed(const std::string& json) {
  event ev;
  auto reason = parse_event(json, ev);
  INFO(json);
  REQUIRE(reason == "");
  return ev;
}

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

/// An event of the given fields; its id and signature are fillers, not checked.
event filled(uint8_t pubkey, uint8_t id, uint8_t sig, int64_t created_at,
             uint32_t kind) {
  event ev;
  ev.pubkey.fill(pubkey);
  ev.id.fill(id);
  ev.sig.fill(sig);
  ev.created_at = created_at;
  ev.kind = kind;
  return ev;
}

event with_tags(std::vector<tag> tags) {
  event ev;
  ev.tags = std::move(tags);
  return ev;
}

} // namespace

// -- real events ---------------------------------------------------------------

TEST_CASE("real events parse, recompute their ids and verify", "[event]") {
  auto lines = test::read_vector_lines("real_events.jsonl");
  REQUIRE(lines.size() == 4);
  for (auto& line : lines) {
    CAPTURE(line);
    auto ev = parsed(line);
    CHECK(to_hex(compute_id(ev)) == line.substr(7, 64));
    CHECK(verify_signature(ev));
    CHECK(check_event(ev) == "");
  }
}

TEST_CASE("a real event serializes back to its own bytes", "[event]") {
  for (auto& line : test::read_vector_lines("real_events.jsonl")) {
    CAPTURE(line);
    auto ev = parsed(line);
    auto json = to_json(ev);
    CHECK(json == line);
    CHECK(test::same_event(parsed(json), ev));
  }
}

TEST_CASE("the fields of a parsed event hold the decoded values", "[event]") {
  auto ev = parsed(valid_json);
  CHECK(to_hex(ev.id) == event_id);
  CHECK(to_hex(ev.pubkey) == event_pubkey);
  CHECK(to_hex(ev.sig) == event_sig);
  CHECK(ev.created_at == 1640839235);
  CHECK(ev.kind == 4);
  REQUIRE(ev.tags.size() == 1);
  CHECK(ev.tags[0]
        == tag{"p", "13adc511de7e1cfcf1c6b7f6365fb5a03442d7bcacf565ea57fa7770912c023d"});
  CHECK(ev.content == "uRuvYr585B80L6rSJiHocw==?iv=oh6LVqdsYYol3JfFnXTbPA==");
}

TEST_CASE("tampering with content, signature or id is detected", "[event]") {
  auto ev = parsed(valid_json);
  REQUIRE(check_event(ev) == "");
  SECTION("content") {
    ev.content += ".";
    CHECK(check_event(ev) == "event id does not match its content");
  }
  SECTION("a tag") {
    ev.tags[0][1][0] = '0';
    CHECK(check_event(ev) == "event id does not match its content");
  }
  SECTION("signature") {
    ev.sig[10] ^= 0x01;
    CHECK_FALSE(verify_signature(ev));
    CHECK(check_event(ev) == "bad signature");
  }
  SECTION("id, with the content still matching the old id") {
    ev.id[0] ^= 0x80;
    CHECK(check_event(ev) == "event id does not match its content");
    // Even a correct-looking id fails if the signature is over another one.
    ev.content = "other";
    ev.id = compute_id(ev);
    CHECK(check_event(ev) == "bad signature");
  }
  SECTION("pubkey") {
    ev.pubkey[31] ^= 0x01;
    CHECK(check_event(ev) == "event id does not match its content");
    ev.id = compute_id(ev);
    CHECK(check_event(ev) == "bad signature");
  }
}

// -- parse rejections ------------------------------------------------------------

TEST_CASE("malformed events are rejected with a reason", "[event]") {
  const auto& v = valid_json;
  auto [json, reason] = GENERATE_REF(table<std::string, std::string>({
    {replaced(v, event_id, event_id.substr(1)), "id must be 64 lowercase hex characters"},
    {replaced(v, event_id, event_id + "00"), "id must be 64 lowercase hex characters"},
    {replaced(v, "2be17aa3", "2BE17AA3"), "id must be 64 lowercase hex characters"},
    {replaced(v, "2be17aa3", "2be17aaz"), "id must be 64 lowercase hex characters"},
    {replaced(v, '"' + event_id + '"', "null"), "id must be 64 lowercase hex characters"},
    {replaced(v, "f86c44a2", "F86C44A2"), "pubkey must be 64 lowercase hex characters"},
    {replaced(v, event_sig, event_sig.substr(2)), "sig must be 128 lowercase hex characters"},
    {replaced(v, "a5d9290e", "A5D9290E"), "sig must be 128 lowercase hex characters"},
    {replaced(v, R"(,"sig":")" + event_sig + '"', ""), "missing field: sig"},
    {replaced(v, R"("created_at":1640839235,)", ""), "missing field: created_at"},
    {replaced(v, R"("kind":4,)", R"("kind":4,"kind":4,)"), "duplicate field: kind"},
    {replaced(v, R"("kind":4,)", R"("kind":4,"extra":1,)"), "unknown field: extra"},
    {replaced(v, "1640839235", "1640839235.5"), "created_at must be an integer in [0, 2^53)"},
    {replaced(v, "1640839235", "1.6e9"), "created_at must be an integer in [0, 2^53)"},
    {replaced(v, "1640839235", "-1"), "created_at must be an integer in [0, 2^53)"},
    {replaced(v, "1640839235", "9007199254740992"), "created_at must be an integer in [0, 2^53)"},
    {replaced(v, "1640839235", "99999999999999999999"), "created_at must be an integer in [0, 2^53)"},
    {replaced(v, "1640839235", "\"1640839235\""), "created_at must be an integer in [0, 2^53)"},
    {replaced(v, R"("kind":4)", R"("kind":-1)"), "kind must be an integer in [0, 65535]"},
    {replaced(v, R"("kind":4)", R"("kind":65536)"), "kind must be an integer in [0, 65535]"},
    {replaced(v, R"("kind":4)", R"("kind":"4")"), "kind must be an integer in [0, 65535]"},
    {replaced(v, R"("kind":4)", R"("kind":4.0)"), "kind must be an integer in [0, 65535]"},
    {replaced(v, R"("tags":[[)", R"("tags":{"a":[)"), "tags must be an array of arrays of strings"},
    {replaced(v, R"("tags":[["p",)", R"("tags":["p",[)"), "tags must be an array of arrays of strings"},
    {replaced(v, R"([["p",)", R"([["p",1,)"), "tags must be an array of arrays of strings"},
    {replaced(v, R"([["p",)", R"([["p",null,)"), "tags must be an array of arrays of strings"},
    {replaced(v, R"("tags":[[)", R"("tags":[[],[)"), "a tag must not be empty"},
    {replaced(v, R"("content":"uRuvYr585B80L6rSJiHocw==?iv=oh6LVqdsYYol3JfFnXTbPA==")",
              R"("content":["x"])"),
     "content must be a string"},
    // Only `}` may end an object document, so simdjson catches most trailing
    // content before the fields are read; the rest is caught after them.
    {v + "x", "incomplete json or trailing content"},
    {v + "  ,", "incomplete json or trailing content"},
    {v + "{}", "trailing content after the event"},
    {v + " {\"a\":1}", "trailing content after the event"},
    {v + "}", "trailing content after the event"},
    {v.substr(0, v.size() - 1), "incomplete json or trailing content"},
    {replaced(v, "uRuvYr585B80", "uRuvYr585B80\xff"), "invalid utf-8"},
    {replaced(v, "uRuvYr585B80", "uRuvYr585B80\xc3("), "invalid utf-8"},
    {replaced(v, "uRuvYr585B80", "uRuvYr585B80\xed\xa0\x80"), "invalid utf-8"},
    {"[]", "event must be a json object"},
    {"42", "event must be a json object"},
    {"nul", "event must be a json object"},
    {"", "empty json"},
    {"  \n", "empty json"},
    {"{", "incomplete json or trailing content"},
    {v.substr(0, 100), "unclosed json string"},
    {replaced(v, R"(,"kind")", R"( "kind")"), "invalid json"},
    {replaced(v, "?iv=", "\n"), "unescaped control character in json string"},
    {replaced(v, "?iv=", R"(\x)"), "invalid json string"},
    {replaced(v, R"("kind":4)", R"("kind":04)"), "kind must be an integer in [0, 65535]"},
    {replaced(v, R"("kind":4)", R"("kind":true)"), "kind must be an integer in [0, 65535]"},
  }));
  CAPTURE(json);
  event ev;
  std::string got;
  REQUIRE_NOTHROW(got = parse_event(json, ev));
  CHECK(got == reason);
}

TEST_CASE("the largest created_at and kind are accepted", "[event]") {
  auto json = replaced(replaced(valid_json, "1640839235", "9007199254740991"), R"("kind":4)",
                       R"("kind":65535)");
  auto ev = parsed(json);
  CHECK(ev.created_at == 9007199254740991);
  CHECK(ev.kind == 65535);
}

TEST_CASE("field order and whitespace do not matter when parsing", "[event]") {
  auto json = "\n { \"sig\" : \"" + event_sig + "\" , \"content\":\"uRuvYr585B80L6rSJiHocw==?iv=oh6LVqdsYYol3JfFnXTbPA==\",\t\"tags\" : [ [ \"p\" , \"13adc511de7e1cfcf1c6b7f6365fb5a03442d7bcacf565ea57fa7770912c023d\" ] ] ,\"kind\":4,\"created_at\":1640839235,\"pubkey\":\"" + event_pubkey + "\",\"id\":\"" + event_id + "\" } \n";
  auto ev = parsed(json);
  CHECK(to_json(ev) == valid_json);
  CHECK(check_event(ev) == "");
}

TEST_CASE("escapes in the input are decoded and re-escaped canonically", "[event]") {
  // "\/" and "\u0041" are legal spellings that NIP-01 serialization never uses,
  // so the stored form differs from the input and the id no longer matches.
  auto json = replaced(valid_json, "uRuvYr585B80", R"(a\/b\u0041\u00e9\ud83d\ude00)");
  auto ev = parsed(json);
  CHECK(ev.content.substr(0, 10) == "a/bA\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(to_json(ev).find(R"("content":"a/bAé😀)") != std::string::npos);
}

TEST_CASE("a lone surrogate in content is a clean parse error", "[event]") {
  // JavaScript strings may hold unpaired surrogates and nostr-tools signs them,
  // but they are not Unicode text: simdjson refuses to decode them and Ferry
  // does not ingest such events. This pins that decision.
  auto lines = test::read_vector_lines("nostr_tools_lone_surrogate.json");
  REQUIRE(lines.size() == 1);
  REQUIRE(lines[0].find(R"(\ud800)") != std::string::npos);
  event ev;
  std::string reason;
  REQUIRE_NOTHROW(reason = parse_event(lines[0], ev));
  CHECK(reason == "invalid json string");
  CHECK(parse_event(replaced(valid_json, "uRuvYr585B80", R"(\udc00x)"), ev)
        == "invalid json string");
}

TEST_CASE("parsed strings survive the next parse on the same thread", "[event]") {
  // Over a megabyte, so the next small parse also swaps in a fresh parser.
  const size_t big = size_t{2} << 20;
  auto long_json = replaced(valid_json, "uRuvYr585B80", std::string(big, 'z'));
  auto first = parsed(long_json);
  auto second = parsed(valid_json);
  auto third = parsed(long_json);
  CHECK(first.content.size() == big + 40);
  CHECK(first.content.find_first_not_of('z') == big);
  CHECK(second.content == "uRuvYr585B80L6rSJiHocw==?iv=oh6LVqdsYYol3JfFnXTbPA==");
  CHECK(test::same_event(first, third));
  CHECK(to_json(third) == long_json);
}

TEST_CASE("an event inside a relay message parses in place", "[event]") {
  auto message = R"(["EVENT","sub1",)" + valid_json + "]";
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded{message};
  simdjson::ondemand::document doc;
  REQUIRE(parser.iterate(padded).get(doc) == simdjson::SUCCESS);
  simdjson::ondemand::array items;
  REQUIRE(doc.get_array().get(items) == simdjson::SUCCESS);
  std::vector<std::string> reasons;
  event ev;
  size_t index = 0;
  for (auto item : items) {
    simdjson::ondemand::value v;
    REQUIRE(std::move(item).get(v) == simdjson::SUCCESS);
    if (index++ == 2)
      reasons.push_back(parse_event(v, ev));
  }
  REQUIRE(reasons == std::vector<std::string>{""});
  CHECK(to_json(ev) == valid_json);
  CHECK(check_event(ev) == "");
  simdjson::ondemand::value not_object;
  auto not_event = R"(["EVENT",7])"_padded;
  REQUIRE(parser.iterate(not_event).get(doc) == simdjson::SUCCESS);
  REQUIRE(doc.at(1).get(not_object) == simdjson::SUCCESS);
  CHECK(parse_event(not_object, ev) == "event must be a json object");
}

// -- serialization ---------------------------------------------------------------

TEST_CASE("strings are escaped exactly as JSON.stringify does", "[event]") {
  auto [raw, escaped] = GENERATE(table<std::string, std::string>({
    {"", R"("")"},
    {"plain", R"("plain")"},
    {"\"", R"("\"")"},
    {"\\", R"("\\")"},
    {"\n\r\t\b\f", R"("\n\r\t\b\f")"},
    {std::string("\0", 1), R"("\u0000")"},
    {"\x01\x0b\x0e\x1f", R"("\u0001\u000b\u000e\u001f")"},
    {"/", R"("/")"},
    {"\x7f", "\"\x7f\""},
    {"\xe2\x80\xa8\xe2\x80\xa9", "\"\xe2\x80\xa8\xe2\x80\xa9\""},
    {"\xc3\xa9 \xf0\x9f\x98\x80", "\"\xc3\xa9 \xf0\x9f\x98\x80\""},
    {"a\"b\\c\nd", R"("a\"b\\c\nd")"},
  }));
  CHECK(json_string(raw) == escaped);
}

TEST_CASE("every byte is escaped the same at every place in a long string",
          "[event]") {
  // Each byte value, at each place in strings of several lengths, among
  // plain ASCII or among bytes >= 0x80: escaped as it is alone, and its
  // neighbours copied as they are.
  auto one_byte = [](uint8_t c) {
    std::string s(1, static_cast<char>(c));
    return json_string(s).substr(1, json_string(s).size() - 2);
  };
  for (int c = 0; c < 256; ++c) {
    for (char filler : {'a', '\xff'}) {
      for (size_t length : {1u, 7u, 8u, 9u, 16u, 23u}) {
        for (size_t at = 0; at < length; ++at) {
          std::string raw(length, filler);
          raw[at] = static_cast<char>(c);
          std::string expected = "\"";
          for (size_t i = 0; i < length; ++i)
            expected += i == at ? one_byte(static_cast<uint8_t>(c))
                                : std::string(1, filler);
          expected += '"';
          INFO("byte " << c << " at " << at << " of " << length);
          REQUIRE(json_string(raw) == expected);
        }
      }
    }
  }
  CHECK(one_byte('"') == "\\\"");
  CHECK(one_byte(0x1f) == "\\u001f");
  CHECK(one_byte(0x20) == " ");
  CHECK(one_byte(0x80) == "\x80");
}

TEST_CASE("appending a string keeps what the buffer already holds", "[event]") {
  std::string out = "[";
  append_json_string(out, "a\tb");
  CHECK(out == R"(["a\tb")");
}

TEST_CASE("the canonical form and the event object have the NIP-01 layout", "[event]") {
  auto ev = filled(0xab, 0x01, 0xff, 1700000000, 1);
  ev.tags = {{"e", "x", ""}, {"single"}};
  ev.content = "hi \"there\"";
  auto repeat = [](std::string_view unit, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i)
      out += unit;
    return out;
  };
  auto pubkey = repeat("ab", 32);
  CHECK(canonical_json(ev)
        == R"([0,")" + pubkey + R"(",1700000000,1,[["e","x",""],["single"]],"hi \"there\""])");
  CHECK(to_json(ev)
        == R"({"id":")" + repeat("01", 32) + R"(","pubkey":")" + pubkey
             + R"(","created_at":1700000000,"kind":1,"tags":[["e","x",""],["single"]],"content":"hi \"there\"","sig":")"
             + repeat("ff", 64) + R"("})");
  std::string out = "prefix";
  append_canonical(out, ev);
  CHECK(out == "prefix" + canonical_json(ev));
  out = "prefix";
  append_json(out, ev);
  CHECK(out == "prefix" + to_json(ev));
  ev.tags.clear();
  ev.content.clear();
  CHECK(canonical_json(ev) == R"([0,")" + pubkey + R"(",1700000000,1,[],""])");
}

TEST_CASE("the id with the JSON is compute_id and to_json at once", "[event]") {
  std::string json = "left over from the event before";
  for (auto& line : test::read_vector_lines("real_events.jsonl")) {
    CAPTURE(line);
    auto ev = parsed(line);
    CHECK(compute_id(ev, json) == compute_id(ev));
    CHECK(json == line);
  }
  // Escapes in tags and content, tags without values, nothing at all: the
  // copied bytes must be exactly those to_json escapes itself.
  auto ev = filled(0x5a, 0x07, 0xc3, 0, 65535);
  for (auto tags : {std::vector<tag>{{"t", "a\"b\\c\n"}, {"x"}, {"e", "", "\x01"}},
                    std::vector<tag>{}}) {
    for (std::string content : {"line\nnext \"quoted\" \x1f tab\t", ""}) {
      ev.tags = tags;
      ev.content = content;
      CAPTURE(content);
      auto id = compute_id(ev, json);
      CHECK(id == compute_id(ev));
      CHECK(json == to_json(ev));
      CHECK(test::same_event(parsed(json), ev));
    }
  }
}

// -- kinds and tags ----------------------------------------------------------------

TEST_CASE("kinds fall into the NIP-01 ranges", "[event]") {
  auto [kind, replaceable, ephemeral, addressable] =
    GENERATE(table<uint32_t, bool, bool, bool>({
      {0, true, false, false},
      {1, false, false, false},
      {2, false, false, false},
      {3, true, false, false},
      {4, false, false, false},
      {9999, false, false, false},
      {10000, true, false, false},
      {19999, true, false, false},
      {20000, false, true, false},
      {29999, false, true, false},
      {30000, false, false, true},
      {39999, false, false, true},
      {40000, false, false, false},
      {65535, false, false, false},
    }));
  CAPTURE(kind);
  CHECK(is_replaceable_kind(kind) == replaceable);
  CHECK(is_ephemeral_kind(kind) == ephemeral);
  CHECK(is_addressable_kind(kind) == addressable);
}

TEST_CASE("the d tag is the first d tag that has a value", "[event]") {
  CHECK(d_tag(with_tags({})) == "");
  CHECK(d_tag(with_tags({{"d"}})) == "");
  CHECK(d_tag(with_tags({{"d"}, {"d", "second"}})) == "second");
  CHECK(d_tag(with_tags({{"e", "x"}, {"d", "slug", "extra"}, {"d", "other"}})) == "slug");
  CHECK(d_tag(with_tags({{"D", "upper"}, {"dd", "double"}})) == "");
  CHECK(d_tag(with_tags({{"d", ""}, {"d", "later"}})) == "");
}

TEST_CASE("expiration is the first expiration tag holding a decimal integer", "[event]") {
  CHECK_FALSE(expiration(with_tags({})).has_value());
  CHECK(expiration(with_tags({{"expiration", "1700000000"}})) == 1700000000);
  CHECK(expiration(with_tags({{"expiration", "0"}})) == 0);
  CHECK(expiration(with_tags({{"expiration", "soon"}, {"expiration", "42"}})) == 42);
  CHECK(expiration(with_tags({{"expiration", "5"}, {"expiration", "6"}})) == 5);
  for (auto bad : {"", "-5", "+5", " 5", "5 ", "5.0", "1e9", "0x10",
                   "99999999999999999999"}) {
    CAPTURE(bad);
    CHECK_FALSE(expiration(with_tags({{"expiration", bad}})).has_value());
  }
  CHECK_FALSE(expiration(with_tags({{"expiration"}})).has_value());
  CHECK_FALSE(expiration(with_tags({{"Expiration", "5"}})).has_value());
}
