// The event store's writing side: one atomic batch per call, with duplicates,
// replaceable and addressable versions, NIP-09 deletions and NIP-40 expiry.

#include "store/event_store.hpp"

#include "store/event_store_internal.hpp"

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>

namespace ferry::store {

namespace {

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
/// The keys are built one after the other in one buffer (`key` is valid
/// during the call): an event has a dozen of them, and a string each was a
/// good part of the writer's allocations.
template <class F>
void for_each_index_key(const nostr::event& ev, std::optional<int64_t> exp,
                        F&& f) {
  std::string key;
  key.reserve(128);
  auto with_suffix = [&](cf family) {
    put_suffix(key, ev.created_at, ev.id);
    f(family, std::string_view{key});
    key.clear();
  };
  with_suffix(cf::by_created);
  append_kind_prefix(key, ev.kind);
  with_suffix(cf::by_kind);
  put_bytes32(key, ev.pubkey);
  with_suffix(cf::by_author);
  append_author_kind_prefix(key, ev.pubkey, ev.kind);
  with_suffix(cf::by_author_kind);
  for (const auto& t : ev.tags)
    if (t.size() >= 2 && is_indexed_tag_name(t[0])) {
      append_tag_prefix(key, t[0][0], t[1]);
      with_suffix(cf::by_tag);
    }
  if (exp) {
    append_expiration_key(key, *exp, ev.id);
    f(cf::by_expiration, std::string_view{key});
  }
}

/// What a commit's batch, and its sorted operations, may keep of their
/// buffers for the next commit.
constexpr size_t kept_batch_bytes = 8u << 20;

/// The puts and deletes of one commit, handed to RocksDB sorted by family and
/// key. Each becomes a memtable skip-list insert, and profiles of `ferry
/// import` showed those searches as most of the writer's time: keys in random
/// order (ids, authors, tags) miss the cache at almost every level, while
/// sorted keys share the upper part of their search path. A stable sort keeps
/// the order of the operations on one key, so the outcome is the same.
///
/// A bulk import's index families have memtables that append in any order
/// and sort once at their flush (store/index_memtable.hpp): their operations go into the batch at
/// once, in the order they were made. Sorting them (most of a commit's
/// operations) and buffering each as an owned key gained nothing there.
class sorted_writes {
public:
  /// `direct` receives the index families' operations at once; null sorts
  /// everything.
  sorted_writes(rocksdb::WriteBatch* direct,
                const std::vector<rocksdb::ColumnFamilyHandle*>& handles)
    : direct_(direct), handles_(handles), owner_(!busy_),
      bytes_(owner_ ? &kept() : &own_bytes_) {
    busy_ = true;
    bytes_->clear();
  }

  sorted_writes(const sorted_writes&) = delete;
  sorted_writes& operator=(const sorted_writes&) = delete;

  ~sorted_writes() {
    if (!owner_)
      return;
    if (bytes_->capacity() > kept_batch_bytes)
      std::string{}.swap(*bytes_);
    busy_ = false;
  }

  void put(cf family, std::string_view key, std::string_view value) {
    add(family, false, key, value);
  }

  /// An event record: its header and JSON, copied once into the buffer.
  void put_event(std::string_view key, const event_header& header,
                 std::string_view json) {
    auto at = begin_op(key);
    append_event_value(*bytes_, header, json);
    end_op(cf::events, false, at, key);
  }

  void erase(cf family, std::string_view key) {
    add(family, true, key, {});
  }

  /// An index entry (no value).
  void put_index(cf family, std::string_view key) {
    if (direct_ != nullptr)
      direct_->Put(handle(family), slice(key), rocksdb::Slice{});
    else
      put(family, key, {});
  }

  void erase_index(cf family, std::string_view key) {
    if (direct_ != nullptr)
      direct_->Delete(handle(family), slice(key));
    else
      erase(family, key);
  }

