#pragma once

// The handle every unit of the RELAY CONNECTION works through: its own actor
// pointer, whose state (relay_connection.hpp) holds one part per protocol.
// Internal to actors/sync/relay_*.

#include "messages/sync_manager.hpp"

namespace ferry {

struct relay_connection_state;

namespace relay_conn {

using self_pointer
  = relay_connection_actor::stateful_pointer<relay_connection_state>;

} // namespace relay_conn

} // namespace ferry
