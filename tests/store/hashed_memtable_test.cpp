// The hashed memtable (store/hashed_memtable.hpp) against RocksDB's own skip
// list: the same random operations go to one family of each kind in one DB,
// and every read of one must equal the same read of the other — lookups at
// snapshots, scans while the memtable fills, after its flush, after a reopen.

#include "store/hashed_memtable.hpp"
#include "tests/fixtures/memtable_twins.hpp"
#include "tests/fixtures/test_seed.hpp"

#include <catch2/catch.hpp>

#include <malloc.h>

#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using ferry::test::test_seed;
using ferry::test::check_reads_match;
using ferry::test::twin_families;

std::shared_ptr<rocksdb::MemTableRepFactory> hashed() {
  return std::make_shared<ferry::store::hashed_memtable_factory>();
}

/// Keys from a small space, so that keys get several versions and deletions;
/// some are ids (32 random bytes), some short, some share long prefixes.
std::string random_key(std::mt19937_64& rng) {
  switch (rng() % 3) {
  case 0: {
    std::string id(32, '\0');
    std::mt19937_64 from{rng() % 300};
    for (auto& c : id)
      c = static_cast<char>(from());
    return id;
  }
  case 1:
    return std::string(1 + rng() % 3, static_cast<char>('a' + rng() % 3));
  default:
    return "prefix-shared-by-many-" + std::to_string(rng() % 40);
  }
}

} // namespace

TEST_CASE("the hashed memtable reads as RocksDB's skip list does, at every "
          "snapshot, while it fills, after its flush and after a reopen",
          "[store][hashed_memtable]") {
  auto seed = test_seed();
  INFO("FERRY_TEST_SEED=" << seed);
  std::mt19937_64 rng{seed};
  twin_families db{hashed()};
  check_reads_match(db, rng, 40, 30, random_key);
}

TEST_CASE("the hashed memtable keeps every version of a key in sequence order, "
          "however the versions arrive in its batches",
          "[store][hashed_memtable]") {
  twin_families db{hashed()};
  const std::string key(32, '\x42');
  db.write({{key, "one"}});
  auto* after_one = db.db->GetSnapshot();
  // Put, delete and put again in one batch: three sequence numbers, one key.
  db.write({{key, "two"}, {key, std::nullopt}, {key, "three"}});
  auto* after_three = db.db->GetSnapshot();
  db.write({{key, std::nullopt}});

  CHECK(db.get(db.ours(), key, after_one) == "one");
  CHECK(db.get(db.ours(), key, after_three) == "three");
  CHECK_FALSE(db.get(db.ours(), key));
  REQUIRE(db.db->Flush(rocksdb::FlushOptions{}, db.ours()).ok());
  CHECK(db.get(db.ours(), key, after_one) == "one");
  CHECK(db.get(db.ours(), key, after_three) == "three");
  CHECK_FALSE(db.get(db.ours(), key));
  db.db->ReleaseSnapshot(after_one);
  db.db->ReleaseSnapshot(after_three);
}

TEST_CASE("the hashed memtable answers lookups from other threads while its "
          "writer inserts and it is flushed in turn",
          "[store][hashed_memtable]") {
  // 256 KiB memtables: the writer fills several, so lookups also meet
  // memtables being flushed and files they became.
  twin_families db{hashed(), 256 << 10};
  constexpr int batches = 200;
  constexpr int per_batch = 50;
  auto key_of = [](int n) {
    std::string key(32, '\0');
    std::mt19937_64 from{static_cast<uint64_t>(n)};
    for (auto& c : key)
      c = static_cast<char>(from());
    return key;
  };
  std::atomic<int> written{0};
  std::atomic<int> wrong{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&, r] {
      std::mt19937 rng{static_cast<unsigned>(r)};
      while (!done.load()) {
        auto upto = written.load();
        if (upto == 0)
          continue;
        auto n = static_cast<int>(rng() % upto);
        auto value = db.get(db.ours(), key_of(n));
        if (value != "value-" + std::to_string(n))
          ++wrong;
        if (db.get(db.ours(), key_of(n + 1'000'000)))
          ++wrong;
      }
    });
  for (int b = 0; b < batches; ++b) {
    std::vector<std::pair<std::string, std::optional<std::string>>> ops;
    for (int i = 0; i < per_batch; ++i) {
      auto n = b * per_batch + i;
      ops.emplace_back(key_of(n), "value-" + std::to_string(n));
    }
    db.write(ops);
    written.store((b + 1) * per_batch);
  }
  done.store(true);
  for (auto& t : readers)
    t.join();
  CHECK(wrong.load() == 0);
  auto all = db.scan(db.ours());
  CHECK(all.size() == static_cast<size_t>(batches * per_batch));
  CHECK(std::is_sorted(all.begin(), all.end()));
}

TEST_CASE("lookups in the hashed memtable hold no memory once they return",
          "[store][hashed_memtable]") {
  // RocksDB's default memtable lookup never frees the iterator it makes: a
  // rep relying on it loses ~80 bytes per lookup of a key it holds.
  twin_families db{hashed()};
  const std::string key(32, '\x17');
  db.write({{key, "held"}});
  for (int i = 0; i < 1000; ++i)
    REQUIRE(db.get(db.ours(), key) == "held");
  auto before = ::mallinfo2().uordblks;
  for (int i = 0; i < 200'000; ++i)
    REQUIRE(db.get(db.ours(), key) == "held");
  auto after = ::mallinfo2().uordblks;
  CHECK(after < before + (1u << 20));
}
