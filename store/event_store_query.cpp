// The event store's reading side: query planning (which index answers a
// filter), the merged index cursors, and scan, count and negentropy_items.

#include "store/event_store.hpp"

#include "messages/nostr/id_hash.hpp"
#include "store/event_store_internal.hpp"

#include <rocksdb/perf_level.h>

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <limits>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>

namespace ferry::store {

namespace {

using id_set = std::unordered_set<bytes32, nostr::id_hash>;

/// Releases a snapshot when a read finishes.
class snapshot_guard {
public:
  /// A secondary instance (a reader beside the node) takes none: its
  /// snapshots stop at the node's last flush and would hide the events it
  /// replayed from the WAL, and its view never moves anyway.
  snapshot_guard(rocksdb::DB* db, bool secondary)
    : db_(db), snap_(secondary ? nullptr : db->GetSnapshot()) {
  }
  ~snapshot_guard() {
    if (snap_ != nullptr)
      db_->ReleaseSnapshot(snap_);
  }
  snapshot_guard(const snapshot_guard&) = delete;
  snapshot_guard& operator=(const snapshot_guard&) = delete;
  const rocksdb::Snapshot* get() const {
    return snap_;
  }

private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

/// The smallest key greater than every key starting with `prefix`; "" when
/// there is none (empty prefix or all 0xff).
std::string prefix_successor(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<uint8_t>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

// -- query planning ------------------------------------------------------------

/// Candidates read from the events family with one MultiGet.
constexpr size_t scan_batch_size = 64;
/// A scan's first MultiGet; each next one doubles up to `scan_batch_size`.
/// bench_req: a `limit 500` page's first event 0.65 -> 0.38 ms.
constexpr size_t first_scan_batch_size = 8;

/// Which index a filter is answered from.
enum class index_choice { ids, tag, author_kind, author, kind, created };

/// Above this many (author, kind) pairs, one iterator per pair costs more than
/// it saves: fall back to the author index and check kinds from the header.
constexpr size_t max_author_kind_pairs = 256;

struct plan {
  index_choice index = index_choice::created;
  cf family = cf::by_created;
  /// One iterator per prefix, merged newest first.
  std::vector<std::string> prefixes;
  /// No authors (kinds) condition is left for the header check: the index
  /// settles it, or the filter has none.
  bool covers_authors = false;
  bool covers_kinds = false;
  /// A tag condition is left that only the JSON can check.
  bool needs_json = false;

  /// True when the index keys alone decide the match (expiry aside).
  bool covers_everything() const {
    return index != index_choice::ids && !needs_json && covers_authors
           && covers_kinds;
  }
};

/// The plan for `f`, or nullopt when `f` cannot match anything.
std::optional<plan> make_plan(const nostr::filter& f) {
  if ((f.ids && f.ids->empty()) || (f.authors && f.authors->empty())
      || (f.kinds && f.kinds->empty()))
    return std::nullopt;
  for (const auto& t : f.tags)
    if (t.values.empty())
      return std::nullopt;
  if (f.until && *f.until < 0)
    return std::nullopt;
  if (f.since && f.until && *f.since > *f.until)
    return std::nullopt;
  plan p;
  p.needs_json = !f.tags.empty();
  if (f.ids) {
    p.index = index_choice::ids;
    return p;
  }
  // Fewest values first: fewer iterators, and usually fewer entries.
  const nostr::tag_condition* best = nullptr;
  for (const auto& t : f.tags)
    if (is_indexed_tag_name(std::string_view{&t.letter, 1})
        && (best == nullptr || t.values.size() < best->values.size()))
      best = &t;
  if (best != nullptr) {
    p.index = index_choice::tag;
    p.family = cf::by_tag;
    for (const auto& v : best->values)
      p.prefixes.push_back(tag_prefix(best->letter, v));
    p.needs_json = f.tags.size() > 1;
    p.covers_authors = !f.authors;
    p.covers_kinds = !f.kinds;
    return p;
  }
  if (f.authors && f.kinds
      && f.authors->size() * f.kinds->size() <= max_author_kind_pairs) {
    p.index = index_choice::author_kind;
    p.family = cf::by_author_kind;
    for (const auto& a : *f.authors)
      for (auto k : *f.kinds)
        p.prefixes.push_back(author_kind_prefix(a, k));
    p.covers_authors = p.covers_kinds = true;
    return p;
  }
  if (f.authors) {
    p.index = index_choice::author;
    p.family = cf::by_author;
    for (const auto& a : *f.authors)
      p.prefixes.push_back(author_prefix(a));
    p.covers_authors = true;
    p.covers_kinds = !f.kinds;
    return p;
  }
  if (f.kinds) {
    p.index = index_choice::kind;
    p.family = cf::by_kind;
    for (auto k : *f.kinds)
      p.prefixes.push_back(kind_prefix(k));
    p.covers_authors = p.covers_kinds = true;
    return p;
  }
  p.prefixes.emplace_back();
  p.covers_authors = p.covers_kinds = true;
  return p;
}

/// Checks what the header can tell: expiry, time bounds, and the authors and
/// kinds the index did not cover.
bool header_matches(const plan& p, const nostr::filter& f,
                    const event_header& h, int64_t now) {
  if (h.expiration != 0 && h.expiration <= now)
    return false;
  if ((f.since && h.created_at < *f.since) || (f.until && h.created_at > *f.until))
    return false;
  if (!p.covers_authors && f.authors
      && !std::binary_search(f.authors->begin(), f.authors->end(), h.pubkey))
    return false;
  if (!p.covers_kinds && f.kinds
      && !std::binary_search(f.kinds->begin(), f.kinds->end(), h.kind))
    return false;
  return true;
}

/// The suffix bytes of a position, for comparisons with key suffixes.
std::string suffix_of(int64_t created_at, const bytes32& id) {
  std::string out;
  out.reserve(suffix_size);
  put_suffix(out, created_at, id);
  return out;
}

/// The keys of one index prefix between `since` and `until`: from `lower`
/// (inclusive) to `upper` (exclusive; "" for the end of the family).
struct key_range {
  std::string lower;
  std::string upper;
};

key_range index_range(const std::string& prefix, std::optional<int64_t> since,
                      std::optional<int64_t> until) {
  key_range r;
  r.lower = prefix;
  if (until)
    put_fixed64(r.lower, invert_time(*until));
  if (since && invert_time(*since) != std::numeric_limits<uint64_t>::max()) {
    r.upper = prefix;
    put_fixed64(r.upper, invert_time(*since) + 1);
  } else {
    r.upper = prefix_successor(prefix);
  }
  return r;
}

/// Several prefix iterators over one index family, merged by key suffix so
/// they yield one newest-first sequence without duplicates. Each cursor is
/// bounded by `[prefix · ~until, prefix · ~since]` and starts strictly after
/// the resume position.
class merged_index {
public:
  merged_index(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
               const rocksdb::Snapshot* snap,
               const std::vector<std::string>& prefixes,
               std::optional<int64_t> since, std::optional<int64_t> until,
               const std::optional<std::string>& resume_suffix) {
    cursors_.reserve(prefixes.size());
    for (const auto& prefix : prefixes) {
      auto c = std::make_unique<cursor>();
      c->prefix_size = prefix.size();
      auto range = index_range(prefix, since, until);
      c->upper = std::move(range.upper);
      c->upper_slice = c->upper;
      rocksdb::ReadOptions ro;
      ro.snapshot = snap;
      if (!c->upper.empty())
        ro.iterate_upper_bound = &c->upper_slice;
      c->it.reset(db->NewIterator(ro, family));
      std::string start = std::move(range.lower);
      if (resume_suffix) {
        auto resume_key = prefix + *resume_suffix;
        if (resume_key > start)
          start = std::move(resume_key);
      }
      c->it->Seek(start);
      if (resume_suffix)
        while (c->it->Valid() && suffix(*c) <= *resume_suffix)
          c->it->Next();
      if (!c->it->status().ok())
        status_ = c->it->status();
      if (c->it->Valid())
        heap_.push_back(cursors_.size());
      cursors_.push_back(std::move(c));
    }
    std::make_heap(heap_.begin(), heap_.end(), greater());
  }

  bool valid() const {
    return status_.ok() && !heap_.empty();
  }

  /// The current `~created_at · id` suffix.
  std::string_view current() const {
    return suffix(*cursors_[heap_.front()]);
  }

  /// Moves past the current suffix in every cursor that holds it.
  void next() {
    if (heap_.size() == 1) {
      // One index to follow (most filters): no merge, no copy of the key.
      advance(*cursors_[heap_.front()]);
      return;
    }
    // A copy: moving the cursor invalidates the key it points into. Index
    // keys end in a fixed-size suffix, so it needs no allocation.
    auto now = current();
    std::array<char, suffix_size> copy;
    std::string longer;
    std::string_view done;
    if (now.size() <= copy.size()) {
      std::copy_n(now.data(), now.size(), copy.data());
      done = {copy.data(), now.size()};
    } else {
      longer.assign(now);
      done = longer;
    }
    while (!heap_.empty() && current() == done) {
      std::pop_heap(heap_.begin(), heap_.end(), greater());
      auto& c = *cursors_[heap_.back()];
      c.it->Next();
      if (c.it->Valid()) {
        std::push_heap(heap_.begin(), heap_.end(), greater());
      } else {
        if (!c.it->status().ok())
          status_ = c.it->status();
        heap_.pop_back();
      }
    }
  }

  const rocksdb::Status& status() const {
    return status_;
  }

private:
  struct cursor;

  /// Steps the only cursor left in the heap.
  void advance(cursor& c) {
    c.it->Next();
    if (c.it->Valid())
      return;
    if (!c.it->status().ok())
      status_ = c.it->status();
    heap_.pop_back();
  }

  struct cursor {
    size_t prefix_size = 0;
    std::string upper;
    /// Must stay at a fixed address: the iterator keeps a pointer to it.
    rocksdb::Slice upper_slice;
    std::unique_ptr<rocksdb::Iterator> it;
  };

  static std::string_view suffix(const cursor& c) {
    auto key = view_of(c.it->key());
    return key.substr(c.prefix_size);
  }

  /// Orders the heap so the smallest suffix is on top.
  struct greater_suffix {
    const merged_index* self;
    bool operator()(size_t a, size_t b) const {
      return suffix(*self->cursors_[a]) > suffix(*self->cursors_[b]);
    }
  };

  greater_suffix greater() const {
    return greater_suffix{this};
  }

  std::vector<std::unique_ptr<cursor>> cursors_;
  std::vector<size_t> heap_;
  rocksdb::Status status_;
};

/// The index entries of a covered filter, without reading any event.
template <class F>
rocksdb::Status for_each_index_id(rocksdb::DB* db,
                                  rocksdb::ColumnFamilyHandle* family,
                                  const plan& p, const nostr::filter& f,
                                  const rocksdb::Snapshot* snap,
                                  const id_set& expired, read_budget* budget,
                                  F&& f_id) {
  merged_index m(db, family, snap, p.prefixes, f.since, f.until, std::nullopt);
  for (; m.valid(); m.next()) {
    if (budget && !budget->take())
      break;
    auto pos = decode_suffix(m.current());
    if (expired.count(pos.id) == 0)
      f_id(pos.id);
  }
  return m.status();
}

/// Ids of the events whose expiration has passed but that are not purged yet.
rocksdb::Status expired_ids(rocksdb::DB* db,
                            rocksdb::ColumnFamilyHandle* by_expiration,
                            const rocksdb::Snapshot* snap, int64_t now,
                            id_set& out) {
  if (now < 0)
    return rocksdb::Status::OK();
  std::string upper;
  put_fixed64(upper, static_cast<uint64_t>(now) + 1);
  rocksdb::Slice upper_slice = upper;
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, by_expiration));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto key = view_of(it->key());
    if (key.size() != 40)
      continue;
    bytes32 id;
    std::memcpy(id.data(), key.data() + 8, 32);
    out.insert(id);
  }
  return it->status();
}

} // namespace

