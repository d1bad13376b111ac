#pragma once

#include "actors/runtime/node_wiring.hpp"

namespace ferry {

/// The RUNTIME subsystem: the inspector, the control plane (admin HTTP) and
/// the console gate. They hold no state of their own beyond their
/// listeners, so a restart costs operators a reconnect and nothing else.
child_spec runtime_subsystem(const node_wiring& wiring, restart_policy policy);

} // namespace ferry
