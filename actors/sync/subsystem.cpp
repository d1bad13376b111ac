#include "actors/sync/subsystem.hpp"

#include "actors/sync/fetch_claims.hpp"
#include "actors/sync/health_tracker.hpp"
#include "actors/sync/pending_batches.hpp"
#include "actors/sync/sync_manager.hpp"

namespace ferry {

relay_connection_deps connection_deps(const node_wiring& wiring) {
  relay_connection_deps deps;
  deps.keys = wiring.keys;
  deps.io = wiring.io;
  deps.store = wiring.store;
  deps.item_sets = wiring.relay->item_sets;
  deps.verifiers = wiring.relay->verifiers;
  deps.writer = wiring.writer;
  deps.health = wiring.health;
  deps.hub = wiring.relay->hub;
  deps.batches = wiring.batches;
  deps.fetching = std::make_shared<fetch_claims>();
  deps.one_shot_max_items = wiring.cfg.relay.negentropy.max_items;
  deps.remember_refused = wiring.cfg.policy.remember_refused.max_entries > 0;
  return deps;
}

child_spec sync_subsystem(const node_wiring& wiring, restart_policy policy) {
  std::vector<child_spec> children;
  children.push_back(slotted("health-tracker", "health-tracker", wiring.health,
                             [](caf::local_actor* self) {
                               return self->system().spawn(
                                 health_tracker, health_tracker_config{});
                             }));
  // Relay connections open their catch-up batches with themselves as the
  // listener, so the tracker needs no default one.
  children.push_back(slotted("pending-batches", "pending-batches",
                             wiring.batches, [](caf::local_actor* self) {
                               return self->system().spawn(
                                 pending_batches, pending_batches_config{},
                                 batch_listener_actor{});
                             }));
  children.push_back(slotted(
    "sync-manager", "sync-manager", wiring.sync_manager,
    [servers = wiring.cfg.sync.servers, deps = connection_deps(wiring),
     cluster_node = wiring.cfg.cluster.enabled ? wiring.cfg.cluster.name
                                               : std::string{}](
      caf::local_actor* self) {
      // Detached: it writes definitions to RocksDB itself.
      return self->system().spawn<caf::detached>(clustered_sync_manager,
                                                 servers, deps, cluster_node);
    }));
  return supervisor_spec("sync", std::move(children), policy);
}

} // namespace ferry
