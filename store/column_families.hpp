#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ferry::store {

/// The RocksDB column families of the store, in the order they are opened.
///
/// Caution: never reorder or remove an entry; only append. The numeric value
/// indexes the handle table, and the name table below must stay parallel.
/// Every family is opened (and created when missing) on every start.
enum class cf : uint32_t {
  /// RocksDB's mandatory family; unused by Ferry.
  default_ = 0,
  /// id(32) → header(created_at 8, kind 4, pubkey 32, expiration 8) · JSON.
  events,
  /// ~created_at(8) · id → ∅
  by_created,
  /// kind(4) · ~created_at · id → ∅
  by_kind,
  /// pubkey(32) · ~created_at · id → ∅
  by_author,
  /// pubkey(32) · kind(4) · ~created_at · id → ∅
  by_author_kind,
  /// letter(1) · value length(4) · value · ~created_at · id → ∅
  by_tag,
  /// expiration(8) · id → ∅
  by_expiration,
  /// kind(4) · pubkey(32) · d → created_at(8) · id of the newest version
  /// the address has held, kept when that version is deleted or expires
  /// (only the writer reads it; store/event_store_write.cpp).
  replaceable,
  /// NIP-09 records that block re-publication (see store/keys.hpp).
  deleted,
  repo_sync,
  relay_sync,
  sync_servers,
  sync_runtime,
  hosted_relays,
  activity,
  peers,
  /// "schema_version" → decimal text, node identity.
  meta,
  /// seq(8) → id(32) · source: every stored event in commit order, the
  /// change log that up streams read from their persistent cursor.
  changes,
  /// Events refused by validation or policy, per source (see
  /// store/refused_store.hpp).
  refused,
};

/// Number of column families.
inline constexpr size_t cf_count = static_cast<size_t>(cf::refused) + 1;

/// RocksDB names of the families, indexed by `cf`. The default family is the
/// literal "default": reading `rocksdb::kDefaultColumnFamilyName` during static
/// initialization may see an unconstructed string (TOOLCHAIN.md 2d).
inline constexpr std::array<std::string_view, cf_count> cf_names = {
  "default",       "events",      "by_created",   "by_kind",
  "by_author",     "by_author_kind", "by_tag",    "by_expiration",
  "replaceable",   "deleted",     "repo_sync",    "relay_sync",
  "sync_servers",  "sync_runtime", "hosted_relays", "activity",
  "peers",         "meta",        "changes",     "refused",
};

/// The RocksDB name of `family`.
constexpr std::string_view cf_name(cf family) {
  return cf_names[static_cast<size_t>(family)];
}

} // namespace ferry::store
