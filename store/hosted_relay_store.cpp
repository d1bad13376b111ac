#include "store/hosted_relay_store.hpp"

#include "messages/error.hpp"
#include "store/column_families.hpp"
#include "store/keys.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <deque>
#include <memory>

namespace ferry::store {

namespace {

caf::error storage_error(const rocksdb::Status& s) {
  return caf::make_error(ec::storage_failure, s.ToString());
}

caf::error corrupt(std::string_view what, std::string_view key,
                   const caf::error& why) {
  return caf::make_error(ec::storage_failure,
                         "corrupt " + std::string{what} + " record "
                           + std::string{key} + ": " + render(why));
}

/// Ids never contain a zero byte, so `id · 0x00` is a prefix of exactly
/// that relay's entries.
std::string log_prefix(const std::string& id) {
  std::string prefix = id;
  prefix += '\0';
  return prefix;
}

std::string activity_key(const std::string& id, uint64_t seq) {
  auto key = log_prefix(id);
  put_fixed64(key, seq);
  return key;
}

/// The first key after every key that starts with `prefix` (the prefix ends
/// in 0x00, so bumping that byte is enough).
std::string prefix_end(std::string prefix) {
  prefix.back() = '\x01';
  return prefix;
}

/// `meta` keys of the relays the management API has yet to delete. Ids
/// never contain a '/', so the prefix bounds exactly these keys.
constexpr std::string_view deletion_prefix = "relay_delete/";
constexpr std::string_view deletion_end = "relay_delete0";

std::string deletion_key(const std::string& id) {
  return std::string{deletion_prefix} + id;
}

rocksdb::WriteOptions synced() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

/// Walks the log of `id` in order; `visit` returns false to stop.
template <class Visit>
caf::error walk_log(const event_store& store, const std::string& id,
                    Visit visit) {
  auto prefix = log_prefix(id);
  auto end = prefix_end(prefix);
  rocksdb::Slice upper{end};
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it{
    store.db()->NewIterator(options, store.handle(cf::activity))};
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto entry = parse_activity_entry(it->value().ToStringView());
    if (!entry)
      return corrupt("activity", id, entry.error());
    if (!visit(std::move(*entry)))
      break;
  }
  if (!it->status().ok())
    return storage_error(it->status());
  return {};
}

} // namespace

caf::expected<uint64_t> last_activity_seq(const event_store& store) {
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions{}, store.handle(cf::meta),
                           activity_seq_key, &value);
  if (s.IsNotFound())
    return uint64_t{0};
  if (!s.ok())
    return storage_error(s);
  std::string_view in{value};
  uint64_t seq = 0;
  if (value.size() != 8 || !get_fixed64(in, seq))
    return caf::make_error(ec::storage_failure,
                           "corrupt meta record activity_seq");
  return seq;
}

caf::error record_activity(event_store& store, const hosted_relay& relay,
                           const activity_entry& entry) {
  rocksdb::WriteBatch batch;
  batch.Put(store.handle(cf::hosted_relays), relay.id, to_json(relay));
  batch.Put(store.handle(cf::activity), activity_key(relay.id, entry.seq),
            to_json(entry));
  std::string seq;
  put_fixed64(seq, entry.seq);
  batch.Put(store.handle(cf::meta), activity_seq_key, seq);
  batch.Delete(store.handle(cf::meta), deletion_key(relay.id));
  auto s = store.db()->Write(synced(), &batch);
  return s.ok() ? caf::error{} : storage_error(s);
}

caf::expected<std::optional<hosted_relay>>
get_hosted_relay(const event_store& store, const std::string& id) {
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions{},
                           store.handle(cf::hosted_relays), id, &value);
  if (s.IsNotFound())
    return std::optional<hosted_relay>{};
  if (!s.ok())
    return storage_error(s);
  auto relay = parse_stored_hosted_relay(value);
  if (!relay)
    return corrupt("hosted relay", id, relay.error());
  return std::optional<hosted_relay>{std::move(*relay)};
}

caf::expected<std::vector<hosted_relay>>
list_hosted_relays(const event_store& store) {
  std::vector<hosted_relay> result;
  std::unique_ptr<rocksdb::Iterator> it{store.db()->NewIterator(
    rocksdb::ReadOptions{}, store.handle(cf::hosted_relays))};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto relay = parse_stored_hosted_relay(it->value().ToStringView());
    if (!relay)
      return corrupt("hosted relay", it->key().ToStringView(), relay.error());
    result.push_back(std::move(*relay));
  }
  if (!it->status().ok())
    return storage_error(it->status());
  return result;
}

caf::expected<std::vector<activity_entry>>
list_activity(const event_store& store, const std::string& id, size_t limit) {
  // A bounded window of the newest entries: logs only grow.
  std::deque<activity_entry> window;
  auto err = walk_log(store, id, [&](activity_entry entry) {
    window.push_back(std::move(entry));
    if (window.size() > limit)
      window.pop_front();
    return true;
  });
  if (err)
    return err;
  return std::vector<activity_entry>(std::make_move_iterator(window.begin()),
                                     std::make_move_iterator(window.end()));
}

caf::expected<sync_history> read_sync_history(const event_store& store,
                                              const std::string& id) {
  sync_history result;
  auto err = walk_log(store, id, [&](activity_entry entry) {
    if (entry.type == activity_type::fail_relay_sync) {
      ++result.trailing_failures;
      return true;
    }
    result.trailing_failures = 0;
    if (entry.type == activity_type::complete_relay_sync)
      result.ever_synced = true;
    return true;
  });
  if (err)
    return err;
  return result;
}

caf::error delete_hosted_relay(event_store& store, const std::string& id) {
  rocksdb::WriteBatch batch;
  batch.Delete(store.handle(cf::hosted_relays), id);
  auto prefix = log_prefix(id);
  batch.DeleteRange(store.handle(cf::activity), prefix, prefix_end(prefix));
  batch.Put(store.handle(cf::meta), deletion_key(id), std::string{});
  auto s = store.db()->Write(synced(), &batch);
  return s.ok() ? caf::error{} : storage_error(s);
}

caf::expected<std::vector<std::string>>
pending_relay_deletions(const event_store& store) {
  std::vector<std::string> result;
  rocksdb::ReadOptions options;
  rocksdb::Slice end{deletion_end.data(), deletion_end.size()};
  options.iterate_upper_bound = &end;
  std::unique_ptr<rocksdb::Iterator> it{
    store.db()->NewIterator(options, store.handle(cf::meta))};
  rocksdb::Slice start{deletion_prefix.data(), deletion_prefix.size()};
  for (it->Seek(start); it->Valid(); it->Next())
    result.emplace_back(it->key().ToStringView().substr(deletion_prefix.size()));
  if (!it->status().ok())
    return storage_error(it->status());
  return result;
}

caf::error forget_relay_deletion(event_store& store, const std::string& id) {
  auto s = store.db()->Delete(synced(), store.handle(cf::meta),
                              deletion_key(id));
  return s.ok() ? caf::error{} : storage_error(s);
}

} // namespace ferry::store
