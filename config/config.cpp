#include "config/config.hpp"

#include "messages/error.hpp"
#include "messages/nostr/negentropy.hpp"
#include "messages/nostr/relay_url.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

namespace ferry::config {

namespace {

/// What is wrong with a config, worded `key.path: message`. The file name is
/// prefixed once at the top, so the readers below need not carry it around.
using problem = std::optional<std::string>;

/// Stores one value into the config, or says why it cannot.
using leaf_reader =
  std::function<problem(const toml::node& node, const std::string& path)>;

/// A rule spanning several keys of one section; runs after all are read.
using section_rule =
  std::function<problem(const toml::table& table, const std::string& path)>;

/// One key of a table: a leaf (with `read`) or a section (with `fields`).
/// Keeping the schema as data gives one place that rejects unknown keys and
/// lets `key_paths` list exactly what the parser accepts.
struct field {
  std::string_view key;
  leaf_reader read;
  std::vector<field> fields;
  section_rule rule;
};

field leaf(std::string_view key, leaf_reader read) {
  return {key, std::move(read), {}, {}};
}

field section(std::string_view key, std::vector<field> fields,
              section_rule rule = {}) {
  return {key, {}, std::move(fields), std::move(rule)};
}

/// Longest interval accepted in seconds: a century still fits a nanosecond
/// `int64_t`, so no later conversion of it can overflow.
constexpr int64_t max_seconds = int64_t{100} * 365 * 24 * 3600;

constexpr int64_t max_int64 = std::numeric_limits<int64_t>::max();

/// Largest negentropy memory budget in MiB (1 TiB): far above any machine,
/// and its bytes fit a `size_t` with room to add to.
constexpr int64_t max_memory_mb = int64_t{1} << 20;

constexpr std::array<std::string_view, 7> log_levels{
  "trace", "debug", "info", "warn", "error", "critical", "off"};

/// Quotes like a TOML basic string, so the error stays on one line and shows
/// exactly what the file holds.
std::string toml_quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char escape[8];
          std::snprintf(escape, sizeof(escape), "\\u%04X",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escape;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

/// Shows a value as the operator wrote it. Tables and arrays are named rather
/// than printed: toml++ would spread them over several lines.
std::string render(const toml::node& node) {
  if (auto text = node.as_string())
    return toml_quote(text->get());
  if (node.is_table())
    return "a table";
  if (node.is_array())
    return "an array";
  std::ostringstream out;
  node.visit([&out](const auto& value) { out << value; });
  return out.str();
}

bool is_bare_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string child_path(const std::string& parent, std::string_view key) {
  auto name = is_bare_key(key) ? std::string{key} : toml_quote(key);
  return parent.empty() ? name : parent + "." + name;
}

problem mismatch(const std::string& path, std::string_view what,
                 const toml::node& got) {
  return path + ": expected " + std::string{what} + ", got " + render(got);
}

/// An integer in `min..max`; `what` words the whole expectation, type and
/// range together, so a wrong type and a bad value read the same.
template <class T>
leaf_reader integer(T& out, int64_t min, int64_t max, std::string what) {
  return [&out, min, max, what = std::move(what)](
           const toml::node& node, const std::string& path) -> problem {
    auto value = node.as_integer();
    if (!value || value->get() < min || value->get() > max)
      return mismatch(path, what, node);
    out = static_cast<T>(value->get());
    return std::nullopt;
  };
}

leaf_reader port(uint16_t& out) {
  return integer(out, 0, 65535, "an integer in 0..65535 (0: any free port)");
}

template <class T>
leaf_reader positive(T& out) {
  return integer(out, 1, max_int64, "a positive integer");
}

leaf_reader seconds(std::chrono::seconds& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    int64_t count = 0;
    auto read = integer(count, 1, max_seconds,
                        "an integer in 1.." + std::to_string(max_seconds));
    if (auto failure = read(node, path))
      return failure;
    out = std::chrono::seconds{count};
    return std::nullopt;
  };
}

leaf_reader boolean(bool& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    auto value = node.as_boolean();
    if (!value)
      return mismatch(path, "a boolean", node);
    out = value->get();
    return std::nullopt;
  };
}

/// A string that `valid` accepts.
leaf_reader string_if(std::string& out, std::string what,
                      std::function<bool(const std::string&)> valid) {
  return [&out, what = std::move(what), valid = std::move(valid)](
           const toml::node& node, const std::string& path) -> problem {
    auto value = node.as_string();
    if (!value || !valid(value->get()))
      return mismatch(path, what, node);
    out = value->get();
    return std::nullopt;
  };
}

leaf_reader text(std::string& out) {
  return string_if(out, "a string", [](const std::string&) { return true; });
}

leaf_reader non_empty(std::string& out, std::string what) {
  return string_if(out, std::move(what),
                   [](const std::string& value) { return !value.empty(); });
}

/// Literal addresses only: a host name would need a resolver at bind time and
/// could bind somewhere other than the operator thinks.
leaf_reader address(std::string& out) {
  return string_if(out, "an IPv4 or IPv6 address",
                   [](const std::string& value) {
                     boost::system::error_code error;
                     boost::asio::ip::make_address(value, error);
                     return !error;
                   });
}

/// NIP-11 wants the pubkey as 64 lowercase hex characters; clients compare it
/// byte for byte, so uppercase would not match.
leaf_reader pubkey(std::string& out) {
  return string_if(out, "64 lowercase hex characters or an empty string",
                   [](const std::string& value) {
                     return value.empty()
                            || (value.size() == 64
                                && std::all_of(value.begin(), value.end(),
                                               [](char c) {
                                                 return (c >= '0' && c <= '9')
                                                        || (c >= 'a'
                                                            && c <= 'f');
                                               }));
                   });
}

leaf_reader fraction(double& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    auto value = node.value<double>();
    if (!value || (!node.is_floating_point() && !node.is_integer())
        || *value < 0.0 || *value > 1.0)
      return mismatch(path, "a number in 0..1", node);
    out = *value;
    return std::nullopt;
  };
}

