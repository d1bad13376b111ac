#include "actors/relay/subsystem.hpp"

#include "actors/relay/hub.hpp"
#include "actors/relay/query_worker.hpp"
#include "actors/relay/relay_server.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/nostr/hex.hpp"

#include <stdexcept>

namespace ferry {

child_spec relay_subsystem(const node_wiring& wiring, restart_policy policy) {
  auto ctx = wiring.relay;
  std::vector<child_spec> children;
  children.push_back(slotted("hub", "hub", ctx->hub, [](caf::local_actor* self) {
    return self->system().spawn<hub_impl>();
  }));
  auto qcfg = ctx->queries;
  for (size_t i = 0; i < ctx->query_workers.size(); ++i) {
    const auto& slot = ctx->query_workers[i];
    auto spec = slotted(
      "query-worker-" + std::to_string(i + 1), "query-worker", slot,
      [store = wiring.store, qcfg](caf::local_actor* self) {
        return self->system().spawn<caf::detached>(query_worker, store, qcfg);
      });
    // An empty slot while it is stopped or restarting: its sessions answer
    // new REQs at once ("restarting; try again") instead of sending them
    // to an incarnation that has ended.
    spec.on_stopped = [slot] { slot->set({}); };
    children.push_back(std::move(spec));
  }
  child_spec server;
  server.name = "relay-server";
  server.kind = "relay-server";
  server.start = [io = wiring.io, ctx, port = wiring.relay_port,
                  relay = wiring.cfg.relay, tls = wiring.relay_tls,
                  self_pubkey = nostr::to_hex(wiring.keys.pubkey)](
                   caf::local_actor* self) {
    auto listener = make_relay_listener(self->system(), io->context(), relay,
                                        self_pubkey, ctx, tls);
    if (auto failure = listener->start(); !failure.empty())
      throw std::runtime_error("relay: " + failure);
    *port = listener->port();
    log::info("relay-server listening on {}://{}:{}", tls ? "wss" : "ws",
              relay.address, listener->port());
    return caf::actor_cast<caf::actor>(self->system().spawn(
      relay_server, listener,
      std::shared_ptr<const item_set_cache>{ctx->item_sets}));
  };
  children.push_back(std::move(server));
  return supervisor_spec("relay", std::move(children), policy);
}

} // namespace ferry
