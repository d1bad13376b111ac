#include "actors/infra/subsystem.hpp"

#include "actors/infra/infra_reconciler.hpp"
#include "actors/infra/relay_registry.hpp"

namespace ferry {

child_spec infra_subsystem(const node_wiring& wiring, restart_policy policy) {
  const auto& infra = wiring.cfg.infra;
  std::vector<child_spec> children;
  relay_registry_config rcfg;
  rcfg.max_attempts = static_cast<uint32_t>(infra.max_attempts);
  rcfg.blossom_available = !infra.blossom.bucket.empty();
  rcfg.livekit_available = !infra.livekit.server_url.empty();
  children.push_back(slotted(
    "relay-registry", "relay-registry", wiring.infra.registry,
    [store = wiring.store, reconciler = wiring.infra.reconciler,
     rcfg](caf::local_actor* self) {
      // Detached: every change is a synced RocksDB write.
      return self->system().spawn<caf::detached>(relay_registry, store,
                                                 reconciler, rcfg);
    }));
  infra_reconciler_deps rdeps;
  rdeps.settings = infra;
  rdeps.keys = wiring.keys;
  rdeps.registry = wiring.infra.registry;
  rdeps.transport = http_transport(
    wiring.io, std::chrono::milliseconds{infra.request_timeout_ms});
  children.push_back(slotted("infra-reconciler", "infra-reconciler",
                             wiring.infra.reconciler,
                             [rdeps](caf::local_actor* self) {
                               return self->system().spawn(infra_reconciler,
                                                           rdeps);
                             }));
  return supervisor_spec("infra", std::move(children), policy);
}

} // namespace ferry