  void emit(rocksdb::WriteBatch& batch) {
    std::stable_sort(ops_.begin(), ops_.end(), [this](const op& x, const op& y) {
      if (x.family != y.family)
        return x.family < y.family;
      if (x.prefix != y.prefix)
        return x.prefix < y.prefix;
      return key_of(x) < key_of(y);
    });
    for (const auto& o : ops_) {
      if (o.erase)
        batch.Delete(handle(o.family), slice(key_of(o)));
      else
        batch.Put(handle(o.family), slice(key_of(o)), slice(value_of(o)));
    }
    ops_.clear();
    bytes_->clear();
  }

private:
  /// Keys and values live back to back in `bytes_`: an operation is a few
  /// numbers, so the sort moves no strings, and a commit allocates nothing
  /// per operation. `prefix`, a key's first eight bytes as a big-endian
  /// number (zero-padded), decides most comparisons without reading the
  /// buffer; it orders keys as their bytes do.
  struct op {
    cf family;
    bool erase;
    uint64_t prefix;
    size_t at;
    uint32_t key_size;
    uint32_t value_size;
  };

  /// The thread's buffer, kept between commits as `reused_batch` keeps the
  /// batch (a buffer grown afresh for each commit copied itself at every
  /// doubling and faulted its new memory in); a nested write on the same
  /// thread gets a buffer of its own.
  static std::string& kept() {
    thread_local std::string bytes;
    return bytes;
  }

  size_t begin_op(std::string_view key) {
    auto at = bytes_->size();
    bytes_->append(key);
    return at;
  }

  void end_op(cf family, bool erase, size_t at, std::string_view key) {
    auto value_size = bytes_->size() - at - key.size();
    ops_.push_back({family, erase, order_prefix(key), at,
                    static_cast<uint32_t>(key.size()),
                    static_cast<uint32_t>(value_size)});
  }

  void add(cf family, bool erase, std::string_view key, std::string_view value) {
    auto at = begin_op(key);
    bytes_->append(value);
    end_op(family, erase, at, key);
  }

  std::string_view key_of(const op& o) const {
    return std::string_view{*bytes_}.substr(o.at, o.key_size);
  }

  std::string_view value_of(const op& o) const {
    return std::string_view{*bytes_}.substr(o.at + o.key_size, o.value_size);
  }

  rocksdb::ColumnFamilyHandle* handle(cf family) const {
    return handles_[static_cast<size_t>(family)];
  }

  static rocksdb::Slice slice(std::string_view bytes) {
    return {bytes.data(), bytes.size()};
  }

  rocksdb::WriteBatch* direct_;
  const std::vector<rocksdb::ColumnFamilyHandle*>& handles_;
  static inline thread_local bool busy_ = false;
  bool owner_;
  std::string own_bytes_;
  std::string* bytes_;
  std::vector<op> ops_;
};

/// Applies events to one WriteBatch. RocksDB does not read its own pending
/// batch, so every lookup goes through small overlays of what this batch
/// already did, and falls back to the database.
class batch_writer {
public:
  /// `bulk` is where the index families' operations go at once (a bulk
  /// import's store; sorted_writes), else null.
  batch_writer(rocksdb::DB& db,
               const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
               int64_t now, rocksdb::WriteBatch* bulk = nullptr)
    : db_(db), handles_(handles), writes_(bulk, handles), now_(now) {
  }