// -- reading -----------------------------------------------------------------------

bool event_store::contains(const nostr::bytes32& id) const {
  perf_counters_off_for_this_thread();
  rocksdb::PinnableSlice value;
  return impl_->db
    ->Get(rocksdb::ReadOptions{}, impl_->h(cf::events), slice_of(id), &value)
    .ok();
}

std::optional<std::string> event_store::get_json(const nostr::bytes32& id) const {
  perf_counters_off_for_this_thread();
  rocksdb::PinnableSlice value;
  auto s = impl_->db->Get(rocksdb::ReadOptions{}, impl_->h(cf::events),
                          slice_of(id), &value);
  if (!s.ok())
    return std::nullopt;
  std::string_view json;
  if (!decode_event_value(view_of(value), &json))
    return std::nullopt;
  return std::string(json);
}

bool event_store::scan(
  const nostr::filter& f, int64_t now, const std::optional<scan_position>& resume,
  size_t max_events,
  const std::function<bool(std::string_view json, const scan_position& pos)>& sink,
  read_budget* budget) const {
  perf_counters_off_for_this_thread();
  // The interface has no error channel: a RocksDB read error ends the scan as
  // if it were exhausted (the next call would fail the same way).
  auto p = make_plan(f);
  if (!p)
    return false;
  auto& st = *impl_;
  snapshot_guard snap{st.db, !st.secondary_path.empty()};
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.get();
  std::optional<std::string> resume_suffix;
  if (resume)
    resume_suffix = suffix_of(resume->created_at, resume->id);

  // Candidates are read with one MultiGet per batch: a Get per served event
  // costs ~20% more (each pays the lookup setup again; a batch probes its
  // bloom filters and index together).
  std::vector<scan_position> candidates;
  std::vector<rocksdb::Slice> keys;
  std::vector<rocksdb::PinnableSlice> values(scan_batch_size);
  std::vector<rocksdb::Status> statuses(scan_batch_size);
  nostr::event parsed;
  // Reads the candidates with one MultiGet and calls `on_match(i, json,
  // header)` for each one that matches, in order, until it returns false.
  // @returns false when it stopped early.
  auto read_candidates = [&](auto&& on_match) {
    keys.clear();
    for (const auto& c : candidates)
      keys.push_back(slice_of(c.id));
    for (auto& v : values)
      v.Reset();
    st.db->MultiGet(ro, st.h(cf::events), keys.size(), keys.data(),
                    values.data(), statuses.data());
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (!statuses[i].ok())
        continue;
      std::string_view json;
      auto h = decode_event_value(view_of(values[i]), &json);
      if (!h || !header_matches(*p, f, *h, now))
        continue;
      if (p->needs_json
          && !(nostr::parse_event(json, parsed).empty() && f.matches(parsed)))
        continue;
      if (!on_match(i, json, *h))
        return false;
    }
    return true;
  };

  size_t delivered = 0;
  if (p->index == index_choice::ids) {
    // The matches' positions first, then the JSON of only those delivered:
    // each slice of a large `ids` REQ copied every remaining match's JSON.
    std::vector<std::string> hits; // suffixes: the serving order
    for (size_t from = 0; from < f.ids->size(); from += scan_batch_size) {
      candidates.clear();
      for (size_t i = from; i < std::min(from + scan_batch_size, f.ids->size()); ++i) {
        if (budget && !budget->take())
          return true;
        candidates.push_back({0, (*f.ids)[i]});
      }
      read_candidates([&](size_t i, std::string_view, const event_header& h) {
        auto suffix = suffix_of(h.created_at, candidates[i].id);
        if (!resume_suffix || suffix > *resume_suffix)
          hits.push_back(std::move(suffix));
        return true;
      });
    }
    std::sort(hits.begin(), hits.end());
    for (size_t from = 0; from < hits.size(); from += scan_batch_size) {
      candidates.clear();
      for (size_t i = from; i < std::min(from + scan_batch_size, hits.size()); ++i) {
        auto pos = decode_suffix(hits[i]);
        candidates.push_back({pos.created_at, pos.id});
      }
      bool stopped = false;
      read_candidates([&](size_t i, std::string_view json, const event_header&) {
        if (delivered == max_events || !sink(json, candidates[i])) {
          stopped = true;
          return false;
        }
        ++delivered;
        return true;
      });
      if (stopped)
        return true;
    }
    return false;
  }

  merged_index m(st.db, st.h(p->family), snap.get(), p->prefixes, f.since,
                 f.until, resume_suffix);
  std::optional<scan_position> last_examined;
  // Small at first: the first events reach the client while more are read.
  size_t batch = first_scan_batch_size;
  while (m.valid()) {
    if (delivered == max_events)
      return true;
    // No more candidates than could still be delivered: a covered filter
    // reads exactly what it serves.
    candidates.clear();
    const auto wanted = std::min(batch, max_events - delivered);
    batch = std::min(batch * 2, scan_batch_size);
    for (; m.valid() && candidates.size() < wanted; m.next()) {
      if (budget && !budget->take())
        break;
      auto pos = decode_suffix(m.current());
      candidates.push_back({pos.created_at, pos.id});
    }
    auto serve = [&](size_t i, std::string_view json, const event_header&) {
      ++delivered;
      return sink(json, candidates[i]);
    };
    if (!read_candidates(serve))
      return true;
    // The merged index walks every candidate in serving order, so the last
    // one of a batch read whole is a resumable position.
    if (!candidates.empty())
      last_examined = candidates.back();
    if (budget && budget->exhausted) {
      budget->examined_through = last_examined;
      return true;
    }
  }
  return false;
}

