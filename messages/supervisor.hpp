#pragma once

#include "messages/atoms.hpp"
#include "messages/status.hpp"

#include <caf/actor.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/timespan.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ferry {

/// When and how often a supervisor restarts a failed child.
struct restart_policy {
  /// Delay before the first restart.
  caf::timespan base = std::chrono::milliseconds{100};
  /// Each further restart waits twice as long, up to this.
  caf::timespan cap = std::chrono::seconds{30};
  /// Each delay is scaled by a random factor in [1 - jitter, 1 + jitter].
  double jitter = 0.2;
  /// A child that stays up this long has its delay reset to `base`.
  caf::timespan stable_after = std::chrono::seconds{60};
  /// More than this many restarts of one child within `window` escalates:
  /// the supervisor itself fails.
  uint32_t max_restarts = 10;
  caf::timespan window = std::chrono::seconds{60};
};

/// Lifecycle of a supervised child.
enum class child_state : uint8_t {
  running,
  /// Failed; waiting out its backoff before the restart.
  restarting,
  /// Stopped on request; not restarted until started again.
  stopped,
  /// Failed, and the supervisor gave up on it (escalated).
  failed,
};

/// @relates child_state
std::string to_string(child_state x);

/// What a supervisor knows about one child.
struct child_info {
  /// Unique in the node, e.g. "writer", "verifier-2".
  std::string name;
  /// What it is, e.g. "verifier"; "supervisor" for nested supervisors.
  std::string kind;
  /// The supervising actor's name.
  std::string parent;
  child_state state = child_state::running;
  uint32_t restarts = 0;
  /// Rendered exit reason of the last failure, empty if none.
  std::string last_error;
  /// Unix time (s) of the last failure, 0 if none.
  int64_t last_error_at = 0;
  /// Unix time (s) the current incarnation started.
  int64_t started_at = 0;
  /// The running incarnation (invalid unless running).
  caf::actor handle;
};

/// @relates child_info
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_info& x) {
  return f(caf::meta::type_name("child_info"), x.name, x.kind, x.parent,
           x.state, x.restarts, x.last_error, x.last_error_at, x.started_at,
           x.handle);
}

/// The SUPERVISOR actor interface.
using supervisor_actor = caf::typed_actor<
  // Returns every child (nested supervisors appear as kind "supervisor").
  caf::replies_to<atom::get, atom::children>::with<std::vector<child_info>>,
  // Restarts a child now (counted as a restart, no backoff).
  caf::replies_to<atom::restart, std::string>::with<bool>,
  // Stops a child; it stays stopped until started.
  caf::replies_to<atom::stop, std::string>::with<bool>,
  // Starts a stopped (or failed) child.
  caf::replies_to<atom::start, std::string>::with<bool>,
  // Kills a child with ec::injected_fault, as a crash would (tests, drills).
  caf::replies_to<atom::fault, std::string>::with<bool>,
  // The supervisor's own status.
  caf::replies_to<atom::get, atom::status>::with<status_map>,
  // INTERNAL: a child's backoff elapsed; restart it (incarnation number).
  caf::reacts_to<atom::restart, std::string, uint64_t>,
  // INTERNAL: a child stayed up long enough; reset its backoff.
  caf::reacts_to<atom::stable, std::string, uint64_t>>;

} // namespace ferry
