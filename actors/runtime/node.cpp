#include "actors/runtime/node.hpp"

#include "actors/cluster/subsystem.hpp"
#include "actors/federation/subsystem.hpp"
#include "actors/grasp/subsystem.hpp"
#include "actors/infra/infra_reconciler.hpp"
#include "actors/infra/subsystem.hpp"
#include "actors/ingest/policy.hpp"
#include "actors/ingest/subsystem.hpp"
#include "actors/ingest/verifier.hpp"
#include "actors/ingest/writer.hpp"
#include "actors/relay/item_set_cache.hpp"
#include "actors/relay/query_worker.hpp"
#include "actors/relay/subsystem.hpp"
#include "actors/runtime/logging.hpp"
#include "actors/runtime/node_key.hpp"
#include "actors/runtime/node_wiring.hpp"
#include "actors/runtime/subsystem.hpp"
#include "actors/sync/subsystem.hpp"
#include "messages/config_reload.hpp"
#include "messages/error.hpp"
#include "net/server_tls.hpp"
#include "store/refused_store.hpp"

#include <caf/actor_cast.hpp>
#include <caf/scoped_actor.hpp>

#include <chrono>
#include <thread>
#include <variant>

namespace ferry {

namespace {

/// Waits (bounded) for a condition that other threads make true.
template <class Predicate>
void wait_until(Predicate done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
}

/// Every actor below `sup`, depth first (nested supervisors and their
/// children alike); supervisors that do not answer are left out.
void collect_tree(caf::scoped_actor& self, const supervisor_actor& sup,
                  std::vector<child_info>& out) {
  std::vector<child_info> children;
  self->request(sup, std::chrono::seconds{5}, atom::get_v, atom::children_v)
    .receive([&](std::vector<child_info>& xs) { children = std::move(xs); },
             [](caf::error&) {
               // nop: gone already; its children went with it
             });
  for (auto& child : children) {
    out.push_back(child);
    if (child.kind == "supervisor" && child.handle)
      collect_tree(self, caf::actor_cast<supervisor_actor>(child.handle), out);
  }
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

std::vector<caf::actor> ingest_pipeline::actors() const {
  std::vector<caf::actor> result;
  for (auto& v : verifiers)
    result.push_back(caf::actor_cast<caf::actor>(v));
  for (auto a : {caf::actor_cast<caf::actor>(policy),
                 caf::actor_cast<caf::actor>(plugin),
                 caf::actor_cast<caf::actor>(writer)})
    if (a)
      result.push_back(a);
  return result;
}

ingest_pipeline spawn_ingest_pipeline(caf::actor_system& sys,
                                      store::event_store& store,
                                      const config::ingest_config& ingest,
                                      const config::policy_config& policy) {
  ingest_pipeline result;
  writer_config wcfg;
  wcfg.batch_max = ingest.writer_batch_max;
  wcfg.purge_interval = std::chrono::seconds{0};
  result.writer = sys.spawn<caf::detached>(writer, &store, nullptr, wcfg);
  auto writer_slot = std::make_shared<handle_slot<writer_actor>>(result.writer);
  handle_slot_ptr<policy_actor> policy_slot;
  if (runs_policy_step(policy)) {
    handle_slot_ptr<plugin_host_actor> plugin_slot;
    if (!policy.plugin.command.empty()) {
      result.plugin_io = std::make_shared<net::io_runtime>(1);
      result.plugin = sys.spawn(plugin_host,
                                plugin_host_config_from(policy.plugin),
                                &result.plugin_io->context());
      plugin_slot = std::make_shared<handle_slot<plugin_host_actor>>(
        result.plugin);
    }
    result.policy
      = sys.spawn(ferry::policy,
                  std::make_shared<live_value<config::policy_config>>(policy),
                  &store, writer_slot, plugin_slot);
    policy_slot = std::make_shared<handle_slot<policy_actor>>(result.policy);
  }
  auto n = verifier_count(ingest);
  for (size_t i = 0; i < n; ++i)
    result.verifiers.push_back(
      sys.spawn<caf::detached>(verifier, &store, writer_slot, policy_slot,
                               policy.remember_refused.max_entries > 0));
  return result;
}

/// A leave asks the sync manager (at most 2 s), waits for each peer's
/// goodbye at most a link's connect timeout and a second (6 s), and then for
/// the hand-over at most `cluster.handover_timeout_ms`: a stop never hangs
/// on a peer that does not answer.
constexpr auto cluster_goodbye_timeout = std::chrono::seconds{10};

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
  // Refusals another write policy made are not this one's to keep.
  auto forgotten = store::follow_policy(*store, policy_fingerprint(cfg.policy));
  if (!forgotten)
    return forgotten.error();
  if (*forgotten > 0)
    log::info("node forgets {} refused event(s): the write policy changed "
              "since they were refused",
              *forgotten);
  auto ctx = std::make_shared<relay_context>();
  ctx->limits.set(cfg.relay.limits);
  ctx->negentropy = cfg.relay.negentropy;
  ctx->auth_required = cfg.relay.auth_required;
  ctx->announce_auth = cfg.cluster.enabled;
  ctx->public_url = cfg.relay.public_url;
  ctx->store = store;
  ctx->hub = std::make_shared<handle_slot<hub_actor>>();
  for (size_t i = 0; i < verifier_count(cfg.ingest); ++i)
    ctx->verifiers.push_back(std::make_shared<handle_slot<verifier_actor>>());
  auto workers = std::max<size_t>(2, verifier_count(cfg.ingest));
  for (size_t i = 0; i < workers; ++i)
    ctx->query_workers.push_back(
      std::make_shared<handle_slot<query_worker_actor>>());
  ctx->queries = query_worker_config_for(cfg.relay.limits.max_outbound_bytes);
  if (cfg.relay.read_ahead_mb > 0)
    ctx->queries.read_ahead
      = std::make_shared<read_ahead_budget>(cfg.relay.read_ahead_mb << 20);
  if (cfg.relay.negentropy.enabled) {
    item_set_cache_config neg;
    neg.max_bytes = cfg.relay.negentropy.max_memory_mb << 20;
    neg.max_items = cfg.relay.negentropy.max_items;
    ctx->item_sets = std::make_shared<item_set_cache>(store_item_source(*store),
                                                      neg);
  }
  n->ctx_ = ctx;

  node_wiring wiring;
  wiring.cfg = cfg;
  wiring.store = store;
  wiring.keys = n->keys_;
  wiring.io = n->io_;
  wiring.relay = ctx;
  wiring.relay_tls = relay_tls;
  wiring.relay_port = &n->relay_port_;
  wiring.root = std::make_shared<handle_slot<supervisor_actor>>();
  wiring.writer = std::make_shared<handle_slot<writer_actor>>();
  wiring.health = std::make_shared<handle_slot<health_tracker_actor>>();
  wiring.batches = std::make_shared<handle_slot<pending_batches_actor>>();
  wiring.sync_manager = std::make_shared<handle_slot<sync_manager_actor>>();
  wiring.grasp = std::make_shared<handle_slot<grasp_sync_actor>>();
  wiring.infra.registry = std::make_shared<handle_slot<relay_registry_actor>>();
  wiring.infra.reconciler
    = std::make_shared<handle_slot<infra_reconciler_actor>>();
  wiring.inspector = std::make_shared<handle_slot<inspector_actor>>();
  wiring.control_plane = std::make_shared<handle_slot<control_plane_actor>>();
  wiring.reloader = std::make_shared<handle_slot<config_reloader_actor>>();
  wiring.running_config = std::make_shared<config::config>(cfg);
  wiring.policy = std::make_shared<live_value<config::policy_config>>(cfg.policy);
  wiring.grasp_settings
    = std::make_shared<live_value<config::grasp_config>>(cfg.grasp);
  wiring.infra_settings
    = std::make_shared<live_value<config::infra_config>>(cfg.infra);
  n->reloader_ = wiring.reloader;
  if (cfg.cluster.enabled) {
    wiring.membership = std::make_shared<handle_slot<membership_actor>>();
    wiring.cluster = std::make_shared<handle_slot<cluster_manager_actor>>();
    n->cluster_ = wiring.cluster;
  }
  if (cfg.federation.enabled)
    wiring.federation = std::make_shared<handle_slot<federation_actor>>();

  // One supervisor per subsystem, in start order: the ingest path runs
  // before anything feeds it (clients, sync), the hub (relay) before
  // anything subscribes to it (GRASP), and the operators' doors (runtime)
  // open last. Each has its own restart budget, so a crash loop in one
  // escalates to restarting that subsystem, never a sibling.
  auto policy = restart_policy_from(cfg.supervision);
  std::vector<child_spec> subsystems;
  subsystems.push_back(ingest_subsystem(wiring, policy));
  subsystems.push_back(relay_subsystem(wiring, policy));
  subsystems.push_back(sync_subsystem(wiring, policy));
  if (cfg.grasp.enabled)
    subsystems.push_back(grasp_subsystem(wiring, policy));
  subsystems.push_back(infra_subsystem(wiring, policy));
  if (cfg.cluster.enabled)
    subsystems.push_back(cluster_subsystem(wiring, policy));
  if (cfg.federation.enabled)
    subsystems.push_back(federation_subsystem(wiring, policy));
  subsystems.push_back(runtime_subsystem(wiring, policy));
  // Lazy: the root starts its children only once it gets its first message,
  // after its slot is set. Started eagerly, a worker thread could open the
  // admin port while this thread had not yet set the slot, and the inspector
  // would show an early client a tree of the root alone.
  n->root_ = sys.spawn<caf::lazy_init>(supervisor, std::string{"node"},
                                       std::move(subsystems), policy);
  wiring.root->set(n->root_);
  // Every child has started (or failed) before its supervisor answers
  // anything, so one walk of the tree sees how the start went.
  caf::scoped_actor self{sys};
  std::vector<child_info> tree;
  collect_tree(self, n->root_, tree);
  std::vector<std::string> failures;
  if (tree.empty())
    failures.push_back("node: the root supervisor did not answer");
  for (auto& child : tree)
    if (child.state != child_state::running)
      failures.push_back(child.name + ": " + child.last_error);
  if (failures.empty()) {
    // The admin server binds as the control plane starts; its status says
    // where, or the request fails when it could not.
    self->request(wiring.control_plane->get(), std::chrono::seconds{5},
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

void node::leave_cluster() {
  auto manager = cluster_ ? cluster_->get() : cluster_manager_actor{};
  if (!manager)
    return;
  caf::scoped_actor self{sys_};
  self
    ->request(manager, cluster_goodbye_timeout + cfg_.cluster.handover_timeout,
              atom::leave_v)
    .receive(
      [](std::string& outcome) {
        log::info("node left the cluster: {}", outcome);
      },
      [](caf::error& err) {
        log::warn("node could not leave the cluster gracefully: {}",
                  render(err));
      });
}

void node::reload_config() {
  auto reloader = reloader_->get();
  if (!reloader) {
    log::warn("node cannot reload its config: the config reloader is not "
              "running");
    return;
  }
  // The reloader logs what it applied; only a refusal needs saying here.
  caf::scoped_actor self{sys_};
  self->request(reloader, config_reload_timeout, atom::reload_v)
    .receive([](std::string&) {},
             [](caf::error& err) {
               log::warn("node did not reload its config: {}", render(err));
             });
}

node::~node() {
  leave_cluster();
  if (root_) {
    std::vector<caf::actor> actors{caf::actor_cast<caf::actor>(root_)};
    {
      caf::scoped_actor self{sys_};
      std::vector<child_info> tree;
      collect_tree(self, root_, tree);
      for (auto& child : tree)
        if (child.handle)
          actors.push_back(child.handle);
    }
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
