#include "store/event_store.hpp"

#include "messages/error.hpp"
#include "store/change_log.hpp"
#include "store/column_families.hpp"
#include "store/keys.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <charconv>
#include <cstdio>
#include <mutex>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace ferry::store {

namespace {

caf::error storage_error(const rocksdb::Status& s) {
  return caf::make_error(ec::storage_failure, s.ToString());
}

/// Bytes an unprivileged writer may still use on the filesystem of `path`;
/// nullopt when statvfs fails (then RocksDB's own errors decide).
std::optional<uint64_t> free_bytes(const std::string& path) {
  struct statvfs fs;
  if (::statvfs(path.c_str(), &fs) != 0)
    return std::nullopt;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

/// RocksDB's log lines go to the node's log instead of a LOG file in the
/// store directory. That file is written through a WritableFileWriter which,
/// after one failed append (ENOSPC), fails an assertion on the next line
/// (`AssertFalseAndGetStatusForPrevError`; Debian keeps assertions on): the
/// node died with SIGABRT as soon as the disk filled. Our sink cannot.
class forwarding_logger : public rocksdb::Logger {
public:
  explicit forwarding_logger(
    std::function<void(bool, std::string_view)> sink)
    : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL),
      sink_(std::move(sink)) {
  }

  using rocksdb::Logger::Logv;

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }

  void Logv(const rocksdb::InfoLogLevel level, const char* format,
            va_list ap) override {
    if (!sink_ || level < GetInfoLogLevel())
      return;
    char line[1024];
    auto n = std::vsnprintf(line, sizeof line, format, ap);
    if (n < 0)
      return;
    std::string_view text{line, std::min<size_t>(static_cast<size_t>(n),
                                                 sizeof line - 1)};
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
      text.remove_suffix(1);
    // HEADER_LEVEL ranks above FATAL but is the options dump at open.
    auto problem = level >= rocksdb::InfoLogLevel::WARN_LEVEL
                   && level != rocksdb::InfoLogLevel::HEADER_LEVEL;
    if (!text.empty())
      sink_(problem, text);
  }

private:
  std::function<void(bool, std::string_view)> sink_;
};

/// Follows RocksDB's background error state. Called on RocksDB's threads
/// (a writer's, a flush's, the SstFileManager's recovery thread).
class error_listener : public rocksdb::EventListener {
public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason,
                         rocksdb::Status* bg_error) override {
    if (bg_error->ok())
      return;
    pending.store(true);
    if (bg_error->IsNoSpace())
      no_space.store(true);
  }

  void OnErrorRecoveryEnd(
    const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (info.new_bg_error.ok())
      clear();
  }

  void clear() {
    pending.store(false);
    no_space.store(false);
  }

  /// A background error is set: the DB refuses writes until it clears.
  std::atomic<bool> pending{false};
  /// ... and it is (or began as) an out-of-space error.
  std::atomic<bool> no_space{false};
};

rocksdb::Slice slice_of(const bytes32& x) {
  return {reinterpret_cast<const char*>(x.data()), x.size()};
}

std::string_view view_of(const rocksdb::Slice& s) {
  return {s.data(), s.size()};
}

/// Hash of an id for the sets of `count`: ids are SHA-256 digests, so any
/// eight of their bytes are already uniformly distributed.
struct id_hash {
  size_t operator()(const bytes32& id) const {
    size_t h;
    std::memcpy(&h, id.data(), sizeof(h));
    return h;
  }
};

using id_set = std::unordered_set<bytes32, id_hash>;

