#pragma once

#include "actors/relay/client_session.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "config/config.hpp"
#include "messages/cluster.hpp"
#include "messages/config_reload.hpp"
#include "messages/ingest.hpp"
#include "messages/inspector.hpp"
#include "messages/policy.hpp"
#include "messages/nostr/keys.hpp"
#include "messages/relay.hpp"
#include "messages/supervisor.hpp"
#include "net/io_runtime.hpp"
#include "store/event_store.hpp"

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include <atomic>
#include <memory>
#include <vector>

namespace ferry {

/// The store options `cfg` asks for.
store::store_options store_options_from(const config::config& cfg);

/// The restart policy `cfg` asks for.
restart_policy restart_policy_from(const config::supervision_config& cfg);

/// The actors every event passes through, unsupervised: for one-shot tools
/// such as `ferry import`.
struct ingest_pipeline {
  writer_actor writer;
  std::vector<verifier_actor> verifiers;
  /// The `[policy]` step; unset when there are neither rules nor a plugin.
  policy_actor policy;
  /// The `[policy.plugin]` host; unset without a plugin.
  plugin_host_actor plugin;
  /// The thread the plugin's pipes run on; set with `plugin`.
  std::shared_ptr<net::io_runtime> plugin_io;

  /// Every actor, in the order they stop: what feeds the others first.
  std::vector<caf::actor> actors() const;
};

/// Spawns the writer and the verifier pool over `store` (detached: both do
/// blocking or CPU-bound work), with no live fan-out, and the policy step
/// with its plugin when `policy` asks for them, as `ferry node` judges
/// events.
ingest_pipeline spawn_ingest_pipeline(caf::actor_system& sys,
                                      store::event_store& store,
                                      const config::ingest_config& ingest,
                                      const config::policy_config& policy = {});

/// Stops `actors` and waits until every one of them is gone, so that what
/// they use (the store) can be closed safely.
void stop_and_wait(caf::actor_system& sys, const std::vector<caf::actor>& actors);

/// A running node: the store and the supervised actor tree of DESIGN.md —
/// under the root supervisor "node", one supervisor per subsystem (ingest,
/// relay, sync, grasp when enabled, infra, runtime; see
/// docs/architecture.md), each over the actors of its folder in actors/.
class node {
public:
  /// Opens the store and starts the tree. Fails when a listener cannot bind
  /// or any actor fails to start.
  static caf::expected<std::unique_ptr<node>>
  start(caf::actor_system& sys, const config::config& cfg);

  /// Leaves the cluster gracefully (when in one), stops the tree, then
  /// flushes and closes the store.
  ~node();

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// The port the relay listens on (useful when configured as 0).
  uint16_t relay_port() const {
    return relay_port_;
  }

  /// The node's identity.
  const nostr::keypair& keys() const {
    return keys_;
  }

  /// The port of the admin HTTP API.
  uint16_t admin_port() const {
    return admin_port_;
  }

  /// The root supervisor.
  const supervisor_actor& root() const {
    return root_;
  }

  /// Re-reads the config file (SIGHUP) and applies what reloads without a
  /// restart; logs the outcome. Blocks until the reloader answers.
  void reload_config();

private:
  explicit node(caf::actor_system& sys) : sys_(sys) {
    // nop
  }

  /// Says goodbye to the other members, so they take this node's relays at
  /// once instead of after `failure_timeout`.
  void leave_cluster();

  caf::actor_system& sys_;
  config::config cfg_;
  nostr::keypair keys_;
  std::unique_ptr<store::event_store> store_;
  std::shared_ptr<net::io_runtime> io_;
  std::shared_ptr<relay_context> ctx_;
  supervisor_actor root_;
  /// Set only when the cluster is enabled.
  handle_slot_ptr<cluster_manager_actor> cluster_;
  handle_slot_ptr<config_reloader_actor> reloader_;
  std::atomic<uint16_t> relay_port_{0};
  uint16_t admin_port_ = 0;
};

} // namespace ferry
