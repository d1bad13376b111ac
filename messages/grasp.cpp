#include "messages/grasp.hpp"

#include "messages/json_body.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/relay_url.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace ferry::grasp {

namespace {

namespace json = boost::json;

json::array to_array(const std::vector<std::string>& xs) {
  json::array out;
  for (const auto& x : xs)
    out.emplace_back(x);
  return out;
}

/// Every reader returns "" or "<field>: <reason>".
std::string read_strings(const json::object& obj, std::string_view key,
                         std::vector<std::string>& out) {
  auto v = obj.if_contains(key);
  if (!v)
    return {};
  auto list = v->if_array();
  if (!list)
    return std::string{key} + ": expected an array of strings";
  out.clear();
  for (const auto& item : *list) {
    if (!item.is_string())
      return std::string{key} + ": expected an array of strings";
    out.emplace_back(item.get_string());
  }
  return {};
}

std::string read_int(const json::object& obj, std::string_view key,
                     int64_t& out) {
  auto v = obj.if_contains(key);
  return v ? json_body::read_int(*v, std::string{key}, out) : std::string{};
}

std::string read_string(const json::object& obj, std::string_view key,
                        std::string& out) {
  auto v = obj.if_contains(key);
  return v ? json_body::read_string(*v, std::string{key}, out) : std::string{};
}

} // namespace

bool is_root_kind(uint32_t kind) {
  return std::find(root_kinds.begin(), root_kinds.end(), kind)
         != root_kinds.end();
}

std::string address_of(const nostr::event& announcement) {
  return std::to_string(kind_announcement) + ":"
         + nostr::to_hex(announcement.pubkey) + ":"
         + std::string{nostr::d_tag(announcement)};
}

bool is_repo_address(std::string_view text) {
  auto prefix = std::to_string(kind_announcement) + ":";
  if (text.substr(0, prefix.size()) != prefix)
    return false;
  text.remove_prefix(prefix.size());
  return text.size() >= 65 && text[64] == ':'
         && json_body::is_lower_hex64(text.substr(0, 64));
}

std::vector<std::string> announced_relays(const nostr::event& announcement) {
  std::vector<std::string> result;
  for (const auto& tag : announcement.tags) {
    if (tag.empty() || tag[0] != "relays")
      continue;
    for (size_t i = 1; i < tag.size(); ++i)
      if (auto url = nostr::normalize_relay_url(tag[i]); !url.empty())
        result.push_back(std::move(url));
  }
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  return result;
}

bool is_service(const service_identity& service, const std::string& relay) {
  if (!service.url.empty() && relay == service.url)
    return true;
  if (service.domain.empty())
    return false;
  nostr::relay_url parsed;
  if (!nostr::parse_relay_url(relay, parsed).empty())
    return false;
  // The domain is read as a URL's authority, so "host" and "host:port"
  // compare the way URLs do (lowercase, brackets around IPv6).
  nostr::relay_url domain;
  if (!nostr::parse_relay_url("ws://" + service.domain, domain).empty())
    return false;
  if (parsed.host != domain.host)
    return false;
  // A port in the domain (after any IPv6 brackets) must match too.
  std::string_view text{service.domain};
  auto bracket = text.rfind(']');
  auto authority_end = bracket == std::string_view::npos ? text : text.substr(bracket);
  auto has_port = authority_end.find(':') != std::string_view::npos;
  return !has_port || parsed.port == domain.port;
}

std::string to_string(link_status x) {
  switch (x) {
    case link_status::disconnected:
      return "disconnected";
    case link_status::connected:
      return "connected";
  }
  return "unknown";
}

std::string to_json(const repo_sync_entry& x) {
  return json::serialize(json::object{
    {"relays", to_array(x.relays)},
    {"roots", to_array(x.roots)},
    {"announcement_id", x.announcement_id},
    {"announcement_created_at", x.announcement_created_at},
  });
}

std::string to_json(const relay_sync_entry& x) {
  return json::serialize(json::object{
    {"repos", to_array(x.repos)},
    {"roots", to_array(x.roots)},
    {"is_bootstrap", x.is_bootstrap},
    {"status", to_string(x.status)},
    {"last_connected", x.last_connected},
    {"disconnected_at", x.disconnected_at},
    {"full_sync_at", x.full_sync_at},
    {"reconcile_at", x.reconcile_at},
  });
}

caf::expected<repo_sync_entry> parse_repo_sync(std::string_view key,
                                               std::string_view text) {
  auto obj = json_body::parse_object(text);
  if (!obj)
    return obj.error();
  repo_sync_entry x;
  x.address = std::string{key};
  for (auto failure : {read_strings(*obj, "relays", x.relays),
                       read_strings(*obj, "roots", x.roots),
                       read_string(*obj, "announcement_id", x.announcement_id),
                       read_int(*obj, "announcement_created_at",
                                x.announcement_created_at)})
    if (!failure.empty())
      return json_body::invalid(std::move(failure));
  return x;
}

caf::expected<relay_sync_entry> parse_relay_sync(std::string_view key,
                                                 std::string_view text) {
  auto obj = json_body::parse_object(text);
  if (!obj)
    return obj.error();
  relay_sync_entry x;
  x.url = std::string{key};
  std::string status = to_string(x.status);
  for (auto failure :
       {read_strings(*obj, "repos", x.repos),
        read_strings(*obj, "roots", x.roots), read_string(*obj, "status", status),
        read_int(*obj, "last_connected", x.last_connected),
        read_int(*obj, "disconnected_at", x.disconnected_at),
        read_int(*obj, "full_sync_at", x.full_sync_at),
        read_int(*obj, "reconcile_at", x.reconcile_at)})
    if (!failure.empty())
      return json_body::invalid(std::move(failure));
  if (auto v = obj->if_contains("is_bootstrap")) {
    if (!v->is_bool())
      return json_body::invalid("is_bootstrap: expected a boolean");
    x.is_bootstrap = v->get_bool();
  }
  if (status == "connected")
    x.status = link_status::connected;
  else if (status == "disconnected")
    x.status = link_status::disconnected;
  else
    return json_body::invalid("status: expected connected or disconnected");
  return x;
}

bool operator==(const repo_sync_entry& x, const repo_sync_entry& y) {
  return x.address == y.address && to_json(x) == to_json(y);
}

bool operator==(const relay_sync_entry& x, const relay_sync_entry& y) {
  return x.url == y.url && to_json(x) == to_json(y);
}

} // namespace ferry::grasp