/// A list of pubkeys, each 64 lowercase hex characters.
leaf_reader pubkeys(std::vector<std::string>& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    auto list = node.as_array();
    if (!list)
      return mismatch(path, "an array of 64-hex pubkeys", node);
    std::vector<std::string> result;
    for (size_t i = 0; i < list->size(); ++i) {
      std::string key;
      auto item_path = path + "[" + std::to_string(i) + "]";
      if (auto failure = pubkey(key)(*list->get(i), item_path))
        return failure;
      if (key.empty())
        return mismatch(item_path, "64 lowercase hex characters", *list->get(i));
      result.push_back(std::move(key));
    }
    out = std::move(result);
    return std::nullopt;
  };
}

/// Empty, or a ws:// or wss:// URL as NIP-42 `relay` tags carry it.
leaf_reader relay_url_text(std::string& out) {
  return string_if(out, "an empty string or a ws:// or wss:// URL",
                   [](const std::string& value) {
                     nostr::relay_url parsed;
                     return value.empty()
                            || nostr::parse_relay_url(value, parsed).empty();
                   });
}

leaf_reader log_level(std::string& out) {
  std::string what = "one of";
  for (size_t i = 0; i < log_levels.size(); ++i) {
    what += i == 0 ? " " : (i + 1 == log_levels.size() ? " or " : ", ");
    what += log_levels[i];
  }
  return string_if(out, std::move(what), [](const std::string& value) {
    return std::find(log_levels.begin(), log_levels.end(), value)
           != log_levels.end();
  });
}

/// A default limit above the maximum would be clamped on every REQ; refusing
/// it points at the key the operator actually wrote.
section_rule default_within_max(const relay_limits& limits) {
  return [&limits](const toml::table& table,
                   const std::string& path) -> problem {
    if (limits.default_limit <= limits.max_limit)
      return std::nullopt;
    if (auto node = table.get("default_limit"))
      return mismatch(child_path(path, "default_limit"),
                      "at most " + child_path(path, "max_limit") + " ("
                        + std::to_string(limits.max_limit) + ")",
                      *node);
    return mismatch(child_path(path, "max_limit"),
                    "at least " + child_path(path, "default_limit") + " ("
                      + std::to_string(limits.default_limit) + ")",
                    *table.get("max_limit"));
  };
}

/// `[relay.tls]`: a certificate and its key go together, and a client CA
/// means nothing without TLS. Whether the files are usable is checked when
/// the node starts, where they are opened.
section_rule tls_pair(const relay_tls_config& tls) {
  return [&tls](const toml::table&, const std::string& path) -> problem {
    // The key at fault is the empty one, whether left out or written "".
    auto missing = [&path](std::string_view key, const std::string& what) {
      return child_path(path, key) + ": expected " + what + ", got \"\"";
    };
    if (!tls.certfile.empty() && tls.keyfile.empty())
      return missing("keyfile", "the path of the certificate's PEM private "
                                "key when " + child_path(path, "certfile")
                                  + " is set");
    if (tls.certfile.empty() && !tls.keyfile.empty())
      return missing("certfile", "the path of a PEM certificate when "
                                   + child_path(path, "keyfile") + " is set");
    if (tls.certfile.empty() && !tls.client_ca_file.empty())
      return missing("certfile",
                     "the path of a PEM certificate when "
                       + child_path(path, "client_ca_file")
                       + " is set (client certificates need TLS)");
    return std::nullopt;
  };
}

