#pragma once

#include "messages/federation.hpp"
#include "store/event_store.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <optional>
#include <string>
#include <vector>

/// Federation links in the `peers` family: the peer's name → its record as
/// compact JSON (`to_json(const peer_record&)`), readable with any RocksDB
/// tool. The sync cursor of an active peer is its sync server's
/// (`federation.NAME` in `sync_runtime`), so pausing keeps it. Failures are
/// `ec::storage_failure` errors.
namespace ferry::store {

/// Creates or replaces the record of `record.def.name`. Synced to disk: a
/// link the API confirmed, or a notification owed to a peer, must survive a
/// power cut.
caf::error put_peer(event_store& store, const peer_record& record);

/// The record of `name`, or nullopt when there is none.
caf::expected<std::optional<peer_record>> get_peer(const event_store& store,
                                                   const std::string& name);

/// Every record, ordered by name (removed ones still owing a notice too).
caf::expected<std::vector<peer_record>> list_peers(const event_store& store);

/// Forgets `name`; forgetting an unknown name is not an error.
caf::error delete_peer(event_store& store, const std::string& name);

} // namespace ferry::store
