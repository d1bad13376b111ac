#include "config/readers.hpp"

#include "messages/cluster/replication.hpp"
#include "messages/error.hpp"
#include "messages/nostr/relay_url.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <utility>

namespace ferry::config::readers {

namespace {

constexpr std::array<std::string_view, 7> log_levels{
  "trace", "debug", "info", "warn", "error", "critical", "off"};

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

} // namespace

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

namespace {

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

} // namespace

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

std::string child_path(const std::string& parent, std::string_view key) {
  auto name = is_bare_key(key) ? std::string{key} : toml_quote(key);
  return parent.empty() ? name : parent + "." + name;
}

problem mismatch(const std::string& path, std::string_view what,
                 const toml::node& got) {
  return path + ": expected " + std::string{what} + ", got " + render(got);
}

leaf_reader port(uint16_t& out) {
  return integer(out, 0, 65535, "an integer in 0..65535 (0: any free port)");
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

bool is_loopback(const std::string& address) {
  boost::system::error_code error;
  auto parsed = boost::asio::ip::make_address(address, error);
  return !error && parsed.is_loopback();
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
      if (cluster::replicated_member(server->id))
        return item_path + ".id: expected an id not starting with \"cluster.\" "
               "(reserved for the replication links between cluster "
               "members), got " + toml_quote(server->id);
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

} // namespace ferry::config::readers