bool is_loopback(const std::string& address) {
  boost::system::error_code error;
  auto parsed = boost::asio::ip::make_address(address, error);
  return !error && parsed.is_loopback();
}

/// The inspection port speaks CAF's BASP in the clear, and CAF 0.17 allocates
/// whatever payload size a message header announces before any handshake (one
/// 30-byte header grew a node to 3.8 GB), and routes messages to any actor a
/// logged-in console was shown. A shared secret cannot guard that, so the port
/// stays on loopback until it speaks TLS.
section_rule console_on_loopback(const console_config& console) {
  return [&console](const toml::table& table,
                    const std::string& path) -> problem {
    if (is_loopback(console.address))
      return std::nullopt;
    return mismatch(child_path(path, "address"),
                    "a loopback address (127.0.0.1 or ::1): the console port "
                    "has no TLS yet, so it may not listen off loopback; reach "
                    "it through an SSH tunnel",
                    *table.get("address"));
  };
}

/// A TOML value as JSON, so `[[sync.server]]` tables can go through the
/// admin API's own validator and both accept exactly the same shape.
problem to_json_value(const toml::node& node, const std::string& path,
                      boost::json::value& out) {
  if (auto table = node.as_table()) {
    auto& object = out.emplace_object();
    for (auto&& [key, value] : *table) {
      boost::json::value converted;
      if (auto failure
          = to_json_value(value, child_path(path, key.str()), converted))
        return failure;
      object.emplace(key.str(), std::move(converted));
    }
  } else if (auto list = node.as_array()) {
    auto& array = out.emplace_array();
    for (size_t i = 0; i < list->size(); ++i)
      if (auto failure = to_json_value(*list->get(i),
                                       path + "[" + std::to_string(i) + "]",
                                       array.emplace_back(nullptr)))
        return failure;
  } else if (auto text = node.as_string()) {
    out = text->get();
  } else if (auto integer = node.as_integer()) {
    out = integer->get();
  } else if (auto boolean = node.as_boolean()) {
    out = boolean->get();
  } else if (auto number = node.as_floating_point();
             number && std::isfinite(number->get())) {
    out = number->get();
  } else {
    // Dates, times and non-finite numbers have no JSON form.
    return mismatch(path,
                    "a string, a finite number, a boolean, an array or a table",
                    node);
  }
  return std::nullopt;
}

/// `[[sync.server]]`: each table validated as the admin API validates a
/// body, its errors prefixed with the table's path; ids must be unique.
leaf_reader sync_servers(std::vector<sync_server>& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    auto list = node.as_array();
    if (!list)
      return mismatch(path, "an array of tables ([[sync.server]])", node);
    std::vector<sync_server> result;
    for (size_t i = 0; i < list->size(); ++i) {
      auto item_path = path + "[" + std::to_string(i) + "]";
      const auto& entry = *list->get(i);
      if (!entry.is_table())
        return mismatch(item_path, "a table", entry);
      boost::json::value body;
      if (auto failure = to_json_value(entry, item_path, body))
        return failure;
      auto server = parse_sync_server(boost::json::serialize(body));
      if (!server)
        return item_path + "." + ferry::render(server.error());
      auto same_id = std::find_if(result.begin(), result.end(),
                                  [&server](const sync_server& other) {
                                    return other.id == server->id;
                                  });
      if (same_id != result.end())
        return item_path + ".id: duplicate id " + toml_quote(server->id)
               + ", also in " + path + "["
               + std::to_string(same_id - result.begin()) + "]";
      result.push_back(std::move(*server));
    }
    out = std::move(result);
    return std::nullopt;
  };
}

/// "host" or "host:port", as the authority of a relay URL.
leaf_reader service_domain(std::string& out) {
  return string_if(out,
                   "a host name or host:port (e.g. \"git.example.com\"), or "
                   "an empty string",
                   [](const std::string& value) {
                     if (value.empty())
                       return true;
                     nostr::relay_url url;
                     return value.find('/') == std::string::npos
                            && value.find('?') == std::string::npos
                            && nostr::parse_relay_url("ws://" + value, url)
                                 .empty();
                   });
}

