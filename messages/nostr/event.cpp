#include "messages/nostr/event.hpp"

#include "messages/nostr/json_input.hpp"
#include "messages/nostr/sha256.hpp"

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

#include <array>
#include <charconv>
#include <cstring>
#include <iterator>
#include <memory>

namespace ferry::nostr {

namespace {

using simdjson::ondemand::array;
using simdjson::ondemand::object;
using simdjson::ondemand::value;

// -- parsing helpers ----------------------------------------------------------

// The seven NIP-01 fields; a field's index is its bit in the "seen" mask.
constexpr std::string_view field_names[] = {"id",   "pubkey",  "created_at", "kind",
                                            "tags", "content", "sig"};
constexpr unsigned all_fields = (1u << std::size(field_names)) - 1;

// JavaScript clients cannot represent larger integers exactly.
constexpr int64_t created_at_limit = int64_t{1} << 53;

// Keys come from the peer; echo only short ones so a reason stays short.
constexpr size_t max_echoed_key = 64;

int field_index(std::string_view key) {
  for (size_t i = 0; i < std::size(field_names); ++i)
    if (key == field_names[i])
      return static_cast<int>(i);
  return -1;
}

std::string reason_for(simdjson::error_code error, const char* type_reason) {
  return detail::is_type_error(error) ? type_reason : detail::json_error_reason(error);
}

std::string parse_hex(value& v, uint8_t* out, size_t n, const char* reason) {
  std::string_view s;
  if (auto error = v.get_string().get(s))
    return reason_for(error, reason);
  if (!from_hex(s, out, n))
    return reason;
  return {};
}

std::string parse_integer(value& v, int64_t lo, int64_t hi, int64_t& out,
                          const char* reason) {
  // get_int64 already refuses fractions, exponents, strings and overflow.
  if (auto error = v.get_int64().get(out))
    return reason_for(error, reason);
  if (out < lo || out > hi)
    return reason;
  return {};
}

std::string parse_tags(value& v, std::vector<tag>& out) {
  constexpr const char* reason = "tags must be an array of arrays of strings";
  array tags;
  if (auto error = v.get_array().get(tags))
    return reason_for(error, reason);
  out.clear();
  for (auto tag_value : tags) {
    array items;
    if (auto error = tag_value.get_array().get(items))
      return reason_for(error, reason);
    auto& t = out.emplace_back();
    for (auto item : items) {
      std::string_view s;
      if (auto error = item.get_string().get(s))
        return reason_for(error, reason);
      t.emplace_back(s);
    }
    if (t.empty())
      return "a tag must not be empty";
  }
  return {};
}

std::string parse_field(int index, value& v, event& out) {
  switch (index) {
    case 0:
      return parse_hex(v, out.id.data(), out.id.size(),
                       "id must be 64 lowercase hex characters");
    case 1:
      return parse_hex(v, out.pubkey.data(), out.pubkey.size(),
                       "pubkey must be 64 lowercase hex characters");
    case 2:
      return parse_integer(v, 0, created_at_limit - 1, out.created_at,
                           "created_at must be an integer in [0, 2^53)");
    case 3: {
      int64_t kind = 0;
      auto reason = parse_integer(v, 0, 65535, kind,
                                  "kind must be an integer in [0, 65535]");
      out.kind = static_cast<uint32_t>(kind);
      return reason;
    }
    case 4:
      return parse_tags(v, out.tags);
    case 5: {
      std::string_view s;
      if (auto error = v.get_string().get(s))
        return reason_for(error, "content must be a string");
      out.content.assign(s.data(), s.size());
      return {};
    }
    default:
      return parse_hex(v, out.sig.data(), out.sig.size(),
                       "sig must be 128 lowercase hex characters");
  }
}

// Reads every field in document order: one pass, and duplicates are visible
// (a keyed lookup would silently take the first of two "id" fields).
std::string parse_object(object obj, event& out) {
  unsigned seen = 0;
  for (auto field : obj) {
    std::string_view key;
    if (auto error = field.unescaped_key().get(key))
      return detail::json_error_reason(error);
    auto index = field_index(key);
    if (index < 0)
      return key.size() <= max_echoed_key ? "unknown field: " + std::string{key}
                                          : std::string{"unknown field"};
    auto bit = 1u << index;
    if (seen & bit)
      return "duplicate field: " + std::string{key};
    seen |= bit;
    value v;
    if (auto error = field.value().get(v))
      return detail::json_error_reason(error);
    auto reason = parse_field(index, v, out);
    if (!reason.empty())
      return reason;
  }
  if (seen != all_fields)
    for (size_t i = 0; i < std::size(field_names); ++i)
      if (!(seen & (1u << i)))
        return "missing field: " + std::string{field_names[i]};
  return {};
}

// -- serialization helpers ----------------------------------------------------

constexpr char hex_digits[] = "0123456789abcdef";

// How each byte is written inside a JSON string: 0 verbatim, 'u' as \u00xx,
// otherwise the letter that follows the backslash. This is exactly what
// JSON.stringify does, which NIP-01 ids depend on.
constexpr std::array<char, 256> make_escapes() {
  std::array<char, 256> table{};
  for (int c = 0; c < 0x20; ++c)
    table[c] = 'u';
  table['"'] = '"';
  table['\\'] = '\\';
  table['\n'] = 'n';
  table['\r'] = 'r';
  table['\t'] = 't';
  table['\b'] = 'b';
  table['\f'] = 'f';
  return table;
}

constexpr auto escapes = make_escapes();

template <size_t N>
void append_hex(std::string& out, const std::array<uint8_t, N>& bytes) {
  auto pos = out.size();
  out.resize(pos + 2 * N);
  auto* p = out.data() + pos;
  for (auto b : bytes) {
    *p++ = hex_digits[b >> 4];
    *p++ = hex_digits[b & 0x0f];
  }
}

void append_integer(std::string& out, int64_t x) {
  char buf[24];
  auto result = std::to_chars(buf, buf + sizeof(buf), x);
  out.append(buf, result.ptr);
}

void append_tags(std::string& out, const std::vector<tag>& tags) {
  out.push_back('[');
  for (size_t i = 0; i < tags.size(); ++i) {
    if (i > 0)
      out.push_back(',');
    out.push_back('[');
    for (size_t j = 0; j < tags[i].size(); ++j) {
      if (j > 0)
        out.push_back(',');
      append_json_string(out, tags[i][j]);
    }
    out.push_back(']');
  }
  out.push_back(']');
}

// An upper bound for an event without escapes, so one reservation usually suffices.
size_t json_size_hint(const event& ev) {
  size_t n = 320 + ev.content.size();
  for (auto& t : ev.tags) {
    n += 3;
    for (auto& s : t)
      n += s.size() + 3;
  }
  return n;
}

// -- signature helpers --------------------------------------------------------

// Verification only reads the context, so one serves every thread. It is never
// destroyed: threads may still verify while static destructors run at exit.
const secp256k1_context* verify_context() {
  static secp256k1_context* ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  return ctx;
}

// Parsing an x-only key costs about a tenth of a verification, and a sync
// stream repeats the same few authors, so each thread keeps recent ones.
struct pubkey_cache_entry {
  bytes32 key{};
  secp256k1_xonly_pubkey parsed{};
  bool filled = false;
};

constexpr size_t pubkey_cache_size = 1024;

const secp256k1_xonly_pubkey* parsed_pubkey(const bytes32& key) {
  // Allocated on first use: a thread_local array would be reserved in every
  // thread of the process, including those that never verify.
  using cache = std::array<pubkey_cache_entry, pubkey_cache_size>;
  thread_local std::unique_ptr<cache> entries;
  if (!entries)
    entries = std::make_unique<cache>();
  // Public keys are curve x-coordinates, uniformly spread: any 8 bytes hash well.
  uint64_t h = 0;
  std::memcpy(&h, key.data(), sizeof(h));
  auto& entry = (*entries)[h % pubkey_cache_size];
  if (entry.filled && entry.key == key)
    return &entry.parsed;
  entry.filled = false;
  if (!secp256k1_xonly_pubkey_parse(verify_context(), &entry.parsed, key.data()))
    return nullptr;
  entry.key = key;
  entry.filled = true;
  return &entry.parsed;
}

} // namespace

// -- parsing ------------------------------------------------------------------

std::string parse_event(simdjson::ondemand::value value, event& out) {
  object obj;
  if (auto error = value.get_object().get(obj))
    return reason_for(error, "event must be a json object");
  return parse_object(obj, out);
}

std::string parse_event(std::string_view json, event& out) {
  simdjson::ondemand::document doc;
  if (auto error = detail::iterate_document(json, doc))
    return detail::json_error_reason(error);
  object obj;
  if (auto error = doc.get_object().get(obj))
    return reason_for(error, "event must be a json object");
  auto reason = parse_object(obj, out);
  if (!reason.empty())
    return reason;
  if (!detail::at_end(doc))
    return "trailing content after the event";
  return {};
}

// -- serialization ------------------------------------------------------------

void append_json_string(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  auto* run = s.data();
  auto* end = s.data() + s.size();
  for (auto* p = run; p != end; ++p) {
    auto c = static_cast<uint8_t>(*p);
    auto escape = escapes[c];
    if (escape == 0)
      continue;
    out.append(run, static_cast<size_t>(p - run));
    if (escape == 'u') {
      const char buf[] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 0x0f]};
      out.append(buf, sizeof(buf));
    } else {
      const char buf[] = {'\\', escape};
      out.append(buf, sizeof(buf));
    }
    run = p + 1;
  }
  out.append(run, static_cast<size_t>(end - run));
  out.push_back('"');
}

