#pragma once

// Readers for the JSON bodies the admin API takes (sync definitions, hosted
// relays) and the JSON records the store keeps. Every reader returns "" or
// "<field path>: <reason>", so a caller can pass a failure up unchanged and
// the operator sees exactly which field is wrong.

#include "messages/nostr/filter.hpp"

#include <boost/json.hpp>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::json_body {

// -- field paths and reasons --------------------------------------------------

/// `key` inside the object at `parent` ("" is the top level): "tls.mode".
std::string child(const std::string& parent, std::string_view key);

/// Element `index` of the array at `parent`: "filters[2]".
std::string item(const std::string& parent, size_t index);

/// "<path>: <reason>".
std::string fail(const std::string& path, std::string_view reason);

/// An `ec::invalid_input` error carrying `reason`.
caf::error invalid(std::string reason);

// -- whole texts --------------------------------------------------------------

/// `text` as a JSON object; fails with "invalid JSON: ..." or "expected a
/// JSON object".
caf::expected<boost::json::object> parse_object(std::string_view text);

/// The first duplicate key of the JSON object `text` (in nested objects and
/// in the objects inside arrays too) as "<path>: duplicate key", or "" when
/// there is none (or `text` is no JSON object).
/// boost::json keeps the last of two equal keys without a word; a body that
/// says two things must be refused instead, so simdjson walks it once more.
std::string duplicate_key(std::string_view text);

/// A request body as a JSON object without duplicate keys; fails with
/// "body: invalid JSON: ...", "body: expected a JSON object" or the
/// duplicate_key reason.
caf::expected<boost::json::object> parse_body(std::string_view text);

// -- fields -------------------------------------------------------------------

/// Names the first key of `obj` outside `known` ("<path>.<key>: unknown key").
std::string unknown_keys(const boost::json::object& obj, const std::string& path,
                         std::initializer_list<std::string_view> known);

std::string read_string(const boost::json::value& v, const std::string& path,
                        std::string& out,
                        size_t max_size = std::numeric_limits<size_t>::max());

std::string read_bool(const boost::json::value& v, const std::string& path,
                      bool& out);

std::string read_int(const boost::json::value& v, const std::string& path,
                     int64_t& out);

/// A non-negative integer.
std::string read_count(const boost::json::value& v, const std::string& path,
                       uint64_t& out);

/// Any JSON object, kept as its serialized text.
std::string read_object_text(const boost::json::value& v,
                             const std::string& path, std::string& out);

/// A non-empty array of NIP-01 filter objects at `path`; a failure names the
/// filter field at fault ("filters[1].kinds: ...").
std::string read_filters(const boost::json::value& v, const std::string& path,
                         std::vector<nostr::filter>& out);

/// Sets `out` to the member of `all` whose to_string is `text`.
template <class E, size_t N>
bool parse_enum(std::string_view text, const std::array<E, N>& all, E& out) {
  for (auto x : all)
    if (to_string(x) == text) {
      out = x;
      return true;
    }
  return false;
}

/// "expected one of a, b, c" for the members of `all`.
template <class E, size_t N>
std::string one_of(const std::array<E, N>& all) {
  std::string out = "expected one of ";
  for (size_t i = 0; i < N; ++i) {
    if (i > 0)
      out += ", ";
    out += to_string(all[i]);
  }
  return out;
}

template <class E, size_t N>
std::string read_enum(const boost::json::value& v, const std::string& path,
                      const std::array<E, N>& all, E& out) {
  if (!v.is_string() || !parse_enum(std::string_view{v.get_string()}, all, out))
    return fail(path, one_of(all));
  return {};
}

// -- values -------------------------------------------------------------------

/// 64 lowercase hex characters: a public key or an event id.
bool is_lower_hex64(std::string_view text);

/// 1 to 64 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit: the
/// id of a definition, safe in URL paths and store keys.
bool is_definition_id(std::string_view id);

} // namespace ferry::json_body