/// A list of ws:// or wss:// URLs, stored normalized, each once.
leaf_reader relay_urls(std::vector<std::string>& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    auto list = node.as_array();
    if (!list)
      return mismatch(path, "an array of ws:// or wss:// URLs", node);
    std::vector<std::string> result;
    for (size_t i = 0; i < list->size(); ++i) {
      auto item_path = path + "[" + std::to_string(i) + "]";
      const auto& item = *list->get(i);
      auto text = item.as_string();
      auto url = text ? nostr::normalize_relay_url(text->get()) : std::string{};
      if (url.empty())
        return mismatch(item_path, "a ws:// or wss:// URL", item);
      if (std::find(result.begin(), result.end(), url) != result.end())
        return mismatch(item_path, "a URL not listed before", item);
      result.push_back(std::move(url));
    }
    out = std::move(result);
    return std::nullopt;
  };
}

leaf_reader milliseconds(std::chrono::milliseconds& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    int64_t count = 0;
    auto read = integer(count, 1, max_seconds * 1000,
                        "an integer in 1.." + std::to_string(max_seconds * 1000));
    if (auto failure = read(node, path))
      return failure;
    out = std::chrono::milliseconds{count};
    return std::nullopt;
  };
}

// -- [infra] ------------------------------------------------------------------

bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253)
    return false;
  size_t start = 0;
  for (;;) {
    auto dot = name.find('.', start);
    auto label = name.substr(start, dot == std::string_view::npos
                                      ? std::string_view::npos
                                      : dot - start);
    auto ok = !label.empty() && label.size() <= 63 && label.front() != '-'
              && label.back() != '-'
              && std::all_of(label.begin(), label.end(), [](char c) {
                   return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                          || c == '-';
                 });
    if (!ok)
      return false;
    if (dot == std::string_view::npos)
      return true;
    start = dot + 1;
  }
}

/// The host of an http(s) URL without brackets, or nullopt when the URL has
/// user info, a query or a fragment (a base URL has none of them).
std::optional<std::string> base_url_host(std::string_view rest) {
  if (rest.find_first_of("?#@ ") != std::string_view::npos)
    return std::nullopt;
  auto authority = rest.substr(0, rest.find('/'));
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    return std::string{authority.substr(1, close - 1)};
  }
  return std::string{authority.substr(0, authority.find(':'))};
}

/// Empty, an https:// URL, or an http:// URL to a loopback address (the
/// management API gets the relays' secrets: never in plain text over a
/// network). Stored without trailing slashes, so paths append cleanly.
leaf_reader management_url(std::string& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    constexpr auto what = "empty, an https:// URL, or an http:// URL to a "
                          "loopback address (127.0.0.1, ::1, localhost), "
                          "without query or fragment";
    auto value = node.as_string();
    if (!value)
      return mismatch(path, what, node);
    std::string url = value->get();
    while (!url.empty() && url.back() == '/')
      url.pop_back();
    if (url.empty()) {
      out.clear();
      return std::nullopt;
    }
    auto lower = url;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    auto tls = lower.rfind("https://", 0) == 0;
    if (!tls && lower.rfind("http://", 0) != 0)
      return mismatch(path, what, node);
    auto host = base_url_host(std::string_view{url}.substr(tls ? 8 : 7));
    if (!host || host->empty())
      return mismatch(path, what, node);
    if (!tls && *host != "localhost" && !is_loopback(*host))
      return mismatch(path, what, node);
    out = std::move(url);
    return std::nullopt;
  };
}

leaf_reader dns_name_or_empty(std::string& out) {
  return string_if(out, "empty or a lowercase DNS name (relay.example.com)",
                   [](const std::string& value) {
                     return value.empty() || is_dns_name(value);
                   });
}

/// `roles`: a table of zooid roles, each a table with `pubkeys` (64-hex
/// pubkeys), `can_invite` and `can_manage`; kept as JSON for the API body.
leaf_reader infra_roles(std::string& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    auto table = node.as_table();
    if (!table)
      return mismatch(path, "a table of roles ({ member = { pubkeys = [...] } })",
                      node);
    for (auto&& [name, role] : *table) {
      auto role_path = child_path(path, name.str());
      auto fields = role.as_table();
      if (!fields)
        return mismatch(role_path,
                        "a table with pubkeys, can_invite and can_manage",
                        role);
      for (auto&& [key, value] : *fields) {
        auto key_path = child_path(role_path, key.str());
        if (key.str() == "pubkeys") {
          std::vector<std::string> ignored;
          if (auto failure = pubkeys(ignored)(value, key_path))
            return failure;
        } else if (key.str() == "can_invite" || key.str() == "can_manage") {
          if (!value.is_boolean())
            return mismatch(key_path, "a boolean", value);
        } else {
          return key_path + ": unknown key (a role has pubkeys, can_invite "
                            "and can_manage)";
        }
      }
    }
    boost::json::value roles;
    if (auto failure = to_json_value(node, path, roles))
      return failure;
    out = boost::json::serialize(roles);
    return std::nullopt;
  };
}