uint64_t event_store::count(const std::vector<nostr::filter>& fs, int64_t now,
                            read_budget* budget) const {
  perf_counters_off_for_this_thread();
  // Covered filters are counted from index keys alone. Expiry is the one
  // condition an index key cannot show, so the ids that have expired but are
  // not purged yet are read once from `by_expiration` (a short range when
  // purge_expired runs regularly) and excluded. The interface has no error
  // channel: a read error counts what was read before it.
  auto& st = *impl_;
  snapshot_guard snap{st.db, !st.secondary_path.empty()};
  std::optional<id_set> expired;
  auto expired_set = [&]() -> const id_set& {
    if (!expired) {
      expired.emplace();
      expired_ids(st.db, st.h(cf::by_expiration), snap.get(), now, *expired);
    }
    return *expired;
  };
  if (fs.size() == 1) {
    auto p = make_plan(fs.front());
    if (!p)
      return 0;
    if (p->covers_everything()) {
      uint64_t n = 0;
      for_each_index_id(st.db, st.h(p->family), *p, fs.front(), snap.get(),
                        expired_set(), budget, [&n](const bytes32&) { ++n; });
      return n;
    }
  }
  id_set seen;
  for (const auto& f : fs) {
    auto p = make_plan(f);
    if (!p)
      continue;
    if (p->covers_everything()) {
      for_each_index_id(st.db, st.h(p->family), *p, f, snap.get(),
                        expired_set(), budget,
                        [&seen](const bytes32& id) { seen.insert(id); });
    } else {
      scan(f, now, std::nullopt, std::numeric_limits<size_t>::max(),
           [&seen](std::string_view, const scan_position& pos) {
             seen.insert(pos.id);
             return true;
           },
           budget);
    }
    if (budget && budget->exhausted)
      break;
  }
  return seen.size();
}

