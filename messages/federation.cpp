#include "messages/federation.hpp"

#include "messages/json_body.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/nip98.hpp"
#include "messages/nostr/relay_url.hpp"

#include <boost/json.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>

namespace ferry {

namespace {

namespace json = boost::json;

using json_body::fail;
using json_body::item;
using json_body::read_enum;
using json_body::read_string;

constexpr std::array<federation_mode, 3> all_federation_modes{
  federation_mode::sync, federation_mode::publish, federation_mode::subscribe};
constexpr std::array<incoming_policy, 4> all_incoming_policies{
  incoming_policy::auto_accept, incoming_policy::require_approval,
  incoming_policy::require_password, incoming_policy::deny};
constexpr std::array<peer_mode, 2> all_peer_modes{peer_mode::sync,
                                                  peer_mode::paused};
constexpr std::array<link_status, 4> all_link_statuses{
  link_status::active, link_status::pending, link_status::suspended,
  link_status::revoked};

/// PBKDF2 rounds: about 50 ms here, paid once per registration attempt.
constexpr uint32_t password_iterations = 100000;
constexpr size_t password_salt_bytes = 16;

template <class E, size_t N>
bool enum_from(std::string_view text, const std::array<E, N>& all, E& out) {
  return json_body::parse_enum(text, all, out);
}

std::string read_names(const json::value& v, const std::string& path,
                       std::vector<std::string>& out) {
  if (!v.is_array())
    return fail(path, "expected an array of collection names");
  out.clear();
  const auto& items = v.get_array();
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string() || !is_peer_name(items[i].get_string()))
      return fail(item(path, i), "expected a collection name (1 to 48 of "
                                 "a-z, 0-9, '.', '_' or '-')");
    std::string name{items[i].get_string()};
    if (std::find(out.begin(), out.end(), name) == out.end())
      out.push_back(std::move(name));
  }
  return {};
}

std::string read_definition(const json::object& obj,
                            const std::string& name_from_path,
                            peer_definition& out) {
  if (auto failure = json_body::unknown_keys(
        obj, "",
        {"name", "endpoint", "admin_url", "ca", "mode", "filters",
         "collections", "password"});
      !failure.empty())
    return failure;
  if (auto name = obj.if_contains("name")) {
    if (auto failure = read_string(*name, "name", out.name); !failure.empty())
      return failure;
    if (!name_from_path.empty() && out.name != name_from_path)
      return fail("name", "does not match the name in the path");
  } else if (!name_from_path.empty()) {
    out.name = name_from_path;
  } else {
    return fail("name", "required");
  }
  if (!is_peer_name(out.name))
    return fail("name", "expected 1 to 48 characters of a-z, 0-9, '.', '_' "
                        "or '-', starting with a letter or digit");
  auto endpoint = obj.if_contains("endpoint");
  if (!endpoint)
    return fail("endpoint", "required");
  if (!endpoint->is_string())
    return fail("endpoint", "expected a ws:// or wss:// URL");
  nostr::relay_url url;
  if (auto reason = nostr::parse_relay_url(endpoint->get_string(), url);
      !reason.empty())
    return fail("endpoint", reason);
  out.endpoint = url.to_string();
  auto admin_url = obj.if_contains("admin_url");
  if (!admin_url)
    return fail("admin_url", "required");
  if (!admin_url->is_string() || !is_admin_url(admin_url->get_string()))
    return fail("admin_url", "expected an http:// or https:// URL of the "
                             "peer's admin API (scheme, host and port only)");
  out.admin_url = std::string{admin_url->get_string()};
  if (out.admin_url.back() == '/')
    out.admin_url.pop_back();
  if (auto ca = obj.if_contains("ca"))
    if (auto failure = read_string(*ca, "ca", out.ca); !failure.empty())
      return failure;
  if (auto mode = obj.if_contains("mode"))
    if (auto failure = read_enum(*mode, "mode", all_peer_modes, out.mode);
        !failure.empty())
      return failure;
  auto filters = obj.if_contains("filters");
  if (!filters)
    return fail("filters", "required");
  if (auto failure = json_body::read_filters(*filters, "filters", out.filters);
      !failure.empty())
    return failure;
  if (auto password = obj.if_contains("password"))
    if (auto failure = read_string(*password, "password", out.password);
        !failure.empty())
      return failure;
  if (auto collections = obj.if_contains("collections"))
    return read_names(*collections, "collections", out.collections);
  return {};
}