/// `[grasp]`: a service domain when enabled, and a reconciliation range
/// that is one.
section_rule grasp_rules(const grasp_config& grasp) {
  return [&grasp](const toml::table& table,
                  const std::string& path) -> problem {
    if (grasp.enabled && grasp.service_domain.empty())
      return mismatch(child_path(path, "service_domain"),
                      "a host name or host:port when grasp.enabled = true",
                      table.get("service_domain") ? *table.get("service_domain")
                                                  : *table.get("enabled"));
    if (grasp.reconcile_min > grasp.reconcile_max) {
      if (auto node = table.get("reconcile_max_seconds"))
        return mismatch(child_path(path, "reconcile_max_seconds"),
                        "at least " + child_path(path, "reconcile_min_seconds")
                          + " (" + std::to_string(grasp.reconcile_min.count())
                          + ")",
                        *node);
      return mismatch(child_path(path, "reconcile_min_seconds"),
                      "at most " + child_path(path, "reconcile_max_seconds")
                        + " (" + std::to_string(grasp.reconcile_max.count())
                        + ")",
                      *table.get("reconcile_min_seconds"));
    }
    return std::nullopt;
  };
}

/// A management API needs the domain to name the relays' hosts, and a cap
/// below the base would shrink the first retry.
section_rule infra_consistent(const infra_config& infra) {
  return [&infra](const toml::table& table,
                  const std::string& path) -> problem {
    if (!infra.api_url.empty() && infra.relay_domain.empty())
      return child_path(path, "relay_domain")
             + ": expected a DNS name when infra.api_url is set, got \"\"";
    if (infra.retry_cap_ms < infra.retry_base_ms)
      return mismatch(child_path(path, "retry_cap_ms"),
                      "at least infra.retry_base_ms ("
                        + std::to_string(infra.retry_base_ms) + ")",
                      table.get("retry_cap_ms") ? *table.get("retry_cap_ms")
                                                : *table.get("retry_base_ms"));
    return std::nullopt;
  };
}

