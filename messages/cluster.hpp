#pragma once

#include "messages/atoms.hpp"
#include "messages/cluster/version_vector.hpp"
#include "messages/inspector.hpp"
#include "messages/status.hpp"
#include "messages/supervisor.hpp"

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ferry::cluster {

/// Where a member stands in this node's view.
enum class member_state : uint8_t {
  /// Heartbeats arrive in time.
  alive,
  /// Its connection went down or it missed heartbeats, but not for
  /// `failure_timeout` yet: it keeps its relays.
  suspect,
  /// No heartbeat for `failure_timeout`: its relays move to the others.
  dead,
  /// It said goodbye: its relays move at once.
  left,
  /// Dead or left for `forget_after`: its counters are folded out of the
  /// control plane's version vectors. A heartbeat brings it back.
  forgotten,
};

/// @relates member_state
std::string to_string(member_state x);

/// What a member announces about itself, every heartbeat interval.
struct member_heartbeat {
  /// The member's unique node name.
  std::string name;
  /// Its node key (64 lowercase hex characters).
  std::string pubkey;
  /// Grows on every restart; a higher one supersedes what is known.
  uint64_t incarnation = 0;
  /// Where its Nostr relay and its admin API listen.
  std::string relay_url;
  std::string admin_url;
  /// Its cluster port as "host:port", for members that learn of it by
  /// gossip.
  std::string address;
};

/// @relates member_heartbeat
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_heartbeat& x) {
  return f(caf::meta::type_name("member_heartbeat"), x.name, x.pubkey,
           x.incarnation, x.relay_url, x.admin_url, x.address);
}

/// One member in this node's view, this node included.
struct member_info {
  std::string name;
  std::string pubkey;
  uint64_t incarnation = 0;
  std::string relay_url;
  std::string admin_url;
  /// Its cluster port as "host:port".
  std::string address;
  member_state state = member_state::alive;
  /// Wall-clock time of the last heartbeat, unix milliseconds (0: none).
  int64_t last_heartbeat = 0;
  /// Time since the last heartbeat on the actor clock.
  caf::timespan silent_for{0};
};

/// @relates member_info
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
  return f(caf::meta::type_name("member_info"), x.name, x.pubkey,
           x.incarnation, x.relay_url, x.admin_url, x.address, x.state,
           x.last_heartbeat, x.silent_for);
}

/// A node this one refused to count as a member, for /health.
struct refused_member {
  std::string name;
  std::string pubkey;
  std::string reason;
  /// Wall-clock time of the last refusal, unix milliseconds.
  int64_t last_refused = 0;
  /// Refusals of this name, key and reason so far.
  uint64_t times = 0;
};

/// @relates refused_member
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, refused_member& x) {
  return f(caf::meta::type_name("refused_member"), x.name, x.pubkey, x.reason,
           x.last_refused, x.times);
}

/// The MEMBERSHIP's view of the cluster.
struct cluster_view {
  /// This node's name.
  std::string self;
  /// Every member ever heard of, this node included, sorted by name.
  std::vector<member_info> members;
  /// Refused nodes, the most recent refusal last.
  std::vector<refused_member> refused;
};

/// @relates cluster_view
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_view& x) {
  return f(caf::meta::type_name("cluster_view"), x.self, x.members,
           x.refused);
}

} // namespace ferry::cluster

