#include "messages/nostr/id_hash.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <unordered_set>

using namespace ferry::nostr;

namespace {

/// The most ids sharing one bucket of `set`.
size_t fullest_bucket(const std::unordered_set<bytes32, id_hash>& set) {
  size_t most = 0;
  for (size_t b = 0; b < set.bucket_count(); ++b)
    most = std::max(most, set.bucket_size(b));
  return most;
}

} // namespace

TEST_CASE("ids that differ in one eight-byte word alone spread over a hash "
          "set's buckets",
          "[id_hash]") {
  // A NIP-77 peer's need and have lists are any 32 bytes it likes: ids
  // sharing everything but one word were one bucket when the first eight
  // bytes were the hash.
  const size_t varied_word = GENERATE(size_t{0}, size_t{1}, size_t{2}, size_t{3});
  CAPTURE(varied_word);
  std::mt19937_64 rng{7};
  bytes32 base{};
  for (auto& b : base)
    b = static_cast<uint8_t>(rng());
  std::unordered_set<bytes32, id_hash> set;
  std::set<uint64_t> hashes;
  for (uint64_t i = 0; i < 4000; ++i) {
    auto id = base;
    std::memcpy(id.data() + 8 * varied_word, &i, sizeof(i));
    set.insert(id);
    hashes.insert(hash_id(id));
  }
  REQUIRE(set.size() == 4000);
  CHECK(hashes.size() == 4000);
  // 4000 ids thrown at ~4000 buckets at random: the fullest holds a handful.
  CHECK(fullest_bucket(set) <= 10);
}

TEST_CASE("ids whose prefixes are equal modulo the bucket count spread over "
          "the buckets",
          "[id_hash]") {
  // What grinding 20-odd bits buys: prefixes in one residue class of the
  // set's (predictable) prime bucket count.
  std::unordered_set<bytes32, id_hash> set;
  set.reserve(4000);
  const uint64_t buckets = set.bucket_count();
  std::mt19937_64 rng{13};
  for (uint64_t i = 1; i <= 4000; ++i) {
    bytes32 id{};
    for (auto& b : id)
      b = static_cast<uint8_t>(rng());
    uint64_t prefix = i * buckets + 17;
    std::memcpy(id.data(), &prefix, sizeof(prefix));
    set.insert(id);
  }
  REQUIRE(set.bucket_count() == buckets);
  CHECK(fullest_bucket(set) <= 10);
}
