#pragma once

#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"
#include "messages/nostr/keys.hpp"
#include "store/column_families.hpp"
#include "store/event_store.hpp"

#include <catch2/catch.hpp>

#include <rocksdb/db.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace ferry::store::test {

/// "Now" for tests that do not care about expiration.
inline constexpr int64_t default_now = 1'700'000'000;

/// A store on a scratch directory with tiny memtables (so data reaches SST
/// files), removed again by the destructor.
struct store_fixture {
  std::filesystem::path dir;
  std::unique_ptr<event_store> store;
  /// Opens the store as `ferry import` does (takes effect at `reopen`).
  bool bulk_import = false;

  store_fixture() {
    std::random_device rd;
    dir = std::filesystem::temp_directory_path()
          / ("ferry-store-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    open();
  }

  ~store_fixture() {
    store.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  store_options options() const {
    store_options opts;
    opts.path = dir.string();
    opts.write_buffer_mb = 1;
    opts.block_cache_mb = 8;
    opts.bulk_import = bulk_import;
    return opts;
  }

  void open() {
    auto opened = event_store::open(options());
    REQUIRE(opened);
    store = std::move(*opened);
  }

  void reopen() {
    store.reset();
    open();
  }

  /// Flushes and compacts every family into its final files. RocksDB
  /// rewrites a bottommost file once no snapshot needs its sequence numbers
  /// (a scan releasing its snapshot starts that): a test that expects blocks
  /// to stay cached settles the store first, or the background rewrite may
  /// swap the files under it.
  void settle() {
    REQUIRE(!store->flush());
    rocksdb::CompactRangeOptions all;
    all.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    for (uint32_t i = 0; i < cf_count; ++i)
      REQUIRE(store->db()->CompactRange(all, store->handle(static_cast<cf>(i)), nullptr,
                                        nullptr)
                .ok());
  }

  /// Writes one batch and requires the commit to succeed.
  std::vector<write_result> write(const std::vector<const incoming_event*>& evs,
                                  int64_t now = default_now) {
    auto results = store->write(evs, now);
    REQUIRE(results);
    REQUIRE(results->size() == evs.size());
    return *results;
  }

  write_result write(const incoming_event& ev, int64_t now = default_now) {
    return write(std::vector<const incoming_event*>{&ev}, now).front();
  }

  /// Writes all of `events` as one batch.
  std::vector<write_result> write_all(const std::vector<incoming_event>& events,
                                      int64_t now = default_now) {
    std::vector<const incoming_event*> batch;
    for (const auto& in : events)
      batch.push_back(&in);
    return write(batch, now);
  }

  /// Ids of a full scan, in delivery order.
  std::vector<nostr::bytes32> scan_ids(const nostr::filter& f,
                                       int64_t now = default_now) const {
    std::vector<nostr::bytes32> ids;
    store->scan(f, now, std::nullopt, SIZE_MAX,
                [&ids](std::string_view, const scan_position& pos) {
                  ids.push_back(pos.id);
                  return true;
                });
    return ids;
  }

  /// Number of keys in one family.
  size_t keys_in(cf family) const {
    std::unique_ptr<rocksdb::Iterator> it(
      store->db()->NewIterator(rocksdb::ReadOptions{}, store->handle(family)));
    size_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next())
      ++n;
    return n;
  }
};

/// A signed event and its JSON.
inline incoming_event make_event(const nostr::keypair& keys, uint32_t kind,
                                 int64_t created_at,
                                 std::vector<nostr::tag> tags = {},
                                 std::string content = "") {
  incoming_event in;
  in.ev.kind = kind;
  in.ev.created_at = created_at;
  in.ev.tags = std::move(tags);
  in.ev.content = std::move(content);
  nostr::sign_event(in.ev, keys);
  in.json = nostr::to_json(in.ev);
  return in;
}

inline nostr::filter kinds_filter(std::vector<uint32_t> kinds) {
  nostr::filter f;
  f.kinds = std::move(kinds);
  return f;
}

inline nostr::filter ids_filter(std::vector<nostr::bytes32> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  nostr::filter f;
  f.ids = std::move(ids);
  return f;
}

} // namespace ferry::store::test
