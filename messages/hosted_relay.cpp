#include "messages/hosted_relay.hpp"

#include "messages/json_body.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>

namespace ferry {

namespace {

namespace json = boost::json;

constexpr std::array<hosted_status, 3> all_statuses{
  hosted_status::active, hosted_status::inactive, hosted_status::delinquent};

constexpr std::array<activity_type, 7> all_activity_types{
  activity_type::create_relay,       activity_type::update_relay,
  activity_type::activate_relay,     activity_type::deactivate_relay,
  activity_type::complete_relay_sync, activity_type::fail_relay_sync,
  activity_type::reconfigure_relay};

/// The keys a client may send.
constexpr std::array<std::string_view, 11> editable_keys{"id",         "subdomain", "schema", "status",          "info",
     "policy",     "groups",    "management", "push", "blossom_enabled",
     "livekit_enabled"};

/// The keys only the node sets; a body naming one is refused, so nobody
/// believes they changed it.
constexpr std::array<std::string_view, 6> node_keys{"synced", "sync_error", "created_at", "updated_at", "changed_seq",
     "failed_attempts"};

using json_body::child;
using json_body::fail;
using json_body::invalid;
using json_body::parse_enum;

/// The longest text a string field may hold.
constexpr size_t max_text_size = 4096;

template <class Keys>
bool contains(const Keys& keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

/// RFC 1123 label, lowercase: what a subdomain of the relay domain can be.
bool valid_dns_label(std::string_view label) {
  return !label.empty() && label.size() <= 63 && label.front() != '-'
         && label.back() != '-'
         && std::all_of(label.begin(), label.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                     || c == '-';
            });
}

/// What zooid accepts as a schema (an SQL identifier), lowercase so that it
/// also makes a predictable S3 key prefix.
bool valid_schema(std::string_view schema) {
  return !schema.empty() && schema.size() <= 63
         && !(schema.front() >= '0' && schema.front() <= '9')
         && std::all_of(schema.begin(), schema.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                     || c == '_';
            });
}

/// A body as a JSON object, or why it is not one. Duplicate keys are looked
/// for in nested objects, not inside arrays.
caf::expected<json::object> parse_body(std::string_view text) {
  return json_body::parse_body(text);
}

std::string read_info(const json::value& v, hosted_relay_info& out) {
  if (!v.is_object())
    return fail("info", "expected a JSON object");
  auto& obj = v.get_object();
  if (auto failure = json_body::unknown_keys(
        obj, "info", {"name", "icon", "description", "pubkey"});
      !failure.empty())
    return failure;
  hosted_relay_info info;
  std::pair<const char*, std::string*> fields[]
    = {{"name", &info.name},
       {"icon", &info.icon},
       {"description", &info.description},
       {"pubkey", &info.pubkey}};
  for (auto& [key, target] : fields)
    if (auto x = obj.if_contains(key))
      if (auto failure = json_body::read_string(*x, child("info", key), *target,
                                                max_text_size);
          !failure.empty())
        return failure;
  if (!obj.if_contains("pubkey"))
    return fail("info.pubkey", "required (the owner's pubkey)");
  if (!json_body::is_lower_hex64(info.pubkey))
    return fail("info.pubkey", "expected 64 lowercase hex characters");
  out = std::move(info);
  return {};
}

std::string read_relay(const json::object& obj, const std::string& id_from_path,
                       hosted_relay& out) {
  for (auto& entry : obj) {
    if (contains(node_keys, entry.key()))
      return fail(std::string{entry.key()}, "set by the node, not by a request");
    if (!contains(editable_keys, entry.key()))
      return fail(std::string{entry.key()}, "unknown key");
  }
  hosted_relay r;
  if (auto id = obj.if_contains("id")) {
    if (auto failure = json_body::read_string(*id, "id", r.id, max_text_size);
        !failure.empty())
      return failure;
    if (!id_from_path.empty() && r.id != id_from_path)
      return fail("id", "differs from the id in the path (" + id_from_path
                          + ")");
  } else {
    r.id = id_from_path;
  }
  if (r.id.empty())
    return fail("id", "required");
  if (!valid_hosted_relay_id(r.id))
    return fail("id", "expected 1 to 64 of a-z, 0-9, '.', '_' or '-', "
                      "starting with a letter or digit");
  auto subdomain = obj.if_contains("subdomain");
  if (!subdomain)
    return fail("subdomain", "required");
  if (auto failure = json_body::read_string(*subdomain, "subdomain",
                                            r.subdomain, max_text_size);
      !failure.empty())
    return failure;
  if (!valid_dns_label(r.subdomain))
    return fail("subdomain", "expected one DNS label: 1 to 63 of a-z, 0-9 "
                             "or '-', not starting or ending with '-'");
  auto schema = obj.if_contains("schema");
  if (!schema)
    return fail("schema", "required");
  if (auto failure = json_body::read_string(*schema, "schema", r.schema,
                                            max_text_size);
      !failure.empty())
    return failure;
  if (!valid_schema(r.schema))
    return fail("schema", "expected 1 to 63 of a-z, 0-9 or '_', not "
                          "starting with a digit");
  if (auto status = obj.if_contains("status"))
    if (auto failure = json_body::read_enum(*status, "status", all_statuses,
                                            r.status);
        !failure.empty())
      return failure;
  auto info = obj.if_contains("info");
  if (!info)
    return fail("info", "required (at least info.pubkey)");
  if (auto failure = read_info(*info, r.info); !failure.empty())
    return failure;
  std::pair<const char*, std::string*> sections[]
    = {{"policy", &r.policy_json},
       {"groups", &r.groups_json},
       {"management", &r.management_json},
       {"push", &r.push_json}};
  for (auto& [key, target] : sections)
    if (auto x = obj.if_contains(key))
      if (auto failure = json_body::read_object_text(*x, key, *target);
          !failure.empty())
        return failure;
  std::pair<const char*, bool*> flags[]
    = {{"blossom_enabled", &r.blossom_enabled},
       {"livekit_enabled", &r.livekit_enabled}};
  for (auto& [key, target] : flags)
    if (auto x = obj.if_contains(key))
      if (auto failure = json_body::read_bool(*x, key, *target);
          !failure.empty())
        return failure;
  out = std::move(r);
  return {};
}

/// The editable fields of `r` as a JSON object.
json::object editable_object(const hosted_relay& r) {
  json::object obj;
  obj["id"] = r.id;
  obj["subdomain"] = r.subdomain;
  obj["schema"] = r.schema;
  obj["status"] = to_string(r.status);
  obj["info"] = json::object{{"name", r.info.name},
                             {"icon", r.info.icon},
                             {"description", r.info.description},
                             {"pubkey", r.info.pubkey}};
  obj["policy"] = json::parse(r.policy_json);
  obj["groups"] = json::parse(r.groups_json);
  obj["management"] = json::parse(r.management_json);
  obj["push"] = json::parse(r.push_json);
  obj["blossom_enabled"] = r.blossom_enabled;
  obj["livekit_enabled"] = r.livekit_enabled;
  return obj;
}

/// RFC 7396 merge of `patch` into `target`.
void merge_patch(json::object& target, const json::object& patch) {
  for (auto& entry : patch) {
    if (entry.value().is_null()) {
      target.erase(entry.key());
      continue;
    }
    auto existing = target.if_contains(entry.key());
    if (entry.value().is_object() && existing && existing->is_object())
      merge_patch(existing->get_object(), entry.value().get_object());
    else
      target[entry.key()] = entry.value();
  }
}

template <class T>
bool read_number(const json::object& obj, std::string_view key, T& out) {
  auto v = obj.if_contains(key);
  if (!v)
    return true;
  if (v->is_int64() && v->get_int64() >= 0) {
    out = static_cast<T>(v->get_int64());
    return true;
  }
  if (v->is_uint64()) {
    out = static_cast<T>(v->get_uint64());
    return true;
  }
  return false;
}

} // namespace

