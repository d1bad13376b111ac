#pragma once

// The text of a received WebSocket message as both ends hand it to their
// owner (net/ws_client.cpp, net/ws_session.hpp).

#include <boost/asio/buffer.hpp>

#include <cstddef>
#include <string>

namespace ferry::net {

/// Spare capacity behind every received message's text. Owners parse a frame
/// in place with simdjson, which reads up to 64 bytes past the end: with the
/// room already there, its `reserve` no longer moves each message to a
/// second allocation (a copy and a malloc per received event, ~1% of a
/// node's CPU during a catch-up).
inline constexpr size_t ws_message_padding = 64;

/// `buffers` as one string with `ws_message_padding` bytes of capacity spare.
template <class ConstBufferSequence>
std::string ws_message_text(const ConstBufferSequence& buffers) {
  std::string text;
  text.reserve(boost::asio::buffer_size(buffers) + ws_message_padding);
  for (auto it = boost::asio::buffer_sequence_begin(buffers);
       it != boost::asio::buffer_sequence_end(buffers); ++it) {
    boost::asio::const_buffer b = *it;
    text.append(static_cast<const char*>(b.data()), b.size());
  }
  return text;
}

} // namespace ferry::net
