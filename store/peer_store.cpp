#include "store/peer_store.hpp"

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

caf::error corrupt(std::string_view name, const caf::error& why) {
  return caf::make_error(ec::storage_failure,
                         "corrupt peers record " + std::string{name} + ": "
                           + render(why));
}

rocksdb::WriteOptions synced() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

} // namespace

caf::error put_peer(event_store& store, const peer_record& record) {
  auto s = store.db()->Put(synced(), store.handle(cf::peers), record.def.name,
                           to_json(record));
  return s.ok() ? caf::error{} : storage_error(s);
}

caf::expected<std::optional<peer_record>> get_peer(const event_store& store,
                                                   const std::string& name) {
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions{}, store.handle(cf::peers),
                           name, &value);
  if (s.IsNotFound())
    return std::optional<peer_record>{};
  if (!s.ok())
    return storage_error(s);
  auto record = parse_peer_record(value);
  if (!record)
    return corrupt(name, record.error());
  return std::optional<peer_record>{std::move(*record)};
}

caf::expected<std::vector<peer_record>> list_peers(const event_store& store) {
  std::vector<peer_record> result;
  std::unique_ptr<rocksdb::Iterator> it{store.db()->NewIterator(
    rocksdb::ReadOptions{}, store.handle(cf::peers))};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto record = parse_peer_record(it->value().ToStringView());
    if (!record)
      return corrupt(it->key().ToStringView(), record.error());
    result.push_back(std::move(*record));
  }
  if (!it->status().ok())
    return storage_error(it->status());
  return result;
}

caf::error delete_peer(event_store& store, const std::string& name) {
  auto s = store.db()->Delete(synced(), store.handle(cf::peers), name);
  return s.ok() ? caf::error{} : storage_error(s);
}

} // namespace ferry::store
