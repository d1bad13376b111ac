#pragma once

#include "actors/runtime/node_wiring.hpp"
#include "actors/sync/relay_connection.hpp"

namespace ferry {

/// What every relay connection of the node works with (sync servers and
/// the connections GRASP drives alike).
relay_connection_deps connection_deps(const node_wiring& wiring);

/// The SYNC subsystem: the sync manager with one relay connection per
/// remote, the pending-batch tracker and the health tracker. When one of
/// them fails too often, all restart together: connections keep their open
/// batches in the tracker and their backoff in the health tracker, and every
/// cursor is in RocksDB, so a fresh start resumes from the stored cursors
/// and repeats work rather than skip it.
child_spec sync_subsystem(const node_wiring& wiring, restart_policy policy);

} // namespace ferry
