#pragma once

// The reason both ends of a WebSocket put in their close frame
// (net/ws_client.cpp, net/ws_session.hpp).

#include <boost/beast/websocket/rfc6455.hpp>

#include <cstddef>
#include <string_view>

namespace ferry::net {

/// The longest reason a close frame can carry (RFC 6455, 5.5).
inline constexpr size_t ws_close_reason_max = 123;

/// A close frame with `code` and `text`, cut to what the frame can carry
/// (Beast throws on a longer reason).
inline boost::beast::websocket::close_reason
close_frame_reason(boost::beast::websocket::close_code code,
                   std::string_view text) {
  return {code, text.substr(0, ws_close_reason_max)};
}

} // namespace ferry::net
