#include "store/column_families.hpp"
#include "store/keys.hpp"

#include <catch2/catch.hpp>

using namespace ferry::store;

TEST_CASE("fixed-width integers are big-endian and round-trip", "[store][keys]") {
  std::string out;
  put_fixed32(out, 0x01020304u);
  put_fixed64(out, 0x0a0b0c0d0e0f1011ull);
  REQUIRE(out == std::string("\x01\x02\x03\x04\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11", 12));
  std::string_view in = out;
  uint32_t a = 0;
  uint64_t b = 0;
  REQUIRE(get_fixed32(in, a));
  REQUIRE(get_fixed64(in, b));
  CHECK(a == 0x01020304u);
  CHECK(b == 0x0a0b0c0d0e0f1011ull);
  CHECK(in.empty());
  CHECK_FALSE(get_fixed32(in, a));
}

TEST_CASE("index keys sort newest first, ties by ascending id", "[store][keys]") {
  bytes32 low{};
  bytes32 high{};
  high[0] = 1;
  auto prefix = kind_prefix(1);
  auto newest = index_key(prefix, 200, high);
  auto tie_low = index_key(prefix, 100, low);
  auto tie_high = index_key(prefix, 100, high);
  CHECK(newest < tie_low);
  CHECK(tie_low < tie_high);
  auto pos = decode_suffix(tie_high);
  CHECK(pos.created_at == 100);
  CHECK(pos.id == high);
}

TEST_CASE("tag values are length-prefixed so prefixes cannot collide",
          "[store][keys]") {
  bytes32 id{};
  auto short_value = index_key(tag_prefix('t', "ab"), 5, id);
  auto long_prefix = tag_prefix('t', "abc");
  CHECK(short_value.compare(0, long_prefix.size(), long_prefix) != 0);
  CHECK(tag_prefix('t', "ab").size() == 1 + 4 + 2);
}

TEST_CASE("event values carry a header in front of the JSON", "[store][keys]") {
  event_header h;
  h.created_at = 1234;
  h.kind = 30023;
  h.pubkey[31] = 7;
  h.expiration = 99;
  auto value = encode_event_value(h, "{\"x\":1}");
  CHECK(value.size() == event_header_size + 7);
  std::string_view json;
  auto back = decode_event_value(value, &json);
  REQUIRE(back);
  CHECK(back->created_at == 1234);
  CHECK(back->kind == 30023);
  CHECK(back->pubkey == h.pubkey);
  CHECK(back->expiration == 99);
  CHECK(json == "{\"x\":1}");
  CHECK_FALSE(decode_event_value("short"));
}

TEST_CASE("column family names are parallel to the enum", "[store][keys]") {
  CHECK(cf_count == 20);
  CHECK(cf_name(cf::default_) == "default");
  CHECK(cf_name(cf::events) == "events");
  CHECK(cf_name(cf::by_author_kind) == "by_author_kind");
  CHECK(cf_name(cf::by_expiration) == "by_expiration");
  CHECK(cf_name(cf::meta) == "meta");
  CHECK(cf_name(cf::changes) == "changes");
  CHECK(cf_name(cf::refused) == "refused");
}
