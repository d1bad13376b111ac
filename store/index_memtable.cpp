#include "store/index_memtable.hpp"

#include "store/memtable_rep_parts.hpp"

#include <algorithm>
#include <mutex>
#include <shared_mutex>

namespace ferry::store {

namespace {

using memtable_parts::full_iterator;
using rocksdb::MemTableRep;

class index_rep final : public memtable_parts::appending_rep {
public:
  using appending_rep::appending_rep;

  void Insert(rocksdb::KeyHandle handle) override {
    std::unique_lock lock{mutex_};
    entries_.push_back(static_cast<const char*>(handle));
    memory_.store(entries_.capacity() * sizeof(const char*), std::memory_order_relaxed);
  }

  bool Contains(const char* key) const override {
    auto internal_key = compare_.decode_key(key);
    std::shared_lock lock{mutex_};
    return std::any_of(entries_.begin(), entries_.end(),
                       [&](const char* e) { return compare_(e, internal_key) == 0; });
  }

  /// A lookup searches a sorted view (memtable_parts::default_get_through:
  /// RocksDB's default Get leaks its iterator).
  void Get(const rocksdb::LookupKey& key, void* callback_args,
           bool (*callback)(void* arg, const char* entry)) override {
    full_iterator lookup{sorted_view(), compare_};
    memtable_parts::default_get_through(*this, lookup, key, callback_args, callback);
  }

  Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override {
    if (auto* lookup = memtable_parts::take_lookup(*this, arena))
      return lookup;
    return GetIterator(arena);
  }
};

} // namespace

rocksdb::MemTableRep*
index_memtable_factory::CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform*, rocksdb::Logger*) {
  return new index_rep(compare, allocator);
}

} // namespace ferry::store
