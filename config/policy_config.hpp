#pragma once

// `[policy]`: the write policy every ingested event passes (built-in rules,
// a strfry plugin, the memory of refused events).

#include "messages/event_rules.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace ferry::config {

/// One token bucket (`[policy.rate_limit.ip|pubkey|source]`).
using rate_limit_config = ferry::rate_limit;

/// A strfry write-policy plugin (`[policy.plugin]`).
struct policy_plugin_config {
  /// The plugin's command; empty: no plugin. Without spaces it is the path
  /// of an executable, reloaded when its mtime changes; with spaces it runs
  /// through /bin/sh -c.
  std::string command;
  /// How long one event may wait for the plugin's answer.
  std::chrono::milliseconds timeout{2000};
  /// What a timeout, a dead plugin or a garbage answer means: "accept" or
  /// "reject".
  std::string fallback = "reject";
};

/// Remembering refused events (`[policy.remember_refused]`), so a catch-up
/// does not fetch them again.
struct refused_memory_config {
  /// Most ids remembered; 0 turns the memory off.
  int64_t max_entries = 100000;
  /// An id is forgotten this long after it was refused.
  std::chrono::seconds ttl{86400};
};

/// The event rules (allowed and denied pubkeys and kinds, sizes, the
/// created_at window) plus what only the node-wide policy has.
struct policy_config : event_rules {
  /// Clients may only publish events whose author they proved by NIP-42.
  bool auth_required_for_writes = false;
  rate_limit_config rate_ip;
  rate_limit_config rate_pubkey;
  rate_limit_config rate_source;
  refused_memory_config remember_refused;
  policy_plugin_config plugin;

  /// Some built-in rule is set: the policy step has work to do.
  bool has_rules() const;
};

bool operator==(const policy_config& x, const policy_config& y);

} // namespace ferry::config
