#pragma once

#include "actors/client_session.hpp"
#include "config/config.hpp"
#include "messages/ingest.hpp"
#include "messages/nostr/keys.hpp"
#include "messages/relay.hpp"
#include "net/io_runtime.hpp"
#include "store/event_store.hpp"

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include <memory>
#include <vector>

namespace ferry {

/// The store options `cfg` asks for.
store::store_options store_options_from(const config::config& cfg);

/// The actors every event passes through on its way into the store.
struct ingest_pipeline {
  writer_actor writer;
  std::vector<verifier_actor> verifiers;
};

/// Spawns the writer and the verifier pool over `store` (detached: both do
/// blocking or CPU-bound work). `hub` may be invalid when nobody listens.
ingest_pipeline spawn_ingest_pipeline(caf::actor_system& sys,
                                      store::event_store& store, hub_actor hub,
                                      const config::ingest_config& ingest,
                                      std::chrono::seconds purge_interval);

/// Stops `actors` and waits until every one of them is gone, so that what
/// they use (the store) can be closed safely.
void stop_and_wait(caf::actor_system& sys, const std::vector<caf::actor>& actors);

/// A running node: store, ingest pipeline, hub, query workers and relay.
class node {
public:
  /// Opens the store and starts every component of `cfg`.
  static caf::expected<std::unique_ptr<node>>
  start(caf::actor_system& sys, const config::config& cfg);

  /// Stops the components, flushes and closes the store.
  ~node();

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// The port the relay listens on (useful when configured as 0).
  uint16_t relay_port() const;

  /// The node's identity.
  const nostr::keypair& keys() const {
    return keys_;
  }

private:
  explicit node(caf::actor_system& sys) : sys_(sys) {
    // nop
  }

  caf::actor_system& sys_;
  config::config cfg_;
  nostr::keypair keys_;
  std::unique_ptr<store::event_store> store_;
  std::unique_ptr<net::io_runtime> io_;
  std::shared_ptr<net::ws_server> listener_;
  hub_actor hub_;
  ingest_pipeline ingest_;
  std::vector<query_worker_actor> query_workers_;
  relay_server_actor relay_server_;
  std::shared_ptr<const relay_context> ctx_;
};

} // namespace ferry
