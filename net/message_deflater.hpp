#pragma once

// permessage-deflate's sending side (RFC 7692) for messages the relay frames
// itself: each message is compressed into the payload of one frame. Reading
// what a client compressed stays with Beast.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::net {

/// What a permessage-deflate handshake settled for the server's messages.
struct deflate_terms {
  /// server_max_window_bits: the largest window the client can inflate.
  int window_bits = 15;
  /// server_no_context_takeover: each message is compressed on its own.
  bool no_context_takeover = false;
};

/// The server's terms in a Sec-WebSocket-Extensions response value; none
/// when permessage-deflate is not in it.
std::optional<deflate_terms> server_deflate_terms(std::string_view extensions);

/// One connection's compressor: greedy LZ77 over a window shared by the
/// connection's messages (unless the client asked for no context takeover)
/// and deflate's fixed Huffman codes. zlib at its fastest level spent 30 µs
/// on an 880-byte event on our machines, most of it choosing a Huffman table
/// for every message; this takes about 5 µs and sends ~20% more bytes (500
/// per corpus event, against 420). Hex ids, keys and signatures are most of
/// an event and compress only with repeats, which the window finds.
///
/// Memory, at the 2^15 window: 64 KiB of history (1.5 windows and an
/// event's worth), a table of 2^13 recent positions (32 KiB), and the output
/// of one message, kept up to 16 KiB between messages; a larger message
/// takes more while it is compressed. All freed with the object.
class message_deflater {
public:
  /// `window_bits` is the most this side will use: the negotiated window
  /// caps it, and the result is at least 8 (deflate's smallest window).
  message_deflater(deflate_terms terms, int window_bits);

  /// The payload of `message`'s frame: raw deflate blocks ended by a sync
  /// flush, whose trailing 00 00 ff ff the receiver puts back (RFC 7692,
  /// 7.2.1). Valid until the next call.
  std::string_view compress(std::string_view message);

  /// The window matches reach back over, as a power of two.
  int window_bits() const {
    return window_bits_;
  }

private:
  /// What the history buffer keeps between messages.
  size_t kept_history_bytes() const;
  /// Drops the history: later matches reach back only into their own message.
  void forget_history();

  int window_bits_;
  /// Bytes a match may reach back: 2^window_bits_.
  uint32_t window_;
  bool no_context_takeover_;
  /// The last bytes sent (at least a window of them, once there are that
  /// many), then the message being compressed.
  std::vector<uint8_t> history_;
  /// The stream position of history_[0]. Starts above the window, so an
  /// empty table slot (0) is always too far back to match.
  uint64_t history_start_;
  /// For a hash of 4 bytes, one more than the stream position where they
  /// last started.
  std::vector<uint32_t> recent_;
  std::string out_;
};

} // namespace ferry::net