/// The whole file, bound to the fields of `cfg` that each key fills.
std::vector<field> schema(config& cfg) {
  auto& relay = cfg.relay;
  auto& limits = relay.limits;
  return {
    section("relay",
            {
              leaf("address", address(relay.address)),
              leaf("port", port(relay.port)),
              leaf("name", text(relay.name)),
              leaf("description", text(relay.description)),
              leaf("contact", text(relay.contact)),
              leaf("icon", text(relay.icon)),
              leaf("operator_pubkey", pubkey(relay.operator_pubkey)),
              leaf("public_url", relay_url_text(relay.public_url)),
              leaf("auth_required", boolean(relay.auth_required)),
              leaf("compression", boolean(relay.compression)),
              section(
                "limits",
                {
                  leaf("max_frame_bytes", positive(limits.max_frame_bytes)),
                  leaf("max_subscriptions",
                       positive(limits.max_subscriptions)),
                  leaf("max_filters", positive(limits.max_filters)),
                  leaf("max_limit", positive(limits.max_limit)),
                  leaf("default_limit", positive(limits.default_limit)),
                  leaf("max_subscription_id_length",
                       positive(limits.max_subscription_id_length)),
                  leaf("max_future_seconds",
                       integer(limits.max_future_seconds, 1, max_seconds,
                               "an integer in 1.."
                                 + std::to_string(max_seconds))),
                  leaf("max_outbound_bytes",
                       positive(limits.max_outbound_bytes)),
                  leaf("max_inflight_messages",
                       positive(limits.max_inflight_messages)),
                },
                default_within_max(limits)),
              section(
                "negentropy",
                {
                  leaf("enabled", boolean(relay.negentropy.enabled)),
                  leaf("max_items", positive(relay.negentropy.max_items)),
                  leaf("max_sessions_per_connection",
                       positive(relay.negentropy.max_sessions_per_connection)),
                  leaf("idle_timeout_seconds",
                       seconds(relay.negentropy.idle_timeout)),
                  leaf("frame_size_limit",
                       integer(relay.negentropy.frame_size_limit,
                               nostr::negentropy::min_frame_size_limit,
                               max_int64,
                               "an integer of at least "
                                 + std::to_string(
                                   nostr::negentropy::min_frame_size_limit))),
                  leaf("max_memory_mb",
                       integer(relay.negentropy.max_memory_mb, 1,
                               max_memory_mb,
                               "an integer in 1.."
                                 + std::to_string(max_memory_mb))),
                }),
              section("tls",
                      {
                        leaf("certfile", text(relay.tls.certfile)),
                        leaf("keyfile", text(relay.tls.keyfile)),
                        leaf("client_ca_file", text(relay.tls.client_ca_file)),
                      },
                      tls_pair(relay.tls)),
            }),
    section("admin",
            {
              leaf("address", address(cfg.admin.address)),
              leaf("port", port(cfg.admin.port)),
              leaf("token", text(cfg.admin.token)),
              leaf("nip98_pubkeys", pubkeys(cfg.admin.nip98_pubkeys)),
              leaf("public_health", boolean(cfg.admin.public_health)),
            }),
    section("console",
            {
              leaf("address", address(cfg.console.address)),
              leaf("port", port(cfg.console.port)),
              leaf("secret", text(cfg.console.secret)),
              leaf("fault_injection", boolean(cfg.console.fault_injection)),
            },
            console_on_loopback(cfg.console)),
    section("supervision",
            {
              leaf("base_ms", integer(cfg.supervision.base_ms, 1, max_seconds,
                                      "a positive integer")),
              leaf("cap_ms", integer(cfg.supervision.cap_ms, 1, max_seconds,
                                     "a positive integer")),
              leaf("jitter", fraction(cfg.supervision.jitter)),
              leaf("stable_after_seconds",
                   integer(cfg.supervision.stable_after_seconds, 1,
                           max_seconds, "a positive integer")),
              leaf("max_restarts", integer(cfg.supervision.max_restarts, 1,
                                           max_int64, "a positive integer")),
              leaf("window_seconds",
                   integer(cfg.supervision.window_seconds, 1, max_seconds,
                           "a positive integer")),
            }),
    section("store",
            {
              leaf("path", non_empty(cfg.store.path, "a non-empty path")),
              leaf("block_cache_mb", positive(cfg.store.block_cache_mb)),
              leaf("write_buffer_mb", positive(cfg.store.write_buffer_mb)),
              leaf("sync_writes", boolean(cfg.store.sync_writes)),
              leaf("purge_interval_seconds",
                   seconds(cfg.store.purge_interval)),
              leaf("reserve_mb", integer(cfg.store.reserve_mb, 0, 1 << 30,
                                         "MiB in 0..1073741824 (0: no reserve)")),
            }),
    section("ingest",
            {
              leaf("verifiers",
                   integer(cfg.ingest.verifiers, 0, max_int64,
                           "a non-negative integer")),
              leaf("writer_batch_max", positive(cfg.ingest.writer_batch_max)),
            }),
    section("log",
            {
              leaf("level", log_level(cfg.log.level)),
            }),
    section("node",
            {
              leaf("key_file", non_empty(cfg.node.key_file, "a non-empty path")),
            }),
    section("grasp",
            {
              leaf("enabled", boolean(cfg.grasp.enabled)),
              leaf("service_domain", service_domain(cfg.grasp.service_domain)),
              leaf("bootstrap_relays", relay_urls(cfg.grasp.bootstrap_relays)),
              leaf("batch_window_ms", milliseconds(cfg.grasp.batch_window)),
              leaf("tick_seconds", seconds(cfg.grasp.tick)),
              leaf("resync_after_seconds", seconds(cfg.grasp.resync_after)),
              leaf("overlap_window_seconds",
                   seconds(cfg.grasp.overlap_window)),
              leaf("reconcile_min_seconds", seconds(cfg.grasp.reconcile_min)),
              leaf("reconcile_max_seconds", seconds(cfg.grasp.reconcile_max)),
              leaf("group_size",
                   integer(cfg.grasp.group_size, 1, 1000,
                           "an integer in 1..1000")),
              leaf("max_filters_per_subscription",
                   positive(cfg.grasp.max_filters_per_subscription)),
              leaf("max_filters_per_relay",
                   positive(cfg.grasp.max_filters_per_relay)),
              leaf("batch_timeout_seconds", seconds(cfg.grasp.batch_timeout)),
            },
            grasp_rules(cfg.grasp)),
    section("sync",
            {
              leaf("server", sync_servers(cfg.sync.servers)),
            }),
    section(
      "infra",
      {
        leaf("enabled", boolean(cfg.infra.enabled)),
        leaf("api_url", management_url(cfg.infra.api_url)),
        leaf("relay_domain", dns_name_or_empty(cfg.infra.relay_domain)),
        leaf("roles", infra_roles(cfg.infra.roles_json)),
        leaf("request_timeout_ms",
             integer(cfg.infra.request_timeout_ms, 1, 600000,
                     "an integer in 1..600000")),
        leaf("retry_base_ms",
             integer(cfg.infra.retry_base_ms, 1, max_seconds,
                     "a positive integer")),
        leaf("retry_cap_ms", integer(cfg.infra.retry_cap_ms, 1, max_seconds,
                                     "a positive integer")),
        leaf("max_attempts", integer(cfg.infra.max_attempts, 1, 1000,
                                     "an integer in 1..1000")),
        section("blossom",
                {
                  leaf("endpoint", text(cfg.infra.blossom.endpoint)),
                  leaf("region", text(cfg.infra.blossom.region)),
                  leaf("bucket", text(cfg.infra.blossom.bucket)),
                  leaf("access_key", text(cfg.infra.blossom.access_key)),
                  leaf("secret_key", text(cfg.infra.blossom.secret_key)),
                }),
        section("livekit",
                {
                  leaf("server_url", text(cfg.infra.livekit.server_url)),
                  leaf("api_key", text(cfg.infra.livekit.api_key)),
                  leaf("api_secret", text(cfg.infra.livekit.api_secret)),
                }),
      },
      infra_consistent(cfg.infra)),
  };
}

