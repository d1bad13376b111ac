#include "store/hashed_memtable.hpp"

#include "store/keys.hpp"

#include <rocksdb/slice.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ferry::store {

namespace {

using rocksdb::MemTableRep;

/// An internal key ends with 8 bytes of sequence number and type.
constexpr size_t internal_footer = 8;

std::string_view user_key_of(const rocksdb::Slice& internal_key) {
  return {internal_key.data(), internal_key.size() - internal_footer};
}

uint32_t hash_of(std::string_view user_key) {
  auto h = std::hash<std::string_view>{}(user_key);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

using sorted_entries = std::vector<const char*>;

/// Iterates a sorted copy of the entries (the flush, or any scan).
class full_iterator final : public MemTableRep::Iterator {
public:
  full_iterator(std::shared_ptr<const sorted_entries> entries,
                const MemTableRep::KeyComparator& compare)
    : entries_(std::move(entries)), compare_(compare), at_(entries_->size()) {
  }

  bool Valid() const override {
    return at_ < entries_->size();
  }

  const char* key() const override {
    return (*entries_)[at_];
  }

  void Next() override {
    ++at_;
  }

  void Prev() override {
    at_ = at_ == 0 ? entries_->size() : at_ - 1;
  }

  void Seek(const rocksdb::Slice& internal_key, const char*) override {
    at_ = first_not_before(internal_key);
  }

  void SeekForPrev(const rocksdb::Slice& internal_key, const char*) override {
    auto after = first_after(internal_key);
    at_ = after == 0 ? entries_->size() : after - 1;
  }

  void SeekToFirst() override {
    at_ = 0;
  }

  void SeekToLast() override {
    at_ = entries_->empty() ? 0 : entries_->size() - 1;
  }

private:
  size_t first_not_before(const rocksdb::Slice& key) const {
    auto it = std::partition_point(entries_->begin(), entries_->end(),
                                   [&](const char* e) { return compare_(e, key) < 0; });
    return static_cast<size_t>(it - entries_->begin());
  }

  size_t first_after(const rocksdb::Slice& key) const {
    auto it = std::partition_point(entries_->begin(), entries_->end(),
                                   [&](const char* e) { return compare_(e, key) <= 0; });
    return static_cast<size_t>(it - entries_->begin());
  }

  std::shared_ptr<const sorted_entries> entries_;
  const MemTableRep::KeyComparator& compare_;
  size_t at_;
};

class hashed_rep;
class point_iterator;

/// The lookup a thread's Get is running (see hashed_rep::Get).
struct running_lookup {
  const hashed_rep* rep = nullptr;
  point_iterator* iterator = nullptr;
};
thread_local running_lookup current_lookup;

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

class hashed_rep final : public MemTableRep {
public:
  hashed_rep(const KeyComparator& compare, rocksdb::Allocator* allocator)
    : MemTableRep(allocator), compare_(compare) {
  }

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

  void MarkReadOnly() override {
    std::unique_lock lock{mutex_};
    read_only_ = true;
  }

  size_t ApproximateMemoryUsage() override {
    return memory_.load(std::memory_order_relaxed);
  }

  Iterator* GetIterator(rocksdb::Arena* arena) override {
    auto sorted = sorted_view();
    return make_iterator<full_iterator>(arena, std::move(sorted), compare_);
  }

  /// RocksDB's default Get (7.8.3) looks a key up through
  /// GetDynamicPrefixIterator() and never frees that iterator: one leaked
  /// per lookup (found by ASan). The LookupKey it is given is not in
  /// RocksDB's public headers, so this rep cannot read the key itself; it
  /// runs the default Get with an iterator of its own, on the stack, which
  /// GetDynamicPrefixIterator hands out while that Get runs.
  void Get(const rocksdb::LookupKey& key, void* callback_args,
           bool (*callback)(void* arg, const char* entry)) override {
    point_iterator lookup{*this, compare_};
    current_lookup = {this, &lookup};
    struct reset {
      ~reset() {
        current_lookup = {};
      }
    } on_return;
    MemTableRep::Get(key, callback_args, callback);
  }

  Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override {
    if (arena == nullptr && current_lookup.rep == this) {
      auto* lookup = current_lookup.iterator;
      current_lookup = {};
      return lookup;
    }
    return make_iterator<point_iterator>(arena, *this, compare_);
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

  /// The entries in the comparator's order: sorted once for a read-only
  /// memtable (its flush), copied and sorted for each scan while it fills.
  std::shared_ptr<const sorted_entries> sorted_view() {
    std::unique_lock once{sorted_mutex_};
    if (sorted_)
      return sorted_;
    bool read_only = false;
    auto copy = std::make_shared<sorted_entries>();
    {
      std::shared_lock lock{mutex_};
      read_only = read_only_;
      *copy = entries_;
    }
    if (!read_only)
      once.unlock();
    sort_entries(*copy);
    if (read_only)
      sorted_ = copy;
    return copy;
  }

  void sort_entries(sorted_entries& entries) const {
    std::vector<std::pair<uint64_t, const char*>> keyed;
    keyed.reserve(entries.size());
    for (auto* e : entries)
      keyed.emplace_back(order_prefix(user_key_of(compare_.decode_key(e))), e);
    std::sort(keyed.begin(), keyed.end(), [this](const auto& x, const auto& y) {
      if (x.first != y.first)
        return x.first < y.first;
      return compare_(x.second, y.second) < 0;
    });
    for (size_t i = 0; i < keyed.size(); ++i)
      entries[i] = keyed[i].second;
  }

  /// RocksDB places a memtable's iterators in its arena when it passes one,
  /// and then only runs their destructors; RocksDB's arena type is not in
  /// its public headers, so this rep keeps the storage itself until the
  /// memtable goes (a flush or a scan makes one; lookups pass no arena).
  template <class It, class... Args>
  Iterator* make_iterator(rocksdb::Arena* arena, Args&&... args) {
    if (arena == nullptr)
      return new It(std::forward<Args>(args)...);
    using storage = std::aligned_storage_t<sizeof(It), alignof(It)>;
    auto place = std::make_unique<storage>();
    auto* it = new (place.get()) It(std::forward<Args>(args)...);
    std::lock_guard lock{iterator_storage_mutex_};
    iterator_storage_.push_back(std::unique_ptr<void, void (*)(void*)>{
      place.release(), [](void* p) { delete static_cast<storage*>(p); }});
    return it;
  }

  const KeyComparator& compare_;
  mutable std::shared_mutex mutex_;
  /// Every entry, in insertion order.
  std::vector<const char*> entries_;
  /// For each entry, the next older version of its user key.
  std::vector<uint32_t> older_;
  /// Open addressing, at most half full; one slot per user key.
  std::vector<slot> slots_;
  size_t heads_ = 0;
  bool read_only_ = false;
  std::atomic<size_t> memory_{0};
  std::mutex sorted_mutex_;
  std::shared_ptr<const sorted_entries> sorted_;
  std::mutex iterator_storage_mutex_;
  std::vector<std::unique_ptr<void, void (*)(void*)>> iterator_storage_;
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
