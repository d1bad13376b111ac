#pragma once

#include "messages/hosted_relay.hpp"
#include "store/event_store.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <optional>
#include <string>
#include <vector>

/// Hosted relays and their activity logs in the `hosted_relays` and
/// `activity` families. A relay is stored under its id as the JSON of
/// `to_json(const hosted_relay&)`; an activity entry under
/// `id · 0x00 · seq (8 bytes, big-endian)`, so one relay's log is one prefix
/// scan in order. The last sequence number handed out lives in `meta` and is
/// written in the same commit as the entry, so numbers never repeat across
/// restarts. Failures are `ec::storage_failure` errors.
namespace ferry::store {

/// The key of `meta` that holds the last activity sequence number.
inline constexpr std::string_view activity_seq_key = "activity_seq";

/// The last sequence number handed out (0: none yet).
caf::expected<uint64_t> last_activity_seq(const event_store& store);

/// Writes `relay` and appends `entry` to its log in one synced commit,
/// together with `entry.seq` as the last sequence number: the admin API and
/// the reconciler answer only after the change would survive a power cut.
caf::error record_activity(event_store& store, const hosted_relay& relay,
                           const activity_entry& entry);

/// The relay stored under `id`, or nullopt when there is none.
caf::expected<std::optional<hosted_relay>>
get_hosted_relay(const event_store& store, const std::string& id);

/// Every stored relay, ordered by id.
caf::expected<std::vector<hosted_relay>>
list_hosted_relays(const event_store& store);

/// The activity log of `id`, oldest first; at most the last `limit` entries.
caf::expected<std::vector<activity_entry>>
list_activity(const event_store& store, const std::string& id,
              size_t limit = SIZE_MAX);

/// What the log of `id` says about syncing it.
struct sync_history {
  /// Consecutive `fail_relay_sync` entries at the end of the log.
  uint32_t trailing_failures = 0;
  /// Some `complete_relay_sync` is in the log.
  bool ever_synced = false;
};

/// Reads the log of `id` once to fill a `sync_history`.
caf::expected<sync_history> read_sync_history(const event_store& store,
                                              const std::string& id);

/// Deletes a relay and its whole log in one synced commit; deleting an
/// unknown id is not an error. The same commit records that the management
/// API has yet to delete it (see `pending_relay_deletions`).
caf::error delete_hosted_relay(event_store& store, const std::string& id);

/// Relays deleted here that the management API may still have, ordered by
/// id: their DELETE survives a restart and an ownership move. Writing a
/// relay (`record_activity`) withdraws its id: it exists again.
caf::expected<std::vector<std::string>>
pending_relay_deletions(const event_store& store);

/// The management API deleted `id` (or never had it).
caf::error forget_relay_deletion(event_store& store, const std::string& id);

} // namespace ferry::store