std::string to_string(hosted_status x) {
  switch (x) {
    case hosted_status::active:
      return "active";
    case hosted_status::inactive:
      return "inactive";
    case hosted_status::delinquent:
      return "delinquent";
  }
  return "unknown";
}

std::string to_string(activity_type x) {
  switch (x) {
    case activity_type::create_relay:
      return "create_relay";
    case activity_type::update_relay:
      return "update_relay";
    case activity_type::activate_relay:
      return "activate_relay";
    case activity_type::deactivate_relay:
      return "deactivate_relay";
    case activity_type::complete_relay_sync:
      return "complete_relay_sync";
    case activity_type::fail_relay_sync:
      return "fail_relay_sync";
    case activity_type::reconfigure_relay:
      return "reconfigure_relay";
  }
  return "unknown";
}

bool from_string(std::string_view text, hosted_status& out) {
  return parse_enum(text, all_statuses, out);
}

bool from_string(std::string_view text, activity_type& out) {
  return parse_enum(text, all_activity_types, out);
}

bool is_change(activity_type x) {
  return x != activity_type::complete_relay_sync
         && x != activity_type::fail_relay_sync;
}

bool valid_hosted_relay_id(std::string_view id) {
  return json_body::is_definition_id(id);
}

caf::expected<hosted_relay> parse_hosted_relay(std::string_view text,
                                               const std::string& id_from_path) {
  auto obj = parse_body(text);
  if (!obj)
    return obj.error();
  hosted_relay result;
  if (auto failure = read_relay(*obj, id_from_path, result); !failure.empty())
    return invalid(failure);
  return result;
}

