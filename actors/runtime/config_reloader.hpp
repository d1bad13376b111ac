#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/live_value.hpp"
#include "config/config.hpp"
#include "messages/config_reload.hpp"
#include "messages/sync_manager.hpp"
#include "store/event_store.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

struct relay_context;

/// What a reload does, decided from the running config and the file's new
/// contents alone (exposed for tests).
struct reload_plan {
  /// Changed keys that take effect now, e.g. `log.level`, `sync.server`,
  /// `relay.limits.max_subscriptions`.
  std::vector<std::string> applied;
  /// Changed sections or keys that take effect only at the next start, e.g.
  /// `relay.limits.max_frame_bytes`, `store`, `policy`.
  std::vector<std::string> restart_required;
  /// `[[sync.server]]` tables new in the file, or changed in it: the file's
  /// definition replaces the stored one.
  std::vector<sync_server> servers_added;
  std::vector<sync_server> servers_changed;
  /// Ids of tables the file no longer has: their servers are deleted.
  std::vector<std::string> servers_removed;
};

/// Compares `running` (what this node applied) with `next` (the file now).
/// Servers present and unchanged in both are not touched, so a change made
/// through the admin API since survives the reload. New built-in policy
/// rules apply only when `policy_step_runs` (the node started with a policy
/// step to hold them).
reload_plan plan_reload(const config::config& running,
                        const config::config& next, bool policy_step_runs);

/// `current` with the built-in rules of `next`; the plugin and the memory of
/// refused events stay as they are until a restart.
config::policy_config with_live_rules(config::policy_config current,
                                      const config::policy_config& next);

/// `current` with the `[relay.limits]` keys a session applies at each
/// message taken from `next`; the connection-level ones (frame size,
/// outbound bytes, messages in flight) stay as they are until a restart.
config::relay_limits with_live_limits(config::relay_limits current,
                                      const config::relay_limits& next);

/// The config as this node applies it: the file's last reload for the keys
/// that reload, the start-up values for the others. Shared with the node so
/// that it outlives restarts of the reloader.
using running_config_ptr = std::shared_ptr<config::config>;

struct config_reloader_state {
  running_config_ptr running;
  /// Where `[[sync.server]]` changes go; the slot follows restarts.
  handle_slot_ptr<sync_manager_actor> sync_manager;
  /// Where new `[relay.limits]` go (null: not applied).
  std::shared_ptr<relay_context> relay;
  /// Where new built-in policy rules go.
  live_value_ptr<config::policy_config> policy;
  /// The node runs a POLICY step (else rules wait for a restart).
  bool policy_step_runs = false;
  /// Where the memory of refused events follows new rules.
  store::event_store* store = nullptr;
  uint64_t reloads = 0;
  uint64_t failed = 0;
  /// Seconds since the epoch of the last successful reload (0: none yet).
  int64_t last_reload = 0;
  /// A reload is applying: a second one waits for it.
  bool busy = false;
  static inline constexpr const char* name = "config-reloader";
};

/// The CONFIG RELOADER re-reads `running->source` on request (SIGHUP, `POST
/// /api/v1/config/reload`): `log.level` and the `[relay.limits]` keys a
/// session applies take effect at once (the latter at each session's next
/// message) and the built-in `[policy]` rules (at the next event; the
/// refusals the old rules made are forgotten, see `store::follow_policy`),
/// `[[sync.server]]`
/// tables added, changed or removed in the file go to the SYNC MANAGER as
/// the admin API's PUT and DELETE would, and every other changed section is
/// named as waiting for a restart. A file that does not load changes
/// nothing.
config_reloader_actor::behavior_type
config_reloader(config_reloader_actor::stateful_pointer<config_reloader_state> self,
                running_config_ptr running,
                handle_slot_ptr<sync_manager_actor> sync_manager,
                std::shared_ptr<relay_context> relay,
                live_value_ptr<config::policy_config> policy,
                bool policy_step_runs, store::event_store* store);

} // namespace ferry
