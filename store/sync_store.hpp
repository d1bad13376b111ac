#pragma once

#include "messages/sync.hpp"
#include "store/event_store.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <optional>
#include <string>
#include <vector>

namespace rocksdb {
class WriteBatch;
} // namespace rocksdb

/// Sync server definitions and their runtime state in the `sync_servers` and
/// `sync_runtime` families. Keys are the server id's bytes; values are JSON
/// text (the definition's canonical JSON, the runtime state's compact JSON),
/// so both stay readable with any RocksDB tool. Failures are
/// `ec::storage_failure` errors.
namespace ferry::store {

/// Creates or replaces a definition, keeping the era it has (and so its
/// cursors). Synced to disk: the admin API answers only after the change
/// would survive a power cut.
caf::error put_sync_server(event_store& store, const sync_server& server);

/// Creates or replaces a definition that syncs something else than the one
/// before it (a new one, or one `keeps_cursors` does not hold for), giving
/// it era `era`, which no earlier definition of its id had: its cursors
/// start over. A cursor is its server's only while the server has the era
/// the cursor was made under (get_sync_cursor): one that a connection of
/// the earlier definition, or of a deleted server of that id, still hands
/// the writer says nothing of this one, whenever it is committed. The
/// cursor stored so far goes in the same commit.
caf::error put_sync_server(event_store& store, const sync_server& server,
                           uint64_t era);

/// The era of `id`'s definition (0: none given: a definition stored before
/// eras were, or no definition; GRASP's relays have none).
caf::expected<uint64_t> get_sync_era(const event_store& store,
                                     const std::string& id);

/// The definition stored under `id`, or nullopt when there is none.
caf::expected<std::optional<sync_server>>
get_sync_server(const event_store& store, const std::string& id);

/// Every stored definition, ordered by id.
caf::expected<std::vector<sync_server>>
list_sync_servers(const event_store& store);

/// Deletes a definition, its era, its runtime state and its followed
/// authors in one commit; deleting an unknown id is not an error.
caf::error delete_sync_server(event_store& store, const std::string& id);

/// The runtime state of `id`; default-constructed when none is stored.
caf::expected<sync_runtime_state> get_sync_runtime(const event_store& store,
                                                   const std::string& id);

/// Adds the write of `id`'s runtime state to `batch`, so a cursor commits
/// together with the events it covers (pass it to `event_store::write` as
/// the `extra` callback).
void put_sync_runtime(rocksdb::WriteBatch& batch, const event_store& store,
                      const std::string& id, const sync_runtime_state& state);

/// Writes `id`'s runtime state on its own (counters, timestamps, errors).
caf::error put_sync_runtime(event_store& store, const std::string& id,
                            const sync_runtime_state& state);

/// The down cursor of a server lives under its own key, written only by the
/// writer, and only once the events it covers are committed, so a crash can
/// repeat work but never skip it; the runtime record next to it belongs to the
/// server's connection. `nullopt` when the server never synced under the era
/// it has now (a cursor of an earlier definition is none of this one).
caf::expected<std::optional<sync_cursor>>
get_sync_cursor(const event_store& store, const std::string& id);

/// The authors whose NIP-09 deletions `id`'s connection follows
/// (actors/sync/relay_deletions.hpp), under `id` 0x1f "author" 0x1f pubkey in
/// `sync_runtime`. Adding one is not synced: it is written before the cursor
/// can pass its event, and the WAL keeps writes in order, so a recovered
/// cursor past that event comes with it.
caf::error put_sync_author(event_store& store, const std::string& id,
                           const nostr::bytes32& pubkey);

/// Every author `id` follows, in byte order.
caf::expected<std::vector<nostr::bytes32>>
list_sync_authors(const event_store& store, const std::string& id);

/// Adds the cursor of `id` to `batch`, with the era it was made under.
void put_sync_cursor(rocksdb::WriteBatch& batch, const event_store& store,
                     const std::string& id, const sync_cursor& cursor);

/// Writes the cursor of `id` on its own, for a cursor that covers no new
/// events here: one another cluster member claimed and this node confirmed
/// (actors/cluster/cluster_manager.cpp). Not synced: a lost cursor repeats
/// work, never skips it.
caf::error put_sync_cursor(event_store& store, const std::string& id,
                           const sync_cursor& cursor);

} // namespace ferry::store
