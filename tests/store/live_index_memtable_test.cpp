// A node's index memtable (store/live_index_memtable.hpp) against RocksDB's
// own skip list: the same random batches go to one family of each kind in
// one DB, with reads between them, and every read must be equal. Each read
// sorts what came since the last one and merges it into the view the rep
// keeps (a `recent` array, merged into `base` as it grows), and iterators
// keep the view they were opened with; so the reads here come at every
// cadence, and iterators are read after more batches have come.

#include "store/live_index_memtable.hpp"
#include "tests/fixtures/memtable_twins.hpp"
#include "tests/fixtures/test_seed.hpp"

#include <catch2/catch.hpp>

#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

using ferry::test::bytes_from;
using ferry::test::check_reads_match;
using ferry::test::index_shaped_key;
using ferry::test::rest_of;
using ferry::test::test_seed;
using ferry::test::twin_families;

/// `recent_min` small: a small memtable's view has both arrays, and merges
/// `recent` into `base` often.
std::shared_ptr<rocksdb::MemTableRepFactory> live_rep(size_t recent_min = 16 * 1024) {
  return std::make_shared<ferry::store::live_index_memtable_factory>(recent_min);
}

/// An index key as a node writes them: few heads (authors), many seconds,
/// distinct ids.
std::string node_index_key(std::mt19937_64& rng) {
  std::string key = bytes_from(rng() % 50, 32);
  key += std::string(4, '\xff') + bytes_from(rng() % 5000, 4) + bytes_from(rng(), 32);
  return key;
}

} // namespace

TEST_CASE("a node's index memtable reads as RocksDB's skip list does while it "
          "is written and read in turn, at every snapshot, after its flush and "
          "after a reopen",
          "[store][live_index_memtable]") {
  auto seed = test_seed();
  INFO("FERRY_TEST_SEED=" << seed);
  std::mt19937_64 rng{seed};
  auto recent_min = GENERATE(size_t{16 * 1024}, size_t{8});
  INFO("recent_min " << recent_min);
  twin_families db{live_rep(recent_min)};
  SECTION("read after every batch") {
    check_reads_match(db, rng, 40, 40, index_shaped_key, 1);
  }
  SECTION("read every few batches") {
    check_reads_match(db, rng, 80, 40, index_shaped_key, 7);
  }
  SECTION("read only once it is full") {
    check_reads_match(db, rng, 80, 40, index_shaped_key);
  }
}

TEST_CASE("a node's index memtable of 100,000 index keys, read between bursts "
          "of inserts, reads in the skip list's order, and an iterator opened "
          "early still reads what it saw",
          "[store][live_index_memtable]") {
  // Past the 16k entries `recent` holds: the view's base is rebuilt several
  // times while iterators of older views are still read.
  auto seed = test_seed();
  INFO("FERRY_TEST_SEED=" << seed);
  std::mt19937_64 rng{seed};
  twin_families db{live_rep()};
  std::vector<std::pair<std::unique_ptr<rocksdb::Iterator>, std::unique_ptr<rocksdb::Iterator>>>
    held;
  for (int batch = 0; batch < 200; ++batch) {
    std::vector<std::pair<std::string, std::optional<std::string>>> ops;
    for (int i = 0; i < 500; ++i)
      ops.emplace_back(node_index_key(rng), std::string{});
    db.write(ops);
    // Lookups and seeks every batch (a few new entries merged each time),
    // now and then after many batches without a read.
    if (batch % 40 < 30) {
      auto target = node_index_key(rng);
      REQUIRE(db.seek(db.ours(), target) == db.seek(db.skip_list(), target));
      REQUIRE(db.get(db.ours(), ops.front().first) == std::string{});
    }
    if (batch % 50 == 10) {
      held.emplace_back(db.db->NewIterator(rocksdb::ReadOptions{}, db.ours()),
                        db.db->NewIterator(rocksdb::ReadOptions{}, db.skip_list()));
      held.back().first->SeekToFirst();
      held.back().second->SeekToFirst();
    }
  }
  auto ours = db.scan(db.ours());
  CHECK(ours.size() == 100'000);
  CHECK(std::is_sorted(ours.begin(), ours.end()));
  CHECK(ours == db.scan(db.skip_list()));
  CHECK(db.scan(db.ours(), true) == db.scan(db.skip_list(), true));
  for (auto& [mine, theirs] : held) {
    auto seen = rest_of(*mine);
    CHECK(seen.size() < 100'000);
    CHECK(seen == rest_of(*theirs));
  }
  held.clear();
  REQUIRE(db.db->Flush(rocksdb::FlushOptions{}, db.ours()).ok());
  CHECK(db.scan(db.ours()) == ours);
}

TEST_CASE("a node's index memtable read by other threads while batches are "
          "written gives each reader a sorted whole that only grows",
          "[store][live_index_memtable]") {
  // A REQ reads on a scheduler thread while the writer inserts: each read
  // must see every batch written before it whole (RocksDB publishes a batch
  // only after its inserts), in order, and iterators must outlive the views
  // that later reads replace.
  auto seed = test_seed();
  INFO("FERRY_TEST_SEED=" << seed);
  twin_families db{live_rep()};
  constexpr int batches = 150;
  constexpr int per_batch = 200;
  std::atomic<bool> writing{true};
  auto reader = [&](uint64_t reader_seed) {
    std::mt19937_64 rng{reader_seed};
    size_t last_size = 0;
    int failures = 0;
    while (writing.load()) {
      std::unique_ptr<rocksdb::Iterator> it{
        db.db->NewIterator(rocksdb::ReadOptions{}, db.ours())};
      std::vector<std::string> keys;
      for (it->SeekToFirst(); it->Valid(); it->Next())
        keys.push_back(it->key().ToString());
      // Whole batches only, never fewer than before, in order.
      if (keys.size() % per_batch != 0 || keys.size() < last_size
          || !std::is_sorted(keys.begin(), keys.end()))
        ++failures;
      last_size = keys.size();
      auto target = node_index_key(rng);
      it->SeekForPrev(target);
      if (it->Valid() && it->key().ToString() > target)
        ++failures;
    }
    return failures;
  };
  std::vector<std::future<int>> readers;
  for (uint64_t r = 0; r < 2; ++r)
    readers.push_back(std::async(std::launch::async, reader, seed + r + 1));
  std::mt19937_64 rng{seed};
  for (int batch = 0; batch < batches; ++batch) {
    std::vector<std::pair<std::string, std::optional<std::string>>> ops;
    for (int i = 0; i < per_batch; ++i)
      ops.emplace_back(node_index_key(rng), std::string{});
    db.write(ops);
  }
  writing = false;
  for (auto& r : readers)
    CHECK(r.get() == 0);
  auto ours = db.scan(db.ours());
  CHECK(ours.size() == size_t{batches} * per_batch);
  CHECK(ours == db.scan(db.skip_list()));
}