/// Releases a snapshot when a read finishes.
class snapshot_guard {
public:
  explicit snapshot_guard(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {
  }
  ~snapshot_guard() {
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

/// `kind:pubkey:d` from an `a` tag (the trailing `:d` may be missing for
/// replaceable kinds).
struct address {
  uint32_t kind = 0;
  bytes32 pubkey{};
  std::string_view d;
};

std::optional<address> parse_address(std::string_view text) {
  auto colon = text.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon > 5)
    return std::nullopt;
  address result;
  for (size_t i = 0; i < colon; ++i) {
    if (text[i] < '0' || text[i] > '9')
      return std::nullopt;
    result.kind = result.kind * 10 + static_cast<uint32_t>(text[i] - '0');
  }
  text.remove_prefix(colon + 1);
  if (text.size() < 64 || !nostr::from_hex(text.substr(0, 64), result.pubkey))
    return std::nullopt;
  text.remove_prefix(64);
  if (!text.empty()) {
    if (text.front() != ':')
      return std::nullopt;
    result.d = text.substr(1);
  }
  return result;
}

/// True for the kinds that occupy a (kind, pubkey, d) slot.
bool is_slotted_kind(uint32_t kind) {
  return nostr::is_replaceable_kind(kind) || nostr::is_addressable_kind(kind);
}

/// The d part of an event's slot: the d tag for addressable kinds, "" otherwise.
std::string_view slot_d(const nostr::event& ev) {
  return nostr::is_addressable_kind(ev.kind) ? nostr::d_tag(ev)
                                             : std::string_view{};
}

/// Calls `f(family, key)` for every index entry of `ev` (not `replaceable`).
template <class F>
void for_each_index_key(const nostr::event& ev, std::optional<int64_t> exp,
                        F&& f) {
  f(cf::by_created, index_key({}, ev.created_at, ev.id));
  f(cf::by_kind, index_key(kind_prefix(ev.kind), ev.created_at, ev.id));
  f(cf::by_author, index_key(author_prefix(ev.pubkey), ev.created_at, ev.id));
  f(cf::by_author_kind,
    index_key(author_kind_prefix(ev.pubkey, ev.kind), ev.created_at, ev.id));
  for (const auto& t : ev.tags)
    if (t.size() >= 2 && is_indexed_tag_name(t[0]))
      f(cf::by_tag, index_key(tag_prefix(t[0][0], t[1]), ev.created_at, ev.id));
  if (exp)
    f(cf::by_expiration, expiration_key(*exp, ev.id));
}

// -- query planning ------------------------------------------------------------

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
      if (since && invert_time(*since) != std::numeric_limits<uint64_t>::max()) {
        c->upper = prefix;
        put_fixed64(c->upper, invert_time(*since) + 1);
      } else {
        c->upper = prefix_successor(prefix);
      }
      c->upper_slice = c->upper;
      rocksdb::ReadOptions ro;
      ro.snapshot = snap;
      if (!c->upper.empty())
        ro.iterate_upper_bound = &c->upper_slice;
      c->it.reset(db->NewIterator(ro, family));
      std::string start = prefix;
      if (until)
        put_fixed64(start, invert_time(*until));
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
    std::string done(current());
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

} // namespace

// -- impl ------------------------------------------------------------------------

struct event_store::impl {
  rocksdb::DB* db = nullptr;
  /// Ferry's families (indexed by `cf`) followed by any unknown ones found on
  /// disk, which RocksDB insists on opening too.
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::WriteOptions write_options;
  std::string path;
  uint64_t reserve_bytes = 0;
  std::shared_ptr<error_listener> errors = std::make_shared<error_listener>();
  /// Set by the writer's thread, read by any: space_problem() without a lock.
  std::atomic<bool> disk_full{false};
  mutable std::mutex space_mutex;
  std::string space_problem;

  ~impl() {
    if (db == nullptr)
      return;
    // A destructor cannot report failures; `flush()` is the checked path.
    // After a failed WAL append, FlushWAL asserts (SIGABRT): the WAL is
    // replayed on the next open instead.
    if (!errors->pending.load())
      db->FlushWAL(true);
    rocksdb::CancelAllBackgroundWork(db, true);
    for (auto* h : handles)
      db->DestroyColumnFamilyHandle(h);
    db->Close();
    delete db;
  }

  rocksdb::ColumnFamilyHandle* h(cf family) const {
    return handles[static_cast<size_t>(family)];
  }

  void set_space_problem(std::string text) {
    std::lock_guard<std::mutex> guard{space_mutex};
    space_problem = std::move(text);
    disk_full.store(!space_problem.empty());
  }

  /// A failed commit: out of space (now, or RocksDB is still read-only from
  /// an earlier ENOSPC) makes the disk full until `recheck_space` says not.
  caf::error write_failed(const rocksdb::Status& s) {
    if (s.IsNoSpace() || errors->no_space.load()) {
      auto free = free_bytes(path);
      set_space_problem("RocksDB: " + s.ToString() + " ("
                        + (free ? std::to_string(*free) : std::string{"?"})
                        + " bytes free on " + path + ")");
    }
    return storage_error(s);
  }