caf::expected<hosted_relay> patch_hosted_relay(const hosted_relay& base,
                                               std::string_view patch_json) {
  auto patch = parse_body(patch_json);
  if (!patch)
    return patch.error();
  for (auto& entry : *patch)
    if (contains(node_keys, entry.key()))
      return invalid(
        fail(std::string{entry.key()}, "set by the node, not by a request"));
  auto merged = editable_object(base);
  merge_patch(merged, *patch);
  hosted_relay result;
  if (auto failure = read_relay(merged, base.id, result); !failure.empty())
    return invalid(failure);
  result.synced = base.synced;
  result.sync_error = base.sync_error;
  result.created_at = base.created_at;
  result.updated_at = base.updated_at;
  result.changed_seq = base.changed_seq;
  return result;
}

std::string to_json(const hosted_relay& r) {
  auto obj = editable_object(r);
  obj["synced"] = r.synced;
  obj["sync_error"] = r.sync_error;
  obj["created_at"] = r.created_at;
  obj["updated_at"] = r.updated_at;
  obj["changed_seq"] = r.changed_seq;
  return json::serialize(obj);
}

std::string to_editable_json(const hosted_relay& r) {
  return json::serialize(editable_object(r));
}

caf::expected<hosted_relay> parse_stored_hosted_relay(std::string_view text) {
  json::error_code error;
  auto doc = json::parse(text, error);
  if (error || !doc.is_object())
    return invalid("not a JSON object");
  auto obj = doc.get_object();
  hosted_relay node_part;
  auto take = [&obj](std::string_view key) {
    auto v = obj.if_contains(key);
    json::value result = v ? *v : json::value{};
    obj.erase(key);
    return result;
  };
  auto synced = take("synced");
  auto sync_error = take("sync_error");
  auto created_at = take("created_at");
  auto updated_at = take("updated_at");
  auto changed_seq = take("changed_seq");
  hosted_relay result;
  if (auto failure = read_relay(obj, {}, result); !failure.empty())
    return invalid(failure);
  if (!synced.is_bool() || !sync_error.is_string() || !created_at.is_int64()
      || !updated_at.is_int64()
      || !(changed_seq.is_uint64() || changed_seq.is_int64()))
    return invalid("node fields missing or of the wrong type");
  result.synced = synced.get_bool();
  result.sync_error = std::string{sync_error.get_string()};
  result.created_at = created_at.get_int64();
  result.updated_at = updated_at.get_int64();
  result.changed_seq = changed_seq.to_number<uint64_t>();
  return result;
}

std::string to_json(const activity_entry& e) {
  json::object obj{{"seq", e.seq},
                   {"relay", e.relay},
                   {"type", to_string(e.type)},
                   {"at", e.at}};
  if (e.type == activity_type::fail_relay_sync) {
    obj["error"] = e.error;
    obj["failures"] = e.failures;
  }
  return json::serialize(obj);
}

caf::expected<activity_entry> parse_activity_entry(std::string_view text) {
  json::error_code error;
  auto doc = json::parse(text, error);
  if (error || !doc.is_object())
    return invalid("not a JSON object");
  auto& obj = doc.get_object();
  activity_entry e;
  auto relay = obj.if_contains("relay");
  auto type = obj.if_contains("type");
  auto at = obj.if_contains("at");
  if (!relay || !relay->is_string() || !type || !type->is_string()
      || !from_string(std::string_view{type->get_string()}, e.type) || !at
      || !at->is_int64() || !read_number(obj, "seq", e.seq)
      || !read_number(obj, "failures", e.failures))
    return invalid("fields missing or of the wrong type");
  e.relay = std::string{relay->get_string()};
  e.at = at->get_int64();
  if (auto err = obj.if_contains("error"); err && err->is_string())
    e.error = std::string{err->get_string()};
  return e;
}

} // namespace ferry
