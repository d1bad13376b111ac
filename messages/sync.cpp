#include "messages/sync.hpp"

#include "messages/json_body.hpp"
#include "messages/nostr/bech32.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/nip98.hpp"
#include "messages/nostr/relay_url.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>

namespace ferry {

namespace {

namespace json = boost::json;

constexpr int64_t max_overlap_window = 86400;

constexpr std::array<sync_direction, 3> all_directions{
  sync_direction::down, sync_direction::up, sync_direction::both};
constexpr std::array<sync_mode, 2> all_sync_modes{sync_mode::req_stream,
                                                  sync_mode::negentropy};
constexpr std::array<relay_info_mode, 3> all_relay_info_modes{
  relay_info_mode::required, relay_info_mode::best_effort,
  relay_info_mode::disabled};
constexpr std::array<auth_mode, 3> all_auth_modes{
  auth_mode::on_challenge, auth_mode::always, auth_mode::never};

using json_body::child;
using json_body::fail;
using json_body::item;
using json_body::parse_enum;
using json_body::read_enum;
using json_body::read_string;
using json_body::unknown_keys;

/// A DNS name for SNI and certificate checks (IP literals have no SNI).
bool valid_hostname(std::string_view name) {
  return !name.empty() && name.size() <= 253 && name.front() != '.'
         && name.front() != '-'
         && std::all_of(name.begin(), name.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                     || c == '.' || c == '-' || c == '_';
            });
}

// -- the definition's parts ---------------------------------------------------

std::string read_pubkeys(const json::value& v, const std::string& path,
                         std::vector<std::string>& out) {
  if (!v.is_array())
    return fail(path, "expected an array of pubkeys (64 lowercase hex or npub)");
  out.clear();
  const auto& items = v.get_array();
  for (size_t i = 0; i < items.size(); ++i) {
    auto text = items[i].is_string() ? std::string_view{items[i].get_string()}
                                     : std::string_view{};
    if (json_body::is_lower_hex64(text)) {
      out.emplace_back(text);
    } else if (auto key = nostr::from_npub(text)) {
      out.push_back(nostr::to_hex(*key));
    } else {
      return fail(item(path, i), "expected 64 lowercase hex characters or an "
                                 "npub1... key");
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return {};
}

std::string read_kinds(const json::value& v, const std::string& path,
                       std::vector<int64_t>& out) {
  if (!v.is_array())
    return fail(path, "expected an array of event kinds (integers in 0..65535)");
  out.clear();
  const auto& items = v.get_array();
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_int64() || items[i].get_int64() < 0
        || items[i].get_int64() > 65535)
      return fail(item(path, i), "expected an event kind, an integer in "
                                 "0..65535");
    out.push_back(items[i].get_int64());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return {};
}

std::string read_rate_limit(const json::value& v, rate_limit& out) {
  const std::string path = "policy.rate_limit";
  if (!v.is_object())
    return fail(path, "expected an object with rate and burst");
  const auto& obj = v.get_object();
  if (auto failure = unknown_keys(obj, path, {"rate", "burst"});
      !failure.empty())
    return failure;
  if (auto rate = obj.if_contains("rate")) {
    if (!rate->is_number() || rate->to_number<double>() < 0)
      return fail(child(path, "rate"),
                  "expected events per second, a number of at least 0 (0: no "
                  "limit)");
    out.rate = rate->to_number<double>();
  }
  if (auto burst = obj.if_contains("burst")) {
    if (!burst->is_int64() || burst->get_int64() < 0)
      return fail(child(path, "burst"), "expected a non-negative integer");
    out.burst = burst->get_int64();
  }
  if (out.rate > 0 && out.burst < 1)
    return fail(child(path, "burst"), "expected at least 1 when rate is set");
  return {};
}

std::string read_policy(const json::value& v, sync_policy& out) {
  if (!v.is_object())
    return fail("policy", "expected an object of built-in policy rules");
  const auto& obj = v.get_object();
  if (auto failure = unknown_keys(
        obj, "policy",
        {"allowed_pubkeys", "denied_pubkeys", "allowed_kinds", "denied_kinds",
         "max_content_bytes", "max_tags", "max_age_seconds",
         "max_future_seconds", "rate_limit"});
      !failure.empty())
    return failure;
  for (auto [key, list] : {std::pair{"allowed_pubkeys", &out.allowed_pubkeys},
                           std::pair{"denied_pubkeys", &out.denied_pubkeys}})
    if (auto x = obj.if_contains(key))
      if (auto failure = read_pubkeys(*x, child("policy", key), *list);
          !failure.empty())
        return failure;
  for (auto [key, list] : {std::pair{"allowed_kinds", &out.allowed_kinds},
                           std::pair{"denied_kinds", &out.denied_kinds}})
    if (auto x = obj.if_contains(key))
      if (auto failure = read_kinds(*x, child("policy", key), *list);
          !failure.empty())
        return failure;
  for (auto [key, value] :
       {std::pair{"max_content_bytes", &out.max_content_bytes},
        std::pair{"max_tags", &out.max_tags},
        std::pair{"max_age_seconds", &out.max_age_seconds},
        std::pair{"max_future_seconds", &out.max_future_seconds}})
    if (auto x = obj.if_contains(key)) {
      if (!x->is_int64() || x->get_int64() < 0)
        return fail(child("policy", key),
                    "expected a non-negative integer (0: no limit)");
      *value = x->get_int64();
    }
  if (auto x = obj.if_contains("rate_limit"))
    return read_rate_limit(*x, out.rate_limit);
  return {};
}

std::string read_auth(const json::value& v, auth_mode& out) {
  if (!v.is_object())
    return fail("auth", "expected an object with type and mode");
  const auto& obj = v.get_object();
  if (auto failure = unknown_keys(obj, "auth", {"type", "mode"});
      !failure.empty())
    return failure;
  if (auto type = obj.if_contains("type");
      type && !(type->is_string() && type->get_string() == "nip42"))
    return fail("auth.type", "expected \"nip42\"");
  if (auto mode = obj.if_contains("mode"))
    return read_enum(*mode, "auth.mode", all_auth_modes, out);
  return {};
}

std::string read_pin(const json::value& v, const std::string& path,
                     tls_pin& out) {
  if (!v.is_object())
    return fail(path, "expected an object with type and value");
  const auto& obj = v.get_object();
  if (auto failure = unknown_keys(obj, path, {"type", "value"});
      !failure.empty())
    return failure;
  if (auto type = obj.if_contains("type");
      type && !(type->is_string() && type->get_string() == "spki_sha256"))
    return fail(child(path, "type"), "expected \"spki_sha256\"");
  auto value = obj.if_contains("value");
  if (!value)
    return fail(child(path, "value"), "required");
  if (!value->is_string()
      || !pin_digest(tls_pin{"spki_sha256", std::string{value->get_string()}}))
    return fail(child(path, "value"),
                "expected 64 hex characters or base64 of 32 bytes");
  out.value = std::string{value->get_string()};
  return {};
}

/// Reads `tls` and records which keys were given, for the checks against
/// the URL that follow.
std::string read_tls(const json::value& v, sync_tls& out, bool& mode_given) {
  if (!v.is_object())
    return fail("tls", "expected an object");
  const auto& obj = v.get_object();
  if (auto failure
      = unknown_keys(obj, "tls",
                     {"mode", "hostname", "ca_certfile", "client_certfile",
                      "client_keyfile", "pins"});
      !failure.empty())
    return failure;
  if (auto mode = obj.if_contains("mode")) {
    mode_given = true;
    if (!mode->is_string()
        || (mode->get_string() != "required" && mode->get_string() != "disabled"))
      return fail("tls.mode", "expected one of required, disabled");
    out.mode = std::string{mode->get_string()};
  }
  if (auto hostname = obj.if_contains("hostname")) {
    if (auto failure = read_string(*hostname, "tls.hostname", out.hostname);
        !failure.empty())
      return failure;
    std::transform(out.hostname.begin(), out.hostname.end(),
                   out.hostname.begin(), [](char c) {
                     return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a')
                                                 : c;
                   });
    if (!out.hostname.empty() && !valid_hostname(out.hostname))
      return fail("tls.hostname", "expected a DNS name");
  }
  for (auto [key, field] :
       {std::pair{"ca_certfile", &out.ca_certfile},
        std::pair{"client_certfile", &out.client_certfile},
        std::pair{"client_keyfile", &out.client_keyfile}})
    if (auto file = obj.if_contains(key))
      if (auto failure = read_string(*file, child("tls", key), *field);
          !failure.empty())
        return failure;
  if (auto pins = obj.if_contains("pins")) {
    if (!pins->is_array())
      return fail("tls.pins", "expected an array of pins");
    const auto& items = pins->get_array();
    out.pins.clear();
    for (size_t i = 0; i < items.size(); ++i)
      if (auto failure = read_pin(items[i], item("tls.pins", i),
                                  out.pins.emplace_back());
          !failure.empty())
        return failure;
  }
  return {};
}

/// The rules that join `tls` and `url`. Without an explicit tls.mode the
/// URL's scheme decides (wss:// required, ws:// disabled); an explicit mode
/// must agree with the scheme, so TLS is never dropped behind the
/// operator's back.
std::string check_tls_against_url(sync_server& s, bool mode_given) {
  auto secure = s.url.rfind("wss://", 0) == 0;
  auto& tls = s.tls;
  if (!mode_given)
    tls.mode = secure ? "required" : "disabled";
  if (tls.mode == "required" && !secure)
    return fail("tls.mode", "\"required\" needs a wss:// url");
  if (tls.mode == "disabled") {
    if (secure)
      return fail("tls.mode", "\"disabled\" needs a ws:// url");
    // Settings that would be silently ignored are refused instead.
    for (auto [key, set] :
         {std::pair{"hostname", !tls.hostname.empty()},
          std::pair{"ca_certfile", !tls.ca_certfile.empty()},
          std::pair{"client_certfile", !tls.client_certfile.empty()},
          std::pair{"client_keyfile", !tls.client_keyfile.empty()},
          std::pair{"pins", !tls.pins.empty()}})
      if (set)
        return fail(child("tls", key), "needs tls.mode \"required\"");
  }
  if (tls.client_certfile.empty() != tls.client_keyfile.empty())
    return tls.client_keyfile.empty()
             ? fail("tls.client_keyfile", "needed with tls.client_certfile")
             : fail("tls.client_certfile", "needed with tls.client_keyfile");
  return {};
}

std::string read_server(const json::object& obj, const std::string& id_from_path,
                        sync_server& out) {
  if (auto failure
      = unknown_keys(obj, "",
                     {"id", "url", "enabled", "auth_pubkey", "filters",
                      "direction", "mode", "overlap_window_seconds",
                      "follow_deletions", "reconcile_when_empty", "policy",
                      "relay_info_mode", "auth", "tls", "metadata"});
      !failure.empty())
    return failure;
  if (auto id = obj.if_contains("id")) {
    if (auto failure = read_string(*id, "id", out.id); !failure.empty())
      return failure;
    if (!id_from_path.empty() && out.id != id_from_path)
      return fail("id", "does not match the id in the path");
  } else if (!id_from_path.empty()) {
    out.id = id_from_path;
  } else {
    return fail("id", "required");
  }
  if (!json_body::is_definition_id(out.id))
    return fail("id", "expected 1 to 64 characters of a-z, 0-9, '.', '_' or "
                      "'-', starting with a letter or digit");
  auto url = obj.if_contains("url");
  if (!url)
    return fail("url", "required");
  if (!url->is_string())
    return fail("url", "expected a ws:// or wss:// URL");
  nostr::relay_url parsed;
  if (auto reason = nostr::parse_relay_url(url->get_string(), parsed);
      !reason.empty())
    return fail("url", reason);
  out.url = parsed.to_string();
  if (auto enabled = obj.if_contains("enabled"))
    if (auto failure = json_body::read_bool(*enabled, "enabled", out.enabled);
        !failure.empty())
      return failure;
  if (auto pubkey = obj.if_contains("auth_pubkey")) {
    if (!pubkey->is_string()
        || !(pubkey->get_string().empty() || json_body::is_lower_hex64(pubkey->get_string())))
      return fail("auth_pubkey",
                  "expected 64 lowercase hex characters or an empty string");
    out.auth_pubkey = std::string{pubkey->get_string()};
  }
  auto filters = obj.if_contains("filters");
  if (!filters)
    return fail("filters", "required");
  if (auto failure = json_body::read_filters(*filters, "filters", out.filters);
      !failure.empty())
    return failure;
  if (auto direction = obj.if_contains("direction"))
    if (auto failure = read_enum(*direction, "direction", all_directions,
                                 out.direction);
        !failure.empty())
      return failure;
  if (auto mode = obj.if_contains("mode"))
    if (auto failure = read_enum(*mode, "mode", all_sync_modes, out.mode);
        !failure.empty())
      return failure;
  if (auto overlap = obj.if_contains("overlap_window_seconds")) {
    auto in_range = overlap->is_int64() && overlap->get_int64() >= 0
                    && overlap->get_int64() <= max_overlap_window;
    if (!in_range)
      return fail("overlap_window_seconds",
                  "expected an integer in 0.."
                    + std::to_string(max_overlap_window));
    out.overlap_window_seconds = overlap->get_int64();
  }
  if (auto follow = obj.if_contains("follow_deletions"))
    if (auto failure = json_body::read_bool(*follow, "follow_deletions",
                                            out.follow_deletions);
        !failure.empty())
      return failure;
  if (auto reconcile = obj.if_contains("reconcile_when_empty"))
    if (auto failure = json_body::read_bool(*reconcile, "reconcile_when_empty",
                                            out.reconcile_when_empty);
        !failure.empty())
      return failure;
  if (auto policy = obj.if_contains("policy"))
    if (auto failure = read_policy(*policy, out.policy); !failure.empty())
      return failure;
  if (auto info = obj.if_contains("relay_info_mode"))
    if (auto failure = read_enum(*info, "relay_info_mode",
                                 all_relay_info_modes, out.relay_info);
        !failure.empty())
      return failure;
  if (auto auth = obj.if_contains("auth"))
    if (auto failure = read_auth(*auth, out.auth); !failure.empty())
      return failure;
  bool tls_mode_given = false;
  if (auto tls = obj.if_contains("tls"))
    if (auto failure = read_tls(*tls, out.tls, tls_mode_given);
        !failure.empty())
      return failure;
  if (auto failure = check_tls_against_url(out, tls_mode_given);
      !failure.empty())
    return failure;
  if (auto metadata = obj.if_contains("metadata"))
    return json_body::read_object_text(*metadata, "metadata",
                                       out.metadata_json);
  return {};
}

} // namespace

// -- enums --------------------------------------------------------------------

std::string to_string(sync_direction x) {
  switch (x) {
    case sync_direction::down:
      return "down";
    case sync_direction::up:
      return "up";
    case sync_direction::both:
      return "both";
  }
  return "unknown";
}

std::string to_string(sync_mode x) {
  switch (x) {
    case sync_mode::req_stream:
      return "req_stream";
    case sync_mode::negentropy:
      return "negentropy";
  }
  return "unknown";
}

std::string to_string(relay_info_mode x) {
  switch (x) {
    case relay_info_mode::required:
      return "required";
    case relay_info_mode::best_effort:
      return "best_effort";
    case relay_info_mode::disabled:
      return "disabled";
  }
  return "unknown";
}

std::string to_string(auth_mode x) {
  switch (x) {
    case auth_mode::on_challenge:
      return "on_challenge";
    case auth_mode::always:
      return "always";
    case auth_mode::never:
      return "never";
  }
  return "unknown";
}

bool from_string(std::string_view text, sync_direction& out) {
  return parse_enum(text, all_directions, out);
}

bool from_string(std::string_view text, sync_mode& out) {
  return parse_enum(text, all_sync_modes, out);
}

bool from_string(std::string_view text, relay_info_mode& out) {
  return parse_enum(text, all_relay_info_modes, out);
}

bool from_string(std::string_view text, auth_mode& out) {
  return parse_enum(text, all_auth_modes, out);
}

// -- definitions --------------------------------------------------------------

std::optional<nostr::bytes32> pin_digest(const tls_pin& pin) {
  if (pin.type != "spki_sha256")
    return std::nullopt;
  nostr::bytes32 digest{};
  if (pin.value.size() == 64)
    return nostr::from_hex(pin.value, digest) ? std::optional{digest}
                                              : std::nullopt;
  auto raw = nostr::base64_decode(pin.value);
  if (!raw || raw->size() != digest.size())
    return std::nullopt;
  std::copy(raw->begin(), raw->end(), digest.begin());
  return digest;
}

caf::expected<sync_server> parse_sync_server(std::string_view text,
                                             const std::string& id_from_path) {
  auto body = json_body::parse_body(text);
  if (!body)
    return body.error();
  sync_server result;
  if (auto failure = read_server(*body, id_from_path, result); !failure.empty())
    return json_body::invalid(failure);
  return result;
}

bool sync_policy::empty() const {
  return !any() && !rate_limit.enabled();
}

namespace {

/// The canonical JSON of a server's policy: every rule, in a fixed order.
std::string to_json(const sync_policy& p) {
  json::object obj;
  auto strings = [](const std::vector<std::string>& xs) {
    json::array out;
    for (const auto& x : xs)
      out.emplace_back(x);
    return out;
  };
  auto ints = [](const std::vector<int64_t>& xs) {
    json::array out;
    for (auto x : xs)
      out.emplace_back(x);
    return out;
  };
  obj["allowed_pubkeys"] = strings(p.allowed_pubkeys);
  obj["denied_pubkeys"] = strings(p.denied_pubkeys);
  obj["allowed_kinds"] = ints(p.allowed_kinds);
  obj["denied_kinds"] = ints(p.denied_kinds);
  obj["max_content_bytes"] = p.max_content_bytes;
  obj["max_tags"] = p.max_tags;
  obj["max_age_seconds"] = p.max_age_seconds;
  obj["max_future_seconds"] = p.max_future_seconds;
  json::object rate;
  // Boost.JSON writes every double with an exponent ("1E1"): whole rates
  // read better as integers.
  const auto& limit = p.rate_limit;
  if (limit.rate == std::floor(limit.rate) && limit.rate < 1e15)
    rate["rate"] = static_cast<int64_t>(limit.rate);
  else
    rate["rate"] = limit.rate;
  rate["burst"] = limit.burst;
  obj["rate_limit"] = std::move(rate);
  return json::serialize(obj);
}

} // namespace

std::string to_json(const sync_server& s) {
  std::string out = "{";
  auto key = [&out](std::string_view name) {
    if (out.back() != '{' && out.back() != '[')
      out += ',';
    nostr::append_json_string(out, name);
    out += ':';
  };
  auto text = [&](std::string_view name, std::string_view value) {
    key(name);
    nostr::append_json_string(out, value);
  };
  text("id", s.id);
  text("url", s.url);
  key("enabled");
  out += s.enabled ? "true" : "false";
  text("auth_pubkey", s.auth_pubkey);
  key("filters");
  out += '[';
  for (size_t i = 0; i < s.filters.size(); ++i) {
    if (i > 0)
      out += ',';
    out += nostr::to_json(s.filters[i]);
  }
  out += ']';
  text("direction", to_string(s.direction));
  text("mode", to_string(s.mode));
  key("overlap_window_seconds");
  out += std::to_string(s.overlap_window_seconds);
  key("follow_deletions");
  out += s.follow_deletions ? "true" : "false";
  key("reconcile_when_empty");
  out += s.reconcile_when_empty ? "true" : "false";
  key("policy");
  out += to_json(s.policy);
  text("relay_info_mode", to_string(s.relay_info));
  key("auth");
  out += '{';
  text("type", "nip42");
  text("mode", to_string(s.auth));
  out += '}';
  key("tls");
  out += '{';
  text("mode", s.tls.mode);
  text("hostname", s.tls.hostname);
  text("ca_certfile", s.tls.ca_certfile);
  text("client_certfile", s.tls.client_certfile);
  text("client_keyfile", s.tls.client_keyfile);
  key("pins");
  out += '[';
  for (size_t i = 0; i < s.tls.pins.size(); ++i) {
    if (i > 0)
      out += ',';
    out += '{';
    text("type", s.tls.pins[i].type);
    text("value", s.tls.pins[i].value);
    out += '}';
  }
  out += "]}";
  key("metadata");
  out += s.metadata_json;
  out += '}';
  return out;
}

bool operator==(const sync_server& x, const sync_server& y) {
  return to_json(x) == to_json(y);
}

bool operator!=(const sync_server& x, const sync_server& y) {
  return !(x == y);
}

bool keeps_cursors(const sync_server& from, const sync_server& to) {
  return from.url == to.url && from.filters == to.filters
         && static_cast<const event_rules&>(from.policy)
              == static_cast<const event_rules&>(to.policy);
}

// -- runtime state ------------------------------------------------------------

std::string to_json(const sync_runtime_state& st) {
  std::string out = "{";
  for (auto [name, value] :
       {std::pair{"received", st.received}, std::pair{"accepted", st.accepted},
        std::pair{"duplicate", st.duplicate},
        std::pair{"rejected", st.rejected}, std::pair{"filtered", st.filtered},
        std::pair{"sent", st.sent}, std::pair{"sent_ok", st.sent_ok},
        std::pair{"sent_refused", st.sent_refused},
        std::pair{"echoes_skipped", st.echoes_skipped},
        std::pair{"up_cursor", st.up_cursor},
        std::pair{"up_era", st.up_era},
        std::pair{"refused", st.refused},
        std::pair{"neg_need_refused", st.neg_need_refused}}) {
    if (out.size() > 1)
      out += ',';
    out += '"';
    out += name;
    out += "\":";
    out += std::to_string(value);
  }
  for (auto [name, value] :
       {std::pair{"last_connected", st.last_connected},
        std::pair{"disconnected_at", st.disconnected_at},
        std::pair{"last_catchup_completed", st.last_catchup_completed}}) {
    out += ",\"";
    out += name;
    out += "\":";
    out += std::to_string(value);
  }
  out += ",\"last_error\":";
  nostr::append_json_string(out, st.last_error);
  out += '}';
  return out;
}

caf::expected<sync_runtime_state> parse_sync_runtime(std::string_view text) {
  auto obj = json_body::parse_object(text);
  if (!obj)
    return obj.error();
  sync_runtime_state st;
  std::string failure;
  for (auto [name, field] :
       {std::pair{"received", &st.received}, std::pair{"accepted", &st.accepted},
        std::pair{"duplicate", &st.duplicate},
        std::pair{"rejected", &st.rejected}, std::pair{"filtered", &st.filtered},
        std::pair{"sent", &st.sent}, std::pair{"sent_ok", &st.sent_ok},
        std::pair{"sent_refused", &st.sent_refused},
        std::pair{"echoes_skipped", &st.echoes_skipped},
        std::pair{"up_cursor", &st.up_cursor},
        std::pair{"up_era", &st.up_era},
        std::pair{"refused", &st.refused},
        std::pair{"neg_need_refused", &st.neg_need_refused}})
    if (auto v = obj->if_contains(name); v && failure.empty())
      failure = json_body::read_count(*v, name, *field);
  for (auto [name, field] :
       {std::pair{"last_connected", &st.last_connected},
        std::pair{"disconnected_at", &st.disconnected_at},
        std::pair{"last_catchup_completed", &st.last_catchup_completed}})
    if (auto v = obj->if_contains(name); v && failure.empty())
      failure = json_body::read_int(*v, name, *field);
  if (auto v = obj->if_contains("last_error"); v && failure.empty())
    failure = read_string(*v, "last_error", st.last_error);
  if (!failure.empty())
    return json_body::invalid(failure);
  return st;
}

bool operator==(const sync_runtime_state& x, const sync_runtime_state& y) {
  return to_json(x) == to_json(y);
}

} // namespace ferry