  /// The index entries of a covered filter, without reading any event.
  template <class F>
  rocksdb::Status for_each_index_id(const plan& p, const nostr::filter& f,
                                    const rocksdb::Snapshot* snap,
                                    const id_set& expired, F&& f_id) const {
    merged_index m(db, h(p.family), snap, p.prefixes, f.since, f.until,
                   std::nullopt);
    for (; m.valid(); m.next()) {
      auto pos = decode_suffix(m.current());
      if (expired.count(pos.id) == 0)
        f_id(pos.id);
    }
    return m.status();
  }

  /// Ids of the events whose expiration has passed but that are not purged yet.
  rocksdb::Status expired_ids(const rocksdb::Snapshot* snap, int64_t now,
                              id_set& out) const {
    if (now < 0)
      return rocksdb::Status::OK();
    std::string upper;
    put_fixed64(upper, static_cast<uint64_t>(now) + 1);
    rocksdb::Slice upper_slice = upper;
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, h(cf::by_expiration)));
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
};

// -- writing -------------------------------------------------------------------

namespace {

/// Applies events to one WriteBatch. RocksDB does not read its own pending
/// batch, so every lookup goes through small overlays of what this batch
/// already did, and falls back to the database.
class batch_writer {
public:
  batch_writer(rocksdb::DB& db,
               const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
               rocksdb::WriteBatch& batch, int64_t now)
    : db_(db), handles_(handles), batch_(batch), now_(now) {
  }

  caf::expected<write_result> apply(const incoming_event& in) {
    const auto& ev = in.ev;
    auto present = contains(ev.id);
    if (!present)
      return std::move(present.error());
    if (*present)
      return write_result{write_outcome::duplicate,
                          "duplicate: already have this event"};
    auto blocked = is_blocked(ev);
    if (!blocked)
      return std::move(blocked.error());
    if (*blocked)
      return write_result{write_outcome::refused,
                          "blocked: this event was deleted by its author"};
    auto exp = nostr::expiration(ev);
    if (exp && *exp <= now_)
      return write_result{write_outcome::refused,
                          "invalid: this event has expired"};
    if (nostr::is_ephemeral_kind(ev.kind))
      return write_result{write_outcome::ephemeral, ""};
    if (is_slotted_kind(ev.kind)) {
      auto key = replaceable_key(ev.kind, ev.pubkey, slot_d(ev));
      auto current = slot(key);
      if (!current)
        return std::move(current.error());
      if (*current) {
        const auto& cur = **current;
        bool newer = ev.created_at > cur.created_at
                     || (ev.created_at == cur.created_at && ev.id < cur.id);
        if (!newer)
          return write_result{write_outcome::duplicate,
                              "duplicate: have a newer version of this event"};
        if (auto err = erase_by_id(cur.id))
          return err;
      }
    }
    put(in, exp);
    if (ev.kind == 5)
      if (auto err = apply_deletion(ev))
        return err;
    return write_result{write_outcome::stored, ""};
  }

  /// Deletes `ev` with every index entry, and its slot when it holds `ev`.
  caf::error erase(const nostr::event& ev) {
    batch_.Delete(handle(cf::events), slice_of(ev.id));
    for_each_index_key(ev, nostr::expiration(ev),
                       [this](cf family, const std::string& key) {
                         batch_.Delete(handle(family), key);
                       });
    events_[ev.id] = nullptr;
    if (!is_slotted_kind(ev.kind))
      return {};
    auto key = replaceable_key(ev.kind, ev.pubkey, slot_d(ev));
    auto current = slot(key);
    if (!current)
      return std::move(current.error());
    if (*current && (*current)->id == ev.id) {
      batch_.Delete(handle(cf::replaceable), key);
      slots_[key] = std::nullopt;
    }
    return {};
  }

