#include "net/message_deflater.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace ferry::net {

namespace beast = boost::beast;

namespace {

/// The most the output buffer keeps between messages: an event's worth.
constexpr size_t kept_buffer_bytes = 16 * 1024;
/// Hash table slots, as a power of two: 2^12 had 4% more bytes on the
/// corpus, 2^14 1% fewer and was slower (the table leaves the L1 cache).
constexpr int recent_bits = 13;
/// Deflate's shortest match is 3 bytes; ours is 4, one hashed load.
constexpr size_t min_match = 4;
constexpr size_t max_match = 258;
constexpr uint32_t max_distance = 32768;

/// Deflate's fixed Huffman codes (RFC 1951, 3.2.6) for the literal/length
/// symbols, bit-reversed: deflate packs bits from the least significant
/// end, Huffman codes from their most significant bit.
struct fixed_codes {
  std::array<uint16_t, 288> literal_code{};
  std::array<uint8_t, 288> literal_bits{};
  /// For each match length: its symbol, extra bits and their value.
  std::array<uint16_t, max_match + 1> length_symbol{};
  std::array<uint8_t, max_match + 1> length_extra_bits{};
  std::array<uint8_t, max_match + 1> length_extra{};
  /// Distance symbols: their 5-bit code, first distance and extra bits.
  std::array<uint8_t, 30> distance_code{};
  std::array<uint16_t, 30> distance_base{};
  std::array<uint8_t, 30> distance_extra_bits{};

  static constexpr uint32_t reversed(uint32_t code, int bits) {
    uint32_t result = 0;
    for (int i = 0; i < bits; ++i, code >>= 1)
      result = (result << 1) | (code & 1);
    return result;
  }

