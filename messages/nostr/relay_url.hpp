#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::nostr {

/// A `ws://` or `wss://` relay URL, split and normalized: scheme and host in
/// lowercase, the scheme's default port dropped, a lone "/" path dropped (Nostr
/// writes relay URLs without it), path and query kept byte for byte.
struct relay_url {
  /// True for `wss://`.
  bool secure = false;
  /// Lowercase; an IPv6 literal keeps its brackets.
  std::string host;
  /// The explicit port, or the scheme's default (80 or 443).
  uint16_t port = 0;
  /// "" or starting with '/'.
  std::string path;
  /// What follows '?', without it; "" when there is none.
  std::string query;

  /// The normalized text, e.g. `wss://relay.example.com:8443/nostr`.
  std::string to_string() const;
};

/// Parses a relay URL strictly: ASCII only, no spaces or control characters,
/// a host of letters, digits, '.', '-' and '_' (or a bracketed IPv6 literal),
/// an optional port in 1..65535, no user info (it would be stored and shown)
/// and no fragment (RFC 6455 forbids it).
/// @returns an empty string on success, otherwise the reason, e.g.
///          "expected a ws:// or wss:// URL".
std::string parse_relay_url(std::string_view text, relay_url& out);

/// The normalized text of `text`, or "" when it is not a valid relay URL.
std::string normalize_relay_url(std::string_view text);

/// True when both name the same relay: same scheme, host, port and query, and
/// paths equal up to trailing slashes.
bool same_relay(const relay_url& x, const relay_url& y);

} // namespace ferry::nostr
