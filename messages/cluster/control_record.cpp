#include "messages/cluster/control_record.hpp"

#include "messages/error.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/sha256.hpp"

#include <boost/json.hpp>

namespace ferry::cluster {

namespace {

namespace json = boost::json;

json::object clock_object(const version_vector& x) {
  json::object counters;
  for (auto& [name, counter] : x.counters())
    counters[name] = counter;
  return json::object{{"counters", std::move(counters)},
                      {"retired", x.retired()}};
}

caf::error invalid(size_t index, const std::string& field,
                   const std::string& why) {
  return caf::make_error(ec::invalid_input,
                         "control record [" + std::to_string(index)
                           + "]." + field + ": " + why);
}

bool read_counter(const json::value& v, uint64_t& out) {
  if (v.is_uint64()) {
    out = v.get_uint64();
    return true;
  }
  if (v.is_int64() && v.get_int64() >= 0) {
    out = static_cast<uint64_t>(v.get_int64());
    return true;
  }
  return false;
}

const json::string* string_field(const json::object& obj, std::string_view key) {
  auto v = obj.if_contains(key);
  return v && v->is_string() ? &v->get_string() : nullptr;
}

} // namespace

nostr::bytes32 content_digest(bool deleted, std::string_view body) {
  return nostr::sha256(deleted ? std::string_view{"deleted"} : body);
}

std::string to_json(const version_vector& x) {
  return json::serialize(clock_object(x));
}

namespace {

json::array records_array(const std::vector<control_record>& records) {
  json::array out;
  for (auto& r : records)
    out.push_back(json::object{
      {"kind", r.kind},
      {"id", r.id},
      {"clock", clock_object(r.version.clock)},
      {"digest", nostr::to_hex(r.version.digest)},
      {"deleted", r.deleted},
      {"body", r.body},
    });
  return out;
}

caf::expected<std::vector<control_record>> records_from(const json::array& items) {
  std::vector<control_record> result;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_object())
      return invalid(i, "", "expected an object");
    auto& obj = items[i].as_object();
    control_record r;
    auto kind = string_field(obj, "kind");
    if (!kind || kind->empty())
      return invalid(i, "kind", "expected a non-empty string");
    r.kind = std::string{*kind};
    auto id = string_field(obj, "id");
    if (!id || id->empty())
      return invalid(i, "id", "expected a non-empty string");
    r.id = std::string{*id};
    auto deleted = obj.if_contains("deleted");
    if (!deleted || !deleted->is_bool())
      return invalid(i, "deleted", "expected true or false");
    r.deleted = deleted->get_bool();
    auto body = string_field(obj, "body");
    if (!body || body->empty() != r.deleted)
      return invalid(i, "body",
                     "expected the definition, or \"\" for a deletion");
    r.body = std::string{*body};
    auto clock = obj.if_contains("clock");
    if (!clock || !clock->is_object())
      return invalid(i, "clock", "expected an object");
    auto counters = clock->as_object().if_contains("counters");
    if (!counters || !counters->is_object())
      return invalid(i, "clock.counters", "expected an object");
    for (auto& [name, counter] : counters->as_object()) {
      uint64_t n = 0;
      if (name.empty() || !read_counter(counter, n))
        return invalid(i, "clock.counters",
                       "expected member names with counters >= 0");
      r.version.clock.set(name, n);
    }
    uint64_t retired = 0;
    auto retired_value = clock->as_object().if_contains("retired");
    if (!retired_value || !read_counter(*retired_value, retired))
      return invalid(i, "clock.retired", "expected an integer >= 0");
    r.version.clock.set_retired(retired);
    auto digest = string_field(obj, "digest");
    if (!digest || !nostr::from_hex(*digest, r.version.digest))
      return invalid(i, "digest", "expected 64 hex characters");
    if (r.version.digest != content_digest(r.deleted, r.body))
      return invalid(i, "digest", "does not match the content");
    result.push_back(std::move(r));
  }
  return result;
}

} // namespace

std::string to_json(const std::vector<control_record>& records) {
  return json::serialize(records_array(records));
}

caf::expected<std::vector<control_record>>
parse_control_records(std::string_view text) {
  json::error_code ec;
  auto value = json::parse(text, ec);
  if (ec || !value.is_array())
    return caf::make_error(ec::invalid_input,
                           "control records: expected a JSON array");
  return records_from(value.as_array());
}

std::string to_json(const control_message& message) {
  json::array forgotten;
  for (auto& name : message.forgotten)
    forgotten.emplace_back(name);
  return json::serialize(json::object{{"records", records_array(message.records)},
                                      {"forgotten", std::move(forgotten)}});
}

caf::expected<control_message> parse_control_message(std::string_view text) {
  json::error_code ec;
  auto value = json::parse(text, ec);
  if (!ec && value.is_array()) {
    auto records = records_from(value.as_array());
    if (!records)
      return std::move(records.error());
    return control_message{std::move(*records), {}};
  }
  if (ec || !value.is_object())
    return caf::make_error(ec::invalid_input,
                           "control message: expected a JSON object");
  auto& obj = value.as_object();
  auto items = obj.if_contains("records");
  if (!items || !items->is_array())
    return caf::make_error(ec::invalid_input,
                           "control message: records: expected an array");
  auto records = records_from(items->as_array());
  if (!records)
    return std::move(records.error());
  control_message result{std::move(*records), {}};
  auto forgotten = obj.if_contains("forgotten");
  if (!forgotten || !forgotten->is_array())
    return caf::make_error(ec::invalid_input,
                           "control message: forgotten: expected an array of "
                           "member names");
  for (auto& name : forgotten->as_array()) {
    if (!name.is_string() || name.as_string().empty())
      return caf::make_error(ec::invalid_input,
                             "control message: forgotten: expected an array "
                             "of member names");
    result.forgotten.emplace(name.as_string());
  }
  return result;
}

} // namespace ferry::cluster