namespace ferry {

/// Whoever acts on the live set: it gets the sorted names of the members
/// that own relays (alive or suspect, this node included) on subscribing
/// and whenever that set changes.
using membership_listener_actor = caf::typed_actor<
  caf::reacts_to<atom::members, std::vector<std::string>>>;

/// The MEMBERSHIP actor interface: owns the view of the cluster's members.
using membership_actor = caf::typed_actor<
  // A member's heartbeat; refused with ec::conflict when the name is known
  // with another key (or is this node's), ec::invalid_input when the key is
  // not allowed or the heartbeat is malformed.
  caf::replies_to<atom::heartbeat, cluster::member_heartbeat>::with<
    cluster::member_state>,
  // A node failed to prove its identity (the reason): kept with the
  // refusals, for /health.
  caf::reacts_to<atom::failed, cluster::member_heartbeat, std::string>,
  // The connection to member `name` went down: it is suspect until it
  // heartbeats again or times out.
  caf::reacts_to<atom::closed, std::string>,
  // Member `name` leaves gracefully, in incarnation `incarnation`.
  caf::reacts_to<atom::leave, std::string, uint64_t>,
  // Sends the live set now and on every change.
  caf::reacts_to<atom::subscribe, membership_listener_actor>,
  caf::reacts_to<atom::unsubscribe, membership_listener_actor>,
  // The whole view.
  caf::replies_to<atom::get, atom::members>::with<cluster::cluster_view>,
  // The member that owns `key` (a relay URL or hosted relay id) among the
  // live set.
  caf::replies_to<atom::get, atom::owner, std::string>::with<std::string>,
  // Counts per state, each member, refusals and the mailbox.
  caf::replies_to<atom::get, atom::status>::with<status_map>,
  // INTERNAL: every heartbeat interval, times out silent members.
  caf::reacts_to<atom::tick>>;

/// The CLUSTER GATE: what a node publishes on its cluster port. A dialling
/// node proves its identity in two steps (hello, join) before anything else
/// it sends counts; the gate answers out-of-protocol messages with an error
/// and logs them.
using cluster_gate_actor = caf::typed_actor<
  // The dialler's challenge (64 hex): answers this node's identity, this
  // node's challenge for the dialler and this node's signature over the
  // dialler's challenge (see cluster/handshake.hpp).
  caf::replies_to<atom::hello, std::string>::with<cluster::member_heartbeat,
                                                  std::string, std::string>,
  // The dialler's identity, its signature over this node's challenge and its
  // own gate (a cluster_gate_actor: this node's link to the dialler joins
  // that gate over the same connection instead of dialling a second one):
  // refused (ec::invalid_input / ec::conflict, with the reason) or answered
  // with every member this node knows (gossip).
  caf::replies_to<atom::join, cluster::member_heartbeat, std::string,
                  caf::actor>::with<std::vector<cluster::member_info>>,
  // A joined member's heartbeat: answers this node's own heartbeat and the
  // members it knows.
  caf::replies_to<atom::heartbeat, cluster::member_heartbeat>::with<
    cluster::member_heartbeat, std::vector<cluster::member_info>>,
  // A joined member's control-plane records (JSON, see
  // cluster/control_record.hpp), handed to the CLUSTER MANAGER.
  caf::reacts_to<atom::put, std::string>,
  // A joined member leaves gracefully (its name, its incarnation): true once
  // the membership has it; refused when the sender had not joined as it.
  caf::replies_to<atom::leave, std::string, uint64_t>::with<bool>,
  // A joined (or departed) member asks which of these sync server ids run
  // connected on this node: the hand-over of a leaving member.
  caf::replies_to<atom::get, atom::connected, std::vector<std::string>>::with<
    std::vector<std::string>>,
  // Joins, refusals, out-of-protocol messages and the mailbox.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

/// The CLUSTER MEMBER: this node's link to one other member (or seed).
using cluster_member_actor = caf::typed_actor<
  // INTERNAL: dial and join now (connection generation).
  caf::reacts_to<atom::connect, uint64_t>,
  // The peer joined this node's gate and handed over its own: join it over
  // that connection unless joined already (CAF keeps one connection per
  // pair of nodes; a second dial tears the first down).
  caf::reacts_to<atom::join, cluster_gate_actor>,
  // INTERNAL: send the next heartbeat (connection generation).
  caf::reacts_to<atom::tick, uint64_t>,
  // Send control-plane records (JSON) to the peer's gate, when joined.
  caf::reacts_to<atom::put, std::string>,
  // Say goodbye to the peer and stop dialling it: answers the peer's name
  // once it took the goodbye (ec::not_found when the link is not joined).
  caf::replies_to<atom::leave>::with<std::string>,
  // Which of these sync server ids run connected on the peer; asked while
  // joined or after the goodbye (ec::not_found when the link never joined).
  caf::replies_to<atom::get, atom::connected, std::vector<std::string>>::with<
    std::vector<std::string>>,
  // Address, peer name, link state, heartbeats, failures and the mailbox.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

/// The CLUSTER MANAGER: one CLUSTER MEMBER per other member, the live set
/// passed on to the SYNC MANAGER, and the cluster as operators see it.
using cluster_manager_actor = caf::typed_actor<
  // MEMBERSHIP: the live set changed.
  caf::reacts_to<atom::members, std::vector<std::string>>,
  // Gossip: members some peer knows; the unknown ones are dialled.
  caf::reacts_to<atom::members, std::vector<cluster::member_info>>,
  // From the CLUSTER GATE: this member joined us; its gate is reached over
  // the connection it made, and the link to it joins there.
  caf::reacts_to<atom::join, cluster::member_info, cluster_gate_actor>,
  // A CLUSTER MEMBER made its first attempt at this address (joined or
  // not): the start-up settles once every seed had one.
  caf::reacts_to<atom::done, std::string>,
  // The cluster view as JSON: members, live set, relay owners, refusals.
  caf::replies_to<atom::get, atom::members>::with<std::string>,
  // A member's control-plane records (JSON), from the CLUSTER GATE: merged
  // by version vector, what changed applied to the SYNC MANAGER.
  caf::reacts_to<atom::put, std::string>,
  // Graceful leave: a goodbye on every link, so the others take this
  // node's relays at once; then, for at most `handover_timeout`, this node
  // keeps running its relays until the others report each one connected;
  // then it owns nothing and dials no one. Answers JSON: `left`,
  // `acknowledged` (peer names), `failed` (address, error), `handed_over`
  // and `not_handed_over` (sync server ids).
  caf::replies_to<atom::leave>::with<std::string>,
  // Which of these sync server ids run connected on this node (asked by a
  // leaving member through the CLUSTER GATE).
  caf::replies_to<atom::get, atom::connected, std::vector<std::string>>::with<
    std::vector<std::string>>,
  // Refused nodes as health reasons.
  caf::replies_to<atom::health>::with<health_report>,
  // The member links, as a supervisor lists its children (for the
  // inspector's tree).
  caf::replies_to<atom::get, atom::children>::with<std::vector<child_info>>,
  caf::replies_to<atom::get, atom::status>::with<status_map>,
  // INTERNAL: every heartbeat interval: subscribe again, pass the live set
  // on again (both idempotent), so either side may restart.
  caf::reacts_to<atom::tick>,
  // INTERNAL: the next round of a graceful leave's hand-over.
  caf::reacts_to<atom::leave, atom::tick>>;

} // namespace ferry
