#pragma once

#include "messages/nostr/event.hpp"

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::nostr {

/// A `#<letter>` condition: the event must have a tag named `letter` whose
/// first value is one of `values`.
struct tag_condition {
  char letter = 0;
  std::vector<std::string> values; // sorted, unique
};

/// A NIP-01 filter. Every present field must match; an empty list matches nothing.
struct filter {
  std::optional<std::vector<bytes32>> ids;      // sorted, unique
  std::optional<std::vector<bytes32>> authors;  // sorted, unique
  std::optional<std::vector<uint32_t>> kinds;   // sorted, unique
  std::vector<tag_condition> tags;              // sorted by letter, one per letter
  std::optional<int64_t> since;
  std::optional<int64_t> until;
  std::optional<uint64_t> limit;

  /// True when `ev` satisfies every condition.
  bool matches(const event& ev) const;
};

/// Same conditions: both are parsed into sorted, unique lists, so equal
/// filters compare equal however the client ordered their values.
bool operator==(const tag_condition& x, const tag_condition& y);
bool operator==(const filter& x, const filter& y);
inline bool operator!=(const filter& x, const filter& y) {
  return !(x == y);
}

/// Limits applied while parsing, so a hostile filter cannot allocate without bound.
struct filter_parse_limits {
  size_t max_values = 1000; // per list (ids, authors, kinds, each #tag)
};

/// Parses one filter object strictly: ids/authors 64 lowercase hex, kinds
/// integers in [0, 65535], `#x` with a single ASCII letter and string values,
/// since/until/limit non-negative integers. Unknown fields are rejected.
/// @returns an empty string on success, otherwise the reason (no prefix).
std::string parse_filter(simdjson::ondemand::value value, filter& out,
                         const filter_parse_limits& limits = {});

/// Parses a JSON document holding one filter object.
std::string parse_filter(std::string_view json, filter& out,
                         const filter_parse_limits& limits = {});

/// The filter as a JSON object (fields in NIP-01 order).
std::string to_json(const filter& f);

/// True when `ev` matches at least one of `fs`.
bool matches_any(const std::vector<filter>& fs, const event& ev);

} // namespace ferry::nostr
