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

/// Rebuilds the log from the `by_created` index, oldest first (schema 1 → 2
/// migration), replacing what an interrupted earlier run left in it.
caf::error backfill_change_log(event_store& store);

} // namespace ferry::store
