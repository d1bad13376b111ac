#include "config/policy_config.hpp"

namespace ferry::config {

namespace {

bool same(const rate_limit_config& x, const rate_limit_config& y) {
  return x.rate == y.rate && x.burst == y.burst;
}

} // namespace

bool policy_config::has_rules() const {
  return !allowed_pubkeys.empty() || !denied_pubkeys.empty()
         || !allowed_kinds.empty() || !denied_kinds.empty()
         || max_content_bytes > 0 || max_tags > 0 || max_age_seconds > 0
         || max_future_seconds > 0 || auth_required_for_writes
         || rate_ip.enabled() || rate_pubkey.enabled() || rate_source.enabled();
}

bool operator==(const policy_config& x, const policy_config& y) {
  return x.allowed_pubkeys == y.allowed_pubkeys
         && x.denied_pubkeys == y.denied_pubkeys
         && x.allowed_kinds == y.allowed_kinds
         && x.denied_kinds == y.denied_kinds
         && x.max_content_bytes == y.max_content_bytes
         && x.max_tags == y.max_tags && x.max_age_seconds == y.max_age_seconds
         && x.max_future_seconds == y.max_future_seconds
         && x.auth_required_for_writes == y.auth_required_for_writes
         && same(x.rate_ip, y.rate_ip) && same(x.rate_pubkey, y.rate_pubkey)
         && same(x.rate_source, y.rate_source)
         && x.remember_refused.max_entries == y.remember_refused.max_entries
         && x.remember_refused.ttl == y.remember_refused.ttl
         && x.plugin.command == y.plugin.command
         && x.plugin.timeout == y.plugin.timeout
         && x.plugin.fallback == y.plugin.fallback;
}

} // namespace ferry::config