  /// The stored (or batched) event with this id; nullopt when there is none.
  caf::expected<std::optional<nostr::event>> load(const bytes32& id) {
    if (auto i = events_.find(id); i != events_.end()) {
      if (i->second == nullptr)
        return std::optional<nostr::event>{};
      return std::optional<nostr::event>{*i->second};
    }
    std::string value;
    auto s = db_.Get(rocksdb::ReadOptions{}, handle(cf::events), slice_of(id),
                     &value);
    if (s.IsNotFound())
      return std::optional<nostr::event>{};
    if (!s.ok())
      return storage_error(s);
    std::string_view json;
    if (!decode_event_value(value, &json))
      return caf::make_error(ec::storage_failure,
                             "corrupt event record " + nostr::to_hex(id));
    nostr::event ev;
    if (auto reason = nostr::parse_event(json, ev); !reason.empty())
      return caf::make_error(ec::storage_failure, "unreadable event "
                                                    + nostr::to_hex(id) + ": "
                                                    + reason);
    return std::optional<nostr::event>{std::move(ev)};
  }

private:
  caf::expected<bool> contains(const bytes32& id) {
    if (auto i = events_.find(id); i != events_.end())
      return i->second != nullptr;
    rocksdb::PinnableSlice value;
    auto s = db_.Get(rocksdb::ReadOptions{}, handle(cf::events), slice_of(id),
                     &value);
    if (s.IsNotFound())
      return false;
    if (!s.ok())
      return storage_error(s);
    return true;
  }

  caf::expected<std::optional<std::string>> get_deleted(const std::string& key) {
    if (auto i = deleted_.find(key); i != deleted_.end())
      return std::optional<std::string>{i->second};
    std::string value;
    auto s = db_.Get(rocksdb::ReadOptions{}, handle(cf::deleted), key, &value);
    if (s.IsNotFound())
      return std::optional<std::string>{};
    if (!s.ok())
      return storage_error(s);
    return std::optional<std::string>{std::move(value)};
  }

  void put_deleted(const std::string& key, std::string value) {
    batch_.Put(handle(cf::deleted), key, value);
    deleted_[key] = std::move(value);
  }

  caf::expected<std::optional<suffix_value>> slot(const std::string& key) {
    if (auto i = slots_.find(key); i != slots_.end())
      return i->second;
    std::string value;
    auto s = db_.Get(rocksdb::ReadOptions{}, handle(cf::replaceable), key,
                     &value);
    if (s.IsNotFound())
      return std::optional<suffix_value>{};
    if (!s.ok())
      return storage_error(s);
    return decode_time_id_value(value);
  }

  caf::expected<bool> is_blocked(const nostr::event& ev) {
    // NIP-09: deleting a deletion has no effect, so kind 5 is never blocked by id.
    if (ev.kind != 5) {
      auto rec = get_deleted(deleted_id_key(ev.id, ev.pubkey));
      if (!rec)
        return std::move(rec.error());
      if (*rec)
        return true;
    }
    if (is_slotted_kind(ev.kind)) {
      auto rec = get_deleted(deleted_address_key(ev.kind, ev.pubkey, slot_d(ev)));
      if (!rec)
        return std::move(rec.error());
      if (*rec) {
        auto deletion = decode_time_id_value(**rec);
        if (deletion && deletion->created_at >= ev.created_at)
          return true;
      }
    }
    return false;
  }

  void put(const incoming_event& in, std::optional<int64_t> exp) {
    const auto& ev = in.ev;
    event_header h{ev.created_at, ev.kind, ev.pubkey, exp.value_or(0)};
    batch_.Put(handle(cf::events), slice_of(ev.id), encode_event_value(h, in.json));
    for_each_index_key(ev, exp, [this](cf family, const std::string& key) {
      batch_.Put(handle(family), key, rocksdb::Slice{});
    });
    events_[ev.id] = &ev;
    if (is_slotted_kind(ev.kind)) {
      auto key = replaceable_key(ev.kind, ev.pubkey, slot_d(ev));
      batch_.Put(handle(cf::replaceable), key,
                 time_id_value(ev.created_at, ev.id));
      slots_[key] = suffix_value{ev.created_at, ev.id};
    }
  }

  caf::error erase_by_id(const bytes32& id) {
    auto old = load(id);
    if (!old)
      return std::move(old.error());
    if (*old)
      return erase(**old);
    return {};
  }

