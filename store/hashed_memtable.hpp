#pragma once

#include <rocksdb/memtablerep.h>

namespace ferry::store {

/// A RocksDB memtable for a family that is only ever read by key while it
/// fills (`events`): a hash table from user key to its versions, sorted once
/// when the memtable is iterated (its flush).
///
/// Why: events arrive in random id order, and inserting each into RocksDB's
/// skip list searched its levels through cold memory (a skip list of 100k
/// random 32-byte keys: ~3 us per insert beyond copying the entry); a hash
/// insert and one sort at the flush cost a fraction. The memtable an import's
/// index families use (store/index_memtable.hpp) sorts on every lookup, and
/// events are looked up (duplicates, deletion targets, REQs by id).
///
/// Lookups take RocksDB's default path: the rep's dynamic-prefix iterator,
/// whose Seek may, by that iterator's contract, yield only keys sharing the
/// target's prefix; here the prefix is the whole user key, found by hash.
/// A full iterator (the flush, or any scan) sees a sorted copy taken at its
/// creation. Inserts take no concurrent inserts (one writer; the store sets
/// `allow_concurrent_memtable_write = false`); lookups and iterators run
/// beside them under a shared lock.
class hashed_memtable_factory : public rocksdb::MemTableRepFactory {
public:
  using rocksdb::MemTableRepFactory::CreateMemTableRep;

  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform* prefix,
                                          rocksdb::Logger* logger) override;

  const char* Name() const override {
    return "FerryHashedMemtable";
  }
};

} // namespace ferry::store
