#include "store/change_log.hpp"

#include "messages/error.hpp"
#include "store/column_families.hpp"
#include "store/keys.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstring>
#include <memory>

namespace ferry::store {

namespace {

std::string key_of(uint64_t seq) {
  std::string key;
  put_fixed64(key, seq);
  return key;
}

caf::error storage_error(const rocksdb::Status& s) {
  return caf::make_error(ec::storage_failure, s.ToString());
}

} // namespace

void append_change(rocksdb::WriteBatch& batch, const event_store& store,
                   uint64_t seq, const nostr::bytes32& id,
                   std::string_view source) {
  std::string value;
  value.reserve(id.size() + source.size());
  value.append(reinterpret_cast<const char*>(id.data()), id.size());
  value.append(source);
  batch.Put(store.handle(cf::changes), key_of(seq), value);
}

uint64_t last_change_seq(const event_store& store) {
  std::unique_ptr<rocksdb::Iterator> it(
    store.db()->NewIterator(rocksdb::ReadOptions{}, store.handle(cf::changes)));
  it->SeekToLast();
  if (!it->Valid())
    return 0;
  std::string_view key{it->key().data(), it->key().size()};
  uint64_t seq = 0;
  return get_fixed64(key, seq) ? seq : 0;
}

size_t read_changes(const event_store& store, uint64_t after, size_t max,
                    const std::function<bool(const change&)>& sink) {
  if (max == 0 || after == UINT64_MAX)
    return 0;
  std::unique_ptr<rocksdb::Iterator> it(
    store.db()->NewIterator(rocksdb::ReadOptions{}, store.handle(cf::changes)));
  size_t delivered = 0;
  change entry;
  for (it->Seek(key_of(after + 1)); it->Valid() && delivered < max; it->Next()) {
    std::string_view key{it->key().data(), it->key().size()};
    auto value = it->value();
    // A malformed entry cannot come from this code; skip rather than stop
    // every stream behind it.
    if (!get_fixed64(key, entry.seq) || value.size() < entry.id.size())
      continue;
    std::memcpy(entry.id.data(), value.data(), entry.id.size());
    entry.source.assign(value.data() + entry.id.size(),
                        value.size() - entry.id.size());
    ++delivered;
    if (!sink(entry))
      break;
  }
  return delivered;
}

caf::error backfill_change_log(event_store& store) {
  if (last_change_seq(store) > 0)
    return {};
  // by_created keys start with the inverted created_at: the last key is the
  // oldest event, so walking backwards gives commit-like (oldest first) order.
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(
    rocksdb::ReadOptions{}, store.handle(cf::by_created)));
  rocksdb::WriteBatch batch;
  uint64_t seq = 0;
  auto flush = [&]() -> caf::error {
    auto s = store.db()->Write(rocksdb::WriteOptions{}, &batch);
    batch.Clear();
    return s.ok() ? caf::error{} : storage_error(s);
  };
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    auto key = it->key();
    if (key.size() != suffix_size)
      continue;
    nostr::bytes32 id;
    std::memcpy(id.data(), key.data() + 8, id.size());
    append_change(batch, store, ++seq, id, "");
    if (seq % 10000 == 0)
      if (auto err = flush())
        return err;
  }
  if (!it->status().ok())
    return storage_error(it->status());
  return flush();
}

} // namespace ferry::store
