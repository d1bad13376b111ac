#include "store/keys.hpp"

#include <cstring>

namespace ferry::store {

void put_fixed32(std::string& out, uint32_t x) {
  char buf[4];
  for (int i = 3; i >= 0; --i) {
    buf[i] = static_cast<char>(x & 0xff);
    x >>= 8;
  }
  out.append(buf, 4);
}

void put_fixed64(std::string& out, uint64_t x) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(x & 0xff);
    x >>= 8;
  }
  out.append(buf, 8);
}

bool get_fixed32(std::string_view& in, uint32_t& out) {
  if (in.size() < 4)
    return false;
  uint32_t x = 0;
  for (size_t i = 0; i < 4; ++i)
    x = (x << 8) | static_cast<uint8_t>(in[i]);
  out = x;
  in.remove_prefix(4);
  return true;
}

bool get_fixed64(std::string_view& in, uint64_t& out) {
  if (in.size() < 8)
    return false;
  uint64_t x = 0;
  for (size_t i = 0; i < 8; ++i)
    x = (x << 8) | static_cast<uint8_t>(in[i]);
  out = x;
  in.remove_prefix(8);
  return true;
}

bool get_bytes32(std::string_view& in, bytes32& out) {
  if (in.size() < 32)
    return false;
  std::memcpy(out.data(), in.data(), 32);
  in.remove_prefix(32);
  return true;
}

void put_bytes32(std::string& out, const bytes32& x) {
  out.append(reinterpret_cast<const char*>(x.data()), x.size());
}

void put_suffix(std::string& out, int64_t created_at, const bytes32& id) {
  put_fixed64(out, invert_time(created_at));
  put_bytes32(out, id);
}

suffix_value decode_suffix(std::string_view key) {
  key.remove_prefix(key.size() - suffix_size);
  suffix_value result;
  uint64_t inverted = 0;
  get_fixed64(key, inverted);
  result.created_at = static_cast<int64_t>(~inverted);
  get_bytes32(key, result.id);
  return result;
}

void append_kind_prefix(std::string& out, uint32_t kind) {
  put_fixed32(out, kind);
}

void append_author_kind_prefix(std::string& out, const bytes32& pubkey,
                               uint32_t kind) {
  put_bytes32(out, pubkey);
  put_fixed32(out, kind);
}

void append_tag_prefix(std::string& out, char letter, std::string_view value) {
  out.push_back(letter);
  put_fixed32(out, static_cast<uint32_t>(value.size()));
  out.append(value);
}

std::string kind_prefix(uint32_t kind) {
  std::string out;
  append_kind_prefix(out, kind);
  return out;
}

std::string author_prefix(const bytes32& pubkey) {
  std::string out;
  put_bytes32(out, pubkey);
  return out;
}

std::string author_kind_prefix(const bytes32& pubkey, uint32_t kind) {
  std::string out;
  out.reserve(36);
  append_author_kind_prefix(out, pubkey, kind);
  return out;
}

std::string tag_prefix(char letter, std::string_view value) {
  std::string out;
  out.reserve(5 + value.size());
  append_tag_prefix(out, letter, value);
  return out;
}

std::string index_key(std::string_view prefix, int64_t created_at,
                      const bytes32& id) {
  std::string out;
  out.reserve(prefix.size() + suffix_size);
  out.append(prefix);
  put_suffix(out, created_at, id);
  return out;
}

void append_expiration_key(std::string& out, int64_t expiration,
                           const bytes32& id) {
  put_fixed64(out, static_cast<uint64_t>(expiration));
  put_bytes32(out, id);
}

std::string expiration_key(int64_t expiration, const bytes32& id) {
  std::string out;
  out.reserve(40);
  append_expiration_key(out, expiration, id);
  return out;
}

bool is_indexed_tag_name(std::string_view name) {
  if (name.size() != 1)
    return false;
  char c = name[0];
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::string replaceable_key(uint32_t kind, const bytes32& pubkey,
                            std::string_view d) {
  std::string out;
  out.reserve(36 + d.size());
  put_fixed32(out, kind);
  put_bytes32(out, pubkey);
  out.append(d);
  return out;
}

std::string time_id_value(int64_t created_at, const bytes32& id) {
  std::string out;
  out.reserve(40);
  put_fixed64(out, static_cast<uint64_t>(created_at));
  put_bytes32(out, id);
  return out;
}

std::optional<suffix_value> decode_time_id_value(std::string_view value) {
  suffix_value result;
  uint64_t created_at = 0;
  if (value.size() != 40 || !get_fixed64(value, created_at)
      || !get_bytes32(value, result.id))
    return std::nullopt;
  result.created_at = static_cast<int64_t>(created_at);
  return result;
}

std::string deleted_id_key(const bytes32& target, const bytes32& deleter) {
  std::string out;
  out.reserve(65);
  out.push_back('e');
  put_bytes32(out, target);
  put_bytes32(out, deleter);
  return out;
}

std::string deleted_address_key(uint32_t kind, const bytes32& pubkey,
                                std::string_view d) {
  std::string out = "a";
  out += replaceable_key(kind, pubkey, d);
  return out;
}

std::string encode_event_value(const event_header& h, std::string_view json) {
  std::string out;
  append_event_value(out, h, json);
  return out;
}

void append_event_value(std::string& out, const event_header& h,
                        std::string_view json) {
  out.reserve(out.size() + event_header_size + json.size());
  put_fixed64(out, static_cast<uint64_t>(h.created_at));
  put_fixed32(out, h.kind);
  put_bytes32(out, h.pubkey);
  put_fixed64(out, static_cast<uint64_t>(h.expiration));
  out.append(json);
}

std::optional<event_header> decode_event_value(std::string_view value,
                                               std::string_view* json) {
  event_header h;
  uint64_t created_at = 0;
  uint64_t expiration = 0;
  if (!get_fixed64(value, created_at) || !get_fixed32(value, h.kind)
      || !get_bytes32(value, h.pubkey) || !get_fixed64(value, expiration))
    return std::nullopt;
  h.created_at = static_cast<int64_t>(created_at);
  h.expiration = static_cast<int64_t>(expiration);
  if (json != nullptr)
    *json = value;
  return h;
}

} // namespace ferry::store