json::value definition_value(const peer_definition& def) {
  json::array filters;
  for (const auto& f : def.filters)
    filters.push_back(json::parse(nostr::to_json(f)));
  json::array collections;
  for (const auto& name : def.collections)
    collections.emplace_back(name);
  return json::object{
    {"name", def.name},
    {"endpoint", def.endpoint},
    {"admin_url", def.admin_url},
    {"ca", def.ca},
    {"mode", to_string(def.mode)},
    {"filters", std::move(filters)},
    {"collections", std::move(collections)},
    {"password", def.password},
  };
}

json::value version_value(const cluster::version_vector& version) {
  json::object out;
  for (const auto& [member, counter] : version.counters())
    out[member] = counter;
  return out;
}

std::string read_version(const json::value& v, const std::string& path,
                         cluster::version_vector& out) {
  if (!v.is_object())
    return fail(path, "expected an object of counters by node pubkey");
  out = {};
  for (const auto& entry : v.get_object()) {
    auto key = std::string{entry.key()};
    if (!json_body::is_lower_hex64(key))
      return fail(json_body::child(path, key),
                  "expected a node pubkey (64 lowercase hex) as the key");
    uint64_t counter = 0;
    if (auto failure = json_body::read_count(entry.value(),
                                             json_body::child(path, key),
                                             counter);
        !failure.empty())
      return failure;
    out.set(key, counter);
  }
  return {};
}

int64_t int_or(const json::object& obj, std::string_view key, int64_t fallback) {
  auto v = obj.if_contains(key);
  return v && v->is_int64() ? v->get_int64() : fallback;
}

std::string string_or(const json::object& obj, std::string_view key) {
  auto v = obj.if_contains(key);
  return v && v->is_string() ? std::string{v->get_string()} : std::string{};
}

std::string pbkdf2_hex(std::string_view password, const std::string& salt,
                       uint32_t iterations) {
  std::array<uint8_t, 32> out{};
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()),
                    static_cast<int>(iterations), EVP_sha256(),
                    static_cast<int>(out.size()), out.data());
  return nostr::to_hex(out);
}

/// The parts of a password hash: iterations, salt (raw), hash (hex).
struct hash_parts {
  uint32_t iterations = 0;
  std::string salt;
  std::string hash;
};

std::optional<hash_parts> split_hash(std::string_view text) {
  constexpr std::string_view prefix = "pbkdf2-sha256$";
  if (text.rfind(prefix, 0) != 0)
    return std::nullopt;
  text.remove_prefix(prefix.size());
  auto d1 = text.find('$');
  if (d1 == std::string_view::npos)
    return std::nullopt;
  auto d2 = text.find('$', d1 + 1);
  if (d2 == std::string_view::npos)
    return std::nullopt;
  auto iterations = text.substr(0, d1);
  auto salt_hex = text.substr(d1 + 1, d2 - d1 - 1);
  auto hash_hex = text.substr(d2 + 1);
  if (iterations.empty() || iterations.size() > 7
      || !std::all_of(iterations.begin(), iterations.end(),
                      [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  hash_parts parts;
  parts.iterations = static_cast<uint32_t>(std::stoul(std::string{iterations}));
  if (parts.iterations == 0 || salt_hex.empty() || salt_hex.size() % 2 != 0
      || salt_hex.size() > 128 || !json_body::is_lower_hex64(hash_hex))
    return std::nullopt;
  parts.salt.resize(salt_hex.size() / 2);
  if (!nostr::from_hex(salt_hex, reinterpret_cast<uint8_t*>(parts.salt.data()),
                       parts.salt.size()))
    return std::nullopt;
  parts.hash = std::string{hash_hex};
  return parts;
}

} // namespace

// -- enums --------------------------------------------------------------------

std::string to_string(federation_mode x) {
  switch (x) {
    case federation_mode::sync:
      return "sync";
    case federation_mode::publish:
      return "publish";
    case federation_mode::subscribe:
      return "subscribe";
  }
  return "sync";
}

std::string to_string(incoming_policy x) {
  switch (x) {
    case incoming_policy::auto_accept:
      return "auto_accept";
    case incoming_policy::require_approval:
      return "require_approval";
    case incoming_policy::require_password:
      return "require_password";
    case incoming_policy::deny:
      return "deny";
  }
  return "deny";
}

std::string to_string(peer_mode x) {
  return x == peer_mode::sync ? "sync" : "paused";
}

std::string to_string(link_status x) {
  switch (x) {
    case link_status::active:
      return "active";
    case link_status::pending:
      return "pending";
    case link_status::suspended:
      return "suspended";
    case link_status::revoked:
      return "revoked";
  }
  return "revoked";
}

bool from_string(std::string_view text, federation_mode& out) {
  return enum_from(text, all_federation_modes, out);
}

bool from_string(std::string_view text, incoming_policy& out) {
  return enum_from(text, all_incoming_policies, out);
}

bool from_string(std::string_view text, peer_mode& out) {
  return enum_from(text, all_peer_modes, out);
}

bool from_string(std::string_view text, link_status& out) {
  return enum_from(text, all_link_statuses, out);
}

bool is_admin_url(std::string_view url) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (url.rfind(scheme, 0) != 0)
      continue;
    auto rest = url.substr(scheme.size());
    if (!rest.empty() && rest.back() == '/')
      rest.remove_suffix(1);
    return !rest.empty() && rest.front() != ':'
           && std::none_of(rest.begin(), rest.end(), [](char c) {
                return c == '/' || c == '?' || c == '#' || c == '@'
                       || static_cast<unsigned char>(c) <= ' ';
              });
  }
  return false;
}

