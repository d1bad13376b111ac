#include "config/policy_config.hpp"

namespace ferry::config {

bool policy_config::has_rules() const {
  return any() || auth_required_for_writes
         || rate_ip.enabled() || rate_pubkey.enabled() || rate_source.enabled();
}

bool operator==(const policy_config& x, const policy_config& y) {
  return static_cast<const event_rules&>(x)
           == static_cast<const event_rules&>(y)
         && x.auth_required_for_writes == y.auth_required_for_writes
         && x.rate_ip == y.rate_ip && x.rate_pubkey == y.rate_pubkey
         && x.rate_source == y.rate_source
         && x.remember_refused.max_entries == y.remember_refused.max_entries
         && x.remember_refused.ttl == y.remember_refused.ttl
         && x.plugin.command == y.plugin.command
         && x.plugin.timeout == y.plugin.timeout
         && x.plugin.fallback == y.plugin.fallback;
}

} // namespace ferry::config
