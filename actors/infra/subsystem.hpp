#pragma once

#include "actors/runtime/node_wiring.hpp"

namespace ferry {

/// The INFRA subsystem: the relay registry (hosted relay records and their
/// activity log, in RocksDB) and the infra reconciler that pushes them to
/// the management API. When one fails too often both restart: the
/// reconciler rebuilds its queue from the registry.
child_spec infra_subsystem(const node_wiring& wiring, restart_policy policy);

} // namespace ferry
