#include "actors/federation/subsystem.hpp"

#include "actors/federation/federation_manager.hpp"

namespace ferry {

namespace {

/// How long one call to a peer's admin API may take.
constexpr auto peer_call_timeout = std::chrono::seconds{10};

} // namespace

child_spec federation_subsystem(const node_wiring& wiring,
                                restart_policy policy) {
  federation_manager_deps deps;
  deps.settings = wiring.cfg.federation;
  deps.keys = wiring.keys;
  deps.store = wiring.store;
  deps.sync_manager = wiring.sync_manager;
  deps.control_plane = wiring.control_plane;
  deps.relay_url = wiring.cfg.relay.public_url;
  deps.relay_address = wiring.cfg.relay.address;
  deps.relay_port = wiring.relay_port;
  deps.transport = http_transport(wiring.io, peer_call_timeout);
  deps.io = wiring.io;
  if (wiring.relay)
    deps.verifiers = wiring.relay->verifiers;
  // The relay's sessions read the gate the manager writes; they start after
  // the subsystems are built, so they all see it.
  deps.refused_peers = std::make_shared<peer_gate>();
  if (wiring.relay)
    wiring.relay->federation_peers = deps.refused_peers;
  std::vector<child_spec> children;
  children.push_back(slotted("federation-manager", "federation-manager",
                             wiring.federation,
                             [deps](caf::local_actor* self) {
                               return self->system().spawn(federation_manager,
                                                           deps);
                             }));
  return supervisor_spec("federation", std::move(children), policy);
}

} // namespace ferry
