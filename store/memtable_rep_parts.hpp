#pragma once

// What Ferry's own RocksDB memtable reps (store/hashed_memtable.hpp,
// store/index_memtable.hpp) share: their sort, a sorted copy of the entries
// and its iterator, arena-placed iterators, and a Get that does not leak.
// Internal to store/; nothing outside a rep includes it.

#include "store/keys.hpp"

#include <rocksdb/memtablerep.h>
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

namespace ferry::store::memtable_parts {

using rocksdb::MemTableRep;

/// An internal key ends with 8 bytes of sequence number and type.
inline constexpr size_t internal_footer = 8;

inline std::string_view user_key_of(const rocksdb::Slice& internal_key) {
  return {internal_key.data(), internal_key.size() - internal_footer};
}

using sorted_entries = std::vector<const char*>;

namespace detail {

/// An entry and 8 bytes of its user key from the depth being sorted.
struct chunked_entry {
  /// User-key bytes [depth, depth + 8) as a big-endian number, zero-padded.
  uint64_t chunk = 0;
  /// User-key bytes from depth on, 9 standing for "more than 8".
  uint32_t rest = 0;
  const char* entry = nullptr;
};

/// Beyond this depth a run is sorted by the comparator: keys sharing this
/// many bytes are rare, and the recursion stays shallow.
inline constexpr size_t chunk_sort_max_depth = 256;

/// Sorts [first, last), whose user keys share their first `depth` bytes, by
/// the comparator's order.
inline void sort_chunks_from(chunked_entry* first, chunked_entry* last, size_t depth,
                             const MemTableRep::KeyComparator& compare) {
  auto by_comparator = [&compare](const chunked_entry& x, const chunked_entry& y) {
    return compare(x.entry, y.entry) < 0;
  };
  if (depth >= chunk_sort_max_depth) {
    std::sort(first, last, by_comparator);
    return;
  }
  for (auto* e = first; e != last; ++e) {
    auto key = user_key_of(compare.decode_key(e->entry)).substr(depth);
    e->chunk = order_prefix(key);
    e->rest = static_cast<uint32_t>(std::min<size_t>(key.size(), 9));
  }
  // Equal chunks with less left first: that key is a prefix of the other
  // (their padding bytes are the other's zeros).
  auto order = [](const chunked_entry& x, const chunked_entry& y) {
    return x.chunk != y.chunk ? x.chunk < y.chunk : x.rest < y.rest;
  };
  std::sort(first, last, order);
  for (auto* run = first; run != last;) {
    auto* end = run + 1;
    while (end != last && end->chunk == run->chunk && end->rest == run->rest)
      ++end;
    if (end - run > 1) {
      if (run->rest > 8)
        sort_chunks_from(run, end, depth + 8, compare);
      else // one user key: its versions, newest first
        std::sort(run, end, by_comparator);
    }
    run = end;
  }
}

} // namespace detail

/// Sorts entries in the comparator's order (bytewise user keys, then newer
/// sequence numbers first) reading each entry rarely: a comparison sort
/// through the comparator read two entries through cold memory for each of
/// its ~log2(n) comparisons per entry. Here the entries are ordered by 8
/// user-key bytes held beside them; only runs that tie read their next 8
/// bytes, depth-first, so a run's entries are still in cache when read again.
/// Index keys share long heads (an author's 32 bytes, a tag value) before
/// the part that tells them apart. The user keys' order must be RocksDB's
/// bytewise one, as it is for every family of the store (none sets a
/// comparator).
inline void sort_by_comparator(sorted_entries& entries,
                               const MemTableRep::KeyComparator& compare) {
  std::vector<detail::chunked_entry> chunked(entries.size());
  for (size_t i = 0; i < entries.size(); ++i)
    chunked[i].entry = entries[i];
  detail::sort_chunks_from(chunked.data(), chunked.data() + chunked.size(), 0, compare);
  for (size_t i = 0; i < chunked.size(); ++i)
    entries[i] = chunked[i].entry;
}

/// A memtable's entries in the comparator's order: sorted once when the
/// memtable is read-only (its flush; no insert comes any more), copied and
/// sorted for each scan while it fills.
class sorted_entries_cache {
public:
  /// `entries` (in insertion order) and `read_only` are the rep's, read
  /// under a shared lock of its `mutex`.
  std::shared_ptr<const sorted_entries> get(std::shared_mutex& mutex,
                                            const sorted_entries& entries,
                                            const bool& read_only,
                                            const MemTableRep::KeyComparator& compare) {
    std::unique_lock once{mutex_};
    if (sorted_)
      return sorted_;
    bool final = false;
    auto copy = std::make_shared<sorted_entries>();
    {
      std::shared_lock lock{mutex};
      final = read_only;
      *copy = entries;
    }
    if (!final)
      once.unlock();
    sort_by_comparator(*copy, compare);
    if (final)
      sorted_ = copy;
    return copy;
  }

private:
  std::mutex mutex_;
  std::shared_ptr<const sorted_entries> sorted_;
};

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