bool is_peer_name(std::string_view name) {
  return name.size() <= 48 && json_body::is_definition_id(name);
}

// -- definitions --------------------------------------------------------------

caf::expected<peer_definition>
parse_peer_definition(std::string_view text,
                      const std::string& name_from_path) {
  auto obj = json_body::parse_body(text);
  if (!obj)
    return obj.error();
  peer_definition out;
  if (auto failure = read_definition(*obj, name_from_path, out);
      !failure.empty())
    return json_body::invalid(std::move(failure));
  return out;
}

std::string to_json(const peer_definition& def) {
  return json::serialize(definition_value(def));
}

bool operator==(const peer_definition& x, const peer_definition& y) {
  return to_json(x) == to_json(y);
}

bool operator==(const collection_definition& x,
                const collection_definition& y) {
  if (x.name != y.name || x.filters.size() != y.filters.size())
    return false;
  for (size_t i = 0; i < x.filters.size(); ++i)
    if (nostr::to_json(x.filters[i]) != nostr::to_json(y.filters[i]))
      return false;
  return true;
}

// -- records ------------------------------------------------------------------

std::string to_json(const cluster::version_vector& version) {
  return json::serialize(version_value(version));
}

caf::expected<cluster::version_vector>
parse_version(std::string_view text, const std::string& field) {
  json::error_code ec;
  auto v = json::parse(text, ec);
  if (ec)
    return json_body::invalid(fail(field, "invalid JSON: " + ec.message()));
  cluster::version_vector out;
  if (auto failure = read_version(v, field, out); !failure.empty())
    return json_body::invalid(std::move(failure));
  return out;
}

std::string to_json(const peer_record& r) {
  json::array pending;
  for (const auto& n : r.pending)
    pending.push_back(json::object{{"kind", n.kind},
                                   {"attempts", n.attempts},
                                   {"next_at", n.next_at}});
  const auto& h = r.handshake;
  return json::serialize(json::object{
    {"definition", definition_value(r.def)},
    {"incoming", r.incoming},
    {"status", to_string(r.status)},
    {"version", version_value(r.version)},
    {"pinned", r.pinned},
    {"pin_mismatch", r.pin_mismatch},
    {"released_pin", r.released_pin},
    {"last_seen", r.last_seen},
    {"handshake", json::object{{"success", h.success},
                               {"status", h.status},
                               {"message", h.message},
                               {"remote_link_id", h.remote_link_id},
                               {"http_status", h.http_status},
                               {"error", h.error},
                               {"at", h.at}}},
    {"pending", std::move(pending)},
    {"removed", r.removed},
  });
}

