#include "actors/grasp/subsystem.hpp"

#include "actors/grasp/grasp_driver.hpp"
#include "actors/grasp/grasp_sync.hpp"
#include "actors/grasp/self_subscriber.hpp"
#include "actors/sync/subsystem.hpp"
#include "messages/nostr/relay_url.hpp"

namespace ferry {

child_spec grasp_subsystem(const node_wiring& wiring, restart_policy policy) {
  const auto& cfg = wiring.cfg;
  auto driver = std::make_shared<handle_slot<grasp_driver_actor>>();
  auto listener = std::make_shared<handle_slot<grasp_listener_actor>>();
  auto subscriber = std::make_shared<handle_slot<self_subscriber_actor>>();
  std::vector<child_spec> children;
  children.push_back(slotted(
    "grasp-driver", "grasp-driver", driver,
    [deps = connection_deps(wiring),
     grasp = wiring.grasp](caf::local_actor* self) {
      return self->system().spawn(grasp_driver, deps, grasp);
    }));
  // In a cluster GRASP SYNC runs only the relays this node owns.
  auto cluster_node = cfg.cluster.enabled ? cfg.cluster.name : std::string{};
  auto sync_spec = slotted(
    "grasp-sync", "grasp-sync", wiring.grasp,
    [store = wiring.store, driver, subscriber, live = wiring.grasp_settings,
     cluster_node](caf::local_actor* self) {
      // A restart starts from what the last reload left.
      auto gcfg = grasp_sync_config_from(*live->get());
      gcfg.live = live;
      gcfg.cluster_node = cluster_node;
      return self->system().spawn(grasp_sync, store, driver, subscriber, gcfg);
    });
  sync_spec.on_started = [grasp = wiring.grasp, listener](const caf::actor& h) {
    grasp->set(caf::actor_cast<grasp_sync_actor>(h));
    listener->set(caf::actor_cast<grasp_listener_actor>(h));
  };
  children.push_back(std::move(sync_spec));
  self_subscriber_config scfg;
  scfg.service.domain = cfg.grasp.service_domain;
  scfg.service.url = nostr::normalize_relay_url(cfg.relay.public_url);
  scfg.batch_window = cfg.grasp.batch_window;
  scfg.live = wiring.grasp_settings;
  children.push_back(slotted(
    "self-subscriber", "self-subscriber", subscriber,
    [store = wiring.store, hub = wiring.relay->hub, listener,
     scfg](caf::local_actor* self) {
      return self->system().spawn(self_subscriber, store, hub, listener, scfg);
    }));
  return supervisor_spec("grasp", std::move(children), policy);
}

} // namespace ferry
