#pragma once

#include <rocksdb/memtablerep.h>

#include <cstddef>

namespace ferry::store {

/// A RocksDB memtable for the index families of a running node, which REQs
/// read while they fill: an insert appends the entry, as the import's index
/// memtable does (store/index_memtable.hpp), and a read sorts only what came
/// since the last read, merging it into a sorted view that it keeps.
///
/// Why: a skip list searches through cold memory for every insert, and a
/// node writes ~6.5 index entries per event: those searches were ~14% of a
/// node's CPU in a NIP-77 catch-up of an empty store, where almost nothing
/// reads the index families while they fill. Here that cost is paid only
/// when something reads, and then once for everything inserted since. That
/// catch-up (94,861 events, 3 alternated pairs): CPU 9.3 -> 8.5 s, time
/// 5.67 -> 5.30 s.
///
/// The view is two sorted arrays, `base` and `recent`: a read sorts the new
/// entries and merges them into `recent`; once `recent` outgrows a sixteenth
/// of `base` (and 16k entries) it is merged into `base`. So a read after a
/// few inserts copies a small array, and each entry is merged into `base`
/// a few times over the memtable's life. An iterator holds the view it
/// started with and walks both arrays as one.
///
/// The cost moves to the reader: the first read after many inserts sorts
/// them all (as the import's flush does), so a REQ that comes after a long
/// burst of writes is slower once: the first `limit 500` REQ of each index
/// after that catch-up waited 13-18 ms for its first event (3 ms with skip
/// lists), the next ones 0.5-0.9 ms. Inserts take no
/// concurrent inserts (the store sets `allow_concurrent_memtable_write =
/// false`).
class live_index_memtable_factory : public rocksdb::MemTableRepFactory {
public:
  using rocksdb::MemTableRepFactory::CreateMemTableRep;

  /// `recent_min`: `recent` is merged into `base` once it holds more than
  /// this and a sixteenth of `base`. Tests set it small, so that small
  /// memtables have both arrays.
  explicit live_index_memtable_factory(size_t recent_min = 16 * 1024)
    : recent_min_(recent_min) {
  }

  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform* prefix,
                                          rocksdb::Logger* logger) override;

  const char* Name() const override {
    return "FerryLiveIndexMemtable";
  }

private:
  size_t recent_min_;
};

} // namespace ferry::store