/// Reads `node` as a table of `fields`, stopping at the first problem so the
/// operator fixes one thing at a time.
problem read_section(const toml::node& node, const std::string& path,
                     const std::vector<field>& fields,
                     const section_rule& rule) {
  auto table = node.as_table();
  if (!table)
    return mismatch(path, "a table", node);
  for (auto&& [key, value] : *table) {
    auto key_path = child_path(path, key.str());
    auto match = std::find_if(fields.begin(), fields.end(),
                              [&key = key](const field& candidate) {
                                return candidate.key == key.str();
                              });
    if (match == fields.end())
      return key_path
             + (value.is_table() ? ": unknown section" : ": unknown key");
    auto failure = match->read
                     ? match->read(value, key_path)
                     : read_section(value, key_path, match->fields,
                                    match->rule);
    if (failure)
      return failure;
  }
  return rule ? rule(*table, path) : std::nullopt;
}

void collect_paths(const std::vector<field>& fields, const std::string& path,
                   std::vector<std::string>& out) {
  for (const auto& entry : fields) {
    auto entry_path = child_path(path, entry.key);
    if (entry.read)
      out.push_back(std::move(entry_path));
    else
      collect_paths(entry.fields, entry_path, out);
  }
}

} // namespace

caf::expected<config> load_string(std::string_view text,
                                  const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view{source_name});
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    return caf::make_error(ec::invalid_configuration,
                           source_name + ":" + std::to_string(where.line) + ":"
                             + std::to_string(where.column) + ": "
                             + std::string{error.description()});
  }
  config result;
  if (auto failure = read_section(root, "", schema(result), {}))
    return caf::make_error(ec::invalid_configuration,
                           source_name + ": " + *failure);
  return result;
}

caf::expected<config> load_file(const std::string& path) {
  auto cannot = [&path](const std::string& why) {
    return caf::make_error(ec::invalid_configuration,
                           path + ": cannot read the config file: " + why);
  };
  // A directory opens fine on Linux and only fails on read, with an
  // exception from the stream buffer; catch it up front.
  std::error_code status;
  if (std::filesystem::is_directory(path, status))
    return cannot("it is a directory");
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return cannot(std::generic_category().message(errno));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad())
    return cannot("read error");
  auto result = load_string(content.str(), path);
  if (result)
    result->source = path;
  return result;
}

std::vector<std::string> key_paths() {
  config scratch;
  std::vector<std::string> out;
  collect_paths(schema(scratch), "", out);
  return out;
}

bool operator==(const relay_limits& x, const relay_limits& y) {
  return x.max_frame_bytes == y.max_frame_bytes
         && x.max_subscriptions == y.max_subscriptions
         && x.max_filters == y.max_filters && x.max_limit == y.max_limit
         && x.default_limit == y.default_limit
         && x.max_subscription_id_length == y.max_subscription_id_length
         && x.max_future_seconds == y.max_future_seconds
         && x.max_outbound_bytes == y.max_outbound_bytes
         && x.max_inflight_messages == y.max_inflight_messages;
}

