#include "store/sync_store.hpp"

#include "messages/error.hpp"
#include "store/column_families.hpp"
#include "store/keys.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>

namespace ferry::store {

namespace {

/// Ids never contain control characters, so this cannot clash with an id.
std::string cursor_key(const std::string& id) {
  return id + "\x1f" + "cursor";
}

std::string era_key(const std::string& id) {
  return id + "\x1f" + "era";
}

/// The followed authors of `id`: this prefix, then 32 pubkey bytes each.
std::string authors_prefix(const std::string& id) {
  return id + "\x1f" + "author" + "\x1f";
}

caf::error storage_error(const rocksdb::Status& s) {
  return caf::make_error(ec::storage_failure, s.ToString());
}

caf::error corrupt(std::string_view family, std::string_view id,
                   const caf::error& why) {
  return caf::make_error(ec::storage_failure,
                         "corrupt " + std::string{family} + " record "
                           + std::string{id} + ": " + render(why));
}

/// Definitions change by operator action only, so each such write is synced:
/// a change the admin API confirmed must not vanish in a power cut.
rocksdb::WriteOptions synced() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

caf::error commit(event_store& store, rocksdb::WriteBatch& batch,
                  const rocksdb::WriteOptions& options) {
  auto s = store.db()->Write(options, &batch);
  return s.ok() ? caf::error{} : storage_error(s);
}

} // namespace

caf::error put_sync_server(event_store& store, const sync_server& server) {
  rocksdb::WriteBatch batch;
  batch.Put(store.handle(cf::sync_servers), server.id, to_json(server));
  return commit(store, batch, synced());
}

caf::error put_sync_server(event_store& store, const sync_server& server,
                           uint64_t era) {
  rocksdb::WriteBatch batch;
  batch.Put(store.handle(cf::sync_servers), server.id, to_json(server));
  std::string value;
  put_fixed64(value, era);
  batch.Put(store.handle(cf::sync_runtime), era_key(server.id), value);
  batch.Delete(store.handle(cf::sync_runtime), cursor_key(server.id));
  return commit(store, batch, synced());
}

caf::expected<uint64_t> get_sync_era(const event_store& store,
                                     const std::string& id) {
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions{},
                           store.handle(cf::sync_runtime), era_key(id), &value);
  if (s.IsNotFound())
    return uint64_t{0};
  if (!s.ok())
    return storage_error(s);
  if (value.size() != 8)
    return caf::make_error(ec::storage_failure, "corrupt sync era of " + id);
  std::string_view in{value};
  uint64_t era = 0;
  get_fixed64(in, era);
  return era;
}

caf::expected<std::optional<sync_server>>
get_sync_server(const event_store& store, const std::string& id) {
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions{},
                           store.handle(cf::sync_servers), id, &value);
  if (s.IsNotFound())
    return std::optional<sync_server>{};
  if (!s.ok())
    return storage_error(s);
  auto server = parse_sync_server(value);
  if (!server)
    return corrupt(cf_name(cf::sync_servers), id, server.error());
  return std::optional<sync_server>{std::move(*server)};
}

caf::expected<std::vector<sync_server>>
list_sync_servers(const event_store& store) {
  std::vector<sync_server> result;
  std::unique_ptr<rocksdb::Iterator> it{store.db()->NewIterator(
    rocksdb::ReadOptions{}, store.handle(cf::sync_servers))};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto server = parse_sync_server(it->value().ToStringView());
    if (!server)
      return corrupt(cf_name(cf::sync_servers), it->key().ToStringView(),
                     server.error());
    result.push_back(std::move(*server));
  }
  if (!it->status().ok())
    return storage_error(it->status());
  return result;
}

caf::error delete_sync_server(event_store& store, const std::string& id) {
  rocksdb::WriteBatch batch;
  batch.Delete(store.handle(cf::sync_servers), id);
  batch.Delete(store.handle(cf::sync_runtime), id);
  batch.Delete(store.handle(cf::sync_runtime), cursor_key(id));
  batch.Delete(store.handle(cf::sync_runtime), era_key(id));
  auto authors = authors_prefix(id);
  auto authors_end = authors;
  authors_end.back() += 1;
  batch.DeleteRange(store.handle(cf::sync_runtime), authors, authors_end);
  return commit(store, batch, synced());
}

