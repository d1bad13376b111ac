#include "store/repo_sync_store.hpp"

#include "messages/error.hpp"
#include "store/column_families.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <memory>

namespace ferry::store {

namespace {

caf::error storage_error(const rocksdb::Status& s) {
  return caf::make_error(ec::storage_failure, s.ToString());
}

caf::error corrupt(cf family, std::string_view key, const caf::error& why) {
  return caf::make_error(ec::storage_failure,
                         "corrupt " + std::string{cf_name(family)} + " record "
                           + std::string{key} + ": " + render(why));
}

caf::error commit(event_store& store, rocksdb::WriteBatch& batch) {
  auto s = store.db()->Write(rocksdb::WriteOptions{}, &batch);
  return s.ok() ? caf::error{} : storage_error(s);
}

template <class Entry, class Parse>
caf::expected<std::optional<Entry>> get_one(const event_store& store,
                                            cf family, const std::string& key,
                                            Parse parse) {
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions{}, store.handle(family), key,
                           &value);
  if (s.IsNotFound())
    return std::optional<Entry>{};
  if (!s.ok())
    return storage_error(s);
  auto entry = parse(key, value);
  if (!entry)
    return corrupt(family, key, entry.error());
  return std::optional<Entry>{std::move(*entry)};
}

template <class Entry, class Parse>
caf::expected<std::vector<Entry>> list_all(const event_store& store, cf family,
                                           Parse parse) {
  std::vector<Entry> result;
  std::unique_ptr<rocksdb::Iterator> it{
    store.db()->NewIterator(rocksdb::ReadOptions{}, store.handle(family))};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto key = it->key().ToStringView();
    auto entry = parse(key, it->value().ToStringView());
    if (!entry)
      return corrupt(family, key, entry.error());
    result.push_back(std::move(*entry));
  }
  if (!it->status().ok())
    return storage_error(it->status());
  return result;
}

} // namespace

caf::expected<std::optional<grasp::repo_sync_entry>>
get_repo_sync(const event_store& store, const std::string& address) {
  return get_one<grasp::repo_sync_entry>(store, cf::repo_sync, address,
                                         grasp::parse_repo_sync);
}

caf::expected<std::vector<grasp::repo_sync_entry>>
list_repo_sync(const event_store& store) {
  return list_all<grasp::repo_sync_entry>(store, cf::repo_sync,
                                          grasp::parse_repo_sync);
}

caf::error write_repo_sync(event_store& store,
                           const std::vector<grasp::repo_sync_entry>& upserts,
                           const std::vector<std::string>& erasures) {
  rocksdb::WriteBatch batch;
  for (const auto& address : erasures)
    batch.Delete(store.handle(cf::repo_sync), address);
  for (const auto& entry : upserts)
    batch.Put(store.handle(cf::repo_sync), entry.address, grasp::to_json(entry));
  return commit(store, batch);
}

caf::expected<std::optional<grasp::relay_sync_entry>>
get_relay_sync(const event_store& store, const std::string& url) {
  return get_one<grasp::relay_sync_entry>(store, cf::relay_sync, url,
                                          grasp::parse_relay_sync);
}

caf::expected<std::vector<grasp::relay_sync_entry>>
list_relay_sync(const event_store& store) {
  return list_all<grasp::relay_sync_entry>(store, cf::relay_sync,
                                           grasp::parse_relay_sync);
}

caf::error put_relay_sync(event_store& store,
                          const grasp::relay_sync_entry& entry) {
  rocksdb::WriteBatch batch;
  batch.Put(store.handle(cf::relay_sync), entry.url, grasp::to_json(entry));
  return commit(store, batch);
}

caf::error erase_relay_sync(event_store& store, const std::string& url) {
  rocksdb::WriteBatch batch;
  batch.Delete(store.handle(cf::relay_sync), url);
  return commit(store, batch);
}

} // namespace ferry::store
