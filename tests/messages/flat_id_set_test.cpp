#include "messages/nostr/flat_id_set.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>

using namespace ferry::nostr;

namespace {

bytes32 random_id(std::mt19937_64& rng) {
  bytes32 id;
  for (auto& b : id)
    b = static_cast<uint8_t>(rng());
  return id;
}

/// An id whose first eight bytes (its hash) are `prefix`'s: every such id
/// starts probing at the same slot.
bytes32 same_hash(const bytes32& prefix, uint8_t last) {
  bytes32 id = prefix;
  id[31] = last;
  return id;
}

} // namespace

TEST_CASE("a flat id set holds what a std::set holds, through growth",
          "[flat_id_set]") {
  std::mt19937_64 rng{GENERATE(1u, 2u, 3u)};
  flat_id_set ids;
  std::set<bytes32> reference;
  CHECK(ids.empty());
  std::vector<bytes32> pool;
  for (int i = 0; i < 3000; ++i)
    pool.push_back(random_id(rng));
  // Ids that share a hash: they probe past each other.
  for (uint8_t last = 0; last < 40; ++last)
    pool.push_back(same_hash(pool.front(), last));
  // Hashes that start probing in the last slots wrap around to the first.
  bytes32 high{};
  high.fill(0xff);
  for (uint8_t last = 0; last < 8; ++last)
    pool.push_back(same_hash(high, last));
  pool.push_back(bytes32{}); // the id that marks empty slots
  std::shuffle(pool.begin(), pool.end(), rng);
  for (size_t i = 0; i < pool.size(); ++i) {
    // Every id twice, the second time as a duplicate.
    for (int round = 0; round < 2; ++round) {
      const auto& id = pool[round == 0 ? i : i / 2];
      CHECK(ids.insert(id) == reference.insert(id).second);
    }
  }
  CHECK(ids.size() == reference.size());
  for (const auto& id : pool)
    CHECK(ids.contains(id));
  for (int i = 0; i < 1000; ++i)
    CHECK_FALSE(ids.contains(random_id(rng)));
  for (uint8_t last = 40; last < 60; ++last)
    CHECK_FALSE(ids.contains(same_hash(pool.front(), last)));
}

TEST_CASE("the all-zero id is a member like any other", "[flat_id_set]") {
  flat_id_set ids;
  CHECK_FALSE(ids.contains(bytes32{}));
  CHECK(ids.insert(bytes32{}));
  CHECK_FALSE(ids.insert(bytes32{}));
  CHECK(ids.contains(bytes32{}));
  CHECK(ids.size() == 1);
  bytes32 one{};
  one[0] = 1;
  CHECK_FALSE(ids.contains(one));
}

TEST_CASE("a reserved flat id set keeps its members when it grows past the "
          "reservation",
          "[flat_id_set]") {
  std::mt19937_64 rng{7};
  flat_id_set ids;
  ids.reserve(100);
  std::vector<bytes32> inserted;
  for (int i = 0; i < 1000; ++i) {
    inserted.push_back(random_id(rng));
    REQUIRE(ids.insert(inserted.back()));
  }
  ids.reserve(10); // smaller than what it holds: nothing changes
  CHECK(ids.size() == 1000);
  for (const auto& id : inserted)
    CHECK(ids.contains(id));
}

TEST_CASE("ids ground to share bits of their first eight bytes start probing "
          "all over the table",
          "[flat_id_set]") {
  // An author can grind ids with any 20-odd chosen bits; had those bits
  // picked the slot, every such id would probe past all the others.
  std::mt19937_64 rng{11};
  const size_t fixed_from = GENERATE(size_t{0}, size_t{4});
  CAPTURE(fixed_from);
  flat_id_set ids;
  ids.reserve(2000); // 4096 slots
  std::set<size_t> home_slots;
  for (int i = 0; i < 2000; ++i) {
    auto id = random_id(rng);
    for (size_t b = fixed_from; b < fixed_from + 4; ++b)
      id[b] = 0xab;
    home_slots.insert(ids.home_slot(id));
  }
  // 2000 ids thrown at 4096 slots at random fill ~1600.
  CHECK(home_slots.size() > 1400);
}