  /// NIP-09: applies the `e` and `a` tags of the stored deletion `del`.
  caf::error apply_deletion(const nostr::event& del) {
    for (const auto& t : del.tags) {
      if (t.size() < 2)
        continue;
      if (t[0] == "e") {
        bytes32 target;
        if (!nostr::from_hex(t[1], target))
          continue;
        auto found = load(target);
        if (!found)
          return std::move(found.error());
        if (*found && (*found)->kind == 5)
          continue;
        if (*found && (*found)->pubkey == del.pubkey)
          if (auto err = erase(**found))
            return err;
        // Recorded even when the target is absent or someone else's: it blocks
        // a later arrival of the target only when that author is the deleter.
        put_deleted(deleted_id_key(target, del.pubkey),
                    std::string(reinterpret_cast<const char*>(del.id.data()), 32));
      } else if (t[0] == "a") {
        auto addr = parse_address(t[1]);
        if (!addr || addr->pubkey != del.pubkey || !is_slotted_kind(addr->kind))
          continue;
        auto key = deleted_address_key(addr->kind, addr->pubkey, addr->d);
        auto rec = get_deleted(key);
        if (!rec)
          return std::move(rec.error());
        std::optional<suffix_value> prior;
        if (*rec)
          prior = decode_time_id_value(**rec);
        if (!prior || prior->created_at < del.created_at)
          put_deleted(key, time_id_value(del.created_at, del.id));
        auto current = slot(replaceable_key(addr->kind, addr->pubkey, addr->d));
        if (!current)
          return std::move(current.error());
        if (*current && (*current)->created_at <= del.created_at)
          if (auto err = erase_by_id((*current)->id))
            return err;
      }
    }
    return {};
  }

  rocksdb::ColumnFamilyHandle* handle(cf family) const {
    return handles_[static_cast<size_t>(family)];
  }

  rocksdb::DB& db_;
  const std::vector<rocksdb::ColumnFamilyHandle*>& handles_;
  rocksdb::WriteBatch& batch_;
  int64_t now_;
  /// Events put (pointer) or deleted (nullptr) by this batch.
  std::map<bytes32, const nostr::event*> events_;
  /// Slots set or cleared (nullopt) by this batch.
  std::unordered_map<std::string, std::optional<suffix_value>> slots_;
  /// `deleted` records written by this batch.
  std::unordered_map<std::string, std::string> deleted_;
};

} // namespace

// -- event_store -------------------------------------------------------------------

event_store::~event_store() = default;