namespace {

using neg_item = nostr::negentropy::item;

/// An index range holding at least this many bytes of keys is read on two
/// threads (~90,000 entries; below, the second thread saves too little).
constexpr uint64_t parallel_read_min_bytes = 4u << 20;

/// Entries a reading thread takes before it adds them to the count both
/// threads share (so they do not fight over one cache line per entry).
constexpr size_t shared_count_step = 4096;

/// Reserves room for `n` items. A large set's memory is asked to come in
/// huge pages: faulting in a million items' 36 MB page by page (and the
/// newer half's vector beside it) took a sixth of a build's samples, most
/// of it the hypervisor's share of each fault. Kernels that give huge pages
/// only where asked (THP "madvise") need the advice; with "always" it
/// changes nothing, and where they are off it is ignored.
void reserve_items(std::vector<neg_item>& items, size_t n) {
  items.reserve(n);
  constexpr uintptr_t huge_page = uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<uintptr_t>(items.data());
  const auto end = begin + items.capacity() * sizeof(neg_item);
  const auto first = (begin + huge_page - 1) & ~(huge_page - 1);
  const auto last = end & ~(huge_page - 1);
  if (last > first)
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
}

/// Index order (newest first, ids ascending within a second) to the item
/// set's (oldest first, ids ascending), in place and in linear time: sorting
/// a million items cost as much as reading them.
void to_item_order(std::vector<neg_item>& items) {
  std::reverse(items.begin(), items.end());
  for (auto run = items.begin(); run != items.end();) {
    auto second = run->timestamp;
    auto end = std::find_if(run + 1, items.end(), [second](const neg_item& x) {
      return x.timestamp != second;
    });
    std::reverse(run, end);
    run = end;
  }
}

/// The entries of `range` but the expired ones, appended to `out` in index
/// order. Gives up (leaving `out` short) once `taken`, the count of every
/// thread reading the same set, passes `max_items`.
rocksdb::Status read_index_range(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                                 const rocksdb::Snapshot* snap, const key_range& range,
                                 const id_set& expired, size_t max_items,
                                 std::atomic<size_t>& taken,
                                 std::vector<neg_item>& out) {
  perf_counters_off_for_this_thread();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  rocksdb::Slice upper{range.upper};
  if (!range.upper.empty())
    ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(ro, family)};
  size_t untold = 0;
  for (it->Seek(range.lower); it->Valid(); it->Next()) {
    auto pos = decode_suffix(view_of(it->key()));
    if (!expired.empty() && expired.count(pos.id) != 0)
      continue;
    out.push_back({static_cast<uint64_t>(pos.created_at), pos.id});
    if (++untold == shared_count_step) {
      untold = 0;
      if (taken.fetch_add(shared_count_step) + shared_count_step > max_items)
        return rocksdb::Status::OK();
    }
  }
  taken += untold;
  return it->status();
}

