#pragma once

// The pieces config.cpp builds its schema from: a key's reader stores one
// TOML value into the config or says, as `key.path: expected ..., got ...`,
// why it cannot.

#include "config/config.hpp"

#include <boost/json/value.hpp>
#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::config::readers {

/// What is wrong with a config, worded `key.path: message`. The file name is
/// prefixed once at the top, so the readers need not carry it around.
using problem = std::optional<std::string>;

/// Stores one value into the config, or says why it cannot.
using leaf_reader
  = std::function<problem(const toml::node& node, const std::string& path)>;

/// A rule spanning several keys of one section; runs after all are read.
using section_rule
  = std::function<problem(const toml::table& table, const std::string& path)>;

/// One key of a table: a leaf (with `read`) or a section (with `fields`).
/// Keeping the schema as data gives one place that rejects unknown keys and
/// lets `key_paths` list exactly what the parser accepts.
struct field {
  std::string_view key;
  leaf_reader read;
  std::vector<field> fields;
  section_rule rule;
};

inline field leaf(std::string_view key, leaf_reader read) {
  return {key, std::move(read), {}, {}};
}

inline field section(std::string_view key, std::vector<field> fields,
                     section_rule rule = {}) {
  return {key, {}, std::move(fields), std::move(rule)};
}

/// Longest interval accepted in seconds: a century still fits a nanosecond
/// `int64_t`, so no later conversion of it can overflow.
inline constexpr int64_t max_seconds = int64_t{100} * 365 * 24 * 3600;

inline constexpr int64_t max_int64 = std::numeric_limits<int64_t>::max();

// -- wording ------------------------------------------------------------------

/// `text` quoted like a TOML basic string.
std::string toml_quote(std::string_view text);

/// The path of `key` inside `parent` ("relay.limits"), quoting keys that are
/// not bare.
std::string child_path(const std::string& parent, std::string_view key);

/// `path: expected <what>, got <the value as written>`.
problem mismatch(const std::string& path, std::string_view what,
                 const toml::node& got);

// -- readers ------------------------------------------------------------------

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

template <class T>
leaf_reader positive(T& out) {
  return integer(out, 1, max_int64, "a positive integer");
}

/// A TCP port; 0 picks any free one.
leaf_reader port(uint16_t& out);

/// Whole seconds in 1..max_seconds.
leaf_reader seconds(std::chrono::seconds& out);

/// Milliseconds in 1..max_seconds * 1000.
leaf_reader milliseconds(std::chrono::milliseconds& out);

leaf_reader boolean(bool& out);

/// A string that `valid` accepts; `what` words what it expects.
leaf_reader string_if(std::string& out, std::string what,
                      std::function<bool(const std::string&)> valid);

/// Any string.
leaf_reader text(std::string& out);

/// A string that is not empty; `what` words what it expects.
leaf_reader non_empty(std::string& out, std::string what);

/// A literal IPv4 or IPv6 address.
leaf_reader address(std::string& out);

/// 64 lowercase hex characters, or empty.
leaf_reader pubkey(std::string& out);

/// A list of pubkeys, each 64 lowercase hex characters.
leaf_reader pubkeys(std::vector<std::string>& out);

/// A number in 0..1.
leaf_reader fraction(double& out);

/// Empty, or a ws:// or wss:// URL.
leaf_reader relay_url_text(std::string& out);

/// One of spdlog's level names.
leaf_reader log_level(std::string& out);

/// `[[sync.server]]` tables, validated as the admin API validates a body.
leaf_reader sync_servers(std::vector<sync_server>& out);

/// "host" or "host:port", or empty.
leaf_reader service_domain(std::string& out);

/// A list of ws:// or wss:// URLs, stored normalized, each once.
leaf_reader relay_urls(std::vector<std::string>& out);

/// Empty, an https:// URL, or an http:// URL to a loopback address.
leaf_reader management_url(std::string& out);

/// Empty, or a lowercase DNS name.
leaf_reader dns_name_or_empty(std::string& out);

/// A table of zooid roles, kept as JSON for the management API.
leaf_reader infra_roles(std::string& out);

/// "host:port" with a port in 1..65535.
bool is_host_port(const std::string& text);

/// The `[cluster]` section (config/cluster.cpp).
field cluster_section(cluster_config& cluster);

/// The `[federation]` section (config/federation.cpp).
field federation_section(federation_config& federation);

/// A TOML value as JSON (tables, arrays, strings, numbers, booleans), so a
/// table can go through the admin API's validator of the same shape.
problem to_json_value(const toml::node& node, const std::string& path,
                      boost::json::value& out);

/// True when `address` is a literal loopback address.
bool is_loopback(const std::string& address);

} // namespace ferry::config::readers
