#pragma once

#include "actors/cluster/cluster_gate.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "messages/cluster.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace ferry {

/// Timing of one CLUSTER MEMBER.
struct cluster_member_config {
  /// Interval between heartbeats; a heartbeat may take twice as long.
  caf::timespan heartbeat = std::chrono::seconds{1};
  /// First delay before dialling again; it doubles per failure up to `cap`.
  caf::timespan backoff = std::chrono::milliseconds{200};
  caf::timespan backoff_cap = std::chrono::seconds{5};
  /// How long connecting (TCP and CAF's handshake) may take.
  caf::timespan connect_timeout = std::chrono::seconds{5};
};

/// The connection generation that means "dial now if waiting".
inline constexpr uint64_t dial_now = 0;

struct cluster_member_state {
  /// Where the link stands.
  /// `left`: this node said goodbye; the link dials no more.
  enum class link : uint8_t { dialing, joined, waiting, self, left };

  std::string address;
  std::string host;
  uint16_t port = 0;
  cluster_member_config config;
  cluster_identity_ptr identity;
  handle_slot_ptr<membership_actor> membership;
  handle_slot_ptr<cluster_manager_actor> manager;

  /// The peer's gate while joined, and after the goodbye (the hand-over's
  /// questions go there).
  cluster_gate_actor gate;
  /// The gate a hello and join are under way with, monitored: when its
  /// connection goes down meanwhile (CAF tears down both connections of two
  /// members that dialled each other at once), the attempt fails at once
  /// instead of waiting out its request timeout.
  cluster_gate_actor joining;
  /// The name the peer proved; before the first join, the name gossip gave
  /// it (empty for a seed).
  std::string peer;
  link state = link::dialing;
  /// Bumped on every new attempt; stale timers and replies are ignored.
  uint64_t generation = 0;
  caf::timespan backoff{0};
  /// The first attempt's outcome was reported to the manager.
  bool reported = false;

  uint64_t attempts = 0;
  uint64_t joins = 0;
  uint64_t heartbeats = 0;
  uint64_t heartbeats_answered = 0;
  std::string last_error;

  static inline constexpr const char* name = "cluster-member";
};

/// @relates cluster_member_state
std::string to_string(cluster_member_state::link x);

/// A CLUSTER MEMBER: this node's link to the member (or seed) at `address`
/// ("host:port"). It dials the peer's cluster gate through the middleman,
/// checks the peer's identity (its signature over our challenge, then the
/// MEMBERSHIP's allow-list and known keys), joins with our own signature,
/// passes the members the peer knows on to the manager (gossip) and then
/// heartbeats every interval; each answer is the peer's heartbeat for the
/// MEMBERSHIP. It monitors the peer's gate: when the link goes down the
/// peer turns suspect and the member dials again with backoff, for as long
/// as it runs. A peer that fails its proof or refuses us is logged and
/// dialled again at the longest backoff. `(connect, dial_now)` cuts a
/// backoff short: the manager sends it when the peer is known to be up (it
/// joined us, or a member saw it alive), so the link is there to say
/// goodbye on and to send records over. A peer that joined our gate hands
/// over its own (`joined_us` at spawn, or `(join, gate)` later): the link
/// joins it over that connection instead of dialling, since CAF keeps one
/// connection per pair of nodes and a second dial tears the first down.
/// Of two members that know each other's names (`expected_peer` from
/// gossip, or the name the peer proved), the one with the higher name
/// leaves the dialling to the other for a connect timeout.
cluster_member_actor::behavior_type
cluster_member(cluster_member_actor::stateful_pointer<cluster_member_state> self,
               std::string address, cluster_member_config config,
               cluster_identity_ptr identity,
               handle_slot_ptr<membership_actor> membership,
               handle_slot_ptr<cluster_manager_actor> manager,
               cluster_gate_actor joined_us = {},
               std::string expected_peer = {});

} // namespace ferry
