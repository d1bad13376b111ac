#include "net/ws_client_connect.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>
#include <optional>

namespace ferry::net {
namespace client_detail {

namespace {

std::string lowercase(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return result;
}

} // namespace

bool is_visible_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

std::string timeout_reason(session_step step, std::chrono::milliseconds limit,
                           const std::string& where) {
  auto after = " after " + std::to_string(limit.count()) + " ms";
  switch (step) {
    case session_step::start:
    case session_step::resolve:
      return "name resolution timed out" + after + " (" + where + ")";
    case session_step::connect:
      return "TCP connect to " + where + " timed out" + after;
    case session_step::tls_handshake:
      return "TLS handshake with " + where + " timed out" + after;
    case session_step::websocket_handshake:
      return "WebSocket handshake with " + where + " timed out" + after;
    case session_step::http_write:
      return "writing the HTTP request to " + where + " timed out" + after
             + " (connected)";
    case session_step::http_read:
      return "no HTTP response from " + where + " within "
             + std::to_string(limit.count())
             + " ms (connected, request sent)";
  }
  return "timed out" + after;
}

connect_plan make_plan(const std::string& url, const tls_options& tls) {
  connect_plan plan;
  auto parsed = parse_url(url);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    // There is no address to connect to, which is what a dns failure means.
    plan.error_kind = failure_kind::dns;
    plan.error = std::move(*error);
    return plan;
  }
  plan.url = std::get<parsed_url>(std::move(parsed));
  plan.url.tls = plan.url.tls || tls.enabled;
  auto default_port = plan.url.tls ? 443 : 80;
  plan.host_header = plan.url.host.find(':') == std::string::npos
                       ? plan.url.host
                       : "[" + plan.url.host + "]";
  if (plan.url.port != default_port)
    plan.host_header += ":" + std::to_string(plan.url.port);
  if (!plan.url.tls)
    return plan;
  plan.tls_name = tls.hostname.empty() ? plan.url.host : tls.hostname;
  for (const auto& text : tls.spki_sha256_pins) {
    auto pin = decode_pin(text);
    if (!pin) {
      plan.error_kind = failure_kind::pin;
      plan.error = "invalid pin '" + text + "': want 64 hex digits or the "
                   + "base64 of 32 bytes";
      return plan;
    }
    plan.pins.push_back(*pin);
  }
  auto ctx = make_tls_context(tls);
  if (auto* error = std::get_if<std::string>(&ctx)) {
    plan.error_kind = failure_kind::tls;
    plan.error = "tls setup: " + *error;
    return plan;
  }
  plan.ctx = std::get<std::shared_ptr<ssl::context>>(std::move(ctx));
  return plan;
}

} // namespace client_detail

using namespace client_detail;

std::string to_string(failure_kind kind) {
  switch (kind) {
    case failure_kind::none:
      return "none";
    case failure_kind::dns:
      return "dns";
    case failure_kind::tcp:
      return "tcp";
    case failure_kind::tls:
      return "tls";
    case failure_kind::pin:
      return "pin";
    case failure_kind::http:
      return "http";
    case failure_kind::websocket:
      return "websocket";
    case failure_kind::protocol:
      return "protocol";
    case failure_kind::closed_by_peer:
      return "closed_by_peer";
    case failure_kind::timeout:
      return "timeout";
  }
  return "unknown";
}

std::variant<parsed_url, std::string> parse_url(std::string_view url) {
  auto error = [url](const std::string& what) {
    return "bad url '" + std::string(url) + "': " + what;
  };
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos)
    return error("no scheme");
  parsed_url result;
  auto scheme = lowercase(url.substr(0, scheme_end));
  if (scheme == "wss" || scheme == "https")
    result.tls = true;
  else if (scheme != "ws" && scheme != "http")
    return error("scheme must be ws, wss, http or https");
  auto rest = url.substr(scheme_end + 3);
  // The fragment never goes on the wire.
  rest = rest.substr(0, rest.find('#'));
  auto authority_end = rest.find_first_of("/?");
  auto authority = rest.substr(0, authority_end);
  result.target = authority_end == std::string_view::npos
                    ? "/"
                    : std::string(rest.substr(authority_end));
  if (result.target.front() == '?')
    result.target.insert(0, "/");
  if (!is_visible_ascii(result.target))
    return error("spaces or control characters in the path");
  if (authority.find('@') != std::string_view::npos)
    return error("user info is not supported");
  std::optional<std::string_view> port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return error("unterminated IPv6 literal");
    result.host = std::string(authority.substr(1, close - 1));
    beast::error_code ec;
    net::ip::make_address_v6(result.host, ec);
    if (ec)
      return error("bad IPv6 literal");
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return error("junk after the IPv6 literal");
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    result.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos)
      port_text = authority.substr(colon + 1);
  }
  if (result.host.empty())
    return error("no host");
  if (!is_visible_ascii(result.host))
    return error("bad host");
  if (!port_text) {
    result.port = result.tls ? 443 : 80;
    return result;
  }
  if (port_text->empty() || port_text->size() > 5
      || !std::all_of(port_text->begin(), port_text->end(),
                      [](unsigned char c) { return std::isdigit(c); }))
    return error("bad port");
  auto port = std::stoul(std::string(*port_text));
  if (port == 0 || port > 65535)
    return error("bad port");
  result.port = static_cast<uint16_t>(port);
  return result;
}

} // namespace ferry::net