/// A key that splits the keys of `prefix` in `range` into two parts of
/// about the same size (on disk and in the memtables), found by halving the
/// time span; nullopt when the range is too small to be worth two threads.
std::optional<std::string> middle_key(rocksdb::DB* db,
                                      rocksdb::ColumnFamilyHandle* family,
                                      const std::string& prefix,
                                      const key_range& range) {
  // Above every key of the prefix when the range runs to the family's end.
  const std::string end = range.upper.empty()
                            ? std::string(prefix.size() + suffix_size + 1, '\xff')
                            : range.upper;
  rocksdb::SizeApproximationOptions size_opts;
  size_opts.include_memtables = true;
  auto bytes_before = [&](const std::string& key) -> uint64_t {
    rocksdb::Range r{range.lower, key};
    uint64_t size = 0;
    if (!db->GetApproximateSizes(size_opts, family, &r, 1, &size).ok())
      return 0;
    return size;
  };
  const uint64_t total = bytes_before(end);
  if (total < parallel_read_min_bytes)
    return std::nullopt;
  // The time part of the keys, inverted (newest first), within the range.
  auto time_of = [&](const std::string& key, uint64_t otherwise) {
    std::string_view rest{key};
    rest.remove_prefix(std::min(prefix.size(), rest.size()));
    uint64_t t = otherwise;
    return get_fixed64(rest, t) ? t : otherwise;
  };
  uint64_t lo = time_of(range.lower, 0);
  uint64_t hi = range.upper.empty() ? std::numeric_limits<uint64_t>::max()
                                    : time_of(range.upper, std::numeric_limits<uint64_t>::max());
  auto key_at = [&](uint64_t t) {
    std::string key = prefix;
    put_fixed64(key, t);
    return key;
  };
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (bytes_before(key_at(mid)) * 2 < total)
      lo = mid + 1;
    else
      hi = mid;
  }
  auto key = key_at(lo);
  if (key <= range.lower || key >= end)
    return std::nullopt;
  return key;
}

} // namespace

