// The import's index memtable (store/index_memtable.hpp) against RocksDB's
// own skip list: the same random batches go to one family of each kind in
// one DB, and every read must be equal. Its flush sorts by 8-byte chunks of
// the keys (store/memtable_rep_parts.hpp), so the keys here are index-shaped
// (long shared heads before the part that tells them apart) and also the
// cases that order needs to get right: keys that are prefixes of others,
// that differ only by trailing zero bytes, that are empty, and that share
// more bytes than the chunk sort follows before handing a run to the
// comparator.

#include "store/index_memtable.hpp"
#include "tests/fixtures/memtable_twins.hpp"
#include "tests/fixtures/test_seed.hpp"

#include <catch2/catch.hpp>

#include <rocksdb/db.h>

#include <algorithm>
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
using ferry::test::test_seed;
using ferry::test::twin_families;

std::shared_ptr<rocksdb::MemTableRepFactory> index_rep() {
  return std::make_shared<ferry::store::index_memtable_factory>();
}

} // namespace

TEST_CASE("the import's index memtable reads as RocksDB's skip list does, at "
          "every snapshot, while it fills, after its flush and after a reopen",
          "[store][index_memtable]") {
  auto seed = test_seed();
  INFO("FERRY_TEST_SEED=" << seed);
  std::mt19937_64 rng{seed};
  twin_families db{index_rep()};
  check_reads_match(db, rng, 60, 40, index_shaped_key);
}

TEST_CASE("a flushed index memtable of 100,000 index keys holds them in the "
          "skip list's order",
          "[store][index_memtable]") {
  // An import's shape at scale: few authors, many events per second,
  // distinct ids; every key once, flushed from memtables of 1 MiB.
  twin_families db{index_rep(), 1 << 20};
  std::mt19937_64 rng{test_seed()};
  for (int batch = 0; batch < 200; ++batch) {
    std::vector<std::pair<std::string, std::optional<std::string>>> ops;
    for (int i = 0; i < 500; ++i) {
      std::string key = bytes_from(rng() % 50, 32);
      key += std::string(4, '\xff') + bytes_from(rng() % 5000, 4) + bytes_from(rng(), 32);
      ops.emplace_back(std::move(key), std::string{});
    }
    db.write(ops);
  }
  REQUIRE(db.db->Flush(rocksdb::FlushOptions{}, db.ours()).ok());
  auto ours = db.scan(db.ours());
  CHECK(ours.size() == 100'000);
  CHECK(std::is_sorted(ours.begin(), ours.end()));
  CHECK(ours == db.scan(db.skip_list()));
}
