#pragma once

// The RELAY CONNECTION in GRASP-driven mode: its REQs come from GRASP SYNC
// (through the relay driver) as `subscribe` messages, with no catch-up, no
// cursor and no up stream; it reports connected / EOSE / CLOSED / flushed to
// the driver's listener, each only once what came before it is stored.
// Internal to actors/sync/relay_*.

#include "actors/sync/relay_connection_self.hpp"
#include "messages/grasp.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

/// The driven part of a RELAY CONNECTION's state.
struct relay_driven {
  /// REQs waiting for the connection.
  std::vector<grasp::subscription> queued;
  /// The health tracker heard this session is in sync.
  bool reported_live = false;
};

namespace relay_conn {

/// Driven by GRASP SYNC (through the relay driver) rather than by a sync
/// server definition.
bool driven(const relay_connection_state& st);

/// The connection is open: report it and send what was queued.
void on_driven_connected(self_pointer self);

/// GRASP SYNC wants these REQs (connects when idle).
void on_driven_subscribe(self_pointer self,
                         std::vector<grasp::subscription>& wanted);

/// GRASP SYNC no longer wants these REQs.
void on_driven_unsubscribe(self_pointer self,
                           const std::vector<std::string>& ids);

/// GRASP SYNC asks to be told once everything received so far is stored.
void on_driven_flush(self_pointer self, uint64_t serial);

/// An EOSE was reported, everything before it stored: once every REQ of the
/// session is there, the relay is in sync (lag 0, attempts reset), which the
/// health tracker hears once per session.
void on_driven_eose_stored(self_pointer self);

} // namespace relay_conn

} // namespace ferry