caf::expected<item_scan>
event_store::negentropy_items(const nostr::filter& f, int64_t now,
                              size_t max_items) const {
  item_scan result;
  auto p = make_plan(f);
  if (!p)
    return result;
  // Matches arrive newest first, so a filter's limit is simply where to stop.
  const uint64_t wanted = f.limit.value_or(std::numeric_limits<uint64_t>::max());
  auto take = [&](int64_t created_at, const bytes32& id) {
    if (result.items.size() == wanted)
      return false;
    if (result.items.size() == max_items) {
      result.over_limit = true;
      result.items.clear();
      return false;
    }
    result.items.push_back({static_cast<uint64_t>(created_at), id});
    return true;
  };
  if (!p->covers_everything()) {
    // `scan` has no error channel; a read error ends it like exhaustion.
    scan(f, now, std::nullopt, std::numeric_limits<size_t>::max(),
         [&take](std::string_view, const scan_position& pos) {
           return take(pos.created_at, pos.id);
         });
    to_item_order(result.items);
    return result;
  }
  auto& st = *impl_;
  snapshot_guard snap{st.db, !st.secondary_path.empty()};
  id_set expired;
  if (auto s = expired_ids(st.db, st.h(cf::by_expiration), snap.get(), now,
                           expired);
      !s.ok())
    return storage_error(s);
  // The whole store: grown by doubling, a million items were copied
  // twice over and a fifth of the build went to page faults. RocksDB's
  // count is an estimate (it was 0.1% low at a million), hence the
  // headroom; the item set keeps it (it gives back more).
  const bool whole_store = !f.since && !f.until && !f.limit;
  const size_t expected = whole_store
                            ? static_cast<size_t>(std::min<uint64_t>(
                              approximate_event_count() * 17 / 16 + 1024, max_items))
                            : 0;
  // One index prefix without a limit (`{}`, one kind, one author...): a
  // large range is read as two halves on two threads, the older half into
  // the vector that becomes the set. 901,498 items on a busy 2-core
  // machine: 390 ms on one thread, 280 ms on two.
  if (p->prefixes.size() == 1 && !f.limit && std::thread::hardware_concurrency() > 1) {
    auto range = index_range(p->prefixes.front(), f.since, f.until);
    if (auto middle = middle_key(st.db, st.h(p->family), p->prefixes.front(), range)) {
      const key_range newer{range.lower, *middle};
      const key_range older{*middle, range.upper};
      std::vector<neg_item> newer_items;
      reserve_items(newer_items, expected / 2);
      reserve_items(result.items, expected);
      std::atomic<size_t> taken{0};
      rocksdb::Status older_status;
      std::exception_ptr older_failure;
      auto read_older = [&] {
        try {
          older_status = read_index_range(st.db, st.h(p->family), snap.get(), older,
                                          expired, max_items, taken, result.items);
          to_item_order(result.items);
        } catch (...) {
          older_failure = std::current_exception();
        }
      };
      std::thread older_reader;
      try {
        older_reader = std::thread{read_older};
      } catch (const std::system_error&) {
        read_older(); // no thread to be had: both halves here, one by one
      }
      auto newer_status = read_index_range(st.db, st.h(p->family), snap.get(), newer,
                                           expired, max_items, taken, newer_items);
      to_item_order(newer_items);
      if (older_reader.joinable())
        older_reader.join();
      if (older_failure)
        std::rethrow_exception(older_failure);
      if (!older_status.ok())
        return storage_error(older_status);
      if (!newer_status.ok())
        return storage_error(newer_status);
      if (result.items.size() + newer_items.size() > max_items) {
        result.over_limit = true;
        result.items.clear();
        return result;
      }
      result.items.insert(result.items.end(), newer_items.begin(), newer_items.end());
      return result;
    }
  }
  reserve_items(result.items, expected);
  perf_counters_off_for_this_thread();
  merged_index m(st.db, st.h(p->family), snap.get(), p->prefixes, f.since,
                 f.until, std::nullopt);
  for (; m.valid(); m.next()) {
    auto pos = decode_suffix(m.current());
    if (!expired.empty() && expired.count(pos.id) != 0)
      continue;
    if (!take(pos.created_at, pos.id))
      break;
  }
  if (!m.status().ok())
    return storage_error(m.status());
  to_item_order(result.items);
  return result;
}

} // namespace ferry::store
