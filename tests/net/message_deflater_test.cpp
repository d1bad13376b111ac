// The relay's permessage-deflate compressor against zlib's inflater, the
// reference a browser or Node client decompresses with: every message comes
// back byte for byte on every window and context term, no match reaches past
// the window the client allowed, and output never exceeds stored blocks.

#include "net/message_deflater.hpp"

#include <catch2/catch.hpp>

#include <zlib.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace ferry::net;

namespace {

/// A client's decompressor: raw inflate with the negotiated window, reset
/// before every message when the server keeps no context.
class reference_inflater {
public:
  reference_inflater(int window_bits, bool no_context_takeover)
    : no_context_takeover_(no_context_takeover) {
    REQUIRE(inflateInit2(&stream_, -window_bits) == Z_OK);
  }
  ~reference_inflater() {
    inflateEnd(&stream_);
  }
  reference_inflater(const reference_inflater&) = delete;
  reference_inflater& operator=(const reference_inflater&) = delete;

  /// The message of one frame's payload; fails the test on a zlib error
  /// (a distance past the window is one).
  std::string inflate_message(std::string_view payload) {
    if (no_context_takeover_)
      REQUIRE(inflateReset(&stream_) == Z_OK);
    std::string input{payload};
    input.append("\0\0\xff\xff", 4); // RFC 7692, 7.2.2
    stream_.next_in = reinterpret_cast<Bytef*>(input.data());
    stream_.avail_in = static_cast<uInt>(input.size());
    std::string message;
    char chunk[16384];
    do {
      stream_.next_out = reinterpret_cast<Bytef*>(chunk);
      stream_.avail_out = sizeof chunk;
      auto rc = ::inflate(&stream_, Z_SYNC_FLUSH);
      INFO("zlib: " << (stream_.msg ? stream_.msg : "no message"));
      REQUIRE((rc == Z_OK || rc == Z_BUF_ERROR));
      message.append(chunk, sizeof chunk - stream_.avail_out);
    } while (stream_.avail_in > 0 || stream_.avail_out == 0);
    return message;
  }

private:
  z_stream stream_{};
  bool no_context_takeover_;
};

std::string hex(std::mt19937_64& rng, size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i)
    s += digits[rng() % 16];
  return s;
}

/// Event messages as a query sends them: a few authors, random ids and
/// signatures, repeated tags.
std::vector<std::string> event_messages(size_t count) {
  std::mt19937_64 rng{42};
  std::vector<std::string> authors;
  for (int i = 0; i < 5; ++i)
    authors.push_back(hex(rng, 64));
  std::vector<std::string> messages;
  for (size_t i = 0; i < count; ++i) {
    auto message = R"(["EVENT","page",{"id":")" + hex(rng, 64) + R"(","pubkey":")"
                   + authors[rng() % authors.size()] + R"(","created_at":)"
                   + std::to_string(1700000000 + i) + R"(,"kind":1,"tags":[["p",")"
                   + authors[rng() % authors.size()] + R"("]],"content":"note )"
                   + std::to_string(i) + R"( about the relay","sig":")" + hex(rng, 128)
                   + R"("}])";
    messages.push_back(std::move(message));
  }
  return messages;
}

/// Repetitive, random printable, random bytes (all 256 values, as in
/// binary-heavy or non-Latin text) and empty messages, of sizes around the
/// 258-byte longest match, the 32 KiB window and the 64 KiB stored block.
std::vector<std::string> varied_messages() {
  std::mt19937_64 rng{7};
  std::vector<std::string> messages;
  for (size_t size : {0, 1, 3, 4, 5, 257, 258, 259, 600, 32767, 32768, 32769, 65535, 65536, 200000}) {
    std::string repetitive(size, 'x');
    for (size_t i = 0; i < size; i += 7)
      repetitive[i] = static_cast<char>('a' + i % 26);
    std::string printable(size, ' ');
    for (auto& c : printable)
      c = static_cast<char>(' ' + rng() % 95);
    std::string bytes(size, '\0');
    for (auto& c : bytes)
      c = static_cast<char>(rng());
    for (int copy = 0; copy < 2; ++copy) {
      messages.push_back(repetitive);
      messages.push_back(printable);
      messages.push_back(bytes);
    }
  }
  return messages;
}