caf::expected<std::unique_ptr<event_store>>
event_store::open(const store_options& opts) {
  std::unique_ptr<event_store> result{new event_store};
  result->impl_ = std::make_unique<impl>();
  auto& st = *result->impl_;
  st.write_options.sync = opts.sync_writes;
  st.path = opts.path;
  st.reserve_bytes = opts.reserve_bytes;

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // What RocksDB 7.8 does on a full disk (paranoid_checks on, the default;
  // observed on a 16 MiB tmpfs, tests/store/disk_full_test.cpp):
  // - a failed WAL append (kWriteCallback) or memtable flush (kFlush) is a
  //   HARD error: the DB turns read-only, every later Write returns the same
  //   NoSpace status without touching the WAL; reads go on; nothing
  //   acknowledged is lost (the WAL and SSTs written so far replay on open);
  // - a failed compaction is a SOFT error: writes go on, the compaction
  //   waits for space;
  // - for NoSpace errors the SstFileManager (DB::Open makes one) polls the
  //   free space every ~5 s and, once there is room, flushes the memtables
  //   into a new WAL generation and clears the error
  //   (OnErrorRecoveryEnd with an OK status). DB::Resume() while that runs
  //   answers Busy; outside it, it does the same recovery at once;
  // - the old WAL writer keeps its error: FlushWAL on it asserts (SIGABRT),
  //   so shutdown skips FlushWAL while an error is pending (~impl, flush()).
  // The writer stops well before this: `check_space` refuses events once
  // the free space falls below `reserve_bytes`, so the WAL, the MANIFEST and
  // flushes keep room; the hard error is the fallback for a disk filled by
  // someone else between two checks.
  db_options.info_log = std::make_shared<forwarding_logger>(opts.log);
  db_options.listeners.push_back(st.errors);

  auto cache = rocksdb::NewLRUCache(opts.block_cache_mb << 20);
  auto family_options = [&](bool bloom) {
    rocksdb::ColumnFamilyOptions o;
    o.write_buffer_size = opts.write_buffer_mb << 20;
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    if (bloom) {
      t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
      // Most lookups on the ingest path ask for keys that do not exist (a new
      // id, no deletion record): a memtable bloom answers them without a
      // skiplist search, which profiles showed as a large part of import.
      o.memtable_whole_key_filtering = true;
      o.memtable_prefix_bloom_size_ratio = 0.02;
    }
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    return o;
  };

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (size_t i = 0; i < cf_count; ++i) {
    auto family = static_cast<cf>(i);
    // Point lookups (id, slot, deletion record) profit from bloom filters;
    // the index families are only ever range-scanned.
    bool bloom = family == cf::events || family == cf::replaceable
                 || family == cf::deleted;
    descriptors.emplace_back(std::string(cf_names[i]), family_options(bloom));
  }
  std::vector<std::string> on_disk;
  // Fails on a fresh directory, which simply has no families yet.
  if (rocksdb::DB::ListColumnFamilies(db_options, opts.path, &on_disk).ok())
    for (const auto& name : on_disk)
      if (std::find(cf_names.begin(), cf_names.end(), name) == cf_names.end())
        descriptors.emplace_back(name, family_options(false));

  auto s = rocksdb::DB::Open(db_options, opts.path, descriptors, &st.handles,
                             &st.db);
  if (!s.ok())
    return storage_error(s);

  std::string version;
  s = st.db->Get(rocksdb::ReadOptions{}, st.h(cf::meta),
                 std::string(schema_version_key), &version);
  if (s.IsNotFound()) {
    s = st.db->Put(st.write_options, st.h(cf::meta),
                   std::string(schema_version_key),
                   std::to_string(schema_version));
    if (!s.ok())
      return storage_error(s);
  } else if (!s.ok()) {
    return storage_error(s);
  } else {
    uint32_t found = 0;
    auto [end, err] = std::from_chars(version.data(),
                                      version.data() + version.size(), found);
    if (err != std::errc{} || end != version.data() + version.size())
      return caf::make_error(ec::storage_failure,
                             "store schema version is unreadable: '" + version
                               + "'");
    if (found > schema_version)
      return caf::make_error(ec::storage_failure,
                             "store schema version " + version
                               + " is newer than this build supports ("
                               + std::to_string(schema_version)
                               + "); use a newer Ferry");
    if (found < 2)
      if (auto err = backfill_change_log(*result))
        return err;
    if (found < schema_version) {
      s = st.db->Put(st.write_options, st.h(cf::meta),
                     std::string(schema_version_key),
                     std::to_string(schema_version));
      if (!s.ok())
        return storage_error(s);
    }
  }
  return result;
}

caf::expected<std::vector<write_result>>
event_store::write(const std::vector<const incoming_event*>& events,
                   int64_t now,
                   const batch_extra& extra) {
  auto& st = *impl_;
  rocksdb::WriteBatch batch;
  batch_writer writer{*st.db, st.handles, batch, now};
  std::vector<write_result> results;
  results.reserve(events.size());
  for (const auto* in : events) {
    auto r = writer.apply(*in);
    if (!r)
      return std::move(r.error());
    results.push_back(std::move(*r));
  }
  if (extra)
    extra(batch, results);
  auto s = st.db->Write(st.write_options, &batch);
  if (!s.ok())
    return st.write_failed(s);
  return results;
}

