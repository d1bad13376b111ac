#pragma once

// permessage-deflate's sending side (RFC 7692) for messages the relay frames
// itself: each message is compressed with the system zlib into the payload
// of one frame. Reading what a client compressed stays with Beast.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct z_stream_s;

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

/// One connection's compressor. Its memory is zlib's: 2^(window_bits + 2)
/// bytes for the window, 2^(mem_level + 9) for the hash and the symbol
/// buffer, about 6 KiB of state; and the output of one message, kept up to
/// 16 KiB between messages. All freed with the object.
class message_deflater {
public:
  /// `window_bits` is the most this side will use: the negotiated window
  /// caps it; zlib's raw deflate has no 8-bit window, so 8 becomes 9 (as
  /// Beast does in its negotiation). Throws std::bad_alloc when zlib gets
  /// no memory.
  message_deflater(deflate_terms terms, int window_bits, int mem_level, int level);
  ~message_deflater();
  message_deflater(const message_deflater&) = delete;
  message_deflater& operator=(const message_deflater&) = delete;

  /// The payload of `message`'s frame: raw deflate ended by a sync flush,
  /// whose trailing 00 00 ff ff the receiver puts back (RFC 7692, 7.2.1).
  /// Valid until the next call. None if zlib failed; the compressor is then
  /// unusable.
  std::optional<std::string_view> compress(std::string_view message);

  /// The window zlib was set up with.
  int window_bits() const {
    return window_bits_;
  }

private:
  std::unique_ptr<z_stream_s> stream_;
  bool no_context_takeover_;
  int window_bits_;
  std::string out_;
};

} // namespace ferry::net
