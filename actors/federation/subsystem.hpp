#pragma once

#include "actors/runtime/node_wiring.hpp"

namespace ferry {

/// The FEDERATION subsystem (only when `federation.enabled`): the federation
/// manager. A restart reloads every link from the `peers` family and
/// reapplies its sync server, so nothing but in-flight calls is lost; owed
/// notifications are stored and sent again.
child_spec federation_subsystem(const node_wiring& wiring,
                                restart_policy policy);

} // namespace ferry