caf::expected<size_t> event_store::purge_expired(int64_t now) {
  auto& st = *impl_;
  if (now < 0)
    return size_t{0};
  // Bounded batches keep memory flat when a large backlog has expired.
  constexpr size_t batch_limit = 1000;
  std::string upper;
  put_fixed64(upper, static_cast<uint64_t>(now) + 1);
  rocksdb::Slice upper_slice = upper;
  size_t purged = 0;
  for (;;) {
    std::vector<std::string> keys;
    {
      rocksdb::ReadOptions ro;
      ro.iterate_upper_bound = &upper_slice;
      std::unique_ptr<rocksdb::Iterator> it(
        st.db->NewIterator(ro, st.h(cf::by_expiration)));
      for (it->SeekToFirst(); it->Valid() && keys.size() < batch_limit; it->Next())
        keys.emplace_back(it->key().ToString());
      if (!it->status().ok())
        return storage_error(it->status());
    }
    if (keys.empty())
      return purged;
    rocksdb::WriteBatch batch;
    batch_writer writer{*st.db, st.handles, batch, now};
    for (const auto& key : keys) {
      // Removed even when the event is gone, so a stale entry cannot loop.
      batch.Delete(st.h(cf::by_expiration), key);
      if (key.size() != 40)
        continue;
      bytes32 id;
      std::memcpy(id.data(), key.data() + 8, 32);
      auto ev = writer.load(id);
      if (!ev)
        return std::move(ev.error());
      if (!*ev)
        continue;
      if (auto err = writer.erase(**ev))
        return err;
      ++purged;
    }
    auto s = st.db->Write(st.write_options, &batch);
    if (!s.ok())
      return st.write_failed(s);
    if (keys.size() < batch_limit)
      return purged;
  }
}

bool event_store::contains(const nostr::bytes32& id) const {
  rocksdb::PinnableSlice value;
  return impl_->db
    ->Get(rocksdb::ReadOptions{}, impl_->h(cf::events), slice_of(id), &value)
    .ok();
}

std::optional<std::string> event_store::get_json(const nostr::bytes32& id) const {
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
  const std::function<bool(std::string_view json, const scan_position& pos)>& sink)
  const {
  // The interface has no error channel: a RocksDB read error ends the scan as
  // if it were exhausted (the next call would fail the same way).
  auto p = make_plan(f);
  if (!p)
    return false;
  auto& st = *impl_;
  snapshot_guard snap{st.db};
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.get();
  std::optional<std::string> resume_suffix;
  if (resume)
    resume_suffix = suffix_of(resume->created_at, resume->id);

  // Checks one candidate; on a match leaves its JSON in `json`.
  rocksdb::PinnableSlice value;
  nostr::event parsed;
  auto check = [&](const bytes32& id, std::string_view& json,
                   event_header& header) {
    value.Reset();
    if (!st.db->Get(ro, st.h(cf::events), slice_of(id), &value).ok())
      return false;
    auto h = decode_event_value(view_of(value), &json);
    if (!h || !header_matches(*p, f, *h, now))
      return false;
    header = *h;
    if (!p->needs_json)
      return true;
    return nostr::parse_event(json, parsed).empty() && f.matches(parsed);
  };

  size_t delivered = 0;
  if (p->index == index_choice::ids) {
    std::vector<std::pair<std::string, std::string>> hits; // suffix, json
    for (const auto& id : *f.ids) {
      std::string_view json;
      event_header h;
      if (!check(id, json, h))
        continue;
      auto suffix = suffix_of(h.created_at, id);
      if (resume_suffix && suffix <= *resume_suffix)
        continue;
      hits.emplace_back(std::move(suffix), std::string(json));
    }
    std::sort(hits.begin(), hits.end());
    for (const auto& [suffix, json] : hits) {
      if (delivered == max_events)
        return true;
      auto pos = decode_suffix(suffix);
      ++delivered;
      if (!sink(json, scan_position{pos.created_at, pos.id}))
        return true;
    }
    return false;
  }

  merged_index m(st.db, st.h(p->family), snap.get(), p->prefixes, f.since,
                 f.until, resume_suffix);
  for (; m.valid(); m.next()) {
    if (delivered == max_events)
      return true;
    auto pos = decode_suffix(m.current());
    std::string_view json;
    event_header h;
    if (!check(pos.id, json, h))
      continue;
    ++delivered;
    if (!sink(json, scan_position{pos.created_at, pos.id}))
      return true;
  }
  return false;
}

