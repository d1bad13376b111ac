// The hashed memtable (store/hashed_memtable.hpp) against RocksDB's own skip
// list: the same random operations go to one family of each kind in one DB,
// and every read of one must equal the same read of the other — lookups at
// snapshots, scans while the memtable fills, after its flush, after a reopen.

#include "store/hashed_memtable.hpp"
#include "tests/fixtures/test_seed.hpp"

#include <catch2/catch.hpp>

#include <malloc.h>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using ferry::test::test_seed;

/// A DB with a hashed family and a skip-list family, on a scratch directory.
struct twin_families {
  std::filesystem::path dir;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  size_t write_buffer_bytes;

  explicit twin_families(size_t write_buffer = 64 << 20) : write_buffer_bytes(write_buffer) {
    std::random_device rd;
    dir = std::filesystem::temp_directory_path()
          / ("ferry-hashed-memtable-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    open();
  }

  ~twin_families() {
    close();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  void open() {
    rocksdb::DBOptions db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    // The hashed memtable takes no concurrent inserts (RocksDB refuses to
    // open it otherwise).
    db_options.allow_concurrent_memtable_write = false;
    rocksdb::ColumnFamilyOptions hashed;
    hashed.write_buffer_size = write_buffer_bytes;
    hashed.memtable_factory = std::make_shared<ferry::store::hashed_memtable_factory>();
    rocksdb::ColumnFamilyOptions skip_list;
    skip_list.write_buffer_size = write_buffer_bytes;
    std::vector<rocksdb::ColumnFamilyDescriptor> families{
      {rocksdb::kDefaultColumnFamilyName, skip_list},
      {"hashed", hashed},
      {"skip_list", skip_list}};
    auto s = rocksdb::DB::Open(db_options, dir.string(), families, &handles, &db);
    REQUIRE(s.ok());
  }

  void close() {
    for (auto* h : handles)
      db->DestroyColumnFamilyHandle(h);
    handles.clear();
    delete db;
    db = nullptr;
  }

  rocksdb::ColumnFamilyHandle* hashed() const {
    return handles[1];
  }

  rocksdb::ColumnFamilyHandle* skip_list() const {
    return handles[2];
  }

  /// The same batch into both families.
  void write(const std::vector<std::pair<std::string, std::optional<std::string>>>& ops) {
    rocksdb::WriteBatch batch;
    for (auto* family : {hashed(), skip_list()})
      for (const auto& [key, value] : ops) {
        if (value)
          batch.Put(family, key, *value);
        else
          batch.Delete(family, key);
      }
    REQUIRE(db->Write(rocksdb::WriteOptions{}, &batch).ok());
  }

  std::optional<std::string> get(rocksdb::ColumnFamilyHandle* family, const std::string& key,
                                 const rocksdb::Snapshot* snapshot = nullptr) const {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    std::string value;
    auto s = db->Get(ro, family, key, &value);
    if (s.IsNotFound())
      return std::nullopt;
    REQUIRE(s.ok());
    return value;
  }

  /// Every key and value in order, read forward or backward.
  std::vector<std::pair<std::string, std::string>>
  scan(rocksdb::ColumnFamilyHandle* family, bool backward = false,
       const rocksdb::Snapshot* snapshot = nullptr) const {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(ro, family)};
    std::vector<std::pair<std::string, std::string>> out;
    if (backward)
      for (it->SeekToLast(); it->Valid(); it->Prev())
        out.emplace_back(it->key().ToString(), it->value().ToString());
    else
      for (it->SeekToFirst(); it->Valid(); it->Next())
        out.emplace_back(it->key().ToString(), it->value().ToString());
    REQUIRE(it->status().ok());
    return out;
  }

  /// Where Seek and SeekForPrev land for `target` ("" when nowhere).
  std::pair<std::string, std::string> seek(rocksdb::ColumnFamilyHandle* family,
                                           const std::string& target) const {
    std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(rocksdb::ReadOptions{}, family)};
    std::pair<std::string, std::string> landed;
    it->Seek(target);
    if (it->Valid())
      landed.first = it->key().ToString();
    it->SeekForPrev(target);
    if (it->Valid())
      landed.second = it->key().ToString();
    return landed;
  }
};

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
  twin_families db;
  std::vector<std::string> keys_written;
  std::vector<const rocksdb::Snapshot*> snapshots;

  auto compare_everything = [&] {
    for (const auto& key : keys_written) {
      REQUIRE(db.get(db.hashed(), key) == db.get(db.skip_list(), key));
      for (auto* snapshot : snapshots)
        REQUIRE(db.get(db.hashed(), key, snapshot) == db.get(db.skip_list(), key, snapshot));
    }
    for (int i = 0; i < 50; ++i) {
      auto absent = random_key(rng) + "-never-written";
      REQUIRE_FALSE(db.get(db.hashed(), absent));
      auto target = random_key(rng);
      REQUIRE(db.seek(db.hashed(), target) == db.seek(db.skip_list(), target));
    }
    REQUIRE(db.scan(db.hashed()) == db.scan(db.skip_list()));
    REQUIRE(db.scan(db.hashed(), true) == db.scan(db.skip_list(), true));
    for (auto* snapshot : snapshots)
      REQUIRE(db.scan(db.hashed(), false, snapshot) == db.scan(db.skip_list(), false, snapshot));
  };

  for (int round = 0; round < 40; ++round) {
    std::vector<std::pair<std::string, std::optional<std::string>>> ops;
    auto count = 1 + rng() % 30;
    for (size_t i = 0; i < count; ++i) {
      auto key = random_key(rng);
      keys_written.push_back(key);
      if (rng() % 4 == 0)
        ops.emplace_back(key, std::nullopt);
      else
        ops.emplace_back(key, "v" + std::to_string(round) + "-" + std::to_string(i));
    }
    db.write(ops);
    if (rng() % 5 == 0)
      snapshots.push_back(db.db->GetSnapshot());
  }
  SECTION("while the memtable fills") {
    compare_everything();
  }
  SECTION("after its flush") {
    REQUIRE(db.db->Flush(rocksdb::FlushOptions{}, db.hashed()).ok());
    REQUIRE(db.db->Flush(rocksdb::FlushOptions{}, db.skip_list()).ok());
    compare_everything();
  }
  SECTION("after a reopen that replays the WAL") {
    for (auto* snapshot : snapshots)
      db.db->ReleaseSnapshot(snapshot);
    snapshots.clear();
    db.close();
    db.open();
    compare_everything();
  }
  for (auto* snapshot : snapshots)
    db.db->ReleaseSnapshot(snapshot);
}

