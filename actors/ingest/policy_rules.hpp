#pragma once

// The built-in rules of the write policy (`[policy]`), apart from any actor
// so they can be tested and benchmarked alone. Not thread-safe: the POLICY
// actor owns the one instance.

#include "config/policy_config.hpp"
#include "messages/ingest.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/policy.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ferry {

/// Seconds on a steady clock: the time the rate limits run on.
double steady_seconds();

/// A refusal that may not hold next time (a rate limit, a plugin that could
/// not judge, a created_at too far in the future): it is not remembered, and a sync's cursor stays below the
/// event, so a later catch-up asks for it again.
bool is_temporary_refusal(std::string_view message);

/// One token bucket per key (an IP address, a pubkey, a source).
class token_buckets {
public:
  /// Buckets kept before the full ones are forgotten (a full bucket is the
  /// same as a new one, so forgetting it changes nothing).
  static constexpr size_t prune_above = 10000;

  explicit token_buckets(config::rate_limit_config cfg);

  /// Takes one token from `key`'s bucket at `now` (seconds on a steady
  /// clock); false when the bucket is empty. Always true when disabled.
  bool take(const std::string& key, double now);

  bool enabled() const {
    return cfg_.enabled();
  }

  size_t size() const {
    return buckets_.size();
  }

private:
  struct bucket {
    double tokens;
    double last;
  };

  void prune(double now);

  config::rate_limit_config cfg_;
  std::unordered_map<std::string, bucket> buckets_;
};

/// What `policy_rules::judge` counts.
struct policy_rule_counts {
  uint64_t rejected = 0;
  uint64_t rate_limited = 0;
};

class policy_rules {
public:
  /// No rules: accepts everything.
  policy_rules() : policy_rules(config::policy_config{}) {
    // nop
  }

  explicit policy_rules(const config::policy_config& cfg);

  /// Judges `item` at `now` (unix seconds) and `steady_now` (seconds on a
  /// steady clock, for the rate limits).
  policy_verdict judge(const ingest_item& item, int64_t now, double steady_now);

  /// No rule is set: every event is accepted.
  bool empty() const {
    return empty_;
  }

  const policy_rule_counts& counts() const {
    return counts_;
  }

private:
  policy_verdict reject(std::string message);
  policy_verdict rate_limited(const std::string& what);

  config::policy_config cfg_;
  bool empty_;
  std::set<nostr::bytes32> allowed_pubkeys_;
  std::set<nostr::bytes32> denied_pubkeys_;
  std::set<uint32_t> allowed_kinds_;
  std::set<uint32_t> denied_kinds_;
  token_buckets per_ip_;
  token_buckets per_pubkey_;
  token_buckets per_source_;
  policy_rule_counts counts_;
};

} // namespace ferry
