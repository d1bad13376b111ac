#pragma once

#include "actors/runtime/node_wiring.hpp"

namespace ferry {

/// The RELAY subsystem: the hub (live subscriptions, the change feed), the
/// query workers and the relay server with its client sessions. A restart
/// closes every client connection; clients reconnect and resubscribe, and
/// nothing stored is touched.
child_spec relay_subsystem(const node_wiring& wiring, restart_policy policy);

} // namespace ferry
