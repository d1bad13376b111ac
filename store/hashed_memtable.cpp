#include "store/hashed_memtable.hpp"

#include "store/memtable_rep_parts.hpp"

#include <rocksdb/slice.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <vector>

namespace ferry::store {

namespace {

using rocksdb::MemTableRep;
using memtable_parts::full_iterator;
using memtable_parts::user_key_of;

uint32_t hash_of(std::string_view user_key) {
  auto h = std::hash<std::string_view>{}(user_key);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

class hashed_rep;

/// The versions of one user key, newest first: what a lookup's Seek finds.
class point_iterator final : public MemTableRep::Iterator {
public:
  point_iterator(const hashed_rep& rep, const MemTableRep::KeyComparator& compare)
    : rep_(rep), compare_(compare) {
  }

  bool Valid() const override {
    return at_ < versions_.size();
  }

  const char* key() const override {
    return versions_[at_];
  }

  void Next() override {
    ++at_;
  }

  void Prev() override {
    at_ = at_ == 0 ? versions_.size() : at_ - 1;
  }

  void Seek(const rocksdb::Slice& internal_key, const char*) override;

  void SeekForPrev(const rocksdb::Slice& internal_key, const char*) override;

  /// Before any Seek there is no key to look at: the iterator is empty.
  void SeekToFirst() override {
    at_ = 0;
  }

  void SeekToLast() override {
    at_ = versions_.empty() ? 0 : versions_.size() - 1;
  }

private:
  const hashed_rep& rep_;
  const MemTableRep::KeyComparator& compare_;
  std::vector<const char*> versions_;
  size_t at_ = 0;
};

class hashed_rep final : public memtable_parts::appending_rep {
public:
  using appending_rep::appending_rep;

  void Insert(rocksdb::KeyHandle handle) override {
    auto* entry = static_cast<const char*>(handle);
    auto user_key = user_key_of(compare_.decode_key(entry));
    auto hash = hash_of(user_key);
    std::unique_lock lock{mutex_};
    if (2 * (heads_ + 1) > slots_.size())
      grow();
    auto index = static_cast<uint32_t>(entries_.size());
    entries_.push_back(entry);
    older_.push_back(no_entry);
    auto mask = slots_.size() - 1;
    for (auto at = hash & mask;; at = (at + 1) & mask) {
      auto& s = slots_[at];
      if (s.entry == no_entry) {
        s = {index, hash};
        ++heads_;
        break;
      }
      if (s.hash == hash && user_key_of(compare_.decode_key(entries_[s.entry])) == user_key) {
        link_version(s, index);
        break;
      }
    }
    memory_.store(memory_in_use(), std::memory_order_relaxed);
  }

  bool Contains(const char* key) const override {
    auto internal_key = compare_.decode_key(key);
    std::vector<const char*> versions;
    collect_versions(user_key_of(internal_key), versions);
    return std::any_of(versions.begin(), versions.end(),
                       [&](const char* e) { return compare_(e, internal_key) == 0; });
  }

  /// Lookups run RocksDB's default Get with a point iterator of their own
  /// (memtable_parts::default_get_through: the default one leaks).
  void Get(const rocksdb::LookupKey& key, void* callback_args,
           bool (*callback)(void* arg, const char* entry)) override {
    point_iterator lookup{*this, compare_};
    memtable_parts::default_get_through(*this, lookup, key, callback_args, callback);
  }

  Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override {
    if (auto* lookup = memtable_parts::take_lookup(*this, arena))
      return lookup;
    return iterators_.make<point_iterator>(arena, *this, compare_);
  }

  /// The versions of `user_key`, newest first (appended to `out`).
  void collect_versions(std::string_view user_key, std::vector<const char*>& out) const {
    auto hash = hash_of(user_key);
    std::shared_lock lock{mutex_};
    if (slots_.empty())
      return;
    auto mask = slots_.size() - 1;
    for (auto at = hash & mask;; at = (at + 1) & mask) {
      const auto& s = slots_[at];
      if (s.entry == no_entry)
        return;
      if (s.hash == hash && user_key_of(compare_.decode_key(entries_[s.entry])) == user_key) {
        for (auto i = s.entry; i != no_entry; i = older_[i])
          out.push_back(entries_[i]);
        return;
      }
    }
  }

private:
  static constexpr uint32_t no_entry = UINT32_MAX;

  /// A user key's newest version; `hash` spares reading other keys' entries.
  struct slot {
    uint32_t entry = no_entry;
    uint32_t hash = 0;
  };

  /// Puts entry `index` among the versions of `head`'s key, in the
  /// comparator's order (newer sequence numbers first).
  void link_version(slot& head, uint32_t index) {
    auto* entry = entries_[index];
    if (compare_(entry, entries_[head.entry]) < 0) {
      older_[index] = head.entry;
      head.entry = index;
      return;
    }
    auto before = head.entry;
    while (older_[before] != no_entry && compare_(entries_[older_[before]], entry) < 0)
      before = older_[before];
    older_[index] = older_[before];
    older_[before] = index;
  }

  void grow() {
    std::vector<slot> bigger(std::max<size_t>(1024, 2 * slots_.size()));
    auto mask = bigger.size() - 1;
    for (const auto& s : slots_) {
      if (s.entry == no_entry)
        continue;
      auto at = s.hash & mask;
      while (bigger[at].entry != no_entry)
        at = (at + 1) & mask;
      bigger[at] = s;
    }
    slots_.swap(bigger);
  }

  size_t memory_in_use() const {
    return entries_.capacity() * sizeof(const char*) + older_.capacity() * sizeof(uint32_t)
           + slots_.capacity() * sizeof(slot);
  }

  /// For each entry, the next older version of its user key.
  std::vector<uint32_t> older_;
  /// Open addressing, at most half full; one slot per user key.
  std::vector<slot> slots_;
  size_t heads_ = 0;
};

void point_iterator::Seek(const rocksdb::Slice& internal_key, const char*) {
  versions_.clear();
  rep_.collect_versions(user_key_of(internal_key), versions_);
  at_ = 0;
  while (at_ < versions_.size() && compare_(versions_[at_], internal_key) < 0)
    ++at_;
}

void point_iterator::SeekForPrev(const rocksdb::Slice& internal_key, const char*) {
  versions_.clear();
  rep_.collect_versions(user_key_of(internal_key), versions_);
  at_ = versions_.size();
  for (size_t i = versions_.size(); i > 0; --i)
    if (compare_(versions_[i - 1], internal_key) <= 0) {
      at_ = i - 1;
      break;
    }
}

} // namespace

rocksdb::MemTableRep*
hashed_memtable_factory::CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                           rocksdb::Allocator* allocator,
                                           const rocksdb::SliceTransform*, rocksdb::Logger*) {
  return new hashed_rep(compare, allocator);
}

} // namespace ferry::store
