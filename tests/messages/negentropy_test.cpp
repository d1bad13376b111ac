#include "messages/nostr/negentropy.hpp"
#include "tests/fixtures/test_seed.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>

using namespace ferry::nostr;
using namespace ferry::nostr::negentropy;

namespace {

using ferry::test::test_seed;

std::string bin(std::string_view hex) {
  std::string out;
  REQUIRE(decode_hex(hex, out));
  return out;
}

bytes32 id_of(std::string_view hex) {
  bytes32 id;
  REQUIRE(from_hex(hex, id));
  return id;
}

item_set_ptr make_set(std::vector<item> items) {
  return std::make_shared<const item_set>(std::move(items));
}

bytes32 random_id(std::mt19937_64& rng) {
  bytes32 id;
  for (auto& b : id)
    b = static_cast<uint8_t>(rng());
  return id;
}

/// The two sides' sets for a given overlap: `shared` items on both sides,
/// the rest split between them; timestamps drawn from a narrow window so
/// many items tie (exercising id-prefix bounds).
struct sides {
  std::vector<item> client;
  std::vector<item> server;
  std::set<bytes32> only_client;
  std::set<bytes32> only_server;
};

sides make_sides(std::mt19937_64& rng, size_t total, double overlap,
                 uint64_t time_window) {
  sides s;
  auto shared = static_cast<size_t>(total * overlap);
  std::uniform_int_distribution<uint64_t> ts(1'700'000'000,
                                             1'700'000'000 + time_window);
  for (size_t i = 0; i < total; ++i) {
    item x{ts(rng), random_id(rng)};
    if (i < shared) {
      s.client.push_back(x);
      s.server.push_back(x);
    } else if (rng() % 2 == 0) {
      s.client.push_back(x);
      s.only_client.insert(x.id);
    } else {
      s.server.push_back(x);
      s.only_server.insert(x.id);
    }
  }
  return s;
}

struct outcome {
  std::vector<bytes32> have;
  std::vector<bytes32> need;
  size_t rounds = 0;
  size_t bytes = 0;
  size_t largest_frame = 0;
  size_t largest_query = 0;
  size_t largest_answer = 0;
  /// How often each id came in the responder's id lists.
  std::map<bytes32, size_t> sent_by_server;
};

/// Runs a whole reconciliation in memory; the server's answers are limited
/// to `server_limit` when given, otherwise to the client's `frame_limit`.
outcome reconcile_all(const std::vector<item>& client_items,
                      const std::vector<item>& server_items,
                      size_t frame_limit,
                      std::optional<size_t> server_limit = std::nullopt) {
  client c{make_set(client_items), frame_limit};
  server s{make_set(server_items), server_limit.value_or(frame_limit)};
  outcome result;
  auto query = c.initiate();
  for (;;) {
    REQUIRE(result.rounds < 1000);
    result.bytes += query.size();
    result.largest_frame = std::max(result.largest_frame, query.size());
    result.largest_query = std::max(result.largest_query, query.size());
    std::string response;
    REQUIRE(s.reconcile(query, response) == "");
    result.bytes += response.size();
    result.largest_frame = std::max(result.largest_frame, response.size());
    result.largest_answer = std::max(result.largest_answer, response.size());
    message decoded;
    std::string reason;
    REQUIRE(decode(response, decoded, reason) == decode_status::ok);
    for (const auto& r : decoded.ranges)
      for (const auto& id : r.ids)
        ++result.sent_by_server[id];
    client::round r;
    REQUIRE(c.reconcile(response, r) == "");
    ++result.rounds;
    result.have.insert(result.have.end(), r.have.begin(), r.have.end());
    result.need.insert(result.need.end(), r.need.begin(), r.need.end());
    if (!r.next) {
      CHECK(c.done());
      return result;
    }
    query = std::move(*r.next);
  }
}

/// Exactly the expected ids, each reported once.
void check_ids(std::vector<bytes32> actual, const std::set<bytes32>& expected) {
  std::sort(actual.begin(), actual.end());
  auto unique_end = std::unique(actual.begin(), actual.end());
  CHECK(unique_end == actual.end());
  CHECK(actual.size() == expected.size());
  CHECK(std::equal(actual.begin(), actual.end(), expected.begin(),
                   expected.end()));
}

} // namespace

TEST_CASE("varints encode most significant digit first", "[negentropy]") {
  auto enc = [](uint64_t x) {
    std::string out;
    put_varint(out, x);
    return encode_hex(out);
  };
  CHECK(enc(0) == "00");
  CHECK(enc(1) == "01");
  CHECK(enc(127) == "7f");
  CHECK(enc(128) == "8100");
  CHECK(enc(255) == "817f");
  CHECK(enc(16384) == "818000");
  CHECK(enc(UINT64_MAX) == "81ffffffffffffffff7f");
  std::mt19937_64 rng{test_seed()};
  for (int i = 0; i < 10000; ++i) {
    uint64_t x = rng() >> (rng() % 64);
    std::string out;
    put_varint(out, x);
    std::string_view in = out;
    uint64_t back = 0;
    REQUIRE(get_varint(in, back));
    REQUIRE(back == x);
    REQUIRE(in.empty());
  }
}

TEST_CASE("varint decoding refuses truncation and overflow", "[negentropy]") {
  uint64_t x = 0;
  std::string_view truncated = "\x81\x80";
  CHECK_FALSE(get_varint(truncated, x));
  std::string_view empty;
  CHECK_FALSE(get_varint(empty, x));
  // 2^64 needs 65 bits.
  auto too_big = bin("82808080808080808000");
  std::string_view in = too_big;
  CHECK_FALSE(get_varint(in, x));
  auto endless = std::string(100, '\xff');
  in = endless;
  CHECK_FALSE(get_varint(in, x));
}

// Vectors from hoytech/negentropy's Kotlin port (FingerprintTest.kt,
// NegentropyBasicTest.kt), which its conformance suite checks against the
// reference C++ and JS implementations.
TEST_CASE("fingerprints match the reference vectors", "[negentropy]") {
  std::vector<item> items{
    {1678011277, id_of("eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c")},
    {1678011278, id_of("39b916432333e069a4386917609215cc688eb99f06fed01aadc29b1b4b92d6f0")},
    {1678011279, id_of("abc81d58ebe3b9a87100d47f58bf15e9b1cbf62d38623f11d0f0d17179f5f3ba")},
  };
  item_set one{{items[0]}};
  CHECK(to_hex(one.digest(0, 1)) == "6d74e1212fcafc8a81d090f0ffbde8b0");
  item_set all{items};
  CHECK(to_hex(all.digest(0, 2)) == "96b26d110825d4b1805fc56988a3e65d");
  CHECK(to_hex(all.digest(0, 3)) == "c15ce60f185fd24ae341076caa93daa5");
}

TEST_CASE("the first message matches the reference vector", "[negentropy]") {
  client c{make_set({
    {1678011279, id_of("abc81d58ebe3b9a87100d47f58bf15e9b1cbf62d38623f11d0f0d17179f5f3ba")},
    {1678011277, id_of("eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c")},
    {1678011278, id_of("39b916432333e069a4386917609215cc688eb99f06fed01aadc29b1b4b92d6f0")},
  })};
  CHECK(encode_hex(c.initiate())
        == "6100000203"
           "eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c"
           "39b916432333e069a4386917609215cc688eb99f06fed01aadc29b1b4b92d6f0"
           "abc81d58ebe3b9a87100d47f58bf15e9b1cbf62d38623f11d0f0d17179f5f3ba");
}

TEST_CASE("another negentropy version is answered with ours", "[negentropy]") {
  server s{make_set({})};
  std::string response;
  REQUIRE(s.reconcile(bin("62aabbccddeeff"), response) == "");
  CHECK(encode_hex(response) == "61");
  // Not a negentropy version byte at all: an error, not an answer.
  CHECK(s.reconcile(bin("01"), response) != "");
  CHECK(s.reconcile("", response) != "");
  // A client receiving another version gives up with a reason.
  client c{make_set({})};
  c.initiate();
  client::round r;
  CHECK(c.reconcile(bin("62"), r) != "");
}

TEST_CASE("messages survive an encode/decode round trip", "[negentropy]") {
  std::mt19937_64 rng{test_seed()};
  for (int round = 0; round < 200; ++round) {
    message msg;
    uint64_t ts = rng() % 1000;
    size_t n = rng() % 20;
    for (size_t i = 0; i < n; ++i) {
      range r;
      if (i + 1 == n && rng() % 2 == 0) {
        r.upper.timestamp = infinity;
      } else {
        ts += rng() % 100;
        r.upper.timestamp = ts;
        r.upper.prefix_size = static_cast<uint8_t>(rng() % 33);
        for (size_t b = 0; b < r.upper.prefix_size; ++b)
          r.upper.id[b] = static_cast<uint8_t>(rng());
      }
      r.kind = static_cast<mode>(rng() % 3);
      if (r.kind == mode::fingerprint)
        for (auto& b : r.digest)
          b = static_cast<uint8_t>(rng());
      if (r.kind == mode::id_list)
        for (size_t k = rng() % 5; k > 0; --k)
          r.ids.push_back(random_id(rng));
      msg.ranges.push_back(r);
      if (r.upper.timestamp == infinity)
        break;
    }
    auto bytes = encode(msg);
    message back;
    std::string reason;
    REQUIRE(decode(bytes, back, reason) == decode_status::ok);
    REQUIRE(back.ranges.size() == msg.ranges.size());
    for (size_t i = 0; i < msg.ranges.size(); ++i) {
      const auto& a = msg.ranges[i];
      const auto& b = back.ranges[i];
      CHECK(a.upper == b.upper);
      CHECK(a.kind == b.kind);
      if (a.kind == mode::fingerprint)
        CHECK(a.digest == b.digest);
      CHECK(a.ids == b.ids);
    }
    CHECK(encode(back) == bytes);
  }
}

TEST_CASE("hex is lowercase and even", "[negentropy]") {
  std::string out;
  CHECK(decode_hex("", out));
  CHECK(out.empty());
  CHECK(decode_hex("61ff", out));
  CHECK(out == "\x61\xff");
  CHECK_FALSE(decode_hex("61F", out));
  CHECK_FALSE(decode_hex("61FF", out));
  CHECK_FALSE(decode_hex("6g", out));
  CHECK(encode_hex(std::string("\x00\xab", 2)) == "00ab");
}

TEST_CASE("client and server converge to the exact differences",
          "[negentropy]") {
  auto seed = test_seed();
  CAPTURE(seed);
  std::mt19937_64 rng{seed};
  for (double overlap : {0.0, 0.01, 0.5, 0.99, 1.0}) {
    for (size_t total : {0, 1, 31, 32, 33, 1000, 5000}) {
      for (size_t limit : {size_t{0}, size_t{4096}, default_frame_size_limit}) {
        for (uint64_t window : {uint64_t{0}, uint64_t{50}, uint64_t{1000000}}) {
          CAPTURE(overlap, total, limit, window);
          auto s = make_sides(rng, total, overlap, window);
          auto result = reconcile_all(s.client, s.server, limit);
          check_ids(result.have, s.only_client);
          check_ids(result.need, s.only_server);
          if (limit != 0)
            CHECK(result.largest_frame <= limit);
        }
      }
    }
  }
}

TEST_CASE("a responder out of frame room never names an id twice",
          "[negentropy]") {
  // Filling a frame must not reopen ranges the client has settled: the
  // reference client (nostr-tools) reports every id it is sent, repeats
  // included.
  auto seed = test_seed();
  CAPTURE(seed);
  std::mt19937_64 rng{seed};
  for (size_t limit : {size_t{4096}, size_t{8192}}) {
    for (double overlap : {0.3, 0.5, 0.7}) {
      for (int trial = 0; trial < 8; ++trial) {
        CAPTURE(limit, overlap, trial);
        auto s = make_sides(rng, 2500, overlap, 250);
        auto result = reconcile_all(s.client, s.server, limit);
        check_ids(result.need, s.only_server);
        size_t repeated = 0;
        for (const auto& [id, times] : result.sent_by_server)
          repeated += times > 1 ? 1 : 0;
        CHECK(repeated == 0);
      }
    }
  }
}

TEST_CASE("one side empty: the other side's whole set is the difference",
          "[negentropy]") {
  std::mt19937_64 rng{test_seed()};
  auto s = make_sides(rng, 3000, 0.0, 100000);
  std::set<bytes32> all_client(s.only_client);
  all_client.insert(s.only_server.begin(), s.only_server.end());
  std::vector<item> everything = s.client;
  everything.insert(everything.end(), s.server.begin(), s.server.end());
  auto empty_client = reconcile_all({}, everything, default_frame_size_limit);
  CHECK(empty_client.have.empty());
  check_ids(empty_client.need, all_client);
  auto empty_server = reconcile_all(everything, {}, default_frame_size_limit);
  CHECK(empty_server.need.empty());
  check_ids(empty_server.have, all_client);
}

TEST_CASE("100k items at 99% overlap converge with a small exchange",
          "[negentropy][large]") {
  auto seed = test_seed();
  CAPTURE(seed);
  std::mt19937_64 rng{seed};
  auto s = make_sides(rng, 100000, 0.99, 30 * 24 * 3600);
  auto result = reconcile_all(s.client, s.server, default_frame_size_limit);
  check_ids(result.have, s.only_client);
  check_ids(result.need, s.only_server);
  // Each side shares its frame out among the ranges that still differ, so
  // the id lists that settle them hold a few ids each: well under the 3.2
  // MB of sending every id.
  CHECK(result.bytes < 1000000);
  CHECK(result.largest_frame <= default_frame_size_limit);
  // With 16 buckets a range and id lists below 32 items, the ranges of this
  // difference outgrew the frame two rounds in: 15 rounds.
  CHECK(result.rounds <= 8);
}

TEST_CASE("a 1% difference in 100k items settles in 4 rounds when the relay "
          "answers in its default frames",
          "[negentropy][large]") {
  auto seed = test_seed();
  CAPTURE(seed);
  std::mt19937_64 rng{seed};
  auto s = make_sides(rng, 100000, 0.99, 30 * 24 * 3600);
  auto result = reconcile_all(s.client, s.server, default_frame_size_limit,
                              default_relay_frame_size_limit);
  check_ids(result.have, s.only_client);
  check_ids(result.need, s.only_server);
  CHECK(result.largest_query <= default_frame_size_limit);
  CHECK(result.largest_answer <= default_relay_frame_size_limit);
  CHECK(result.rounds <= 4);
  // Identical sets still settle at once, with one small query.
  auto same = reconcile_all(s.client, s.client, default_frame_size_limit,
                            default_relay_frame_size_limit);
  CHECK(same.rounds == 1);
  CHECK(same.largest_query < 1000);
}

TEST_CASE("disjoint 100k sets converge within the frame limit",
          "[negentropy][large]") {
  std::mt19937_64 rng{test_seed()};
  auto s = make_sides(rng, 100000, 0.0, 30 * 24 * 3600);
  auto result = reconcile_all(s.client, s.server, default_frame_size_limit);
  check_ids(result.have, s.only_client);
  check_ids(result.need, s.only_server);
  CHECK(result.largest_frame <= default_frame_size_limit);
  // Each round moves about a frame's worth of ids in each direction.
  CHECK(result.rounds > 10);
}

TEST_CASE("decoders survive random and mutated input", "[negentropy][fuzz]") {
  auto seed = test_seed();
  CAPTURE(seed);
  std::mt19937_64 rng{seed};
  auto s = make_sides(rng, 2000, 0.5, 500);
  server srv{make_set(s.server), 4096};
  // Real messages to mutate, so the fuzzer gets past the version byte.
  std::vector<std::string> corpus;
  {
    client c{make_set(s.client), 4096};
    auto q = c.initiate();
    for (int i = 0; i < 20; ++i) {
      corpus.push_back(q);
      std::string response;
      REQUIRE(srv.reconcile(q, response) == "");
      corpus.push_back(response);
      client::round r;
      REQUIRE(c.reconcile(response, r) == "");
      if (!r.next)
        break;
      q = *r.next;
    }
  }
  size_t accepted = 0;
  size_t refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string input;
    if (i % 4 == 0) {
      input.resize(rng() % 64);
      for (auto& c : input)
        c = static_cast<char>(rng());
      if (!input.empty() && rng() % 2 == 0)
        input[0] = static_cast<char>(protocol_version);
    } else {
      input = corpus[rng() % corpus.size()];
      for (size_t flips = 1 + rng() % 4; flips > 0 && !input.empty(); --flips) {
        auto pos = rng() % input.size();
        switch (rng() % 3) {
          case 0:
            input[pos] = static_cast<char>(rng());
            break;
          case 1:
            input.resize(pos);
            break;
          default:
            input.insert(pos, 1, static_cast<char>(rng()));
        }
      }
    }
    std::string response;
    if (srv.reconcile(input, response).empty()) {
      ++accepted;
      CHECK(response.size() <= 4096);
    } else {
      ++refused;
    }
    client c{make_set(s.client), 4096};
    c.initiate();
    client::round r;
    (void) c.reconcile(input, r);
    message msg;
    std::string reason;
    (void) decode(input, msg, reason);
  }
  // Both paths were exercised.
  CHECK(accepted > 100);
  CHECK(refused > 100);
}