uint64_t event_store::count(const std::vector<nostr::filter>& fs,
                            int64_t now) const {
  // Covered filters are counted from index keys alone. Expiry is the one
  // condition an index key cannot show, so the ids that have expired but are
  // not purged yet are read once from `by_expiration` (a short range when
  // purge_expired runs regularly) and excluded. The interface has no error
  // channel: a read error counts what was read before it.
  auto& st = *impl_;
  snapshot_guard snap{st.db};
  std::optional<id_set> expired;
  auto expired_set = [&]() -> const id_set& {
    if (!expired) {
      expired.emplace();
      st.expired_ids(snap.get(), now, *expired);
    }
    return *expired;
  };
  if (fs.size() == 1) {
    auto p = make_plan(fs.front());
    if (!p)
      return 0;
    if (p->covers_everything()) {
      uint64_t n = 0;
      st.for_each_index_id(*p, fs.front(), snap.get(), expired_set(),
                           [&n](const bytes32&) { ++n; });
      return n;
    }
  }
  id_set seen;
  for (const auto& f : fs) {
    auto p = make_plan(f);
    if (!p)
      continue;
    if (p->covers_everything()) {
      st.for_each_index_id(*p, f, snap.get(), expired_set(),
                           [&seen](const bytes32& id) { seen.insert(id); });
    } else {
      scan(f, now, std::nullopt, std::numeric_limits<size_t>::max(),
           [&seen](std::string_view, const scan_position& pos) {
             seen.insert(pos.id);
             return true;
           });
    }
  }
  return seen.size();
}

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
    return result;
  }
  auto& st = *impl_;
  snapshot_guard snap{st.db};
  id_set expired;
  if (auto s = st.expired_ids(snap.get(), now, expired); !s.ok())
    return storage_error(s);
  merged_index m(st.db, st.h(p->family), snap.get(), p->prefixes, f.since,
                 f.until, std::nullopt);
  for (; m.valid(); m.next()) {
    auto pos = decode_suffix(m.current());
    if (expired.count(pos.id) != 0)
      continue;
    if (!take(pos.created_at, pos.id))
      break;
  }
  if (!m.status().ok())
    return storage_error(m.status());
  return result;
}

uint64_t event_store::approximate_event_count() const {
  uint64_t n = 0;
  impl_->db->GetIntProperty(impl_->h(cf::events), "rocksdb.estimate-num-keys", &n);
  return n;
}

rocksdb::DB* event_store::db() const {
  return impl_->db;
}

rocksdb::ColumnFamilyHandle* event_store::handle(cf family) const {
  return impl_->h(family);
}

caf::error event_store::flush() {
  auto& st = *impl_;
  std::vector<rocksdb::ColumnFamilyHandle*> families(
    st.handles.begin(), st.handles.begin() + cf_count);
  auto s = st.db->Flush(rocksdb::FlushOptions{}, families);
  if (!s.ok())
    return st.write_failed(s);
  if (st.errors->pending.load())
    return caf::make_error(ec::storage_failure,
                           "RocksDB holds a background error; the WAL is "
                           "replayed on the next open");
  s = st.db->FlushWAL(true);
  if (!s.ok())
    return storage_error(s);
  return {};
}

std::string event_store::space_problem() const {
  auto& st = *impl_;
  if (!st.disk_full.load())
    return {};
  std::lock_guard<std::mutex> guard{st.space_mutex};
  return st.space_problem;
}

std::string event_store::check_space() {
  auto& st = *impl_;
  if (st.disk_full.load() || st.reserve_bytes == 0)
    return space_problem();
  auto free = free_bytes(st.path);
  if (!free || *free >= st.reserve_bytes)
    return {};
  st.set_space_problem(std::to_string(*free) + " bytes free on " + st.path
                       + ", below the reserve of "
                       + std::to_string(st.reserve_bytes) + " bytes");
  return space_problem();
}

bool event_store::recheck_space() {
  auto& st = *impl_;
  if (!st.disk_full.load())
    return true;
  auto free = free_bytes(st.path);
  // A quarter above the reserve, so a disk at the edge does not flap; and at
  // least 1 MiB, so Resume() never runs on a disk that is still full.
  auto needed = std::max<uint64_t>(st.reserve_bytes + st.reserve_bytes / 4,
                                   1 << 20);
  if (!free || *free < needed)
    return false;
  if (st.errors->pending.load()) {
    // Busy while the SstFileManager's own recovery runs: it ends the error
    // by itself (OnErrorRecoveryEnd), and the next recheck sees that.
    if (!st.db->Resume().ok())
      return false;
    st.errors->clear();
  }
  st.set_space_problem({});
  return true;
}

bool event_store::background_error() const {
  return impl_->errors->pending.load();
}

} // namespace ferry::store