namespace {

/// Where the escaped tags and content lie in a canonical form.
struct canonical_layout {
  size_t tags_begin = 0;
  size_t tags_end = 0;
  size_t content_begin = 0;
  size_t content_end = 0;
};

canonical_layout append_canonical_marked(std::string& out, const event& ev) {
  canonical_layout at;
  out.reserve(out.size() + json_size_hint(ev));
  out.append("[0,\"");
  append_hex(out, ev.pubkey);
  out.append("\",");
  append_integer(out, ev.created_at);
  out.push_back(',');
  append_integer(out, ev.kind);
  out.push_back(',');
  at.tags_begin = out.size();
  append_tags(out, ev.tags);
  at.tags_end = out.size();
  out.push_back(',');
  at.content_begin = out.size();
  append_json_string(out, ev.content);
  at.content_end = out.size();
  out.push_back(']');
  return at;
}

} // namespace

void append_canonical(std::string& out, const event& ev) {
  append_canonical_marked(out, ev);
}

std::string canonical_json(const event& ev) {
  std::string out;
  append_canonical(out, ev);
  return out;
}

namespace {

/// The event object, with `tags(out)` and `content(out)` appending those two
/// members' JSON values.
template <class Tags, class Content>
void append_json_object(std::string& out, const event& ev, size_t size_hint,
                        Tags&& tags, Content&& content) {
  out.reserve(out.size() + size_hint + 200);
  out.append("{\"id\":\"");
  append_hex(out, ev.id);
  out.append("\",\"pubkey\":\"");
  append_hex(out, ev.pubkey);
  out.append("\",\"created_at\":");
  append_integer(out, ev.created_at);
  out.append(",\"kind\":");
  append_integer(out, ev.kind);
  out.append(",\"tags\":");
  tags(out);
  out.append(",\"content\":");
  content(out);
  out.append(",\"sig\":\"");
  append_hex(out, ev.sig);
  out.append("\"}");
}

} // namespace

