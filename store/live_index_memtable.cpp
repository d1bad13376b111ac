#include "store/live_index_memtable.hpp"

#include "store/memtable_rep_parts.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <utility>

namespace ferry::store {

namespace {

using memtable_parts::sorted_entries;
using rocksdb::MemTableRep;
using entries_ptr = std::shared_ptr<const sorted_entries>;

/// How far ahead a linear merge asks for the entries it will compare: each
/// is a cache miss (the arena holds them in insertion order).
constexpr size_t merge_prefetch = 8;

/// `big` and `small` (each sorted) as one sorted array. A few entries into
/// many are placed by binary search, copying the runs of `big` between
/// them whole; otherwise both are walked once.
sorted_entries merge_sorted(const sorted_entries& big, const sorted_entries& small,
                            const MemTableRep::KeyComparator& compare) {
  sorted_entries out;
  out.reserve(big.size() + small.size());
  auto before = [&compare](const char* x, const char* y) { return compare(x, y) < 0; };
  if (small.size() * 16 < big.size()) {
    auto from = big.begin();
    for (const char* entry : small) {
      auto at = std::partition_point(from, big.end(),
                                     [&](const char* x) { return before(x, entry); });
      out.insert(out.end(), from, at);
      out.push_back(entry);
      from = at;
    }
    out.insert(out.end(), from, big.end());
    return out;
  }
  size_t i = 0;
  size_t j = 0;
  while (i < big.size() && j < small.size()) {
    if (i + merge_prefetch < big.size())
      __builtin_prefetch(big[i + merge_prefetch]);
    if (j + merge_prefetch < small.size())
      __builtin_prefetch(small[j + merge_prefetch]);
    if (before(small[j], big[i]))
      out.push_back(small[j++]);
    else
      out.push_back(big[i++]);
  }
  out.insert(out.end(), big.begin() + static_cast<std::ptrdiff_t>(i), big.end());
  out.insert(out.end(), small.begin() + static_cast<std::ptrdiff_t>(j), small.end());
  return out;
}

/// The memtable's entries as two sorted arrays (see the factory's comment).
struct sorted_view {
  entries_ptr base = std::make_shared<const sorted_entries>();
  entries_ptr recent = std::make_shared<const sorted_entries>();
};

/// Walks a view's two arrays as one sorted sequence. Its position is how
/// many entries of each lie before the current one, which is the smaller of
/// the next of each; Prev takes the larger of the last of each. No two
/// entries are equal (each has its own sequence number).
class view_iterator final : public MemTableRep::Iterator {
public:
  view_iterator(sorted_view view, const MemTableRep::KeyComparator& compare)
    : view_(std::move(view)), a_(*view_.base), b_(*view_.recent), compare_(compare) {
  }

  bool Valid() const override {
    return valid_ && (i_ < a_.size() || j_ < b_.size());
  }

  const char* key() const override {
    return from_base() ? a_[i_] : b_[j_];
  }

  void Next() override {
    if (from_base())
      ++i_;
    else
      ++j_;
  }

  void Prev() override {
    step_back();
  }

  void Seek(const rocksdb::Slice& internal_key, const char*) override {
    i_ = first_not_before(a_, internal_key);
    j_ = first_not_before(b_, internal_key);
    valid_ = true;
  }

  void SeekForPrev(const rocksdb::Slice& internal_key, const char*) override {
    i_ = first_after(a_, internal_key);
    j_ = first_after(b_, internal_key);
    step_back();
  }

  void SeekToFirst() override {
    i_ = 0;
    j_ = 0;
    valid_ = true;
  }

  void SeekToLast() override {
    i_ = a_.size();
    j_ = b_.size();
    step_back();
  }

private:
  bool from_base() const {
    if (j_ >= b_.size())
      return true;
    if (i_ >= a_.size())
      return false;
    return compare_(a_[i_], b_[j_]) < 0;
  }

  /// To the larger of the entries just before the position; invalid when
  /// there is none.
  void step_back() {
    const bool base_has = i_ > 0;
    const bool recent_has = j_ > 0;
    valid_ = base_has || recent_has;
    if (!valid_)
      return;
    if (base_has && (!recent_has || compare_(a_[i_ - 1], b_[j_ - 1]) > 0))
      --i_;
    else
      --j_;
  }

  size_t first_not_before(const sorted_entries& xs, const rocksdb::Slice& key) const {
    return static_cast<size_t>(
      std::partition_point(xs.begin(), xs.end(),
                           [&](const char* e) { return compare_(e, key) < 0; })
      - xs.begin());
  }

  size_t first_after(const sorted_entries& xs, const rocksdb::Slice& key) const {
    return static_cast<size_t>(
      std::partition_point(xs.begin(), xs.end(),
                           [&](const char* e) { return compare_(e, key) <= 0; })
      - xs.begin());
  }

