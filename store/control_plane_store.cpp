#include "store/control_plane_store.hpp"

#include "messages/cluster/cursor_claim.hpp"
#include "messages/error.hpp"
#include "store/column_families.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>
#include <string_view>

namespace ferry::store {

namespace {

constexpr std::string_view key_prefix = "control_plane/";

caf::error storage_error(const rocksdb::Status& s) {
  return caf::make_error(ec::storage_failure, s.ToString());
}

std::string key_of(const cluster::control_record& r) {
  return std::string{key_prefix} + r.kind + "/" + r.id;
}

} // namespace

caf::error put_control_records(event_store& store,
                               const std::vector<cluster::control_record>& records) {
  if (records.empty())
    return {};
  rocksdb::WriteBatch batch;
  for (auto& r : records)
    batch.Put(store.handle(cf::meta), key_of(r), cluster::to_json({r}));
  rocksdb::WriteOptions options;
  // A version this node acknowledged to its peers must survive a power cut.
  // Cursor claims need not: one moves about every heartbeat, the member
  // makes it anew from its stored cursor, and the others trust a claim only
  // once confirmed (cursor_claim.hpp), so losing the latest few to a power
  // cut costs their freshness, not an event; and an fsync every heartbeat
  // on the manager's scheduler thread would not be free.
  options.sync = std::any_of(records.begin(), records.end(), [](auto& r) {
    return r.kind != cluster::sync_cursor_kind;
  });
  auto s = store.db()->Write(options, &batch);
  return s.ok() ? caf::error{} : storage_error(s);
}

caf::expected<std::vector<cluster::control_record>>
list_control_records(const event_store& store) {
  std::vector<cluster::control_record> result;
  std::unique_ptr<rocksdb::Iterator> it{store.db()->NewIterator(
    rocksdb::ReadOptions{}, store.handle(cf::meta))};
  for (it->Seek(rocksdb::Slice{key_prefix.data(), key_prefix.size()});
       it->Valid() && it->key().starts_with(
         rocksdb::Slice{key_prefix.data(), key_prefix.size()});
       it->Next()) {
    auto records = cluster::parse_control_records(it->value().ToStringView());
    if (!records || records->size() != 1)
      return caf::make_error(ec::storage_failure,
                             "corrupt control-plane record "
                               + it->key().ToString() + ": "
                               + (records ? std::string{"not one record"}
                                          : render(records.error())));
    result.push_back(std::move(records->front()));
  }
  if (!it->status().ok())
    return storage_error(it->status());
  return result;
}

} // namespace ferry::store
