#include "store/refused_store.hpp"

#include "messages/error.hpp"
#include "store/column_families.hpp"

#include <boost/json.hpp>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>

namespace ferry::store {

namespace {

void put_u64(std::string& out, uint64_t x) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((x >> shift) & 0xff));
}

uint64_t get_u64(std::string_view in) {
  uint64_t x = 0;
  for (size_t i = 0; i < 8; ++i)
    x = (x << 8) | static_cast<uint8_t>(in[i]);
  return x;
}

/// source length (2) · source · id (32)
void put_source_id(std::string& out, std::string_view source,
                   const nostr::bytes32& id) {
  auto n = std::min<size_t>(source.size(), 0xffff);
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(source.substr(0, n));
  out.append(reinterpret_cast<const char*>(id.data()), id.size());
}

/// Reads what `put_source_id` wrote; false when `in` is too short.
bool get_source_id(std::string_view in, std::string& source,
                   nostr::bytes32& id) {
  if (in.size() < 2)
    return false;
  size_t n = (static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1]);
  if (in.size() != 2 + n + id.size())
    return false;
  source = std::string{in.substr(2, n)};
  std::copy(in.begin() + 2 + n, in.end(), id.begin());
  return true;
}

std::string entry_key(std::string_view source, const nostr::bytes32& id) {
  std::string key = "r";
  put_source_id(key, source, id);
  return key;
}

/// What the keys of `source`'s entries start with (its length first, so
/// "sync:a" is no prefix of "sync:ab").
std::string entries_of(std::string_view source) {
  auto key = entry_key(source, nostr::bytes32{});
  key.resize(key.size() - nostr::bytes32{}.size());
  return key;
}

std::string age_key(int64_t at, std::string_view source,
                    const nostr::bytes32& id) {
  std::string key = "t";
  put_u64(key, static_cast<uint64_t>(at));
  put_source_id(key, source, id);
  return key;
}

caf::error storage_error(const rocksdb::Status& s) {
  return caf::make_error(ec::storage_failure, s.ToString());
}

/// Visits the age index, oldest first (or newest first), until `visit`
/// returns false. `visit(at, source, id, key)`.
template <class Visit>
void walk_ages(const event_store& store, bool newest_first, Visit visit) {
  std::unique_ptr<rocksdb::Iterator> it{
    store.db()->NewIterator(rocksdb::ReadOptions{}, store.handle(cf::refused))};
  if (newest_first)
    it->SeekForPrev("u");
  else
    it->Seek("t");
  for (; it->Valid(); newest_first ? it->Prev() : it->Next()) {
    auto key = it->key().ToStringView();
    if (key.empty() || key[0] != 't' || key.size() < 9)
      break;
    std::string source;
    nostr::bytes32 id;
    if (!get_source_id(key.substr(9), source, id))
      continue;
    if (!visit(static_cast<int64_t>(get_u64(key.substr(1))), source, id, key))
      break;
  }
}

/// Where the fingerprint of the policy in force is kept.
constexpr std::string_view policy_key = "p";

/// Where the fingerprint of one source's own rules is kept.
std::string source_policy_key(std::string_view source) {
  std::string key = "q";
  key.append(source);
  return key;
}

/// Adds to `batch` the forgetting of every entry whose key starts with
/// `prefix` but those of `invalid:` events, which no policy change makes
/// valid. @returns how many it forgets.
size_t forget_policy_refusals(const event_store& store,
                              rocksdb::WriteBatch& batch,
                              std::string_view prefix) {
  auto* family = store.handle(cf::refused);
  std::unique_ptr<rocksdb::Iterator> it{
    store.db()->NewIterator(rocksdb::ReadOptions{}, family)};
  rocksdb::Slice start{prefix.data(), prefix.size()};
  size_t forgotten = 0;
  for (it->Seek(start); it->Valid() && it->key().starts_with(start);
       it->Next()) {
    auto value = it->value().ToStringView();
    std::string source;
    nostr::bytes32 id;
    if (value.size() < 8 || value.substr(8).rfind("invalid:", 0) == 0
        || !get_source_id(it->key().ToStringView().substr(1), source, id))
      continue;
    batch.Delete(family, it->key());
    batch.Delete(family,
                 age_key(static_cast<int64_t>(get_u64(value)), source, id));
    ++forgotten;
  }
  return forgotten;
}

