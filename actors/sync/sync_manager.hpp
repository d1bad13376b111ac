#pragma once

#include "actors/sync/one_shot_sync.hpp"
#include "actors/sync/relay_connection.hpp"
#include "messages/sync.hpp"
#include "messages/sync_manager.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ferry {

/// How long the SYNC MANAGER waits before respawning a RELAY CONNECTION that
/// died with an error.
inline constexpr auto relay_connection_respawn_delay = std::chrono::seconds{1};

struct sync_manager_state {
  /// What the manager keeps per sync server.
  struct entry {
    /// The definition as stored.
    sync_server def;
    /// The running connection; invalid while stopped, disabled or waiting
    /// for its respawn.
    relay_connection_actor connection;
    /// Respawns after the connection died with an error.
    uint64_t restarts = 0;
    /// A respawn is scheduled; stop, erase and put cancel it.
    bool respawn_due = false;
    /// Why the connection died last (empty: never did).
    std::string last_exit;
  };

  /// Every known definition, by id.
  std::map<std::string, entry> servers;

  /// What every connection is spawned with.
  relay_connection_deps deps;

  /// This node's cluster name; empty: no cluster, every server is ours.
  std::string cluster_node;
  /// The live members, once the cluster told; until then a cluster node
  /// owns nothing.
  std::optional<std::vector<std::string>> live;

  /// Whether this node runs `def`'s connection: always without a cluster
  /// and for replication from another member (`cluster.NAME`), else when it
  /// is the owner of the server's URL among the live members (rendezvous
  /// hashing).
  bool owns(const sync_server& def) const;

  /// API calls that changed something.
  uint64_t puts = 0;
  uint64_t erases = 0;

  /// A one-shot sync handed over by `ferry sync URL`: the thread that runs
  /// it (it blocks on the relay) and who waits for its answer.
  struct one_shot_job {
    std::thread thread;
    caf::typed_response_promise<std::string> reply;
    /// What `GET /api/v1/sync/run/ID` shows while it runs.
    std::string progress_id;
    std::string url;
    std::string direction;
    std::chrono::steady_clock::time_point started;
    std::shared_ptr<one_shot_progress> progress;
  };
  std::map<uint64_t, one_shot_job> one_shot_jobs;
  uint64_t one_shot_started = 0;
  /// The final progress (JSON) of the last jobs that named one, by progress
  /// id, newest last: a reader that races the end still sees the final
  /// figures.
  std::deque<std::pair<std::string, std::string>> one_shot_finished;
  /// Tells the jobs' threads to end early.
  std::shared_ptr<std::atomic<bool>> stopping
    = std::make_shared<std::atomic<bool>>(false);

  /// Stops every connection, and ends and joins the one-shot jobs: they
  /// must not outlive their manager.
  ~sync_manager_state();

  static inline constexpr const char* name = "sync-manager";
};

/// The SYNC MANAGER: owns the sync server definitions and one RELAY
/// CONNECTION per enabled server.
///
/// At start it merges `from_config` into the `sync_servers` family: a config
/// server is written only when the store has no definition with its id yet,
/// so changes made through the admin API survive restarts and the config
/// only seeds new servers. (To let the config win again, delete the server
/// through the API and restart.) Then it spawns a connection per enabled
/// server. A connection that dies with an error is respawned after
/// `relay_connection_respawn_delay`; one stopped on purpose is not.
///
/// This node syncs `down` with `req_stream` only: other directions and modes
/// are refused by `put` (`ec::invalid_input`), and a config server with them
/// makes the manager quit with `ec::invalid_configuration` naming its id.
///
/// Store writes are synced to disk, so spawn it `caf::detached`.
/// @param self The actor handle.
/// @param from_config The `[[sync.server]]` sections, already validated.
/// @param deps What each connection needs; `deps.store` must be set.
sync_manager_actor::behavior_type
sync_manager(sync_manager_actor::stateful_pointer<sync_manager_state> self,
             std::vector<sync_server> from_config, relay_connection_deps deps);

/// The SYNC MANAGER of cluster member `cluster_node`: as `sync_manager`, but
/// it runs no connection until the cluster tells it the live members, then
/// only those of the servers it owns among them, starting and stopping
/// connections as the live set changes.
sync_manager_actor::behavior_type clustered_sync_manager(
  sync_manager_actor::stateful_pointer<sync_manager_state> self,
  std::vector<sync_server> from_config, relay_connection_deps deps,
  std::string cluster_node);

} // namespace ferry
