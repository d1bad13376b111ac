#include "actors/infra/subsystem.hpp"

#include "actors/infra/infra_reconciler.hpp"
#include "actors/infra/relay_registry.hpp"

namespace ferry {

child_spec infra_subsystem(const node_wiring& wiring, restart_policy policy) {
  auto live = wiring.infra_settings;
  std::vector<child_spec> children;
  children.push_back(slotted(
    "relay-registry", "relay-registry", wiring.infra.registry,
    [store = wiring.store, reconciler = wiring.infra.reconciler,
     live](caf::local_actor* self) {
      // Detached: every change is a synced RocksDB write.
      return self->system().spawn<caf::detached>(relay_registry, store,
                                                 reconciler, live);
    }));
  infra_reconciler_deps rdeps;
  rdeps.settings = live;
  rdeps.keys = wiring.keys;
  rdeps.registry = wiring.infra.registry;
  // In a cluster, each hosted relay is pushed by its owner only.
  if (wiring.cfg.cluster.enabled)
    rdeps.cluster_node = wiring.cfg.cluster.name;
  // Each request takes the timeout a reload left.
  rdeps.transport = [io = wiring.io, live](infra_request req,
                                           std::function<void(infra_response)>
                                             done) {
    auto timeout = std::chrono::milliseconds{live->get()->request_timeout_ms};
    http_transport(io, timeout)(std::move(req), std::move(done));
  };
  children.push_back(slotted("infra-reconciler", "infra-reconciler",
                             wiring.infra.reconciler,
                             [rdeps](caf::local_actor* self) {
                               return self->system().spawn(infra_reconciler,
                                                           rdeps);
                             }));
  return supervisor_spec("infra", std::move(children), policy);
}

} // namespace ferry