/// What stored blocks would take: the bound the compressor keeps to.
size_t stored_size(size_t n) {
  return n + (n / 65535 + 1) * 5 + 1;
}

} // namespace

TEST_CASE("every message inflates to itself on every window and context term",
          "[message_deflater][compression]") {
  const int window_bits = GENERATE(8, 9, 10, 13, 15);
  const bool no_context_takeover = GENERATE(false, true);
  INFO("window 2^" << window_bits << ", no context takeover " << no_context_takeover);
  message_deflater deflater{{window_bits, no_context_takeover}, 15};
  REQUIRE(deflater.window_bits() == window_bits);
  // The inflater's window is the negotiated one: a match reaching further
  // back fails it ("invalid distance too far back").
  reference_inflater inflater{window_bits, no_context_takeover};
  auto messages = varied_messages();
  auto events = event_messages(300);
  messages.insert(messages.end(), events.begin(), events.end());
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& message = messages[i];
    INFO("message " << i << " of " << message.size() << " bytes");
    auto payload = deflater.compress(message);
    CHECK(payload.size() <= stored_size(message.size()));
    REQUIRE(inflater.inflate_message(payload) == message);
  }
}

TEST_CASE("events compress to well under half, more with context takeover",
          "[message_deflater][compression]") {
  auto events = event_messages(500);
  auto compressed_size = [&](bool no_context_takeover) {
    message_deflater deflater{{15, no_context_takeover}, 15};
    reference_inflater inflater{15, no_context_takeover};
    size_t total = 0;
    for (const auto& message : events) {
      auto payload = deflater.compress(message);
      total += payload.size();
      REQUIRE(inflater.inflate_message(payload) == message);
    }
    return total;
  };
  size_t raw = 0;
  for (const auto& message : events)
    raw += message.size();
  auto shared = compressed_size(false);
  auto alone = compressed_size(true);
  INFO("raw " << raw << ", with context " << shared << ", without " << alone);
  // Hex digits take 8 bits in fixed codes; what shrinks is the JSON around
  // them and the repeated authors, which only the shared window can find.
  CHECK(shared * 10 < raw * 6);
  CHECK(shared * 10 < alone * 9);
  CHECK(alone < raw);
}

TEST_CASE("a message that does not compress goes in stored blocks",
          "[message_deflater][compression]") {
  message_deflater deflater{{15, false}, 15};
  reference_inflater inflater{15, false};
  std::mt19937_64 rng{3};
  // Bytes above 143 take 9 bits each in fixed codes.
  std::string high(150000, '\0');
  for (auto& c : high)
    c = static_cast<char>(0x90 + rng() % 0x70);
  auto payload = deflater.compress(high);
  CHECK(payload.size() == stored_size(high.size()));
  REQUIRE(inflater.inflate_message(payload) == high);
  // The window still holds its last 32 KiB: they again are mostly matches
  // (one table slot per hash loses some to later positions).
  auto tail = high.substr(high.size() - 30000);
  payload = deflater.compress(tail);
  CHECK(payload.size() < tail.size() / 10);
  REQUIRE(inflater.inflate_message(payload) == tail);
}

TEST_CASE("the compressor's window is the negotiated one, never above its own cap",
          "[message_deflater][compression]") {
  CHECK(message_deflater({15, false}, 13).window_bits() == 13);
  CHECK(message_deflater({10, false}, 13).window_bits() == 10);
  CHECK(message_deflater({8, false}, 15).window_bits() == 8);
  CHECK(message_deflater({15, false}, 15).window_bits() == 15);
}
