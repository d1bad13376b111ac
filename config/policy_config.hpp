#pragma once

// `[policy]`: the write policy every ingested event passes (built-in rules,
// a strfry plugin, the memory of refused events).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ferry::config {

/// One token bucket (`[policy.rate_limit.ip|pubkey|source]`): it holds at
/// most `burst` events and refills at `rate` events per second; a rate of 0
/// turns it off.
struct rate_limit_config {
  double rate = 0;
  int64_t burst = 0;

  bool enabled() const {
    return rate > 0;
  }
};

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

struct policy_config {
  /// Only these authors may write (hex); empty: everyone.
  std::vector<std::string> allowed_pubkeys;
  /// These authors may never write (hex).
  std::vector<std::string> denied_pubkeys;
  /// Only these kinds are stored; empty: every kind.
  std::vector<int64_t> allowed_kinds;
  /// These kinds are never stored.
  std::vector<int64_t> denied_kinds;
  /// Largest `content` in bytes; 0: no limit.
  int64_t max_content_bytes = 0;
  /// Most tags on one event; 0: no limit.
  int64_t max_tags = 0;
  /// Oldest `created_at` accepted, in seconds before now; 0: no limit.
  int64_t max_age_seconds = 0;
  /// Furthest `created_at` accepted, in seconds after now; 0: no limit.
  int64_t max_future_seconds = 0;
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
