#include "messages/nostr/filter.hpp"

#include "messages/nostr/json_input.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

namespace ferry::nostr {

namespace {

using simdjson::ondemand::array;
using simdjson::ondemand::object;
using simdjson::ondemand::value;

// Keys come from the peer; echo only short ones so a reason stays short.
constexpr size_t max_echoed_key = 64;

template <class T>
void sort_unique(std::vector<T>& xs) {
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
}

bool is_ascii_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::string must_be(std::string_view field, std::string_view what) {
  std::string out{field};
  out += " must be ";
  out += what;
  return out;
}

std::string error_reason(simdjson::error_code error, std::string_view field,
                         std::string_view what) {
  return detail::is_type_error(error) ? must_be(field, what)
                                      : std::string{detail::json_error_reason(error)};
}

// Calls `parse_item(value&)` on each element of the array `v`, stopping at the
// first reason it returns; refuses more than `max` elements before storing them.
template <class F>
std::string parse_list(value& v, std::string_view field, std::string_view what,
                       size_t max, F&& parse_item) {
  array items;
  if (auto error = v.get_array().get(items))
    return error_reason(error, field, what);
  size_t count = 0;
  for (auto item : items) {
    value x;
    if (auto error = std::move(item).get(x))
      return detail::json_error_reason(error);
    if (++count > max)
      return std::string{field} + " has more than " + std::to_string(max) + " values";
    auto reason = parse_item(x);
    if (!reason.empty())
      return reason;
  }
  return {};
}

std::string parse_hex_list(value& v, std::string_view field, size_t max,
                           std::optional<std::vector<bytes32>>& out) {
  constexpr std::string_view what = "a list of 64-character lowercase hex strings";
  auto& xs = out.emplace();
  auto reason = parse_list(v, field, what, max, [&](value& x) -> std::string {
    std::string_view s;
    if (auto error = x.get_string().get(s))
      return error_reason(error, field, what);
    if (!from_hex(s, xs.emplace_back()))
      return must_be(field, what);
    return {};
  });
  sort_unique(xs);
  return reason;
}

std::string parse_kinds(value& v, size_t max, std::optional<std::vector<uint32_t>>& out) {
  constexpr std::string_view what = "a list of integers in [0, 65535]";
  auto& xs = out.emplace();
  auto reason = parse_list(v, "kinds", what, max, [&](value& x) -> std::string {
    int64_t kind = 0;
    if (auto error = x.get_int64().get(kind))
      return error_reason(error, "kinds", what);
    if (kind < 0 || kind > 65535)
      return must_be("kinds", what);
    xs.push_back(static_cast<uint32_t>(kind));
    return {};
  });
  sort_unique(xs);
  return reason;
}

std::string parse_tag_values(value& v, std::string_view field, size_t max,
                             std::vector<std::string>& out) {
  constexpr std::string_view what = "a list of strings";
  auto reason = parse_list(v, field, what, max, [&](value& x) -> std::string {
    std::string_view s;
    if (auto error = x.get_string().get(s))
      return error_reason(error, field, what);
    out.emplace_back(s);
    return {};
  });
  sort_unique(out);
  return reason;
}

std::string parse_non_negative(value& v, std::string_view field, int64_t& out) {
  constexpr std::string_view what = "a non-negative integer";
  if (auto error = v.get_int64().get(out))
    return error_reason(error, field, what);
  if (out < 0)
    return must_be(field, what);
  return {};
}

enum field_bit : unsigned {
  ids_bit = 1,
  authors_bit = 2,
  kinds_bit = 4,
  since_bit = 8,
  until_bit = 16,
  limit_bit = 32,
};

unsigned field_bit_of(std::string_view key) {
  if (key == "ids")
    return ids_bit;
  if (key == "authors")
    return authors_bit;
  if (key == "kinds")
    return kinds_bit;
  if (key == "since")
    return since_bit;
  if (key == "until")
    return until_bit;
  if (key == "limit")
    return limit_bit;
  return 0;
}

std::string parse_field(unsigned bit, std::string_view key, value& v, filter& out,
                        const filter_parse_limits& limits) {
  int64_t x = 0;
  std::string reason;
  switch (bit) {
    case ids_bit:
      return parse_hex_list(v, key, limits.max_values, out.ids);
    case authors_bit:
      return parse_hex_list(v, key, limits.max_values, out.authors);
    case kinds_bit:
      return parse_kinds(v, limits.max_values, out.kinds);
    case since_bit:
      reason = parse_non_negative(v, key, x);
      out.since = x;
      return reason;
    case until_bit:
      reason = parse_non_negative(v, key, x);
      out.until = x;
      return reason;
    default:
      reason = parse_non_negative(v, key, x);
      out.limit = static_cast<uint64_t>(x);
      return reason;
  }
}

std::string parse_object(object obj, filter& out, const filter_parse_limits& limits) {
  out = filter{};
  unsigned seen = 0;
  for (auto field : obj) {
    std::string_view key;
    if (auto error = field.unescaped_key().get(key))
      return detail::json_error_reason(error);
    // The key view stays valid until the next document, so reasons may use it.
    auto name = key;
    auto is_tag = name.size() == 2 && name[0] == '#' && is_ascii_letter(name[1]);
    auto bit = is_tag ? 0 : field_bit_of(name);
    if (!is_tag && bit == 0)
      return name.size() <= max_echoed_key ? "unknown filter field: " + std::string{name}
                                           : std::string{"unknown filter field"};
    auto duplicate = is_tag ? std::any_of(out.tags.begin(), out.tags.end(),
                                          [&](auto& c) { return c.letter == name[1]; })
                            : (seen & bit) != 0;
    if (duplicate)
      return "duplicate filter field: " + std::string{name};
    seen |= bit;
    value v;
    if (auto error = field.value().get(v))
      return detail::json_error_reason(error);
    std::string reason;
    if (is_tag) {
      auto& condition = out.tags.emplace_back();
      condition.letter = name[1];
      reason = parse_tag_values(v, name, limits.max_values, condition.values);
    } else {
      reason = parse_field(bit, name, v, out, limits);
    }
    if (!reason.empty())
      return reason;
  }
  std::sort(out.tags.begin(), out.tags.end(),
            [](auto& a, auto& b) { return a.letter < b.letter; });
  return {};
}

template <class Integer>
void append_integer(std::string& out, Integer x) {
  char buf[24];
  auto result = std::to_chars(buf, buf + sizeof(buf), x);
  out.append(buf, result.ptr);
}

} // namespace

bool filter::matches(const event& ev) const {
  // Cheapest conditions first: most events fail on kind or time.
  if (kinds && !std::binary_search(kinds->begin(), kinds->end(), ev.kind))
    return false;
  if (since && ev.created_at < *since)
    return false;
  if (until && ev.created_at > *until)
    return false;
  if (authors && !std::binary_search(authors->begin(), authors->end(), ev.pubkey))
    return false;
  if (ids && !std::binary_search(ids->begin(), ids->end(), ev.id))
    return false;
  for (auto& condition : tags) {
    auto hit = std::any_of(ev.tags.begin(), ev.tags.end(), [&](const tag& t) {
      return t.size() >= 2 && t[0].size() == 1 && t[0][0] == condition.letter
             && std::binary_search(condition.values.begin(), condition.values.end(),
                                   t[1]);
    });
    if (!hit)
      return false;
  }
  return true;
}

std::string parse_filter(simdjson::ondemand::value value, filter& out,
                         const filter_parse_limits& limits) {
  object obj;
  if (auto error = value.get_object().get(obj))
    return error_reason(error, "filter", "a json object");
  return parse_object(obj, out, limits);
}

std::string parse_filter(std::string_view json, filter& out,
                         const filter_parse_limits& limits) {
  simdjson::ondemand::document doc;
  if (auto error = detail::iterate_document(json, doc))
    return detail::json_error_reason(error);
  object obj;
  if (auto error = doc.get_object().get(obj))
    return error_reason(error, "filter", "a json object");
  auto reason = parse_object(obj, out, limits);
  if (!reason.empty())
    return reason;
  if (!detail::at_end(doc))
    return "trailing content after the filter";
  return {};
}

std::string to_json(const filter& f) {
  std::string out{"{"};
  auto key = [&](std::string_view name) {
    if (out.size() > 1)
      out.push_back(',');
    append_json_string(out, name);
    out.push_back(':');
  };
  auto hex_list = [&](std::string_view name, const std::vector<bytes32>& xs) {
    key(name);
    out.push_back('[');
    for (size_t i = 0; i < xs.size(); ++i) {
      if (i > 0)
        out.push_back(',');
      out.push_back('"');
      out += to_hex(xs[i]);
      out.push_back('"');
    }
    out.push_back(']');
  };
  if (f.ids)
    hex_list("ids", *f.ids);
  if (f.authors)
    hex_list("authors", *f.authors);
  if (f.kinds) {
    key("kinds");
    out.push_back('[');
    for (size_t i = 0; i < f.kinds->size(); ++i) {
      if (i > 0)
        out.push_back(',');
      append_integer(out, (*f.kinds)[i]);
    }
    out.push_back(']');
  }
  for (auto& condition : f.tags) {
    const char name[] = {'#', condition.letter};
    key({name, sizeof(name)});
    out.push_back('[');
    for (size_t i = 0; i < condition.values.size(); ++i) {
      if (i > 0)
        out.push_back(',');
      append_json_string(out, condition.values[i]);
    }
    out.push_back(']');
  }
  if (f.since) {
    key("since");
    append_integer(out, *f.since);
  }
  if (f.until) {
    key("until");
    append_integer(out, *f.until);
  }
  if (f.limit) {
    key("limit");
    append_integer(out, *f.limit);
  }
  out.push_back('}');
  return out;
}

bool operator==(const tag_condition& x, const tag_condition& y) {
  return x.letter == y.letter && x.values == y.values;
}

bool operator==(const filter& x, const filter& y) {
  return x.ids == y.ids && x.authors == y.authors && x.kinds == y.kinds
         && x.tags == y.tags && x.since == y.since && x.until == y.until
         && x.limit == y.limit;
}

bool matches_any(const std::vector<filter>& fs, const event& ev) {
  return std::any_of(fs.begin(), fs.end(), [&](const filter& f) { return f.matches(ev); });
}

} // namespace ferry::nostr
