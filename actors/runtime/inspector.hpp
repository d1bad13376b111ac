#pragma once

#include "actors/relay/client_session.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "messages/cluster.hpp"
#include "messages/federation.hpp"
#include "messages/grasp.hpp"
#include "messages/health.hpp"
#include "actors/infra/relay_registry.hpp"
#include "config/config.hpp"
#include "messages/inspector.hpp"
#include "messages/supervisor.hpp"
#include "messages/sync_manager.hpp"
#include "store/event_store.hpp"

#include <memory>

namespace ferry {

/// What the INSPECTOR looks at besides the actor tree.
struct inspector_config {
  /// Allow `fault` (crash an actor on purpose).
  bool fault_injection = false;
  /// How long an actor may take to answer a status request.
  caf::timespan status_timeout = std::chrono::seconds{1};
  /// Unix time the node started: the root's uptime.
  int64_t node_started_at = 0;
  /// When `health` says degraded besides failed actors.
  config::health_config health;
};

struct inspector_state {
  /// The root supervisor; the slot is filled once the root runs.
  handle_slot_ptr<supervisor_actor> root;
  const store::event_store* store = nullptr;
  std::shared_ptr<const relay_context> relay;
  /// Where the sync server commands go; the slot follows restarts.
  handle_slot_ptr<sync_manager_actor> sync_manager;
  /// Where `health` learns which sync servers fail.
  handle_slot_ptr<health_tracker_actor> sync_health;
  /// Where the repository commands go (null: GRASP sync is off).
  handle_slot_ptr<grasp_sync_actor> grasp;
  /// Where the hosted relay commands and health questions go.
  infra_handles infra;
  /// Where the cluster view and its refusals come from (null: no cluster).
  handle_slot_ptr<cluster_manager_actor> cluster;
  /// Where federation's refused peers come from (null: federation is off).
  handle_slot_ptr<federation_actor> federation;
  inspector_config config;
  static inline constexpr const char* name = "inspector";
};

/// The INSPECTOR: walks the supervision tree from `root` on every request,
/// so it never holds a stale view, and asks each running actor for its status.
/// The sync server commands it forwards to the SYNC MANAGER in
/// `sync_manager`, the repository commands to GRASP SYNC in `grasp`, the
/// hosted relay commands to the RELAY REGISTRY and the INFRA RECONCILER in
/// `infra` (null or empty: they fail with "not running"); `health` adds the
/// reconciler's relays given up and the sync servers that fail for good
/// (see `sync_health_reasons`), the nodes the cluster refused and the
/// federation peers refused for a changed key; `cluster`
/// (null when the cluster is off) answers the cluster view.
inspector_actor::behavior_type
inspector(inspector_actor::stateful_pointer<inspector_state> self,
          handle_slot_ptr<supervisor_actor> root,
          const store::event_store* store,
          std::shared_ptr<const relay_context> relay,
          handle_slot_ptr<sync_manager_actor> sync_manager,
          handle_slot_ptr<health_tracker_actor> sync_health,
          handle_slot_ptr<grasp_sync_actor> grasp, infra_handles infra,
          handle_slot_ptr<cluster_manager_actor> cluster,
          handle_slot_ptr<federation_actor> federation,
          inspector_config config);

struct console_gate_state {
  handle_slot_ptr<inspector_actor> inspector;
  std::string secret;
  uint64_t logins = 0;
  uint64_t refused = 0;
  static inline constexpr const char* name = "console-gate";
};

/// The CONSOLE GATE: published on the inspection port; hands the inspector to
/// consoles that present the secret.
console_gate_actor::behavior_type
console_gate(console_gate_actor::stateful_pointer<console_gate_state> self,
             handle_slot_ptr<inspector_actor> inspector, std::string secret);

} // namespace ferry