/// Records `policy` under `key`; when another one was recorded there,
/// forgets the policy refusals among the entries starting with `prefix`.
caf::expected<size_t> follow(event_store& store, std::string_view key,
                             std::string_view policy, std::string_view prefix) {
  auto* family = store.handle(cf::refused);
  rocksdb::Slice at{key.data(), key.size()};
  std::string followed;
  auto s = store.db()->Get(rocksdb::ReadOptions{}, family, at, &followed);
  if (!s.ok() && !s.IsNotFound())
    return storage_error(s);
  if (s.ok() && followed == policy)
    return size_t{0};
  rocksdb::WriteBatch batch;
  size_t forgotten = s.ok() ? forget_policy_refusals(store, batch, prefix) : 0;
  batch.Put(family, at, rocksdb::Slice{policy.data(), policy.size()});
  if (auto w = store.db()->Write(rocksdb::WriteOptions{}, &batch); !w.ok())
    return storage_error(w);
  return forgotten;
}

} // namespace

caf::error remember_refused(event_store& store, std::string_view source,
                            const nostr::bytes32& id, int64_t at,
                            std::string_view reason) {
  auto key = entry_key(source, id);
  auto* family = store.handle(cf::refused);
  rocksdb::WriteBatch batch;
  // A second refusal moves the entry to its new age.
  std::string old;
  if (store.db()->Get(rocksdb::ReadOptions{}, family, key, &old).ok()
      && old.size() >= 8)
    batch.Delete(family, age_key(static_cast<int64_t>(get_u64(old)), source, id));
  std::string value;
  put_u64(value, static_cast<uint64_t>(at));
  value.append(reason);
  batch.Put(family, key, value);
  batch.Put(family, age_key(at, source, id), rocksdb::Slice{});
  auto s = store.db()->Write(rocksdb::WriteOptions{}, &batch);
  return s.ok() ? caf::error{} : storage_error(s);
}

std::optional<refused_entry> find_refused(const event_store& store,
                                          std::string_view source,
                                          const nostr::bytes32& id) {
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions{}, store.handle(cf::refused),
                           entry_key(source, id), &value);
  if (!s.ok() || value.size() < 8)
    return std::nullopt;
  refused_entry result;
  result.at = static_cast<int64_t>(get_u64(value));
  result.source = std::string{source};
  result.id = id;
  result.reason = value.substr(8);
  return result;
}

size_t drop_refused(const event_store& store, std::string_view source,
                    std::vector<nostr::bytes32>& ids) {
  auto refused = std::remove_if(ids.begin(), ids.end(), [&](const auto& id) {
    return find_refused(store, source, id).has_value();
  });
  auto dropped = static_cast<size_t>(ids.end() - refused);
  ids.erase(refused, ids.end());
  return dropped;
}

std::vector<refused_entry> latest_refused(const event_store& store,
                                          std::string_view source, size_t n) {
  std::vector<refused_entry> result;
  if (n == 0)
    return result;
  walk_ages(store, true,
            [&](int64_t, const std::string& from, const nostr::bytes32& id,
                std::string_view) {
              if (!source.empty() && from != source)
                return true;
              // The entry holds the reason; the age key only points at it.
              if (auto entry = find_refused(store, from, id))
                result.push_back(std::move(*entry));
              return result.size() < n;
            });
  return result;
}

std::string refused_json(const event_store& store, std::string_view source,
                         size_t n) {
  boost::json::array out;
  for (auto& entry : latest_refused(store, source, n))
    out.push_back(boost::json::object{{"source", entry.source},
                                      {"id", nostr::to_hex(entry.id)},
                                      {"at", entry.at},
                                      {"reason", entry.reason}});
  return boost::json::serialize(out);
}

caf::expected<size_t> prune_refused(event_store& store, int64_t now,
                                    std::chrono::seconds ttl,
                                    size_t max_entries) {
  size_t total = 0;
  walk_ages(store, false,
            [&](int64_t, const std::string&, const nostr::bytes32&,
                std::string_view) {
              ++total;
              return true;
            });
  auto* family = store.handle(cf::refused);
  rocksdb::WriteBatch batch;
  size_t forgotten = 0;
  walk_ages(store, false,
            [&](int64_t at, const std::string& source, const nostr::bytes32& id,
                std::string_view key) {
              auto expired = now - at > ttl.count();
              auto over = total - forgotten > max_entries;
              if (!expired && !over)
                return false;
              batch.Delete(family, rocksdb::Slice{key.data(), key.size()});
              batch.Delete(family, entry_key(source, id));
              ++forgotten;
              return true;
            });
  if (forgotten == 0)
    return size_t{0};
  auto s = store.db()->Write(rocksdb::WriteOptions{}, &batch);
  if (!s.ok())
    return storage_error(s);
  return forgotten;
}

caf::expected<size_t> follow_policy(event_store& store,
                                    std::string_view policy) {
  return follow(store, policy_key, policy, "r");
}

caf::expected<size_t> follow_source_policy(event_store& store,
                                           std::string_view source,
                                           std::string_view rules) {
  return follow(store, source_policy_key(source), rules, entries_of(source));
}

} // namespace ferry::store
