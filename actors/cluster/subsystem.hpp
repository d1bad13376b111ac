#pragma once

#include "actors/runtime/node_wiring.hpp"

namespace ferry {

/// The CLUSTER subsystem (only when `cluster.enabled`): the cluster gate
/// published on the cluster port, the membership (the view of the members)
/// and the cluster manager with one link per other member. When one of them
/// fails too often the three restart together: the view is rebuilt from the
/// heartbeats within one failure timeout, and until it settles the sync
/// manager keeps the relays it has.
child_spec cluster_subsystem(const node_wiring& wiring, restart_policy policy);

} // namespace ferry
