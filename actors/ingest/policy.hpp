#pragma once

#include "actors/ingest/policy_rules.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/live_value.hpp"
#include "actors/runtime/owed_answers.hpp"
#include "messages/ingest.hpp"
#include "messages/policy.hpp"
#include "store/event_store.hpp"

#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <string>

namespace ferry {

struct policy_state {
  /// `[policy]` as a config reload leaves it; `rules` follow its built-in
  /// rules at the next event after a change.
  live_value_ptr<config::policy_config> config;
  /// The snapshot `rules` were built from.
  std::shared_ptr<const config::policy_config> rules_source;
  policy_rules rules;
  /// Rule sets built after a reload.
  uint64_t rules_reloaded = 0;
  /// Where refusals are remembered; null: they are not
  /// (`[policy.remember_refused] max_entries = 0`).
  store::event_store* store = nullptr;
  /// Where accepted events go.
  handle_slot_ptr<writer_actor> writer;
  /// The plugin host; null when no plugin is configured.
  handle_slot_ptr<plugin_host_actor> plugin;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t shadowed = 0;
  /// Events whose plugin host was restarting: the plugin's fallback applied.
  uint64_t plugin_unreachable = 0;
  /// What the plugin's absence means (`[policy.plugin] fallback`).
  policy_verdict plugin_fallback;
  /// Events waiting for the plugin's verdict.
  owed_answers<caf::typed_response_promise<ingest_result>> judging;

  /// Answers each event still waiting for the plugin with an error.
  ~policy_state();

  static inline constexpr const char* name = "policy";
};

/// A text that changes exactly when a change of `cfg` can change what the
/// policy refuses for good: the built-in rules, the plugin's command and,
/// when the command is a path, its script's contents (the memory of refused
/// events follows it, see `store::follow_policy`).
std::string policy_fingerprint(const config::policy_config& cfg);

/// The plugin's script changed under the running node: the memory of
/// refused events follows the policy's new fingerprint, forgetting what the
/// old script refused. It runs in a detached actor of `sys`: the memory is
/// scanned (up to its cap) and must not hold a scheduler worker.
void follow_changed_plugin(caf::actor_system& sys,
                           live_value_ptr<config::policy_config> config,
                           store::event_store* store);

/// The POLICY step: judges every verified event by the built-in rules, then
/// by the plugin (when one is configured), and hands the accepted ones to
/// the writer, whose answer goes straight back to the original sender.
/// Lasting refusals of events from remotes (not clients, not rate limits)
/// are remembered in `store`, so the same remote's copy is not judged again.
/// The plugin and the memory of refused events keep the settings `config`
/// held at spawn; the built-in rules follow it (a reload resets their rate
/// limit buckets).
policy_actor::behavior_type
policy(policy_actor::stateful_pointer<policy_state> self,
       live_value_ptr<config::policy_config> config, store::event_store* store,
       handle_slot_ptr<writer_actor> writer,
       handle_slot_ptr<plugin_host_actor> plugin);

} // namespace ferry
