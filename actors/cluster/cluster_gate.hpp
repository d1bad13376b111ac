#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "messages/cluster.hpp"
#include "messages/nostr/keys.hpp"

#include <caf/node_id.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace ferry {

/// How long the CLUSTER GATE waits for the MEMBERSHIP.
inline constexpr auto cluster_gate_ask_timeout = std::chrono::seconds{2};

/// Who this node is in the cluster, shared by its cluster actors. The gate
/// fills in `self.address` once it listens (the port may be picked by the
/// system), before the others start.
struct cluster_identity {
  cluster::member_heartbeat self;
  nostr::keypair keys;
  /// This node's gate (a new handle after a restart): a link hands it to
  /// the peer it joins, so the peer joins back over the same connection.
  handle_slot_ptr<cluster_gate_actor> gate
    = std::make_shared<handle_slot<cluster_gate_actor>>();
};

using cluster_identity_ptr = std::shared_ptr<cluster_identity>;

struct cluster_gate_state {
  /// What the gate knows of one dialling node (one CAF node id).
  struct peer {
    /// The challenge the gate gave it in `hello`.
    std::string challenge;
    /// Set once it joined: the name it proved.
    std::string name;
    /// It said goodbye: it may only ask which of its relays run here now.
    bool departed = false;

    bool joined() const {
      return !name.empty() && !departed;
    }
  };

  cluster_identity_ptr identity;
  handle_slot_ptr<membership_actor> membership;
  handle_slot_ptr<cluster_manager_actor> manager;

  /// Nodes between hello and join, and joined ones.
  std::map<caf::node_id, peer> peers;

  uint64_t hellos = 0;
  uint64_t joins = 0;
  uint64_t refused = 0;
  uint64_t out_of_protocol = 0;
  /// Control-plane record batches from joined members.
  uint64_t records_received = 0;

  static inline constexpr const char* name = "cluster-gate";
};

/// The CLUSTER GATE, published on the cluster port. A dialling node sends
/// `hello` with its challenge and gets this node's identity, a challenge
/// and this node's signature; then `join` with its identity and signature
/// over that challenge. A join whose signature does not verify, whose key
/// is not allowed or whose name is known with another key is refused with
/// the reason (and kept among the MEMBERSHIP's refusals). Only a joined
/// node's heartbeats, records and leave count, and after its leave only its
/// question which relays run connected here (the hand-over, answered by the
/// CLUSTER MANAGER); anything else is out of protocol: refused, logged, and
/// the node must start over with hello.
/// @param identity This node; `identity->self.address` must be set.
/// @param membership The view that decides on joins and heartbeats.
/// @param manager Told about every node that joins, so it dials it back.
cluster_gate_actor::behavior_type
cluster_gate(cluster_gate_actor::stateful_pointer<cluster_gate_state> self,
             cluster_identity_ptr identity,
             handle_slot_ptr<membership_actor> membership,
             handle_slot_ptr<cluster_manager_actor> manager);

} // namespace ferry