caf::expected<sync_runtime_state> get_sync_runtime(const event_store& store,
                                                   const std::string& id) {
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions{},
                           store.handle(cf::sync_runtime), id, &value);
  if (s.IsNotFound())
    return sync_runtime_state{};
  if (!s.ok())
    return storage_error(s);
  auto state = parse_sync_runtime(value);
  if (!state)
    return corrupt(cf_name(cf::sync_runtime), id, state.error());
  return std::move(*state);
}

void put_sync_runtime(rocksdb::WriteBatch& batch, const event_store& store,
                      const std::string& id, const sync_runtime_state& state) {
  batch.Put(store.handle(cf::sync_runtime), id, to_json(state));
}

caf::error put_sync_runtime(event_store& store, const std::string& id,
                            const sync_runtime_state& state) {
  rocksdb::WriteBatch batch;
  put_sync_runtime(batch, store, id, state);
  // Written often and cheap to lose (a lost cursor repeats work, never
  // skips it): no fsync.
  return commit(store, batch, rocksdb::WriteOptions{});
}

caf::expected<std::optional<sync_cursor>>
get_sync_cursor(const event_store& store, const std::string& id) {
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions{},
                           store.handle(cf::sync_runtime), cursor_key(id),
                           &value);
  if (s.IsNotFound())
    return std::optional<sync_cursor>{};
  if (!s.ok())
    return storage_error(s);
  // A cursor written before eras were kept has none (era 0), as has the
  // definition it was made under.
  if (value.size() != 8 + 32 && value.size() != 8 + 32 + 8)
    return caf::make_error(ec::storage_failure,
                           "corrupt sync cursor of " + id);
  std::string_view in{value};
  uint64_t created_at = 0;
  get_fixed64(in, created_at);
  sync_cursor cursor;
  cursor.created_at = static_cast<int64_t>(created_at);
  std::copy_n(in.begin(), cursor.id.size(), cursor.id.begin());
  in.remove_prefix(cursor.id.size());
  if (!in.empty())
    get_fixed64(in, cursor.era);
  auto era = get_sync_era(store, id);
  if (!era)
    return era.error();
  if (*era != cursor.era)
    return std::optional<sync_cursor>{};
  return std::optional<sync_cursor>{cursor};
}

void put_sync_cursor(rocksdb::WriteBatch& batch, const event_store& store,
                     const std::string& id, const sync_cursor& cursor) {
  std::string value;
  put_fixed64(value, static_cast<uint64_t>(cursor.created_at));
  value.append(reinterpret_cast<const char*>(cursor.id.data()),
               cursor.id.size());
  put_fixed64(value, cursor.era);
  batch.Put(store.handle(cf::sync_runtime), cursor_key(id), value);
}

caf::error put_sync_cursor(event_store& store, const std::string& id,
                           const sync_cursor& cursor) {
  rocksdb::WriteBatch batch;
  put_sync_cursor(batch, store, id, cursor);
  return commit(store, batch, rocksdb::WriteOptions{});
}

caf::error put_sync_author(event_store& store, const std::string& id,
                           const nostr::bytes32& pubkey) {
  auto key = authors_prefix(id);
  key.append(reinterpret_cast<const char*>(pubkey.data()), pubkey.size());
  auto s = store.db()->Put(rocksdb::WriteOptions{},
                           store.handle(cf::sync_runtime), key, {});
  return s.ok() ? caf::error{} : storage_error(s);
}

caf::expected<std::vector<nostr::bytes32>>
list_sync_authors(const event_store& store, const std::string& id) {
  std::vector<nostr::bytes32> result;
  auto prefix = authors_prefix(id);
  std::unique_ptr<rocksdb::Iterator> it{store.db()->NewIterator(
    rocksdb::ReadOptions{}, store.handle(cf::sync_runtime))};
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    auto key = it->key();
    if (key.size() != prefix.size() + 32)
      return corrupt(cf_name(cf::sync_runtime), key.ToStringView(),
                     caf::make_error(ec::storage_failure,
                                     "expected a 32-byte pubkey"));
    nostr::bytes32 pubkey;
    std::copy_n(reinterpret_cast<const uint8_t*>(key.data()) + prefix.size(),
                32, pubkey.begin());
    result.push_back(pubkey);
  }
  if (!it->status().ok())
    return storage_error(it->status());
  return result;
}

} // namespace ferry::store
