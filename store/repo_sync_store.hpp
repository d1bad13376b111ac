#pragma once

#include "messages/grasp.hpp"
#include "store/event_store.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <optional>
#include <string>
#include <vector>

/// The GRASP-02 indexes: `repo_sync` (repository address → wanted relays and
/// root ids) and `relay_sync` (relay URL → what is confirmed there and when
/// it was connected). Values are JSON text, readable with any RocksDB tool.
/// Both are rebuilt or re-confirmed from the event store and the remote
/// relays when lost, so writes are not fsynced. Failures are
/// `ec::storage_failure` errors.
namespace ferry::store {

/// The `repo_sync` record of `address`, or nullopt when there is none.
caf::expected<std::optional<grasp::repo_sync_entry>>
get_repo_sync(const event_store& store, const std::string& address);

/// Every `repo_sync` record, ordered by address.
caf::expected<std::vector<grasp::repo_sync_entry>>
list_repo_sync(const event_store& store);

/// Writes `upserts` and erases `erasures` in one commit.
caf::error write_repo_sync(event_store& store,
                           const std::vector<grasp::repo_sync_entry>& upserts,
                           const std::vector<std::string>& erasures);

/// The `relay_sync` record of `url`, or nullopt when there is none.
caf::expected<std::optional<grasp::relay_sync_entry>>
get_relay_sync(const event_store& store, const std::string& url);

/// Every `relay_sync` record, ordered by URL.
caf::expected<std::vector<grasp::relay_sync_entry>>
list_relay_sync(const event_store& store);

/// Creates or replaces one `relay_sync` record.
caf::error put_relay_sync(event_store& store,
                          const grasp::relay_sync_entry& entry);

/// Erases one `relay_sync` record; erasing an unknown URL is not an error.
caf::error erase_relay_sync(event_store& store, const std::string& url);

} // namespace ferry::store
