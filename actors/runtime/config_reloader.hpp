#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/live_value.hpp"
#include "config/config.hpp"
#include "messages/config_reload.hpp"
#include "messages/grasp.hpp"
#include "messages/infra.hpp"
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
  /// A key every pushed hosted relay shows changed (`infra.api_url`,
  /// `relay_domain`, `roles`, `[infra.blossom]`, `[infra.livekit]`): each
  /// relay is pushed again.
  bool repush_hosted_relays = false;
  /// The infra reconciler was idle and is not any more (`infra.enabled` or
  /// `infra.api_url`): it reconciles.
  bool infra_turned_on = false;
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

/// `current` with the `[grasp]` keys that apply live taken from `next`;
/// `enabled`, `service_domain` and `batch_timeout_seconds` stay as they are
/// until a restart.
config::grasp_config with_live_grasp(config::grasp_config current,
                                     const config::grasp_config& next);

/// The config as this node applies it: the file's last reload for the keys
/// that reload, the start-up values for the others. Shared with the node so
/// that it outlives restarts of the reloader.
using running_config_ptr = std::shared_ptr<config::config>;

/// What the CONFIG RELOADER applies reloads to.
struct config_reloader_deps {
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
  /// Where new `[grasp]` keys go, and GRASP SYNC, woken to take them (an
  /// empty slot: GRASP does not run). Null: not applied.
  live_value_ptr<config::grasp_config> grasp;
  handle_slot_ptr<grasp_sync_actor> grasp_sync;
  /// Where new `[infra]` keys go; the registry marks hosted relays to push
  /// again, the reconciler starts when a reload turns it on. Null: not
  /// applied.
  live_value_ptr<config::infra_config> infra;
  handle_slot_ptr<relay_registry_actor> relay_registry;
  handle_slot_ptr<infra_reconciler_actor> infra_reconciler;
};

struct config_reloader_state {
  config_reloader_deps deps;
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
/// `[[sync.server]]` tables added, changed or removed in the file go to the
/// SYNC MANAGER as the admin API's PUT and DELETE would, the live `[grasp]`
/// keys go to GRASP SYNC and the SELF SUBSCRIBER (see `with_live_grasp`),
/// `[infra]` goes to the relay registry and the infra reconciler (every
/// hosted relay is pushed again when what it shows changed), and every
/// other changed section or key is named as waiting for a restart. A file
/// that does not load changes nothing.
config_reloader_actor::behavior_type
config_reloader(config_reloader_actor::stateful_pointer<config_reloader_state> self,
                config_reloader_deps deps);

} // namespace ferry
