#include "actors/runtime/subsystem.hpp"

#include "actors/ingest/subsystem.hpp"
#include "actors/runtime/control_plane.hpp"
#include "actors/runtime/inspector.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"

#include <caf/io/middleman.hpp>
#include <caf/send.hpp>

#include <stdexcept>

namespace ferry {

namespace {

/// The console gate, published on the console port for `ferry console`.
child_spec console_gate_spec(const node_wiring& wiring) {
  child_spec spec;
  spec.name = "console-gate";
  spec.kind = "console-gate";
  spec.start = [inspector = wiring.inspector,
                console = wiring.cfg.console](caf::local_actor* self) {
    auto& sys = self->system();
    auto gate = sys.spawn(console_gate, inspector, console.secret);
    auto port = sys.middleman().publish(gate, console.port,
                                        console.address.c_str(), true);
    if (!port) {
      caf::anon_send_exit(gate, caf::exit_reason::user_shutdown);
      throw std::runtime_error("console: cannot listen on " + console.address
                               + ":" + std::to_string(console.port) + ": "
                               + render(port.error()));
    }
    // The next incarnation must find the port free again.
    gate->attach_functor([&sys, addr = gate.address(), p = *port] {
      sys.middleman().unpublish(caf::actor_cast<caf::actor>(addr), p);
    });
    log::info("console-gate listening on {}:{}", console.address, *port);
    return caf::actor_cast<caf::actor>(gate);
  };
  return spec;
}

} // namespace

child_spec runtime_subsystem(const node_wiring& wiring, restart_policy policy) {
  std::vector<child_spec> children;
  inspector_config icfg;
  icfg.fault_injection = wiring.cfg.console.fault_injection;
  icfg.node_started_at = unix_now();
  icfg.health = wiring.cfg.health;
  children.push_back(slotted(
    "inspector", "inspector", wiring.inspector,
    [root = wiring.root, store = wiring.store,
     ctx = std::shared_ptr<const relay_context>{wiring.relay},
     sync = wiring.sync_manager, sync_health = wiring.health,
     grasp = wiring.grasp, infra = wiring.infra, cluster = wiring.cluster,
     federation = wiring.federation, icfg](caf::local_actor* self) {
      return self->system().spawn(inspector, root, store, ctx, sync,
                                  sync_health, grasp, infra, cluster,
                                  federation, icfg);
    }));
  config_reloader_deps reloader_deps;
  reloader_deps.running = wiring.running_config;
  reloader_deps.sync_manager = wiring.sync_manager;
  reloader_deps.relay = wiring.relay;
  reloader_deps.policy = wiring.policy;
  reloader_deps.policy_step_runs = runs_policy_step(wiring.cfg.policy);
  reloader_deps.store = wiring.store;
  reloader_deps.grasp = wiring.grasp_settings;
  reloader_deps.grasp_sync = wiring.grasp;
  reloader_deps.infra = wiring.infra_settings;
  reloader_deps.relay_registry = wiring.infra.registry;
  reloader_deps.infra_reconciler = wiring.infra.reconciler;
  children.push_back(slotted(
    "config-reloader", "config-reloader", wiring.reloader,
    [reloader_deps](caf::local_actor* self) {
      // Detached: a reload that changes the policy scans the refused
      // events' memory (up to its cap) and must not hold a scheduler worker.
      return self->system().spawn<caf::detached>(config_reloader,
                                                 reloader_deps);
    }));
  // One memory of accepted NIP-98 events for every incarnation: a restarted
  // control plane must still refuse an event its predecessor took.
  admin_nip98 nip98;
  nip98.public_url = wiring.cfg.federation.public_admin_url;
  children.push_back(slotted(
    "control-plane", "control-plane", wiring.control_plane,
    [inspector = wiring.inspector, sync = wiring.sync_manager,
     infra = wiring.infra, federation = wiring.federation,
     reloader = wiring.reloader, io = wiring.io, admin = wiring.cfg.admin,
     nip98](caf::local_actor* self) {
      return self->system().spawn(control_plane, admin, nip98, inspector,
                                  sync, infra, federation, reloader, io);
    }));
  children.push_back(console_gate_spec(wiring));
  return supervisor_spec("runtime", std::move(children), policy);
}

} // namespace ferry
