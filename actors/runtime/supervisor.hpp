#pragma once

#include "messages/supervisor.hpp"

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace ferry {

/// How to start one child; the supervisor owns its restart policy.
struct child_spec {
  /// Unique in the node, e.g. "writer".
  std::string name;
  /// What it is, e.g. "writer"; "supervisor" for a nested supervisor.
  std::string kind;
  /// Spawns a fresh incarnation on the supervisor's thread. `self` is the
  /// supervisor: `self->spawn(...)` or
  /// `self->system().spawn<caf::detached>(...)`.
  /// Spawn plainly: the supervisor monitors the result itself. Throwing or
  /// returning an invalid handle counts as a failure of the child.
  std::function<caf::actor(caf::local_actor* self)> start;
  /// Optional: told about every new incarnation, e.g. to update the handles
  /// other components use.
  std::function<void(const caf::actor&)> on_started;
  /// Optional: told when the incarnation `on_started` announced is gone or
  /// going (stopped, crashed, ended for a restart), e.g. to empty a slot so
  /// that senders pass over it until the next incarnation starts.
  std::function<void()> on_stopped;
};

/// A child that is itself a supervisor over `children`, e.g. one subsystem
/// of the node: its parent restarts it, and so all of `children` together,
/// when it gives up on one of them.
child_spec supervisor_spec(std::string name, std::vector<child_spec> children,
                           restart_policy policy);

/// Checks that `policy` describes a usable backoff and restart limit.
/// @relates restart_policy
caf::error validate(const restart_policy& policy);

struct supervisor_state {
  /// One supervised child with its restart bookkeeping.
  struct child {
    child_spec spec;
    child_state state = child_state::running;
    /// The running incarnation, invalid otherwise.
    caf::actor handle;
    /// Bumped on every start attempt; timers carry it, so a timer meant for
    /// an earlier incarnation is ignored.
    uint64_t incarnation = 0;
    /// Delay before the next restart, before jitter.
    caf::timespan backoff{0};
    uint32_t restarts = 0;
    /// Failures inside the current window, oldest first.
    std::deque<caf::actor_clock::time_point> failures;
    /// Set by `(restart, name)`: the coming down_msg of this incarnation
    /// restarts it at once instead of reading as a deliberate stop.
    bool restart_requested = false;
    std::string last_error;
    int64_t last_error_at = 0;
    int64_t started_at = 0;

    /// The running incarnation is gone or going: forgets its handle and
    /// tells `spec.on_stopped` (once per incarnation).
    void forget_incarnation();
  };

  /// Stops any child still running: a supervisor ends however it ends
  /// (including `exit_reason::kill`, which cannot be trapped), and its
  /// monitored children would otherwise outlive it.
  ~supervisor_state();

  /// This supervisor's name in the tree: its children's `parent`.
  std::string label;

  restart_policy policy;

  /// In spec order; never resized after start-up, so references stay valid.
  std::vector<child> children;

  /// Restarts of all children since this supervisor started.
  uint64_t restarts = 0;

  /// Draws the jitter factors.
  std::mt19937 rng{std::random_device{}()};

  /// @returns the child called `name`, or nullptr.
  child* find(const std::string& name);

  /// @returns the child whose running incarnation is `addr`, or nullptr.
  child* find(const caf::actor_addr& addr);

  /// Returns the jittered delay before restarting `c` and doubles its
  /// backoff up to the cap.
  caf::timespan next_delay(child& c);

  /// Records a failure of `c` at `now`.
  /// @returns true if `c` failed more than `max_restarts` times in `window`.
  bool note_failure(child& c, caf::actor_clock::time_point now);

  /// Sends `user_shutdown` to every running child and forgets its handle.
  void stop_children();

  /// Builds the reply to `(get, children)`, in spec order.
  std::vector<child_info> snapshot() const;

  static inline constexpr const char* name = "supervisor";
};

/// The SUPERVISOR: starts its children, monitors them, restarts those that
/// fail after an exponential backoff, and fails itself (so that its parent
/// applies its own policy) when one child fails too often.
/// @param self The actor handle.
/// @param name This supervisor's name in the tree.
/// @param children What to start, in order; names must be unique.
/// @param policy Backoff and restart limit, shared by all children.
supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
           std::string name, std::vector<child_spec> children,
           restart_policy policy);

} // namespace ferry