  /// A flush reads every entry in key order, which is not the arena's
  /// (insertion) order: each entry was a cache miss. Asking for the entry a
  /// few places ahead overlaps those misses with building the table.
  void Next() override {
    ++at_;
    if (at_ + prefetch_distance < entries_->size())
      __builtin_prefetch((*entries_)[at_ + prefetch_distance]);
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
  static constexpr size_t prefetch_distance = 8;

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

/// Storage for the iterators RocksDB asks to place in its arena. RocksDB
/// then only runs their destructors, and its arena type is not in its public
/// headers, so a rep keeps the storage itself until the memtable goes (a
/// flush or a scan makes one; lookups pass no arena).
class iterator_storage {
public:
  template <class It, class... Args>
  MemTableRep::Iterator* make(rocksdb::Arena* arena, Args&&... args) {
    if (arena == nullptr)
      return new It(std::forward<Args>(args)...);
    using storage = std::aligned_storage_t<sizeof(It), alignof(It)>;
    auto place = std::make_unique<storage>();
    auto* it = new (place.get()) It(std::forward<Args>(args)...);
    std::lock_guard lock{mutex_};
    places_.push_back(std::unique_ptr<void, void (*)(void*)>{
      place.release(), [](void* p) { delete static_cast<storage*>(p); }});
    return it;
  }

private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<void, void (*)(void*)>> places_;
};

/// A rep that appends its entries and sorts them for a full iterator (the
/// flush, or any scan). Its subclass inserts, finds and looks up.
class appending_rep : public MemTableRep {
public:
  appending_rep(const KeyComparator& compare, rocksdb::Allocator* allocator)
    : MemTableRep(allocator), compare_(compare) {
  }

  void MarkReadOnly() override {
    std::unique_lock lock{mutex_};
    read_only_ = true;
  }

  size_t ApproximateMemoryUsage() override {
    return memory_.load(std::memory_order_relaxed);
  }

  Iterator* GetIterator(rocksdb::Arena* arena) override {
    return iterators_.make<full_iterator>(arena, sorted_view(), compare_);
  }

protected:
  std::shared_ptr<const sorted_entries> sorted_view() {
    return sorted_.get(mutex_, entries_, read_only_, compare_);
  }

  const KeyComparator& compare_;
  /// Inserts take it exclusively, readers shared.
  mutable std::shared_mutex mutex_;
  /// Every entry, in insertion order.
  sorted_entries entries_;
  bool read_only_ = false;
  /// What the rep holds beyond the arena, which RocksDB counts itself.
  std::atomic<size_t> memory_{0};
  iterator_storage iterators_;

private:
  sorted_entries_cache sorted_;
};

/// RocksDB's default Get (7.8.3) looks a key up through
/// GetDynamicPrefixIterator() and never frees that iterator: one leaked per
/// lookup (found by ASan). The LookupKey it is given is not in RocksDB's
/// public headers, so a rep cannot read the key itself. Instead it runs the
/// default Get with an iterator of its own, on its stack, which its
/// GetDynamicPrefixIterator hands out (`take_lookup`) while that Get runs.
struct running_lookup {
  const MemTableRep* rep = nullptr;
  MemTableRep::Iterator* iterator = nullptr;
};
inline thread_local running_lookup current_lookup;

inline void default_get_through(MemTableRep& rep, MemTableRep::Iterator& lookup,
                                const rocksdb::LookupKey& key, void* callback_args,
                                bool (*callback)(void* arg, const char* entry)) {
  current_lookup = {&rep, &lookup};
  struct reset {
    ~reset() {
      current_lookup = {};
    }
  } on_return;
  rep.MemTableRep::Get(key, callback_args, callback);
}

/// The iterator `default_get_through` lent for `rep` on this thread, once;
/// nullptr when none is lent (the caller then makes one).
inline MemTableRep::Iterator* take_lookup(const MemTableRep& rep, rocksdb::Arena* arena) {
  if (arena != nullptr || current_lookup.rep != &rep)
    return nullptr;
  auto* lookup = current_lookup.iterator;
  current_lookup = {};
  return lookup;
}

} // namespace ferry::store::memtable_parts
