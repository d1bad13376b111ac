#pragma once

#include "actors/cluster/cluster_gate.hpp"
#include "actors/cluster/cluster_member.hpp"
#include "actors/cluster/control_replica.hpp"
#include "actors/infra/relay_registry.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "messages/cluster.hpp"
#include "messages/grasp.hpp"
#include "messages/sync_manager.hpp"

#include <caf/actor_clock.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ferry::store {
class event_store;
} // namespace ferry::store

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
  /// Where the replicated control plane's records persist (the node's
  /// store); null: kept in memory only.
  store::event_store* store = nullptr;
  /// A graceful leave waits at most this long after its goodbyes for the
  /// others to report this node's relays connected.
  caf::timespan handover_timeout = std::chrono::seconds{5};
  /// Each replication link that is connected and caught up reconciles
  /// everything with its member again this often (at the first heartbeat
  /// tick after it): the live tail alone would never bring an event it
  /// missed. Not in ferry.toml yet.
  caf::timespan reconcile_interval = std::chrono::minutes{1};
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
  /// The relay registry (hosted relays, a replicated kind) and the infra
  /// reconciler (told the live set: it pushes only the relays it owns).
  infra_handles infra;
  /// GRASP SYNC (told the live set: it runs only the GRASP relays this
  /// node owns); empty without `[grasp]`.
  handle_slot_ptr<grasp_sync_actor> grasp;

  /// A graceful leave in progress: the goodbyes, then the hand-over.
  struct leaving_round {
    /// Names of the peers that took the goodbye.
    std::vector<std::string> acknowledged;
    /// (address, error) of the links that did not.
    std::vector<std::pair<std::string, std::string>> failed;
    /// The links whose peer took the goodbye: asked for the hand-over.
    std::vector<cluster_member_actor> took;
    /// Relays connected here when the leave began that no other member has
    /// reported connected yet, and those one has.
    std::set<std::string> pending;
    std::set<std::string> handed_over;
    /// Goodbyes, then answers of one hand-over round, still out.
    size_t outstanding = 0;
    caf::actor_clock::time_point deadline;
    caf::typed_response_promise<std::string> promise;
  };

  std::map<std::string, link> links;
  std::optional<leaving_round> leaving;
  /// Seeds whose first attempt is still out.
  std::set<std::string> seeds_pending;
  /// The live set passed on to the sync manager from now on.
  bool settled = false;
  /// The heartbeat tick the start-up settled at.
  uint64_t settled_tick = 0;
  /// The replication servers of members no one lists any more (forgotten
  /// before this node started) were removed: once per run.
  bool unknown_replication_dropped = false;
  /// This node left the cluster (graceful leave): no links, no relays.
  bool left = false;
  /// The replicated control plane: the sync server definitions and the
  /// hosted relays.
  control_replica replica{""};
  /// Merged records being applied locally; bumped per apply,
  /// so a definition list read before an apply is not taken for local edits.
  size_t applies_in_flight = 0;
  uint64_t apply_generation = 0;
  /// (kind, id) of the merged records the sync manager or the relay
  /// registry refused (or could not take): their local definition differs
  /// without being an edit here. Applied again every anti-entropy round.
  std::set<std::pair<std::string, std::string>> unapplied;
  /// Of those, the ones refused, with why: in /health until they apply.
  std::map<std::pair<std::string, std::string>, std::string> refused_records;
  /// When this node first held each version of another member's cursor
  /// claim (record id -> local unix ms; messages/cluster/cursor_claim.hpp).
  std::map<std::string, int64_t> claims_heard;
  /// When this node last asked its replication link from each member to
  /// reconcile again, to confirm that member's claims (local unix ms).
  std::map<std::string, int64_t> confirm_asked;
  /// Heartbeat ticks so far (anti-entropy rounds).
  uint64_t ticks = 0;
  /// The latest live set from the membership.
  std::vector<std::string> live;
  /// The replication server body last put per member (name): only a
  /// changed one is put again.
  std::map<std::string, std::string> replication;
  /// Every member the membership has called forgotten since this node
  /// started, or a member's control message named forgotten (this node
  /// itself included, when it returns after the cluster forgot it), also
  /// those back since: the control plane keeps folding their counters, so
  /// a returning member's edits add to what `retired` holds and happen
  /// after the versions folded before.
  std::set<std::string> forgotten;
  /// When the replication links last reconciled (every
  /// `config.reconcile_interval`, checked each heartbeat tick).
  caf::actor_clock::time_point last_reconcile;

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
/// every relay. A graceful leave says goodbye on every link and keeps this
/// node's relays running until the members that took the goodbye report
/// each of them connected (or `handover_timeout` passed); the INFRA
/// RECONCILER gets the same live set and pushes only
/// the hosted relays this node owns, and GRASP SYNC runs only the GRASP
/// relays this node owns. It replicates events from every other
/// member: one sync server `cluster.NAME` per member
/// (messages/cluster/replication.hpp), enabled while the member is alive or
/// suspect. It replicates the sync server definitions and the hosted relays
/// (kinds "sync_server" and "hosted_relay"): each heartbeat it reads them
/// from the SYNC MANAGER and the RELAY REGISTRY (an edit here counts one
/// more for this member in the record's version vector),
/// sends changed records to every member at once and every record every
/// few heartbeats, and merges what members send with `cluster::resolve`
/// (control_replica), applying what changed; concurrent edits are settled
/// the same way on every member and reported. It answers the cluster view as JSON
/// (members with their replication link, live set, which member owns which
/// sync server and which pushes which hosted relay) and the refusals as
/// health reasons.
cluster_manager_actor::behavior_type
cluster_manager(
  cluster_manager_actor::stateful_pointer<cluster_manager_state> self,
  cluster_manager_config config, cluster_identity_ptr identity,
  handle_slot_ptr<membership_actor> membership,
  handle_slot_ptr<sync_manager_actor> sync_manager, infra_handles infra,
  handle_slot_ptr<grasp_sync_actor> grasp,
  handle_slot_ptr<cluster_manager_actor> own_slot);

/// The cluster view as operators read it (`GET /api/v1/cluster`, `ferry
/// console cluster`): `self`, `live`, `members` (name, pubkey, state,
/// incarnation, address, relay and admin URL, last heartbeat and its age,
/// and `replication`: this node's link from it), `relays` (each sync
/// server's id, URL, owner among the live set and whether it runs here;
/// replication links are not relays), `hosted_relays` (each hosted relay's
/// id, its owner among the live set, the one member that pushes it to the
/// management API, and `pushed_here`) and `refused` (name, pubkey, reason,
/// times). `servers_json` is the SYNC MANAGER's server list and
/// `hosted_json` the RELAY REGISTRY's relay list (JSON arrays; empty:
/// unknown). `now` is unix seconds, for the replication lag.
/// `conflicts` are the replicated control plane's (as `conflicts`: kind, id,
/// when, and the kept and dropped versions with their clocks and
/// definitions).
std::string cluster_view_json(const cluster::cluster_view& view,
                              const std::string& servers_json,
                              const std::string& hosted_json, int64_t now,
                              const std::vector<control_conflict>& conflicts);

/// A conflict as a /health reason and log line.
std::string conflict_reason(const control_conflict& c);

/// The replication server definition (JSON) that pulls every event of
/// member `m` into this node: NIP-77 reconciliation of everything on each
/// connect, then a live tail; its relay must name `m`'s node key in NIP-11
/// and this node authenticates with NIP-42 so `m` does not echo back what
/// came from here.
std::string replication_server_body(const cluster::member_info& m,
                                    bool enabled);

} // namespace ferry
