// Fuzzes the relay's permessage-deflate compressor (net/message_deflater)
// against zlib's inflater, which decompresses as a client would. The first
// byte picks the terms: the low three bits the window (2^8 to 2^15), the
// next whether the client asked for no context takeover. The rest is a run
// of messages, each behind a 2-byte little-endian length (cut short at the
// end of the input), repeated to reach the window and the 258-byte matches
// from small inputs: the high bit of the length's second byte asks for a
// second copy. Every message must inflate to itself within the negotiated
// window and never take more than stored blocks would.

#include "fuzz/fuzz_check.hpp"
#include "net/message_deflater.hpp"

#include <zlib.h>

#include <string>

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  net::deflate_terms terms;
  terms.window_bits = 8 + (data[0] & 7);
  terms.no_context_takeover = (data[0] & 8) != 0;
  net::message_deflater deflater{terms, 15};
  fuzz::require(deflater.window_bits() == terms.window_bits, "the negotiated window is used");
  z_stream inflater{};
  fuzz::require(inflateInit2(&inflater, -terms.window_bits) == Z_OK, "zlib starts");
  std::string out;
  for (size_t at = 1; at + 2 <= size;) {
    size_t length = data[at] | (size_t{data[at + 1]} & 0x7f) << 8;
    bool twice = (data[at + 1] & 0x80) != 0;
    at += 2;
    length = std::min(length, size - at);
    std::string message(reinterpret_cast<const char*>(data + at), length);
    at += length;
    if (twice)
      message += message;
    if (terms.no_context_takeover)
      fuzz::require(inflateReset(&inflater) == Z_OK, "zlib resets");
    std::string payload{deflater.compress(message)};
    fuzz::require(payload.size() <= message.size() + (message.size() / 65535 + 1) * 5 + 1,
                  "never more than stored blocks");
    payload.append("\0\0\xff\xff", 4);
    inflater.next_in = reinterpret_cast<Bytef*>(payload.data());
    inflater.avail_in = static_cast<uInt>(payload.size());
    out.clear();
    char chunk[4096];
    do {
      inflater.next_out = reinterpret_cast<Bytef*>(chunk);
      inflater.avail_out = sizeof chunk;
      auto rc = inflate(&inflater, Z_SYNC_FLUSH);
      fuzz::require(rc == Z_OK || rc == Z_BUF_ERROR, "the payload inflates");
      out.append(chunk, sizeof chunk - inflater.avail_out);
    } while (inflater.avail_in > 0 || inflater.avail_out == 0);
    fuzz::require(out == message, "the message comes back byte for byte");
  }
  inflateEnd(&inflater);
  return 0;
}
