#pragma once

#include <rocksdb/memtablerep.h>

namespace ferry::store {

/// A RocksDB memtable for the index families of an import, which nothing
/// reads while they fill: an insert appends the entry, and the flush sorts
/// them once, as RocksDB's vector memtable does, but with a sort that rarely
/// reads an entry (memtable_parts::sort_by_comparator: by 8-byte chunks of
/// the keys held beside the entries, refining only the runs that tie).
///
/// Why: the vector memtable sorts through RocksDB's comparator, which reads
/// two entries through cold memory for every comparison, and index keys
/// share long heads (an author's 32 bytes, a tag value) before the
/// `~created_at · id` that tells them apart (store/keys.hpp). That sort was
/// ~6% of an import's CPU and most of what `ferry import` does after its
/// last line. The flushes of the 100k realistic corpus's index families took
/// half the time with this one (bench: 98k `by_author` keys 93 -> 43 ms,
/// 234k `by_tag` keys 277 -> 149 ms; inserts the same).
///
/// Reads are correct but sort a copy of the entries each time (a scan) or
/// each lookup: do not use it for a family that is read while it fills.
/// Inserts take no concurrent inserts (the store sets
/// `allow_concurrent_memtable_write = false`).
class index_memtable_factory : public rocksdb::MemTableRepFactory {
public:
  using rocksdb::MemTableRepFactory::CreateMemTableRep;

  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform* prefix,
                                          rocksdb::Logger* logger) override;

  const char* Name() const override {
    return "FerryIndexMemtable";
  }
};

} // namespace ferry::store
