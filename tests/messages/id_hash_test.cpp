#include "messages/nostr/id_hash.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

using namespace ferry::nostr;

namespace {

/// The most keys sharing one bucket of `set`.
template <class Set>
size_t fullest_bucket(const Set& set) {
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

TEST_CASE("strings std::hash puts in one bucket spread over the buckets of "
          "the seeded string hash",
          "[id_hash]") {
  // std::hash has a fixed seed: anyone can search offline for strings (tag
  // values in filters, say) that share a bucket of a set of known size.
  const size_t buckets
    = std::unordered_set<std::string, seeded_string_hash>{1000}.bucket_count();
  std::vector<std::string> values;
  for (uint64_t i = 0; values.size() < 500; ++i) {
    auto value = "t" + std::to_string(i);
    if (std::hash<std::string>{}(value) % buckets == 0)
      values.push_back(std::move(value));
  }
  std::unordered_set<std::string> unseeded{1000};
  std::unordered_set<std::string, seeded_string_hash> seeded{1000};
  for (const auto& value : values) {
    unseeded.insert(value);
    seeded.insert(value);
  }
  REQUIRE(unseeded.bucket_count() == buckets);
  REQUIRE(seeded.bucket_count() == buckets);
  CHECK(unseeded.bucket_size(unseeded.bucket(values.front())) == 500);
  CHECK(fullest_bucket(seeded) <= 10);
}

TEST_CASE("the string hash tells apart strings that differ in length or in "
          "their last, partial word",
          "[id_hash]") {
  std::set<uint64_t> hashes;
  std::vector<std::string> texts{"", std::string(1, '\0'), std::string(2, '\0'),
                                 std::string(8, '\0'), std::string(9, '\0'),
                                 "abcdefgh", "abcdefghi", "abcdefghj"};
  for (const auto& text : texts)
    hashes.insert(hash_bytes(text));
  CHECK(hashes.size() == texts.size());
}
