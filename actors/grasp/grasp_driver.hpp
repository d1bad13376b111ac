#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "actors/sync/relay_connection.hpp"
#include "messages/grasp.hpp"

#include <caf/actor_clock.hpp>
#include <caf/send.hpp>

#include <map>
#include <string>

namespace ferry {

struct grasp_driver_state {
  /// What every relay connection of the driver shares (the ingest path,
  /// the health tracker); the driver adds itself and the listener.
  relay_connection_deps deps;
  /// GRASP SYNC, told about connections, EOSE, CLOSED and losses.
  handle_slot_ptr<grasp_sync_actor> listener;
  /// The connection of each relay held, by normalized URL.
  std::map<std::string, relay_connection_actor> relays;
  /// Relays that failed: not dialled again before this time.
  std::map<std::string, caf::actor_clock::time_point> not_before;
  uint64_t connects = 0;
  uint64_t losses = 0;

  /// The connections go with the driver (a restarted driver starts over,
  /// and so does GRASP SYNC's view of it after the losses).
  ~grasp_driver_state() {
    for (auto& [url, connection] : relays)
      caf::anon_send_exit(connection, caf::exit_reason::user_shutdown);
  }

  static inline constexpr const char* name = "grasp-driver";
};

/// The RELAY DRIVER of GRASP-02: one driven RELAY CONNECTION per relay that
/// GRASP SYNC wants, so GRASP relays share the sync path (NIP-42, TLS,
/// ingest as `grasp:<relay>`, health tracker, `ferry_sync_*` metrics). It
/// forgets a relay whose connection ends and keeps that relay's backoff, so
/// the next `connect` waits it out.
grasp_relay_driver_actor::behavior_type
grasp_driver(grasp_relay_driver_actor::stateful_pointer<grasp_driver_state> self,
             relay_connection_deps deps,
             handle_slot_ptr<grasp_sync_actor> listener);

} // namespace ferry
