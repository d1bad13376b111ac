#pragma once

#include "actors/runtime/node_wiring.hpp"

namespace ferry {

/// The GRASP subsystem (only when `grasp.enabled`): the self-subscriber that
/// rebuilds the repository view from the store and the live feed, GRASP SYNC
/// which decides what to fetch from where, and the relay driver that owns
/// the connections it drives. When one of them fails too often, the three
/// restart together, so the view, the decisions taken on it and the
/// connections they drive start again from the store as one.
child_spec grasp_subsystem(const node_wiring& wiring, restart_policy policy);

} // namespace ferry