  /// Moves what the applied events and erasures wrote into `batch` (the
  /// `bulk` batch, when there is one).
  void emit(rocksdb::WriteBatch& batch) {
    writes_.emit(batch);
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
        // Also when that version was deleted or expired since: the slot
        // outlives it so that older versions are not stored again.
        if (!newer && !in.replaces_newer)
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

  /// Deletes `ev` with every index entry. A slot that holds `ev` keeps its
  /// (created_at, id): once the newest version of an address is deleted by
  /// id or expires, the older versions it replaced must stay replaced (a
  /// sync keeps offering them from remotes that never saw the newer one),
  /// and only the slot remembers that a newer version existed. Nothing
  /// serves from the slot family, so the record serves no erased event.
  void erase(const nostr::event& ev) {
    writes_.erase(cf::events, view_of(slice_of(ev.id)));
    for_each_index_key(ev, nostr::expiration(ev),
                       [this](cf family, std::string_view key) {
                         writes_.erase_index(family, key);
                       });
    events_[ev.id] = nullptr;
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
    writes_.put(cf::deleted, key, value);
    deleted_[key] = std::move(value);
  }

  /// The newest version the address has held, whether still stored or since
  /// erased (see `erase`); nullopt when it never held one.
  caf::expected<std::optional<suffix_value>> slot(const std::string& key) {
    if (auto i = slots_.find(key); i != slots_.end())
      return std::optional<suffix_value>{i->second};
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
    writes_.put_event(view_of(slice_of(ev.id)), h, in.json);
    for_each_index_key(ev, exp, [this](cf family, std::string_view key) {
      writes_.put_index(family, key);
    });
    events_[ev.id] = &ev;
    if (is_slotted_kind(ev.kind)) {
      auto key = replaceable_key(ev.kind, ev.pubkey, slot_d(ev));
      writes_.put(cf::replaceable, key, time_id_value(ev.created_at, ev.id));
      slots_[key] = suffix_value{ev.created_at, ev.id};
    }
  }

  caf::error erase_by_id(const bytes32& id) {
    auto old = load(id);
    if (!old)
      return std::move(old.error());
    if (*old)
      erase(**old);
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
          erase(**found);
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
  sorted_writes writes_;
  int64_t now_;
  /// Events put (pointer) or deleted (nullptr) by this batch.
  std::map<bytes32, const nostr::event*> events_;
  /// Slots set by this batch.
  std::unordered_map<std::string, suffix_value> slots_;
  /// `deleted` records written by this batch.
  std::unordered_map<std::string, std::string> deleted_;
};

/// The WriteBatch of this thread's commits, kept between them. A batch built
/// afresh for every commit copied itself at each doubling of its buffer and
/// faulted the new memory in (`perf record -e page-faults` on `ferry import`
/// put most of the writer's page faults there; the import's minor faults
/// fell ~10%, the writer's CPU per event at import-sized commits ~3%).
/// Cleared after each commit it keeps its buffer, unless that grew past
/// `kept_batch_bytes`: one huge commit does not pin its size. A write nested
/// in another on the same thread gets a batch of its own.
class reused_batch {
public:
  reused_batch() : owner_(!busy_), batch_(owner_ ? &kept() : &own_) {
    busy_ = true;
  }

  ~reused_batch() {
    if (!owner_)
      return;
    if (batch_->GetDataSize() > kept_batch_bytes)
      *batch_ = rocksdb::WriteBatch{};
    else
      batch_->Clear();
    busy_ = false;
  }

  reused_batch(const reused_batch&) = delete;
  reused_batch& operator=(const reused_batch&) = delete;

  rocksdb::WriteBatch& get() {
    return *batch_;
  }

private:
  static rocksdb::WriteBatch& kept() {
    thread_local rocksdb::WriteBatch batch;
    return batch;
  }

  static inline thread_local bool busy_ = false;
  bool owner_;
  rocksdb::WriteBatch own_;
  rocksdb::WriteBatch* batch_;
};

} // namespace

// -- writing -------------------------------------------------------------------

caf::expected<std::vector<write_result>>
event_store::write(const std::vector<const incoming_event*>& events,
                   int64_t now,
                   const batch_extra& extra) {
  perf_counters_off_for_this_thread();
  auto& st = *impl_;
  reused_batch reused;
  auto& batch = reused.get();
  batch_writer writer{*st.db, st.handles, now,
                      st.bulk_import ? &batch : nullptr};
  std::vector<write_result> results;
  results.reserve(events.size());
  for (const auto* in : events) {
    auto r = writer.apply(*in);
    if (!r)
      return std::move(r.error());
    results.push_back(std::move(*r));
  }
  writer.emit(batch);
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
    reused_batch reused;
    auto& batch = reused.get();
    batch_writer writer{*st.db, st.handles, now};
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
      writer.erase(**ev);
      ++purged;
    }
    writer.emit(batch);
    auto s = st.db->Write(st.write_options, &batch);
    if (!s.ok())
      return st.write_failed(s);
    if (keys.size() < batch_limit)
      return purged;
  }
}

} // namespace ferry::store