bool operator==(const negentropy_config& x, const negentropy_config& y) {
  return x.enabled == y.enabled && x.max_items == y.max_items
         && x.max_sessions_per_connection == y.max_sessions_per_connection
         && x.idle_timeout == y.idle_timeout
         && x.frame_size_limit == y.frame_size_limit
         && x.max_memory_mb == y.max_memory_mb;
}

bool operator==(const relay_tls_config& x, const relay_tls_config& y) {
  return x.certfile == y.certfile && x.keyfile == y.keyfile
         && x.client_ca_file == y.client_ca_file;
}

bool operator==(const relay_config& x, const relay_config& y) {
  return x.address == y.address && x.port == y.port && x.name == y.name
         && x.description == y.description && x.contact == y.contact
         && x.icon == y.icon && x.operator_pubkey == y.operator_pubkey
         && x.public_url == y.public_url && x.auth_required == y.auth_required
         && x.compression == y.compression
         && x.limits == y.limits && x.negentropy == y.negentropy
         && x.tls == y.tls;
}

bool operator==(const admin_config& x, const admin_config& y) {
  return x.address == y.address && x.port == y.port && x.token == y.token
         && x.nip98_pubkeys == y.nip98_pubkeys
         && x.public_health == y.public_health;
}

bool operator==(const console_config& x, const console_config& y) {
  return x.address == y.address && x.port == y.port && x.secret == y.secret
         && x.fault_injection == y.fault_injection;
}

bool operator==(const supervision_config& x, const supervision_config& y) {
  return x.base_ms == y.base_ms && x.cap_ms == y.cap_ms && x.jitter == y.jitter
         && x.stable_after_seconds == y.stable_after_seconds
         && x.max_restarts == y.max_restarts
         && x.window_seconds == y.window_seconds;
}

bool operator==(const store_config& x, const store_config& y) {
  return x.path == y.path && x.block_cache_mb == y.block_cache_mb
         && x.write_buffer_mb == y.write_buffer_mb
         && x.sync_writes == y.sync_writes
         && x.purge_interval == y.purge_interval
         && x.reserve_mb == y.reserve_mb;
}

bool operator==(const ingest_config& x, const ingest_config& y) {
  return x.verifiers == y.verifiers && x.writer_batch_max == y.writer_batch_max;
}

bool operator==(const log_config& x, const log_config& y) {
  return x.level == y.level;
}

bool operator==(const node_config& x, const node_config& y) {
  return x.key_file == y.key_file;
}

bool operator==(const sync_config& x, const sync_config& y) {
  return x.servers == y.servers;
}

bool operator==(const grasp_config& x, const grasp_config& y) {
  return x.enabled == y.enabled && x.service_domain == y.service_domain
         && x.bootstrap_relays == y.bootstrap_relays
         && x.batch_window == y.batch_window && x.tick == y.tick
         && x.resync_after == y.resync_after
         && x.overlap_window == y.overlap_window
         && x.reconcile_min == y.reconcile_min
         && x.reconcile_max == y.reconcile_max
         && x.group_size == y.group_size
         && x.max_filters_per_subscription == y.max_filters_per_subscription
         && x.max_filters_per_relay == y.max_filters_per_relay
         && x.batch_timeout == y.batch_timeout;
}

bool operator==(const infra_config& x, const infra_config& y) {
  return x.enabled == y.enabled && x.api_url == y.api_url
         && x.relay_domain == y.relay_domain && x.roles_json == y.roles_json
         && x.request_timeout_ms == y.request_timeout_ms
         && x.retry_base_ms == y.retry_base_ms
         && x.retry_cap_ms == y.retry_cap_ms
         && x.max_attempts == y.max_attempts
         && x.blossom.endpoint == y.blossom.endpoint
         && x.blossom.region == y.blossom.region
         && x.blossom.bucket == y.blossom.bucket
         && x.blossom.access_key == y.blossom.access_key
         && x.blossom.secret_key == y.blossom.secret_key
         && x.livekit.server_url == y.livekit.server_url
         && x.livekit.api_key == y.livekit.api_key
         && x.livekit.api_secret == y.livekit.api_secret;
}

bool operator==(const config& x, const config& y) {
  return x.grasp == y.grasp && x.relay == y.relay && x.admin == y.admin && x.console == y.console
         && x.store == y.store && x.ingest == y.ingest && x.log == y.log
         && x.node == y.node && x.supervision == y.supervision
         && x.sync == y.sync && x.infra == y.infra && x.source == y.source;
}

} // namespace ferry::config