  constexpr fixed_codes() {
    for (uint32_t s = 0; s < 288; ++s) {
      uint32_t code = 0;
      int bits = 0;
      if (s < 144) {
        code = 0x30 + s, bits = 8;
      } else if (s < 256) {
        code = 0x190 + s - 144, bits = 9;
      } else if (s < 280) {
        code = s - 256, bits = 7;
      } else {
        code = 0xc0 + s - 280, bits = 8;
      }
      literal_code[s] = static_cast<uint16_t>(reversed(code, bits));
      literal_bits[s] = static_cast<uint8_t>(bits);
    }
    constexpr std::array<uint16_t, 29> base{3,  4,  5,  6,  7,  8,  9,  10,  11,  13,
                                            15, 17, 19, 23, 27, 31, 35, 43,  51,  59,
                                            67, 83, 99, 115, 131, 163, 195, 227, 258};
    constexpr std::array<uint8_t, 29> extra{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                            2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    // Symbol 284 with all its extra bits set would be 258, which has its own
    // symbol (285); so each length takes the last symbol whose base fits.
    for (size_t length = 3; length <= max_match; ++length) {
      size_t i = 28;
      while (base[i] > length)
        --i;
      length_symbol[length] = static_cast<uint16_t>(257 + i);
      length_extra_bits[length] = extra[i];
      length_extra[length] = static_cast<uint8_t>(length - base[i]);
    }
    for (uint32_t d = 0; d < 30; ++d) {
      distance_code[d] = static_cast<uint8_t>(reversed(d, 5));
      distance_extra_bits[d] = static_cast<uint8_t>(d < 4 ? 0 : d / 2 - 1);
      distance_base[d] = static_cast<uint16_t>(
        d < 4 ? d + 1 : (2u + (d & 1)) << distance_extra_bits[d] | 1u);
    }
  }
};

constexpr fixed_codes codes;

static_assert(codes.length_symbol[258] == 285 && codes.length_symbol[227] == 284
              && codes.length_extra[257] == 30 && codes.length_symbol[10] == 264);
static_assert(codes.distance_base[29] == 24577 && codes.distance_base[4] == 5
              && codes.distance_extra_bits[29] == 13);

/// The distance symbol of distance `d` (1 to 32768).
inline uint32_t distance_symbol(uint32_t d) {
  if (d <= 4)
    return d - 1;
  auto top = 31 - static_cast<uint32_t>(__builtin_clz(d - 1));
  return 2 * top + (((d - 1) >> (top - 1)) & 1);
}

inline uint32_t load32(const uint8_t* p) {
  uint32_t x;
  std::memcpy(&x, p, sizeof x);
  return x;
}

inline uint64_t load64(const uint8_t* p) {
  uint64_t x;
  std::memcpy(&x, p, sizeof x);
  return x;
}

inline uint32_t hash_of(const uint8_t* p) {
  return (load32(p) * 2654435761u) >> (32 - recent_bits);
}

/// The length of the common prefix of `a` and `b`, from `from` to `most`.
inline size_t match_length(const uint8_t* a, const uint8_t* b, size_t from, size_t most) {
  auto n = from;
  for (; n + 8 <= most; n += 8)
    if (auto diff = load64(a + n) ^ load64(b + n))
      return n + (static_cast<size_t>(__builtin_ctzll(diff)) >> 3);
  while (n < most && a[n] == b[n])
    ++n;
  return n;
}

/// An empty stored block's first byte: its 3 header bits and the padding to
/// the byte boundary. The receiver completes it with 00 00 ff ff, which ends
/// every message (RFC 7692, 7.2.1).
constexpr char sync_flush_start = '\0';

} // namespace

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

message_deflater::message_deflater(deflate_terms terms, int window_bits)
  : window_bits_(std::clamp(std::min(window_bits, terms.window_bits), 8, 15)),
    window_(uint32_t{1} << window_bits_),
    no_context_takeover_(terms.no_context_takeover),
    history_start_(window_),
    recent_(size_t{1} << recent_bits, 0) {
  // Once, at its most: growing by doubling would overshoot it.
  history_.reserve(kept_history_bytes());
}

size_t message_deflater::kept_history_bytes() const {
  return window_ + window_ / 2 + kept_buffer_bytes;
}

void message_deflater::forget_history() {
  // Moving the stream on by more than a window puts every remembered
  // position out of reach, without touching the table.
  history_start_ += history_.size() + window_;
  history_.clear();
}

std::string_view message_deflater::compress(std::string_view message) {
  if (message.empty())
    return {&sync_flush_start, 1};
  if (no_context_takeover_) {
    forget_history();
  } else if (history_.size() > window_ + window_ / 2) {
    // Keep one window: matches never reach further back.
    auto cut = history_.size() - window_;
    history_.erase(history_.begin(), history_.begin() + static_cast<ptrdiff_t>(cut));
    history_start_ += cut;
  }
  if (history_.capacity() > kept_history_bytes()) {
    // A large message grew the buffer; give that memory back.
    std::vector<uint8_t> kept;
    kept.reserve(kept_history_bytes());
    kept.assign(history_.begin(), history_.end());
    history_.swap(kept);
  }
  // Table slots hold 32-bit positions: before they would wrap, start over
  // with an empty table and no history.
  if (history_start_ + history_.size() + message.size() >= UINT32_MAX) {
    std::fill(recent_.begin(), recent_.end(), 0);
    history_.clear();
    history_start_ = window_;
  }
  auto start = history_.size();
  history_.resize(start + message.size());
  std::memcpy(history_.data() + start, message.data(), message.size());

  // Every literal takes at most 9 bits and a match at most as many as its
  // literals would; 8 bytes of slack for the 4-byte stores of the writer.
  auto room = message.size() + message.size() / 8 + 16;
  if (out_.size() > kept_buffer_bytes && room <= kept_buffer_bytes)
    std::string{}.swap(out_);
  if (out_.size() < room)
    out_.resize(room);

  auto* cursor = out_.data();
  uint64_t bits = 0;
  int bit_count = 0;
  auto put = [&](uint32_t value, int n) {
    bits |= uint64_t{value} << bit_count;
    bit_count += n;
    if (bit_count >= 32) {
      auto word = static_cast<uint32_t>(bits);
      std::memcpy(cursor, &word, sizeof word);
      cursor += sizeof word;
      bits >>= 32;
      bit_count -= 32;
    }
  };
  auto put_literal = [&](uint8_t byte) {
    put(codes.literal_code[byte], codes.literal_bits[byte]);
  };

  const auto* data = history_.data();
  const auto end = history_.size();
  const uint64_t reach = std::min(window_, max_distance);
  auto* recent = recent_.data();
  auto remember = [&](size_t at) {
    if (at + min_match <= end)
      recent[hash_of(data + at)] = static_cast<uint32_t>(history_start_ + at + 1);
  };

  put(0b010, 3); // a block with fixed codes, not the last one
  auto p = start;
  while (p + min_match <= end) {
    auto& slot = recent[hash_of(data + p)];
    // An empty slot reads as the position before 0: always out of reach.
    auto candidate = uint64_t{slot} - 1;
    auto position = history_start_ + p;
    slot = static_cast<uint32_t>(position + 1);
    auto distance = position - candidate;
    if (distance > reach) {
      put_literal(data[p++]);
      continue;
    }
    const auto* earlier = data + (candidate - history_start_);
    if (load32(earlier) != load32(data + p)) {
      put_literal(data[p++]);
      continue;
    }
    auto length = match_length(earlier, data + p, min_match, std::min(max_match, end - p));
    auto symbol = codes.length_symbol[length];
    put(codes.literal_code[symbol], codes.literal_bits[symbol]);
    put(codes.length_extra[length], codes.length_extra_bits[length]);
    auto d = distance_symbol(static_cast<uint32_t>(distance));
    put(codes.distance_code[d], 5);
    put(static_cast<uint32_t>(distance) - codes.distance_base[d], codes.distance_extra_bits[d]);
    // Only the match's last positions go in the table: hashing every one
    // cost a third of the time for 2% fewer bytes.
    remember(p + length - 2);
    remember(p + length - 1);
    p += length;
  }
  while (p < end)
    put_literal(data[p++]);
  put(codes.literal_code[256], codes.literal_bits[256]); // end of block
  put(0, 3); // the empty stored block of the sync flush, byte-aligned below
  for (; bit_count > 0; bit_count -= 8, bits >>= 8)
    *cursor++ = static_cast<char>(bits & 0xff);
  auto size = static_cast<size_t>(cursor - out_.data());

  // Text that does not repeat and is mostly above ASCII (CJK, emoji) takes
  // 9 bits a byte in fixed codes: stored blocks cost 5 bytes per 64 KiB.
  auto stored_size = message.size() + (message.size() / 65535 + 1) * 5 + 1;
  if (size <= stored_size)
    return {out_.data(), size};
  if (out_.size() < stored_size)
    out_.resize(stored_size);
  cursor = out_.data();
  for (size_t at = 0; at < message.size();) {
    auto n = std::min<size_t>(65535, message.size() - at);
    const std::array<char, 5> header{0, static_cast<char>(n & 0xff), static_cast<char>(n >> 8),
                                     static_cast<char>(~n & 0xff),
                                     static_cast<char>((~n >> 8) & 0xff)};
    cursor = std::copy(header.begin(), header.end(), cursor);
    cursor = std::copy_n(message.data() + at, n, cursor);
    at += n;
  }
  *cursor++ = sync_flush_start;
  return {out_.data(), static_cast<size_t>(cursor - out_.data())};
}

} // namespace ferry::net