caf::expected<peer_record> parse_peer_record(std::string_view text) {
  auto obj = json_body::parse_object(text);
  if (!obj)
    return obj.error();
  peer_record r;
  auto def = obj->if_contains("definition");
  if (!def || !def->is_object())
    return json_body::invalid("definition: required");
  if (auto failure = read_definition(def->get_object(), {}, r.def);
      !failure.empty())
    return json_body::invalid("definition." + failure);
  if (auto v = obj->if_contains("incoming"); v && v->is_bool())
    r.incoming = v->get_bool();
  if (!from_string(string_or(*obj, "status"), r.status))
    return json_body::invalid("status: unknown link status");
  if (auto v = obj->if_contains("version"))
    if (auto failure = read_version(*v, "version", r.version);
        !failure.empty())
      return json_body::invalid(std::move(failure));
  r.pinned = string_or(*obj, "pinned");
  r.pin_mismatch = string_or(*obj, "pin_mismatch");
  r.released_pin = string_or(*obj, "released_pin");
  r.last_seen = int_or(*obj, "last_seen", 0);
  if (auto v = obj->if_contains("handshake"); v && v->is_object()) {
    const auto& h = v->get_object();
    auto& out = r.handshake;
    if (auto ok = h.if_contains("success"); ok && ok->is_bool())
      out.success = ok->get_bool();
    out.status = string_or(h, "status");
    out.message = string_or(h, "message");
    out.remote_link_id = string_or(h, "remote_link_id");
    out.http_status = static_cast<uint32_t>(int_or(h, "http_status", 0));
    out.error = string_or(h, "error");
    out.at = int_or(h, "at", 0);
  }
  if (auto v = obj->if_contains("pending"); v && v->is_array())
    for (const auto& entry : v->get_array()) {
      if (!entry.is_object())
        continue;
      const auto& n = entry.get_object();
      r.pending.push_back({string_or(n, "kind"),
                           static_cast<uint32_t>(int_or(n, "attempts", 0)),
                           int_or(n, "next_at", 0)});
    }
  if (auto v = obj->if_contains("removed"); v && v->is_bool())
    r.removed = v->get_bool();
  return r;
}

versioned_status settle(const versioned_status& ours,
                        const versioned_status& theirs) {
  auto most_restrictive = std::max(ours.status, theirs.status);
  switch (cluster::compare(ours.version, theirs.version)) {
    case cluster::causal_order::before:
      // Theirs saw ours; only a revocation is final.
      if (ours.status == link_status::revoked)
        return {link_status::revoked, theirs.version};
      return theirs;
    case cluster::causal_order::after:
    case cluster::causal_order::equal:
      if (theirs.status == link_status::revoked
          && ours.status != link_status::revoked)
        return {link_status::revoked, ours.version};
      return ours;
    case cluster::causal_order::concurrent:
      break;
  }
  return {most_restrictive, cluster::merge(ours.version, theirs.version)};
}

// -- passwords ----------------------------------------------------------------

std::string hash_password(std::string_view password) {
  std::string salt(password_salt_bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()),
             static_cast<int>(salt.size()));
  return "pbkdf2-sha256$" + std::to_string(password_iterations) + "$"
         + nostr::to_hex(reinterpret_cast<const uint8_t*>(salt.data()),
                         salt.size())
         + "$" + pbkdf2_hex(password, salt, password_iterations);
}

bool is_password_hash(std::string_view hash) {
  return split_hash(hash).has_value();
}

bool password_matches(std::string_view password, std::string_view hash) {
  auto parts = split_hash(hash);
  if (!parts)
    return false;
  auto computed = pbkdf2_hex(password, parts->salt, parts->iterations);
  return CRYPTO_memcmp(computed.data(), parts->hash.data(), computed.size())
         == 0;
}

namespace {

/// The `u` tag of a NIP-98 Authorization header; "" when it has none.
std::string signed_url(std::string_view authorization) {
  constexpr std::string_view scheme = "Nostr ";
  if (authorization.substr(0, scheme.size()) != scheme)
    return {};
  auto text = nostr::base64_decode(authorization.substr(scheme.size()));
  if (!text)
    return {};
  json::error_code ec;
  auto parsed = json::parse(*text, ec);
  auto tags = !ec && parsed.is_object() ? parsed.as_object().if_contains("tags")
                                        : nullptr;
  if (!tags || !tags->is_array())
    return {};
  for (const auto& tag : tags->get_array())
    if (tag.is_array() && tag.get_array().size() >= 2
        && tag.get_array()[0] == "u" && tag.get_array()[1].is_string())
      return std::string{tag.get_array()[1].get_string()};
  return {};
}

} // namespace

std::string answer_proof(const nostr::keypair& keys,
                         std::string_view authorization,
                         std::string_view fallback_url,
                         std::string_view method, int64_t now) {
  auto url = signed_url(authorization);
  return nostr::make_http_auth(keys, url.empty() ? fallback_url : url, method,
                               authorization, now);
}

std::string proven_key(std::string_view proof, std::string_view url,
                       std::string_view method, std::string_view authorization,
                       int64_t now) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos)
    return {};
  nostr::http_auth_event ev;
  if (!nostr::verify_http_auth_either_scheme(proof, url.substr(scheme_end + 3),
                                             method, authorization, now, &ev)
         .empty())
    return {};
  return nostr::to_hex(ev.pubkey);
}

} // namespace ferry
