#include "actors/node.hpp"

#include "actors/hub.hpp"
#include "actors/logging.hpp"
#include "actors/node_key.hpp"
#include "actors/query_worker.hpp"
#include "actors/relay_server.hpp"
#include "actors/verifier.hpp"
#include "actors/writer.hpp"
#include "messages/error.hpp"

#include <caf/actor_cast.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <thread>

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

} // namespace

store::store_options store_options_from(const config::config& cfg) {
  store::store_options opts;
  opts.path = cfg.store.path;
  opts.block_cache_mb = cfg.store.block_cache_mb;
  opts.write_buffer_mb = cfg.store.write_buffer_mb;
  opts.sync_writes = cfg.store.sync_writes;
  return opts;
}

ingest_pipeline spawn_ingest_pipeline(caf::actor_system& sys,
                                      store::event_store& store, hub_actor hub,
                                      const config::ingest_config& ingest,
                                      std::chrono::seconds purge_interval) {
  ingest_pipeline result;
  writer_config wcfg;
  wcfg.batch_max = ingest.writer_batch_max;
  wcfg.purge_interval = purge_interval;
  result.writer = sys.spawn<caf::detached>(writer, &store, std::move(hub), wcfg);
  auto n = verifier_count(ingest);
  for (size_t i = 0; i < n; ++i)
    result.verifiers.push_back(
      sys.spawn<caf::detached>(verifier, &store, result.writer));
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
  auto keys = load_or_create_node_key(node_key_path(cfg));
  if (!keys)
    return keys.error();
  n->keys_ = *keys;
  n->hub_ = sys.spawn(hub);
  n->ingest_ = spawn_ingest_pipeline(sys, *n->store_, n->hub_, cfg.ingest,
                                     cfg.store.purge_interval);
  auto workers = std::max<size_t>(2, verifier_count(cfg.ingest));
  for (size_t i = 0; i < workers; ++i)
    n->query_workers_.push_back(
      sys.spawn<caf::detached>(
        query_worker, n->store_.get(),
        query_worker_config_for(cfg.relay.limits.max_outbound_bytes)));
  auto ctx = std::make_shared<relay_context>();
  ctx->limits = cfg.relay.limits;
  ctx->store = n->store_.get();
  ctx->verifiers = n->ingest_.verifiers;
  ctx->query_workers = n->query_workers_;
  ctx->hub = n->hub_;
  n->io_ = std::make_unique<net::io_runtime>(1);
  n->listener_ = make_relay_listener(sys, n->io_->context(), cfg.relay, ctx);
  if (auto failure = n->listener_->start(); !failure.empty())
    return caf::make_error(ec::network_failure, "relay: " + failure);
  n->relay_server_ = sys.spawn(relay_server, n->listener_);
  n->ctx_ = std::move(ctx);
  log::info("relay-server listening on ws://{}:{}", cfg.relay.address,
            n->relay_port());
  log::info("node identity {}", nostr::to_hex(n->keys_.pubkey));
  return n;
}

uint16_t node::relay_port() const {
  return listener_->port();
}

node::~node() {
  if (listener_) {
    listener_->stop();
    // Sessions must be gone before the I/O threads their sockets use stop.
    wait_until([this] { return ctx_->live_sessions == 0; },
               std::chrono::seconds{5});
  }
  std::vector<caf::actor> actors{caf::actor_cast<caf::actor>(relay_server_)};
  for (auto& w : query_workers_)
    actors.push_back(caf::actor_cast<caf::actor>(w));
  for (auto& v : ingest_.verifiers)
    actors.push_back(caf::actor_cast<caf::actor>(v));
  actors.push_back(caf::actor_cast<caf::actor>(ingest_.writer));
  actors.push_back(caf::actor_cast<caf::actor>(hub_));
  stop_and_wait(sys_, actors);
  listener_.reset();
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
