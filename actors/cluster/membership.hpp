#pragma once

#include "messages/cluster.hpp"
#include "messages/error.hpp"

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace ferry {

/// Tunables and identity of the MEMBERSHIP.
struct membership_config {
  /// This node as it announces itself; always alive in its own view.
  cluster::member_heartbeat self;
  /// Interval of the tick that checks for silent members (and of the
  /// heartbeats members send).
  caf::timespan heartbeat = std::chrono::seconds{1};
  /// A member silent for this long is dead. Detection happens at the first
  /// tick after it, so within `failure_timeout + heartbeat`.
  caf::timespan failure_timeout = std::chrono::seconds{5};
  /// A member dead or left and silent for this long is forgotten: the
  /// control plane folds its counters away. Longer than `failure_timeout`.
  caf::timespan forget_after = std::chrono::hours{1};
  /// Node keys allowed to join (hex); empty allows any key.
  std::vector<std::string> allowed_pubkeys;
  /// Refusals kept for /health; the oldest go first.
  size_t max_refused = 64;
};

/// Checks this node's name and key, that `failure_timeout` exceeds the
/// heartbeat interval (a healthy member would flap otherwise) and
/// `forget_after` exceeds `failure_timeout`, that every allowed key is hex
/// and that this node's own key is among them.
/// @relates membership_config
caf::error validate(const membership_config& config);

struct membership_state {
  using time_point = caf::actor_clock::time_point;

  /// What the view keeps per member.
  struct member {
    cluster::member_info info;
    /// Actor-clock time of the last heartbeat.
    time_point last_seen{};
  };

  membership_config config;

  /// Every member ever heard of, by name; this node included.
  std::map<std::string, member> members;

  /// Refused nodes, the most recent refusal last.
  std::vector<cluster::refused_member> refused;

  /// Who gets the live set.
  std::vector<membership_listener_actor> listeners;

  /// Sets this node up as the view's first member.
  void configure(const membership_config& cfg, time_point now);

  // -- inputs -----------------------------------------------------------------

  /// Applies a heartbeat.
  /// @returns the sender's state in the view, or why it was refused.
  caf::expected<cluster::member_state>
  heartbeat(const cluster::member_heartbeat& hb, time_point now);

  /// The connection to `name` went down: alive turns suspect.
  void connection_lost(const std::string& name);

  /// `name` leaves in `incarnation`; an older incarnation is ignored.
  void leave(const std::string& name, uint64_t incarnation);

  /// Times out silent members: suspect after two missed heartbeats, dead
  /// after `failure_timeout`, forgotten once dead or left and silent for
  /// `forget_after`.
  void tick(time_point now);

  // -- queries ----------------------------------------------------------------

  /// Sorted names of the members that own relays: alive or suspect.
  std::vector<std::string> live_set() const;

  /// The owner of `key` among the live set (this node at least).
  std::string owner(const std::string& key) const;

  cluster::cluster_view view(time_point now) const;

  /// The reply to `(get, status)` without the mailbox.
  status_map status(time_point now) const;

  // -- helpers ----------------------------------------------------------------

  /// Records (or counts again) a refusal and returns it as an error.
  caf::error refuse(const cluster::member_heartbeat& hb, ec code,
                    std::string reason);

  bool allowed(const std::string& pubkey) const;

  static inline constexpr const char* name = "membership";
};

/// The MEMBERSHIP: owns this node's view of the cluster, fed by heartbeats,
/// connection losses and graceful leaves, and by its own tick, which times
/// out members that stopped heartbeating (a stalled member is not alive just
/// because its socket is open). Tells its listeners the live set whenever it
/// changes and answers which live member owns a relay (rendezvous hashing).
/// @param self The actor handle.
/// @param config Identity, timeouts and allow-list; must validate.
membership_actor::behavior_type
membership(membership_actor::stateful_pointer<membership_state> self,
           membership_config config);

} // namespace ferry
