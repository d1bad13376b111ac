#include "messages/nostr/relay_url.hpp"

#include <algorithm>

namespace ferry::nostr {

namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size())
    return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (lower(text[i]) != prefix[i])
      return false;
  return true;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
         || c == '-' || c == '_';
}

bool is_ipv6_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':'
         || c == '.';
}

/// Checks the (already lowercased) host.
bool valid_host(std::string_view host) {
  if (host.empty())
    return false;
  if (host.front() == '[') {
    if (host.size() < 4 || host.back() != ']')
      return false;
    auto inner = host.substr(1, host.size() - 2);
    return std::all_of(inner.begin(), inner.end(), is_ipv6_char)
           && inner.find(':') != std::string_view::npos;
  }
  return std::all_of(host.begin(), host.end(), is_host_char)
         && host.front() != '.' && host.front() != '-';
}

std::string_view trim_trailing_slashes(std::string_view path) {
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  return path;
}

} // namespace

std::string relay_url::to_string() const {
  std::string out = secure ? "wss://" : "ws://";
  out += host;
  if (port != (secure ? 443 : 80)) {
    out += ':';
    out += std::to_string(port);
  }
  out += path;
  if (!query.empty()) {
    out += '?';
    out += query;
  }
  return out;
}

std::string parse_relay_url(std::string_view text, relay_url& out) {
  out = relay_url{};
  if (starts_with_nocase(text, "wss://")) {
    out.secure = true;
    text.remove_prefix(6);
  } else if (starts_with_nocase(text, "ws://")) {
    text.remove_prefix(5);
  } else {
    return "expected a ws:// or wss:// URL";
  }
  auto bad_char = std::find_if(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u >= 0x7f;
  });
  if (bad_char != text.end())
    return "expected a URL without spaces, control or non-ASCII characters";
  if (text.find('#') != std::string_view::npos)
    return "a relay URL cannot have a fragment";
  auto authority_end = text.find_first_of("/?");
  auto authority = text.substr(0, authority_end);
  auto rest = authority_end == std::string_view::npos
                ? std::string_view{}
                : text.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    return "a relay URL cannot carry a user name or password";
  // The port colon is the last one outside an IPv6 literal's brackets.
  auto bracket = authority.rfind(']');
  auto colon = authority.rfind(':');
  if (colon != std::string_view::npos && bracket != std::string_view::npos
      && colon < bracket)
    colon = std::string_view::npos;
  auto host = authority.substr(0, colon);
  out.host.reserve(host.size());
  for (char c : host)
    out.host += lower(c);
  if (out.host.empty())
    return "expected a URL with a host";
  if (!valid_host(out.host))
    return "expected a host of letters, digits, '.', '-' and '_', or an IPv6 "
           "literal in brackets";
  out.port = out.secure ? 443 : 80;
  if (colon != std::string_view::npos) {
    auto digits = authority.substr(colon + 1);
    uint32_t port = 0;
    if (digits.empty() || digits.size() > 5
        || !std::all_of(digits.begin(), digits.end(),
                        [](char c) { return c >= '0' && c <= '9'; }))
      return "expected a port in 1..65535";
    for (char c : digits)
      port = port * 10 + static_cast<uint32_t>(c - '0');
    if (port == 0 || port > 65535)
      return "expected a port in 1..65535";
    out.port = static_cast<uint16_t>(port);
  }
  auto question = rest.find('?');
  out.path = std::string{rest.substr(0, question)};
  if (question != std::string_view::npos)
    out.query = std::string{rest.substr(question + 1)};
  if (out.path == "/")
    out.path.clear();
  return {};
}

std::string normalize_relay_url(std::string_view text) {
  relay_url url;
  return parse_relay_url(text, url).empty() ? url.to_string() : std::string{};
}

bool same_relay(const relay_url& x, const relay_url& y) {
  return x.secure == y.secure && x.host == y.host && x.port == y.port
         && x.query == y.query
         && trim_trailing_slashes(x.path) == trim_trailing_slashes(y.path);
}

} // namespace ferry::nostr
