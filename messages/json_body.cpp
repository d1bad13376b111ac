#include "messages/json_body.hpp"

#include "messages/error.hpp"
#include "messages/nostr/json_input.hpp"

#include <simdjson.h>

#include <algorithm>
#include <vector>

namespace ferry::json_body {

namespace json = boost::json;

std::string child(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string{key} : parent + "." + std::string{key};
}

std::string item(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

std::string fail(const std::string& path, std::string_view reason) {
  return path + ": " + std::string{reason};
}

caf::error invalid(std::string reason) {
  return caf::make_error(ec::invalid_input, std::move(reason));
}

// -- whole texts --------------------------------------------------------------

namespace {

/// Parses `text` into `out`; returns "" or why it is no JSON object.
std::string object_from(std::string_view text, json::object& out) {
  json::error_code error;
  auto doc = json::parse(text, error);
  if (error)
    return "invalid JSON: " + error.message();
  if (!doc.is_object())
    return "expected a JSON object";
  out = std::move(doc.get_object());
  return {};
}

std::string duplicate_in(simdjson::ondemand::value v, const std::string& path);

std::string duplicate_in(simdjson::ondemand::object obj, const std::string& path) {
  std::vector<std::string> keys;
  for (auto field : obj) {
    std::string_view key;
    simdjson::ondemand::value v;
    if (field.unescaped_key().get(key) || field.value().get(v))
      return {};
    auto key_path = child(path, key);
    if (std::find(keys.begin(), keys.end(), key) != keys.end())
      return fail(key_path, "duplicate key");
    keys.emplace_back(key);
    if (auto found = duplicate_in(v, key_path); !found.empty())
      return found;
  }
  return {};
}

std::string duplicate_in(simdjson::ondemand::value v, const std::string& path) {
  simdjson::ondemand::json_type type;
  if (v.type().get(type))
    return {};
  if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object obj;
    return v.get_object().get(obj) ? std::string{}
                                   : duplicate_in(obj, path);
  }
  if (type == simdjson::ondemand::json_type::array) {
    simdjson::ondemand::array items;
    if (v.get_array().get(items))
      return {};
    size_t index = 0;
    for (auto element : items) {
      simdjson::ondemand::value x;
      if (element.get(x))
        return {};
      if (auto found = duplicate_in(x, item(path, index++));
          !found.empty())
        return found;
    }
  }
  return {};
}

} // namespace

caf::expected<json::object> parse_object(std::string_view text) {
  json::object result;
  if (auto reason = object_from(text, result); !reason.empty())
    return invalid(std::move(reason));
  return result;
}

std::string duplicate_key(std::string_view text) {
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (nostr::detail::iterate_document(text, doc) || doc.get_object().get(obj))
    return {};
  return duplicate_in(obj, "");
}

caf::expected<json::object> parse_body(std::string_view text) {
  json::object result;
  if (auto reason = object_from(text, result); !reason.empty())
    return invalid("body: " + reason);
  if (auto duplicate = duplicate_key(text); !duplicate.empty())
    return invalid(std::move(duplicate));
  return result;
}

// -- fields -------------------------------------------------------------------

std::string unknown_keys(const json::object& obj, const std::string& path,
                         std::initializer_list<std::string_view> known) {
  for (const auto& entry : obj)
    if (std::find(known.begin(), known.end(), entry.key()) == known.end())
      return fail(child(path, entry.key()), "unknown key");
  return {};
}

std::string read_string(const json::value& v, const std::string& path,
                        std::string& out, size_t max_size) {
  if (!v.is_string())
    return fail(path, "expected a string");
  if (v.get_string().size() > max_size)
    return fail(path, "longer than " + std::to_string(max_size)
                        + " characters");
  out = std::string{v.get_string()};
  return {};
}

std::string read_bool(const json::value& v, const std::string& path,
                      bool& out) {
  if (!v.is_bool())
    return fail(path, "expected true or false");
  out = v.get_bool();
  return {};
}

std::string read_int(const json::value& v, const std::string& path,
                     int64_t& out) {
  if (!v.is_int64())
    return fail(path, "expected an integer");
  out = v.get_int64();
  return {};
}

std::string read_count(const json::value& v, const std::string& path,
                       uint64_t& out) {
  if (v.is_uint64())
    out = v.get_uint64();
  else if (v.is_int64() && v.get_int64() >= 0)
    out = static_cast<uint64_t>(v.get_int64());
  else
    return fail(path, "expected a non-negative integer");
  return {};
}

std::string read_object_text(const json::value& v, const std::string& path,
                             std::string& out) {
  if (!v.is_object())
    return fail(path, "expected a JSON object");
  out = json::serialize(v);
  return {};
}

// -- filters ------------------------------------------------------------------

namespace {

/// parse_filter's reasons begin with the field they blame ("kinds must be
/// ..."); moving that field into the path keeps one error form for the API.
std::string filter_failure(const std::string& path, std::string_view key,
                           const std::string& reason) {
  auto lead = std::string{key} + " ";
  if (reason.rfind(lead, 0) == 0)
    return fail(child(path, key), reason.substr(lead.size()));
  return fail(path, reason);
}

std::string read_filter(const json::value& v, const std::string& path,
                        nostr::filter& out) {
  if (!v.is_object())
    return fail(path, "expected a filter object");
  // One field at a time, so a failure names the field that caused it.
  for (const auto& entry : v.get_object()) {
    json::object single;
    single.emplace(entry.key(), entry.value());
    nostr::filter scratch;
    auto reason = nostr::parse_filter(json::serialize(single), scratch);
    if (!reason.empty())
      return filter_failure(path, entry.key(), reason);
  }
  auto reason = nostr::parse_filter(json::serialize(v), out);
  return reason.empty() ? std::string{} : fail(path, reason);
}

} // namespace

std::string read_filters(const json::value& v, const std::string& path,
                         std::vector<nostr::filter>& out) {
  if (!v.is_array())
    return fail(path, "expected an array of filter objects");
  const auto& items = v.get_array();
  if (items.empty())
    return fail(path, "expected at least one filter");
  out.clear();
  for (size_t i = 0; i < items.size(); ++i)
    if (auto failure = read_filter(items[i], item(path, i), out.emplace_back());
        !failure.empty())
      return failure;
  return {};
}

// -- values -------------------------------------------------------------------

bool is_lower_hex64(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool is_definition_id(std::string_view id) {
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
           || c == '_' || c == '-';
  };
  return !id.empty() && id.size() <= 64 && id.front() != '.'
         && id.front() != '_' && id.front() != '-'
         && std::all_of(id.begin(), id.end(), ok);
}

} // namespace ferry::json_body
