#include "net/message_deflater.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <new>
#include <stdexcept>

namespace ferry::net {

namespace beast = boost::beast;

/// The most the output buffer keeps between messages: an event's worth.
constexpr size_t kept_buffer_bytes = 16 * 1024;

std::optional<deflate_terms> server_deflate_terms(std::string_view extensions) {
  for (const auto& extension : beast::http::ext_list{{extensions.data(), extensions.size()}}) {
    if (!beast::iequals(extension.first, "permessage-deflate"))
      continue;
    deflate_terms terms;
    for (const auto& [name, value] : extension.second) {
      if (beast::iequals(name, "server_no_context_takeover")) {
        terms.no_context_takeover = true;
      } else if (beast::iequals(name, "server_max_window_bits")) {
        int bits = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), bits);
        if (ec == std::errc{} && end == value.data() + value.size())
          terms.window_bits = bits;
      }
    }
    return terms;
  }
  return std::nullopt;
}

message_deflater::message_deflater(deflate_terms terms, int window_bits, int mem_level,
                                   int level)
  : stream_(std::make_unique<z_stream>()),
    no_context_takeover_(terms.no_context_takeover),
    window_bits_(std::max(9, std::min(window_bits, terms.window_bits))) {
  // Negative window bits: raw deflate, no zlib header or trailer.
  auto rc = deflateInit2(stream_.get(), level, Z_DEFLATED, -window_bits_, mem_level,
                         Z_DEFAULT_STRATEGY);
  if (rc == Z_MEM_ERROR)
    throw std::bad_alloc{};
  if (rc != Z_OK)
    throw std::invalid_argument{"deflateInit2: window " + std::to_string(window_bits_)
                                + ", memory level " + std::to_string(mem_level)
                                + ", level " + std::to_string(level) + " refused"};
}

message_deflater::~message_deflater() {
  deflateEnd(stream_.get());
}

std::optional<std::string_view> message_deflater::compress(std::string_view message) {
  // An empty message is one byte: the start of an empty stored block, which
  // the receiver completes with the tail (RFC 7692, 7.2.3.6). zlib would
  // produce nothing at all for no input right after a flush.
  if (message.empty())
    return std::string_view{"\0", 1};
  auto& z = *stream_;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  z.avail_in = static_cast<uInt>(message.size());
  // Room for the whole message at once, and its flush, in all but odd cases.
  // A buffer grown for a large message goes at the next small one.
  auto room = deflateBound(&z, static_cast<uLong>(message.size())) + 16;
  if (out_.size() > kept_buffer_bytes && room <= kept_buffer_bytes)
    std::string{}.swap(out_);
  if (out_.size() < room)
    out_.resize(room);
  size_t produced = 0;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(out_.data() + produced);
    z.avail_out = static_cast<uInt>(out_.size() - produced);
    auto rc = deflate(&z, Z_SYNC_FLUSH);
    produced = out_.size() - z.avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      return std::nullopt;
    if (z.avail_out != 0)
      break;
    out_.resize(out_.size() * 2);
  }
  if (no_context_takeover_ && deflateReset(&z) != Z_OK)
    return std::nullopt;
  static constexpr std::string_view sync_tail{"\0\0\xff\xff", 4};
  std::string_view payload{out_.data(), produced};
  if (payload.size() < sync_tail.size() || payload.substr(payload.size() - 4) != sync_tail)
    return std::nullopt;
  payload.remove_suffix(sync_tail.size());
  return payload;
}

} // namespace ferry::net
