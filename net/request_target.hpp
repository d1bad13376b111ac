#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry::net {

/// An HTTP request target in origin form, parsed once: whoever decides on
/// access and whoever routes look at this same value, never at the raw text.
struct request_target {
  /// The path split at '/', each segment percent-decoded after the split (so
  /// a decoded "%2F" stays inside its segment). "/" alone has no segments.
  std::vector<std::string> segments;
  /// The query without its '?', still percent-encoded; empty when absent.
  std::string query;
  /// Whether the target had a '?' at all ("/x?" has an empty query).
  bool has_query = false;
};

/// Parses an origin-form request target (RFC 9112, 3.2.1). Refused, with the
/// reason as the error text:
/// - anything that does not start with exactly one '/': absolute form
///   ("http://host/..."), authority form ("host:443"), asterisk form ("*"),
///   a scheme-relative "//host/...", the empty target;
/// - spaces, control characters, bytes above 0x7E, and '#' (a fragment never
///   belongs on the wire);
/// - broken percent escapes ("%4", "%zz"), escapes of unreserved characters
///   ("%61" for 'a': not canonical, so "/%61pi" never aliases "/api"), and
///   escapes that decode to control characters;
/// - empty segments ("/a//b", a trailing '/') and dot segments ("." and "..",
///   also when escaped): they are refused, not normalised, so one resource
///   has exactly one spelling.
/// @returns the parsed target, or why it is refused.
std::variant<request_target, std::string>
parse_request_target(std::string_view target);

/// One `key=value` pair of a query string, both percent-decoded ('+' is a
/// space); a bare `key` has an empty value.
struct query_parameter {
  std::string key;
  std::string value;
};

/// Decodes a query string (without its '?') into its parameters, in order.
/// Refused, with the reason as the error text: broken percent escapes,
/// escapes that decode to control characters, empty keys ("=x", "a&&b"),
/// and a key given twice (one value per key, so no reader picks "the wrong
/// one").
std::variant<std::vector<query_parameter>, std::string>
decode_query(std::string_view query);

} // namespace ferry::net