TEST_CASE("the hashed memtable keeps every version of a key in sequence order, "
          "however the versions arrive in its batches",
          "[store][hashed_memtable]") {
  twin_families db;
  const std::string key(32, '\x42');
  db.write({{key, "one"}});
  auto* after_one = db.db->GetSnapshot();
  // Put, delete and put again in one batch: three sequence numbers, one key.
  db.write({{key, "two"}, {key, std::nullopt}, {key, "three"}});
  auto* after_three = db.db->GetSnapshot();
  db.write({{key, std::nullopt}});

  CHECK(db.get(db.hashed(), key, after_one) == "one");
  CHECK(db.get(db.hashed(), key, after_three) == "three");
  CHECK_FALSE(db.get(db.hashed(), key));
  REQUIRE(db.db->Flush(rocksdb::FlushOptions{}, db.hashed()).ok());
  CHECK(db.get(db.hashed(), key, after_one) == "one");
  CHECK(db.get(db.hashed(), key, after_three) == "three");
  CHECK_FALSE(db.get(db.hashed(), key));
  db.db->ReleaseSnapshot(after_one);
  db.db->ReleaseSnapshot(after_three);
}

TEST_CASE("the hashed memtable answers lookups from other threads while its "
          "writer inserts and it is flushed in turn",
          "[store][hashed_memtable]") {
  // 256 KiB memtables: the writer fills several, so lookups also meet
  // memtables being flushed and files they became.
  twin_families db{256 << 10};
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
        auto value = db.get(db.hashed(), key_of(n));
        if (value != "value-" + std::to_string(n))
          ++wrong;
        if (db.get(db.hashed(), key_of(n + 1'000'000)))
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
  auto all = db.scan(db.hashed());
  CHECK(all.size() == static_cast<size_t>(batches * per_batch));
  CHECK(std::is_sorted(all.begin(), all.end()));
}

TEST_CASE("lookups in the hashed memtable hold no memory once they return",
          "[store][hashed_memtable]") {
  // RocksDB's default memtable lookup never frees the iterator it makes: a
  // rep relying on it loses ~80 bytes per lookup of a key it holds.
  twin_families db;
  const std::string key(32, '\x17');
  db.write({{key, "held"}});
  for (int i = 0; i < 1000; ++i)
    REQUIRE(db.get(db.hashed(), key) == "held");
  auto before = ::mallinfo2().uordblks;
  for (int i = 0; i < 200'000; ++i)
    REQUIRE(db.get(db.hashed(), key) == "held");
  auto after = ::mallinfo2().uordblks;
  CHECK(after < before + (1u << 20));
}
