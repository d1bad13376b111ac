#pragma once

#include "actors/cluster/cluster_gate.hpp"
#include "actors/cluster/cluster_member.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "messages/cluster.hpp"
#include "messages/sync_manager.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ferry {

/// How long the CLUSTER MANAGER waits for the actors it asks.
inline constexpr auto cluster_manager_ask_timeout = std::chrono::seconds{2};

/// What the CLUSTER MANAGER starts from.
struct cluster_manager_config {
  /// Cluster ports of members to join through ("host:port").
  std::vector<std::string> seeds;
  /// The links' timing.
  cluster_member_config member;
  /// The live set goes to the sync manager at the latest this long after
  /// start, even when seeds have not answered yet.
  caf::timespan settle_limit = std::chrono::seconds{5};
};

struct cluster_manager_state {
  /// One link per address.
  struct link {
    cluster_member_actor handle;
    /// Respawns after the link actor died with an error.
    uint32_t restarts = 0;
    std::string last_error;
    int64_t started_at = 0;
  };

  cluster_manager_config config;
  cluster_identity_ptr identity;
  handle_slot_ptr<membership_actor> membership;
  handle_slot_ptr<sync_manager_actor> sync_manager;

  std::map<std::string, link> links;
  /// Seeds whose first attempt is still out.
  std::set<std::string> seeds_pending;
  /// The live set passed on to the sync manager from now on.
  bool settled = false;
  /// The latest live set from the membership.
  std::vector<std::string> live;

  /// Stops every link: they must not outlive their manager.
  ~cluster_manager_state();

  static inline constexpr const char* name = "cluster-manager";
};

/// The CLUSTER MANAGER: keeps one CLUSTER MEMBER per known address (the
/// seeds, then every member gossip names), respawning one that dies with an
/// error. It listens to the MEMBERSHIP's live set and hands it to the SYNC
/// MANAGER, which runs the connections of the relays this node owns; until
/// every seed had its first attempt (or `settle_limit` passed) it hands
/// nothing on, so a node rejoining a running cluster does not first grab
/// every relay. It answers the cluster view as JSON (members, live set,
/// which member owns which sync server) and the refusals as health reasons.
cluster_manager_actor::behavior_type
cluster_manager(
  cluster_manager_actor::stateful_pointer<cluster_manager_state> self,
  cluster_manager_config config, cluster_identity_ptr identity,
  handle_slot_ptr<membership_actor> membership,
  handle_slot_ptr<sync_manager_actor> sync_manager,
  handle_slot_ptr<cluster_manager_actor> own_slot);

/// The cluster view as operators read it (`GET /api/v1/cluster`, `ferry
/// console cluster`): `self`, `live`, `members` (name, pubkey, state,
/// incarnation, address, relay and admin URL, last heartbeat and its age),
/// `relays` (each sync server's id, URL, owner among the live set and whether
/// it runs here) and `refused` (name, pubkey, reason, times). `servers_json`
/// is the SYNC MANAGER's server list (a JSON array; empty: unknown).
std::string cluster_view_json(const cluster::cluster_view& view,
                              const std::string& servers_json);

} // namespace ferry
