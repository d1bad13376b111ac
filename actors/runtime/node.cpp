#include "actors/runtime/node.hpp"

#include "actors/runtime/control_plane.hpp"
#include "actors/grasp/grasp_driver.hpp"
#include "actors/grasp/grasp_sync.hpp"
#include "actors/sync/health_tracker.hpp"
#include "actors/relay/hub.hpp"
#include "actors/infra/infra_reconciler.hpp"
#include "actors/runtime/inspector.hpp"
#include "actors/relay/item_set_cache.hpp"
#include "actors/runtime/logging.hpp"
#include "actors/runtime/node_key.hpp"
#include "actors/sync/pending_batches.hpp"
#include "actors/relay/query_worker.hpp"
#include "actors/sync/relay_connection.hpp"
#include "actors/infra/relay_registry.hpp"
#include "actors/relay/relay_server.hpp"
#include "actors/grasp/self_subscriber.hpp"
#include "actors/runtime/supervisor.hpp"
#include "actors/sync/sync_manager.hpp"
#include "actors/ingest/verifier.hpp"
#include "actors/ingest/writer.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/nostr/relay_url.hpp"
#include "net/server_tls.hpp"

#include <caf/actor_cast.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <stdexcept>
#include <thread>
#include <variant>

namespace ferry {

namespace {

size_t verifier_count(const config::ingest_config& ingest) {
  if (ingest.verifiers > 0)
    return ingest.verifiers;
  return std::max(1u, std::thread::hardware_concurrency());
}

/// Waits (bounded) for a condition that other threads make true.
template <class Predicate>
void wait_until(Predicate done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
}

/// A child spec whose incarnations land in `slot`.
template <class Handle, class Start>
child_spec slotted(std::string name, std::string kind,
                   handle_slot_ptr<Handle> slot, Start start) {
  child_spec spec;
  spec.name = std::move(name);
  spec.kind = std::move(kind);
  spec.start = [start](caf::local_actor* self) {
    return caf::actor_cast<caf::actor>(start(self));
  };
  spec.on_started = [slot](const caf::actor& handle) {
    slot->set(caf::actor_cast<Handle>(handle));
  };
  return spec;
}

writer_config writer_config_from(const config::config& cfg) {
  writer_config result;
  result.batch_max = cfg.ingest.writer_batch_max;
  result.purge_interval = cfg.store.purge_interval;
  return result;
}

grasp_sync_config grasp_sync_config_from(const config::grasp_config& cfg) {
  grasp_sync_config result;
  result.plan.resync_after = cfg.resync_after;
  result.plan.overlap = cfg.overlap_window;
  result.plan.reconcile_min = cfg.reconcile_min;
  result.plan.reconcile_max = cfg.reconcile_max;
  result.plan.group_size = cfg.group_size;
  result.plan.max_filters_per_subscription = cfg.max_filters_per_subscription;
  result.plan.max_filters_per_relay = cfg.max_filters_per_relay;
  result.bootstrap_relays = cfg.bootstrap_relays;
  result.tick = cfg.tick;
  result.batch_timeout = cfg.batch_timeout;
  return result;
}

/// The relay driver, GRASP SYNC and the SELF SUBSCRIBER that feeds it.
void add_grasp_children(std::vector<child_spec>& children,
                        const config::config& cfg, store::event_store* store,
                        handle_slot_ptr<hub_actor> hub_slot,
                        handle_slot_ptr<grasp_sync_actor> grasp_slot,
                        const relay_connection_deps& deps) {
  auto driver = std::make_shared<handle_slot<grasp_driver_actor>>();
  child_spec driver_spec;
  driver_spec.name = "grasp-driver";
  driver_spec.kind = "grasp-driver";
  driver_spec.start = [deps, grasp_slot](caf::local_actor* self) {
    return caf::actor_cast<caf::actor>(
      self->system().spawn(grasp_driver, deps, grasp_slot));
  };
  driver_spec.on_started = [driver](const caf::actor& handle) {
    driver->set(caf::actor_cast<grasp_driver_actor>(handle));
  };
  children.push_back(std::move(driver_spec));
  auto listener_slot = std::make_shared<handle_slot<grasp_listener_actor>>();
  auto subscriber_slot = std::make_shared<handle_slot<self_subscriber_actor>>();
  child_spec sync_spec;
  sync_spec.name = "grasp-sync";
  sync_spec.kind = "grasp-sync";
  sync_spec.start = [store, driver, subscriber_slot,
                     gcfg = grasp_sync_config_from(cfg.grasp)](
                      caf::local_actor* self) {
    return caf::actor_cast<caf::actor>(
      self->system().spawn(grasp_sync, store, driver, subscriber_slot, gcfg));
  };
  sync_spec.on_started = [grasp_slot, listener_slot](const caf::actor& handle) {
    grasp_slot->set(caf::actor_cast<grasp_sync_actor>(handle));
    listener_slot->set(caf::actor_cast<grasp_listener_actor>(handle));
  };
  children.push_back(std::move(sync_spec));
  self_subscriber_config scfg;
  scfg.service.domain = cfg.grasp.service_domain;
  scfg.service.url = nostr::normalize_relay_url(cfg.relay.public_url);
  scfg.batch_window = cfg.grasp.batch_window;
  child_spec subscriber_spec;
  subscriber_spec.name = "self-subscriber";
  subscriber_spec.kind = "self-subscriber";
  subscriber_spec.start = [store, hub_slot, listener_slot,
                           scfg](caf::local_actor* self) {
    return caf::actor_cast<caf::actor>(self->system().spawn(
      self_subscriber, store, hub_slot, listener_slot, scfg));
  };
  subscriber_spec.on_started = [subscriber_slot](const caf::actor& handle) {
    subscriber_slot->set(caf::actor_cast<self_subscriber_actor>(handle));
  };
  children.push_back(std::move(subscriber_spec));
}

} // namespace

store::store_options store_options_from(const config::config& cfg) {
  store::store_options opts;
  opts.path = cfg.store.path;
  opts.block_cache_mb = cfg.store.block_cache_mb;
  opts.write_buffer_mb = cfg.store.write_buffer_mb;
  opts.sync_writes = cfg.store.sync_writes;
  opts.reserve_bytes = cfg.store.reserve_mb << 20;
  opts.log = [](bool problem, std::string_view line) {
    if (problem)
      log::warn("rocksdb: {}", line);
    else
      log::debug("rocksdb: {}", line);
  };
  return opts;
}

restart_policy restart_policy_from(const config::supervision_config& cfg) {
  restart_policy policy;
  policy.base = std::chrono::milliseconds{cfg.base_ms};
  policy.cap = std::chrono::milliseconds{cfg.cap_ms};
  policy.jitter = cfg.jitter;
  policy.stable_after = std::chrono::seconds{cfg.stable_after_seconds};
  policy.max_restarts = static_cast<uint32_t>(cfg.max_restarts);
  policy.window = std::chrono::seconds{cfg.window_seconds};
  return policy;
}

ingest_pipeline spawn_ingest_pipeline(caf::actor_system& sys,
                                      store::event_store& store,
                                      const config::ingest_config& ingest) {
  ingest_pipeline result;
  writer_config wcfg;
  wcfg.batch_max = ingest.writer_batch_max;
  wcfg.purge_interval = std::chrono::seconds{0};
  result.writer = sys.spawn<caf::detached>(writer, &store, nullptr, wcfg);
  auto writer_slot = std::make_shared<handle_slot<writer_actor>>(result.writer);
  auto n = verifier_count(ingest);
  for (size_t i = 0; i < n; ++i)
    result.verifiers.push_back(
      sys.spawn<caf::detached>(verifier, &store, writer_slot));
  return result;
}

void stop_and_wait(caf::actor_system& sys,
                   const std::vector<caf::actor>& actors) {
  caf::scoped_actor self{sys};
  size_t alive = 0;
  for (auto& a : actors) {
    if (!a)
      continue;
    self->monitor(a);
    self->send_exit(a, caf::exit_reason::user_shutdown);
    ++alive;
  }
  for (; alive > 0; --alive)
    self->receive([](const caf::down_msg&) {
      // nop
    });
}

caf::expected<std::unique_ptr<node>>
node::start(caf::actor_system& sys, const config::config& cfg) {
  std::unique_ptr<node> n{new node(sys)};
  n->cfg_ = cfg;
  auto opened = store::event_store::open(store_options_from(cfg));
  if (!opened)
    return opened.error();
  n->store_ = std::move(*opened);
  // Checked before anything starts, so a bad certificate or key stops the
  // node with the key at fault instead of failing every handshake later.
  std::shared_ptr<boost::asio::ssl::context> relay_tls;
  if (cfg.relay.tls.enabled()) {
    auto made = net::make_server_tls_context(
      {cfg.relay.tls.certfile, cfg.relay.tls.keyfile,
       cfg.relay.tls.client_ca_file});
    if (auto* problem = std::get_if<net::server_tls_problem>(&made))
      return caf::make_error(
        ec::invalid_configuration,
        (cfg.source.empty() ? std::string{"<embedded default>"} : cfg.source)
          + ": relay.tls." + problem->key + ": expected " + problem->expected
          + ", got " + problem->got);
    relay_tls = std::get<std::shared_ptr<boost::asio::ssl::context>>(made);
  }
  auto keys = load_or_create_node_key(node_key_path(cfg));
  if (!keys)
    return keys.error();
  n->keys_ = *keys;
  n->io_ = std::make_shared<net::io_runtime>(1);

  auto* store = n->store_.get();
  auto hub_slot = std::make_shared<handle_slot<hub_actor>>();
  auto writer_slot = std::make_shared<handle_slot<writer_actor>>();
  auto inspector_slot = std::make_shared<handle_slot<inspector_actor>>();
  auto control_plane_slot = std::make_shared<handle_slot<control_plane_actor>>();
  auto health_slot = std::make_shared<handle_slot<health_tracker_actor>>();
  auto sync_slot = std::make_shared<handle_slot<sync_manager_actor>>();
  auto batches_slot = std::make_shared<handle_slot<pending_batches_actor>>();
  auto grasp_slot = std::make_shared<handle_slot<grasp_sync_actor>>();
  auto ctx = std::make_shared<relay_context>();
  ctx->limits = cfg.relay.limits;
  ctx->negentropy = cfg.relay.negentropy;
  ctx->auth_required = cfg.relay.auth_required;
  ctx->public_url = cfg.relay.public_url;
  ctx->store = store;
  ctx->hub = hub_slot;
  if (cfg.relay.negentropy.enabled) {
    item_set_cache_config neg;
    neg.max_bytes = cfg.relay.negentropy.max_memory_mb << 20;
    neg.max_items = cfg.relay.negentropy.max_items;
    ctx->item_sets = std::make_shared<item_set_cache>(store_item_source(*store),
                                                      neg);
  }
  n->ctx_ = ctx;

  std::vector<child_spec> children;
  children.push_back(slotted("hub", "hub", hub_slot, [](caf::local_actor* self) {
    return self->system().spawn(hub);
  }));
  children.push_back(slotted(
    "writer", "writer", writer_slot,
    [store, hub_slot, wcfg = writer_config_from(cfg)](caf::local_actor* self) {
      return self->system().spawn<caf::detached>(writer, store, hub_slot, wcfg);
    }));
  for (size_t i = 1; i <= verifier_count(cfg.ingest); ++i) {
    auto slot = std::make_shared<handle_slot<verifier_actor>>();
    ctx->verifiers.push_back(slot);
    children.push_back(slotted(
      "verifier-" + std::to_string(i), "verifier", slot,
      [store, writer_slot](caf::local_actor* self) {
        return self->system().spawn<caf::detached>(verifier, store, writer_slot);
      }));
  }
  auto workers = std::max<size_t>(2, verifier_count(cfg.ingest));
  auto qcfg = query_worker_config_for(cfg.relay.limits.max_outbound_bytes);
  for (size_t i = 1; i <= workers; ++i) {
    auto slot = std::make_shared<handle_slot<query_worker_actor>>();
    ctx->query_workers.push_back(slot);
    children.push_back(slotted(
      "query-worker-" + std::to_string(i), "query-worker", slot,
      [store, qcfg](caf::local_actor* self) {
        return self->system().spawn<caf::detached>(query_worker, store, qcfg);
      }));
  }
  children.push_back(slotted("health-tracker", "health-tracker", health_slot,
                             [](caf::local_actor* self) {
                               return self->system().spawn(
                                 health_tracker, health_tracker_config{});
                             }));
  // Relay connections open their catch-up batches with themselves as the
  // listener, so the tracker needs no default one.
  children.push_back(slotted("pending-batches", "pending-batches", batches_slot,
                             [](caf::local_actor* self) {
                               return self->system().spawn(
                                 pending_batches, pending_batches_config{},
                                 batch_listener_actor{});
                             }));
  relay_connection_deps deps;
  deps.keys = n->keys_;
  deps.io = n->io_;
  deps.store = store;
  deps.verifiers = ctx->verifiers;
  deps.writer = writer_slot;
  deps.health = health_slot;
  deps.hub = hub_slot;
  deps.batches = batches_slot;
  children.push_back(slotted(
    "sync-manager", "sync-manager", sync_slot,
    [servers = cfg.sync.servers, deps](caf::local_actor* self) {
      // Detached: it writes definitions to RocksDB itself.
      return self->system().spawn<caf::detached>(sync_manager, servers, deps);
    }));
  if (cfg.grasp.enabled)
    add_grasp_children(children, cfg, store, hub_slot, grasp_slot, deps);
  infra_handles infra;
  infra.registry = std::make_shared<handle_slot<relay_registry_actor>>();
  infra.reconciler = std::make_shared<handle_slot<infra_reconciler_actor>>();
  relay_registry_config rcfg;
  rcfg.max_attempts = static_cast<uint32_t>(cfg.infra.max_attempts);
  rcfg.blossom_available = !cfg.infra.blossom.bucket.empty();
  rcfg.livekit_available = !cfg.infra.livekit.server_url.empty();
  children.push_back(slotted(
    "relay-registry", "relay-registry", infra.registry,
    [store, reconciler = infra.reconciler, rcfg](caf::local_actor* self) {
      // Detached: every change is a synced RocksDB write.
      return self->system().spawn<caf::detached>(relay_registry, store,
                                                 reconciler, rcfg);
    }));
  infra_reconciler_deps rdeps;
  rdeps.settings = cfg.infra;
  rdeps.keys = n->keys_;
  rdeps.registry = infra.registry;
  rdeps.transport = http_transport(
    n->io_, std::chrono::milliseconds{cfg.infra.request_timeout_ms});
  children.push_back(slotted("infra-reconciler", "infra-reconciler",
                             infra.reconciler,
                             [rdeps](caf::local_actor* self) {
                               return self->system().spawn(infra_reconciler,
                                                           rdeps);
                             }));
  inspector_config icfg;
  icfg.fault_injection = cfg.console.fault_injection;
  icfg.node_started_at = unix_now();
  children.push_back(slotted(
    "inspector", "inspector", inspector_slot,
    [store, ctx, sync_slot, grasp_slot, infra, icfg](caf::local_actor* self) {
      return self->system().spawn(inspector,
                                  caf::actor_cast<supervisor_actor>(self),
                                  store, ctx, sync_slot, grasp_slot, infra,
                                  icfg);
    }));
  {
    child_spec spec;
    spec.name = "relay-server";
    spec.kind = "relay-server";
    auto io = n->io_;
    auto* port = &n->relay_port_;
    spec.start = [io, ctx, port, relay = cfg.relay, relay_tls,
                  self_pubkey = nostr::to_hex(n->keys_.pubkey)](
                   caf::local_actor* self) {
      auto listener = make_relay_listener(self->system(), io->context(), relay,
                                          self_pubkey, ctx, relay_tls);
      if (auto failure = listener->start(); !failure.empty())
        throw std::runtime_error("relay: " + failure);
      *port = listener->port();
      log::info("relay-server listening on {}://{}:{}",
                relay_tls ? "wss" : "ws", relay.address, listener->port());
      return caf::actor_cast<caf::actor>(
        self->system().spawn(relay_server, listener,
                             std::shared_ptr<const item_set_cache>{
                               ctx->item_sets}));
    };
    children.push_back(std::move(spec));
  }
  children.push_back(slotted(
    "control-plane", "control-plane", control_plane_slot,
    [inspector_slot, sync_slot, infra, io = n->io_,
     admin = cfg.admin](caf::local_actor* self) {
      return self->system().spawn(control_plane, admin, inspector_slot,
                                  sync_slot, infra, io);
    }));
  {
    child_spec spec;
    spec.name = "console-gate";
    spec.kind = "console-gate";
    spec.start = [inspector_slot, console = cfg.console](caf::local_actor* self) {
      auto& sys = self->system();
      auto gate = sys.spawn(console_gate, inspector_slot, console.secret);
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
    children.push_back(std::move(spec));
  }

  n->root_ = sys.spawn(supervisor, std::string{"node"}, std::move(children),
                       restart_policy_from(cfg.supervision));
  // Every child has started (or failed) before the root answers anything.
  caf::scoped_actor self{sys};
  std::vector<std::string> failures;
  self->request(n->root_, std::chrono::seconds{10}, atom::get_v,
                atom::children_v)
    .receive(
      [&](std::vector<child_info>& xs) {
        for (auto& child : xs)
          if (child.state != child_state::running)
            failures.push_back(child.name + ": " + child.last_error);
      },
      [&](caf::error& err) { failures.push_back("node: " + render(err)); });
  if (failures.empty()) {
    // The admin server binds as the control plane starts; its status says
    // where, or the request fails when it could not.
    self->request(control_plane_slot->get(), std::chrono::seconds{5},
                  atom::get_v, atom::status_v)
      .receive(
        [&](status_map& status) {
          n->admin_port_ = static_cast<uint16_t>(
            caf::get_or(status, "port", int64_t{0}));
        },
        [&](caf::error& err) {
          failures.push_back("control-plane: " + render(err));
        });
  }
  if (!failures.empty()) {
    stop_and_wait(sys, {caf::actor_cast<caf::actor>(n->root_)});
    n->root_ = nullptr;
    std::string text;
    for (auto& failure : failures)
      text += (text.empty() ? "" : "; ") + failure;
    return caf::make_error(ec::network_failure, text);
  }
  log::info("node identity {}", nostr::to_hex(n->keys_.pubkey));
  return n;
}

node::~node() {
  if (root_) {
    std::vector<caf::actor> actors{caf::actor_cast<caf::actor>(root_)};
    caf::scoped_actor self{sys_};
    self->request(root_, std::chrono::seconds{5}, atom::get_v, atom::children_v)
      .receive(
        [&](std::vector<child_info>& xs) {
          for (auto& child : xs)
            if (child.handle)
              actors.push_back(child.handle);
        },
        [](caf::error&) {
          // nop: the root is gone already; its children went with it
        });
    stop_and_wait(sys_, actors);
  }
  // Sessions must be gone before the I/O threads their sockets use stop.
  if (ctx_)
    wait_until([this] { return ctx_->live_sessions == 0; },
               std::chrono::seconds{5});
  // Item sets are read from the store on threads of their own.
  if (ctx_ && ctx_->item_sets)
    ctx_->item_sets->stop();
  if (io_)
    io_->stop();
  if (store_) {
    if (auto failure = store_->flush())
      log::error("node could not flush the store: {}", render(failure));
    store_.reset();
  }
  log::info("node stopped");
}

} // namespace ferry