  sorted_view view_;
  const sorted_entries& a_;
  const sorted_entries& b_;
  const MemTableRep::KeyComparator& compare_;
  size_t i_ = 0;
  size_t j_ = 0;
  bool valid_ = false;
};

class live_index_rep final : public MemTableRep {
public:
  live_index_rep(const KeyComparator& compare, rocksdb::Allocator* allocator,
                 size_t recent_min)
    : MemTableRep(allocator), compare_(compare), recent_min_(recent_min) {
  }

  void Insert(rocksdb::KeyHandle handle) override {
    std::unique_lock lock{mutex_};
    entries_.push_back(static_cast<const char*>(handle));
    count_memory();
  }

  bool Contains(const char* key) const override {
    auto internal_key = compare_.decode_key(key);
    view_iterator it{view(), compare_};
    it.Seek(internal_key, nullptr);
    return it.Valid() && compare_(it.key(), internal_key) == 0;
  }

  /// From here on the memory it reports stays as it is: RocksDB adds it to
  /// the immutable memtables' total now and takes the same figure off when
  /// the memtable goes (it asserts that the total never goes below).
  void MarkReadOnly() override {
    std::unique_lock lock{mutex_};
    read_only_ = true;
  }

  size_t ApproximateMemoryUsage() override {
    return memory_.load(std::memory_order_relaxed);
  }

  /// A lookup walks the view (memtable_parts::default_get_through: RocksDB's
  /// default Get leaks its iterator).
  void Get(const rocksdb::LookupKey& key, void* callback_args,
           bool (*callback)(void* arg, const char* entry)) override {
    view_iterator lookup{view(), compare_};
    memtable_parts::default_get_through(*this, lookup, key, callback_args, callback);
  }

  Iterator* GetIterator(rocksdb::Arena* arena) override {
    return iterators_.make<view_iterator>(arena, view(), compare_);
  }

  Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override {
    if (auto* lookup = memtable_parts::take_lookup(*this, arena))
      return lookup;
    return GetIterator(arena);
  }

private:
  /// Every entry inserted so far, sorted: the new ones sorted and merged in.
  sorted_view view() const {
    std::lock_guard once{view_mutex_};
    sorted_entries fresh;
    {
      std::shared_lock lock{mutex_};
      if (covered_ == entries_.size())
        return view_;
      fresh.assign(entries_.begin() + static_cast<std::ptrdiff_t>(covered_), entries_.end());
      covered_ = entries_.size();
    }
    memtable_parts::sort_by_comparator(fresh, compare_);
    auto recent = view_.recent->empty() ? std::move(fresh)
                                        : merge_sorted(*view_.recent, fresh, compare_);
    if (recent.size() <= std::max(recent_min_, view_.base->size() / 16)) {
      view_.recent = std::make_shared<const sorted_entries>(std::move(recent));
    } else {
      view_.base = std::make_shared<const sorted_entries>(
        view_.base->empty() ? std::move(recent) : merge_sorted(*view_.base, recent, compare_));
      view_.recent = std::make_shared<const sorted_entries>();
    }
    view_sizes_.store(view_.base->size() + view_.recent->size(), std::memory_order_relaxed);
    std::shared_lock lock{mutex_};
    count_memory();
    return view_;
  }

  /// The arrays beside the arena, which RocksDB counts itself (an estimate:
  /// a reader may still hold older views). Under either lock of `mutex_`.
  void count_memory() const {
    if (read_only_)
      return;
    memory_.store((entries_.capacity() + view_sizes_.load(std::memory_order_relaxed))
                    * sizeof(const char*),
                  std::memory_order_relaxed);
  }

  const KeyComparator& compare_;
  const size_t recent_min_;
  /// Inserts take it exclusively, readers shared.
  mutable std::shared_mutex mutex_;
  /// Every entry, in insertion order.
  sorted_entries entries_;
  bool read_only_ = false;
  /// Readers take turns to bring the view up to date.
  mutable std::mutex view_mutex_;
  mutable sorted_view view_;
  /// How many of `entries_` the view holds.
  mutable size_t covered_ = 0;
  mutable std::atomic<size_t> view_sizes_{0};
  mutable std::atomic<size_t> memory_{0};
  memtable_parts::iterator_storage iterators_;
};

} // namespace

rocksdb::MemTableRep*
live_index_memtable_factory::CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                               rocksdb::Allocator* allocator,
                                               const rocksdb::SliceTransform*,
                                               rocksdb::Logger*) {
  return new live_index_rep(compare, allocator, recent_min_);
}

} // namespace ferry::store
