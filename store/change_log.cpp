#include "store/change_log.hpp"

#include "messages/error.hpp"
#include "store/column_families.hpp"
#include "store/keys.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstring>
#include <memory>
#include <vector>

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

caf::expected<change_sweep> sweep_changes(event_store& store, uint64_t after,
                                          size_t max, uint64_t keep) {
  change_sweep result;
  result.through = after;
  std::vector<uint64_t> seqs;
  std::vector<nostr::bytes32> ids;
  {
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(
      rocksdb::ReadOptions{}, store.handle(cf::changes)));
    for (it->Seek(key_of(after + 1)); it->Valid() && seqs.size() < max;
         it->Next()) {
      std::string_view key{it->key().data(), it->key().size()};
      uint64_t seq = 0;
      auto value = it->value();
      if (!get_fixed64(key, seq) || value.size() < nostr::bytes32{}.size())
        continue;
      seqs.push_back(seq);
      ids.emplace_back();
      std::memcpy(ids.back().data(), value.data(), ids.back().size());
    }
    if (!it->status().ok())
      return storage_error(it->status());
    result.at_end = !it->Valid();
  }
  result.examined = seqs.size();
  if (!seqs.empty())
    result.through = seqs.back();
  // The events' bloom filters say "not stored" without reading a block, and
  // most live events are never read: a Get per entry read every event's
  // block, the whole store once per sweep. The price: a dead entry whose id
  // the filter takes for present (~1%, until a compaction rewrites its
  // file) stays until a sweep finds it so.
  rocksdb::ReadOptions no_io;
  no_io.read_tier = rocksdb::kBlockCacheTier;
  std::string ignored;
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (seqs[i] == keep
        || store.db()->KeyMayExist(
          no_io, store.handle(cf::events),
          rocksdb::Slice{reinterpret_cast<const char*>(ids[i].data()),
                         ids[i].size()},
          &ignored))
      continue;
    batch.Delete(store.handle(cf::changes), key_of(seqs[i]));
    ++result.deleted;
  }
  if (result.deleted > 0)
    if (auto s = store.db()->Write(rocksdb::WriteOptions{}, &batch); !s.ok())
      return storage_error(s);
  return result;
}

caf::error backfill_change_log(event_store& store) {
  // The log is rebuilt from scratch rather than resumed. Before schema 2 no
  // writer appends to it (the writer starts only on a store this open has
  // migrated) and no up stream holds a cursor into it, so whatever it holds
  // is an interrupted backfill's: the chunks committed before a crash or a
  // full disk. Clearing them in the first chunk's commit makes the rebuild
  // exact whatever was left. A resume from the last entry would have to
  // find that entry's event again (the order is by_created's, not the
  // log's) and trust that nothing older was stored since; rebuilding costs
  // at most one more pass over by_created, once.
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(
    rocksdb::ReadOptions{}, store.handle(cf::changes)));
  rocksdb::WriteBatch batch;
  it->SeekToLast();
  // From the smallest key to just past the last one (the end is exclusive).
  if (it->Valid())
    batch.DeleteRange(store.handle(cf::changes), rocksdb::Slice{},
                      it->key().ToString() + '\0');
  if (!it->status().ok())
    return storage_error(it->status());
  // by_created keys start with the inverted created_at: the last key is the
  // oldest event, so walking backwards gives commit-like (oldest first) order.
  it.reset(store.db()->NewIterator(rocksdb::ReadOptions{},
                                   store.handle(cf::by_created)));
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
