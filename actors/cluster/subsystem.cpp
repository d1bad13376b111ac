#include "actors/cluster/subsystem.hpp"

#include "actors/cluster/cluster_gate.hpp"
#include "actors/cluster/cluster_manager.hpp"
#include "actors/cluster/membership.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/error.hpp"
#include "messages/nostr/hex.hpp"

#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace ferry {

namespace {

/// "host:port", with IPv6 literals in brackets.
std::string host_port(const std::string& host, uint16_t port) {
  auto text = host.find(':') == std::string::npos ? host : "[" + host + "]";
  return text + ":" + std::to_string(port);
}

/// This node as it announces itself; the addresses are filled in when the
/// gate listens.
cluster_identity_ptr make_identity(const node_wiring& wiring) {
  auto identity = std::make_shared<cluster_identity>();
  identity->keys = wiring.keys;
  identity->self.name = wiring.cfg.cluster.name;
  identity->self.pubkey = nostr::to_hex(wiring.keys.pubkey);
  // A restart comes back higher: wall-clock milliseconds at start.
  identity->self.incarnation = static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch())
      .count());
  return identity;
}

/// Where this node's relay and admin API are reached. Subsystems start
/// concurrently, so a relay on port 0 may not have bound yet: give the relay
/// a fixed port in a cluster.
void fill_urls(cluster::member_heartbeat& self, const config::config& cfg,
               uint16_t relay_port) {
  if (!cfg.relay.public_url.empty())
    self.relay_url = cfg.relay.public_url;
  else
    self.relay_url = std::string{cfg.relay.tls.enabled() ? "wss" : "ws"}
                     + "://" + host_port(cfg.relay.address, relay_port);
  if (cfg.admin.port != 0)
    self.admin_url = "http://" + host_port(cfg.admin.address, cfg.admin.port);
}

/// The gate, published on the cluster port. The first start binds the
/// configured port (any free one for 0) and completes the identity; a
/// restart binds the same port again.
child_spec gate_spec(const node_wiring& wiring, cluster_identity_ptr identity) {
  child_spec spec;
  spec.name = "cluster-gate";
  spec.kind = "cluster-gate";
  spec.start = [identity, membership = wiring.membership,
                manager = wiring.cluster, wiring_cfg = wiring.cfg,
                relay_port = wiring.relay_port](caf::local_actor* self) {
    const auto& settings = wiring_cfg.cluster;
    auto& sys = self->system();
    // `ferry node` loads CAF's OpenSSL module (with cluster.tls's files)
    // exactly when cluster.tls is set: then the port speaks only TLS.
    auto tls = settings.tls.enabled();
    if (tls && !sys.has_openssl_manager())
      throw std::runtime_error("cluster.tls is set but the actor system has "
                               "no TLS module loaded");
    auto first = identity->self.address.empty();
    uint16_t wanted = settings.port;
    if (!first)
      wanted = static_cast<uint16_t>(std::stoul(
        identity->self.address.substr(identity->self.address.rfind(':') + 1)));
    auto gate = sys.spawn(cluster_gate, identity, membership, manager);
    auto port = tls ? caf::openssl::publish(gate, wanted,
                                            settings.address.c_str(), true)
                    : sys.middleman().publish(gate, wanted,
                                              settings.address.c_str(), true);
    if (!port) {
      caf::anon_send_exit(gate, caf::exit_reason::user_shutdown);
      throw std::runtime_error("cluster: cannot listen on "
                               + host_port(settings.address, wanted) + ": "
                               + render(port.error()));
    }
    identity->gate->set(gate);
    if (first) {
      identity->self.address = host_port(settings.address, *port);
      fill_urls(identity->self, wiring_cfg,
                wiring_cfg.relay.port != 0 ? wiring_cfg.relay.port
                                           : relay_port->load());
    }
    gate->attach_functor([&sys, addr = gate.address(), p = *port, tls] {
      auto handle = caf::actor_cast<caf::actor>(addr);
      // CAF 0.17.6's caf::openssl::unpublish does not compile: tell the
      // module's middleman actor the way middleman::unpublish tells its own.
      if (tls)
        caf::anon_send(sys.openssl_manager().actor_handle(),
                       caf::unpublish_atom_v, handle.address(), p);
      else
        sys.middleman().unpublish(handle, p);
    });
    log::info("cluster-gate listening on {}{} as {} (incarnation {})",
              identity->self.address, tls ? " (TLS)" : "",
              identity->self.name, identity->self.incarnation);
    return caf::actor_cast<caf::actor>(gate);
  };
  return spec;
}

} // namespace

child_spec cluster_subsystem(const node_wiring& wiring, restart_policy policy) {
  auto identity = make_identity(wiring);
  const auto& settings = wiring.cfg.cluster;
  std::vector<child_spec> children;
  children.push_back(gate_spec(wiring, identity));
  children.push_back(slotted(
    "membership", "membership", wiring.membership,
    [identity, settings](caf::local_actor* self) {
      membership_config mcfg;
      mcfg.self = identity->self;
      mcfg.heartbeat = settings.heartbeat;
      mcfg.failure_timeout = settings.failure_timeout;
      mcfg.forget_after = settings.forget_after;
      mcfg.allowed_pubkeys = settings.members;
      return self->system().spawn(membership, mcfg);
    }));
  children.push_back(slotted(
    "cluster-manager", "cluster-manager", wiring.cluster,
    [identity, settings, membership = wiring.membership,
     sync = wiring.sync_manager, infra = wiring.infra, grasp = wiring.grasp,
     store = wiring.store, own = wiring.cluster](caf::local_actor* self) {
      cluster_manager_config ccfg;
      ccfg.store = store;
      ccfg.seeds = settings.seeds;
      ccfg.member.heartbeat = settings.heartbeat;
      ccfg.member.backoff_cap = std::min<caf::timespan>(
        std::chrono::seconds{5}, settings.failure_timeout);
      ccfg.settle_limit = settings.failure_timeout;
      ccfg.handover_timeout = settings.handover_timeout;
      ccfg.reconcile_interval = settings.reconcile_interval;
      return self->system().spawn(cluster_manager, ccfg, identity, membership,
                                  sync, infra, grasp, own);
    }));
  return supervisor_spec("cluster", std::move(children), policy);
}

} // namespace ferry
