#pragma once

// The built-in rules an event is judged by, shared by the node's `[policy]`
// (config/policy_config.hpp) and each sync server's own `policy`
// (messages/sync.hpp); actors/ingest/policy_rules.hpp applies them.

#include <cstdint>
#include <string>
#include <vector>

namespace ferry {

/// One token bucket: it holds at most `burst` events and refills at `rate`
/// events per second; a rate of 0 turns it off.
struct rate_limit {
  double rate = 0;
  int64_t burst = 0;

  bool enabled() const {
    return rate > 0;
  }
};

bool operator==(const rate_limit& x, const rate_limit& y);

/// What an event itself must satisfy.
struct event_rules {
  /// Only these authors may write (64 lowercase hex); empty: everyone.
  std::vector<std::string> allowed_pubkeys;
  /// These authors may never write (64 lowercase hex).
  std::vector<std::string> denied_pubkeys;
  /// Only these kinds are stored (0..65535); empty: every kind.
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

  /// Some rule is set.
  bool any() const;
};

bool operator==(const event_rules& x, const event_rules& y);

} // namespace ferry
