#pragma once

#include "messages/atoms.hpp"
#include "messages/federation_call.hpp"
#include "messages/policy.hpp"
#include "messages/status.hpp"
#include "messages/supervisor.hpp"

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ferry {

/// One actor of the node as the console shows it.
struct actor_info {
  std::string name;
  std::string kind;
  std::string parent;
  child_state state = child_state::running;
  /// Messages waiting in its mailbox (-1: it did not answer in time).
  int64_t mailbox = 0;
  uint32_t restarts = 0;
  std::string last_error;
  int64_t last_error_at = 0;
  /// Seconds since the current incarnation started.
  int64_t uptime = 0;
  /// The actor's own status report (empty when not running or busy).
  status_map status;
};

/// @relates actor_info
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_info& x) {
  return f(caf::meta::type_name("actor_info"), x.name, x.kind, x.parent,
           x.state, x.mailbox, x.restarts, x.last_error, x.last_error_at,
           x.uptime, x.status);
}

/// Overall health: "ok" or "degraded", with the reasons.
struct health_report {
  std::string status = "ok";
  std::vector<std::string> reasons;
};

/// @relates health_report
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, health_report& x) {
  return f(caf::meta::type_name("health_report"), x.status, x.reasons);
}

/// The INSPECTOR knows every actor of the tree and acts on them for the
/// console and the admin API.
using inspector_actor = caf::typed_actor<
  // Every actor of the tree, depth first, each with its status.
  caf::replies_to<atom::get, atom::actors>::with<std::vector<actor_info>>,
  // One actor by name (error ec::invalid_input when unknown).
  caf::replies_to<atom::get, std::string>::with<actor_info>,
  // Node-wide counters (events, connections, store size, ...).
  caf::replies_to<atom::stats>::with<status_map>,
  // ok / degraded with reasons (failed or restarting actors, hosted relays
  // given up, ...).
  caf::replies_to<atom::health>::with<health_report>,
  // Restart / stop / start / fault one actor by name; replies with a
  // one-line outcome, or an error naming the actor.
  caf::replies_to<atom::restart, std::string>::with<std::string>,
  caf::replies_to<atom::stop, std::string>::with<std::string>,
  caf::replies_to<atom::start, std::string>::with<std::string>,
  caf::replies_to<atom::fault, std::string>::with<std::string>,
  // Forwarded to the SYNC MANAGER; each replies with its JSON text, or its
  // error (ec::not_found for an unknown server id).
  // Every sync server with its runtime state (a JSON array).
  caf::replies_to<atom::servers>::with<std::string>,
  // One sync server with its runtime state.
  caf::replies_to<atom::server, std::string>::with<std::string>,
  // Runs a catch-up of one sync server now.
  caf::replies_to<atom::sync_now, std::string>::with<std::string>,
  // Starts / stops one sync server's connection (not an actor of the tree).
  caf::replies_to<atom::start, atom::server, std::string>::with<std::string>,
  caf::replies_to<atom::stop, atom::server, std::string>::with<std::string>,
  // Forwarded to GRASP SYNC (ec::not_found when it is not running).
  // Every wanted repository: relays, confirmed on, pending on (JSON array).
  caf::replies_to<atom::repos>::with<std::string>,
  // One repository (JSON object; ec::not_found when not synced here).
  caf::replies_to<atom::repo, std::string>::with<std::string>,
  // Forwarded to the RELAY REGISTRY and the INFRA RECONCILER (JSON text, or
  // ec::not_found for an unknown relay).
  // Every hosted relay (a JSON array).
  caf::replies_to<atom::relays>::with<std::string>,
  // One hosted relay with its recent activity.
  caf::replies_to<atom::relay, std::string>::with<std::string>,
  // The members of one hosted relay, from the management API.
  caf::replies_to<atom::members, std::string>::with<std::string>,
  // Forwarded to the CLUSTER MANAGER: the cluster view as JSON
  // (ec::not_found when the node is not in a cluster).
  caf::replies_to<atom::get, atom::members>::with<std::string>,
  // Forwarded to the CLUSTER MANAGER: leave the cluster gracefully (JSON:
  // who took the goodbye).
  caf::replies_to<atom::leave>::with<std::string>,
  // The latest refused events, of one source or ("") of all (JSON array).
  caf::replies_to<atom::refused, std::string>::with<std::string>,
  // Forwarded to the FEDERATION MANAGER: an operator's call ("list", "get",
  // "reset", "pause", "resume"); peers' calls are refused.
  caf::replies_to<federation_call>::with<federation_reply>>;

/// The CONSOLE GATE is what the node publishes on its inspection port: it
/// hands the inspector to a console that presents the shared secret (empty
/// when none is configured, which is only allowed on loopback).
using console_gate_actor = caf::typed_actor<
  // Hands out the inspector for the right secret.
  caf::replies_to<atom::login, std::string>::with<inspector_actor>,
  // Logins accepted and refused, and the mailbox size.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

} // namespace ferry