void append_json(std::string& out, const event& ev) {
  append_json_object(
    out, ev, json_size_hint(ev),
    [&ev](std::string& o) { append_tags(o, ev.tags); },
    [&ev](std::string& o) { append_json_string(o, ev.content); });
}

std::string to_json(const event& ev) {
  std::string out;
  append_json(out, ev);
  return out;
}

// -- integrity ----------------------------------------------------------------

bytes32 compute_id(const event& ev) {
  // Reused so hashing a stream of events allocates nothing once warm.
  thread_local std::string buffer;
  buffer.clear();
  append_canonical(buffer, ev);
  auto id = sha256(buffer);
  // Do not pin the memory of a rare huge event for the thread's life.
  if (buffer.capacity() > (size_t{1} << 20))
    buffer = std::string{};
  return id;
}

bytes32 compute_id(const event& ev, std::string& json) {
  thread_local std::string buffer;
  buffer.clear();
  auto at = append_canonical_marked(buffer, ev);
  auto id = sha256(buffer);
  auto copied = [&](size_t begin, size_t end) {
    return [view = std::string_view{buffer}.substr(begin, end - begin)](
             std::string& o) { o.append(view); };
  };
  json.clear();
  append_json_object(json, ev, buffer.size(),
                     copied(at.tags_begin, at.tags_end),
                     copied(at.content_begin, at.content_end));
  if (buffer.capacity() > (size_t{1} << 20))
    buffer = std::string{};
  return id;
}

bool verify_signature(const event& ev) {
  auto* pubkey = parsed_pubkey(ev.pubkey);
  return pubkey != nullptr
         && secp256k1_schnorrsig_verify(verify_context(), ev.sig.data(), ev.id.data(),
                                        ev.id.size(), pubkey)
              == 1;
}

std::string check_event(const event& ev) {
  if (compute_id(ev) != ev.id)
    return "event id does not match its content";
  if (!verify_signature(ev))
    return "bad signature";
  return {};
}

// -- kinds and tags -----------------------------------------------------------

bool is_replaceable_kind(uint32_t kind) {
  return kind == 0 || kind == 3 || (kind >= 10000 && kind < 20000);
}

bool is_ephemeral_kind(uint32_t kind) {
  return kind >= 20000 && kind < 30000;
}

bool is_addressable_kind(uint32_t kind) {
  return kind >= 30000 && kind < 40000;
}

std::vector<std::string_view> tag_values(const event& ev,
                                         std::string_view name) {
  std::vector<std::string_view> result;
  for (const auto& t : ev.tags)
    if (t.size() >= 2 && t[0] == name)
      result.emplace_back(t[1]);
  return result;
}

std::string_view d_tag(const event& ev) {
  for (auto& t : ev.tags)
    if (t.size() >= 2 && t[0] == "d")
      return t[1];
  return {};
}

std::optional<int64_t> expiration(const event& ev) {
  for (auto& t : ev.tags) {
    if (t.size() < 2 || t[0] != "expiration")
      continue;
    auto& s = t[1];
    // from_chars alone would also take a leading '-'.
    if (s.empty() || s[0] < '0' || s[0] > '9')
      continue;
    int64_t x = 0;
    auto result = std::from_chars(s.data(), s.data() + s.size(), x);
    if (result.ec == std::errc{} && result.ptr == s.data() + s.size())
      return x;
  }
  return std::nullopt;
}

} // namespace ferry::nostr
