#pragma once

#include "store/event_store.hpp"

#include <caf/error.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace rocksdb {
class WriteBatch;
} // namespace rocksdb

/// The change log in the `changes` family: one entry per stored event, in
/// commit order, with the source it came from. Up streams read it from a
/// persistent sequence number, so an event committed while a remote was
/// unreachable is still sent, whatever its created_at; the source lets a
/// stream skip what came from its own remote (echo suppression).
namespace ferry::store {

/// One entry of the change log.
struct change {
  uint64_t seq = 0;
  nostr::bytes32 id{};
  /// The ingest source ("client", "sync:ID", "import", ...); "" for events
  /// stored before the log existed.
  std::string source;
};

/// Adds entry `seq` to `batch` (the writer's commit of the event itself).
void append_change(rocksdb::WriteBatch& batch, const event_store& store,
                   uint64_t seq, const nostr::bytes32& id,
                   std::string_view source);

/// The highest sequence number in the log; 0 when it is empty.
uint64_t last_change_seq(const event_store& store);

/// Calls `sink` for the entries after `after`, in order, until it returns
/// false or `max` entries were delivered.
/// @returns the number of entries delivered.
size_t read_changes(const event_store& store, uint64_t after, size_t max,
                    const std::function<bool(const change&)>& sink);

/// What one step of a sweep of the log did.
struct change_sweep {
  /// The last entry looked at (`after` when there was none): the next step
  /// starts after it.
  uint64_t through = 0;
  /// Entries looked at, and those deleted.
  size_t examined = 0;
  size_t deleted = 0;
  /// No entry is left after `through`: the next sweep starts over.
  bool at_end = false;
};

/// Deletes the entries after `after` whose event is no longer stored (a
/// newer version replaced it, a deletion or its expiration removed it),
/// looking at at most `max` entries, in one commit. It reads the log and
/// the events' bloom filters, no event: an entry the filter cannot rule out
/// is kept (~1% of the dead ones, found by a later sweep once a compaction
/// has rewritten the filter). Without a sweep the log
/// grew by one entry per stored event forever; with it, it holds about one
/// per stored event. A dead entry is never needed: a reader that meets it
/// finds no event and skips it, and an event comes back only as a new
/// entry. Entry `keep` stays whatever it names: the log's last entry, from
/// which the writer numbers new ones (last_change_seq) when it starts.
caf::expected<change_sweep> sweep_changes(event_store& store, uint64_t after,
                                          size_t max, uint64_t keep);

/// Rebuilds the log from the `by_created` index, oldest first (schema 1 → 2
/// migration), replacing what an interrupted earlier run left in it.
caf::error backfill_change_log(event_store& store);

} // namespace ferry::store
