#include "messages/event_rules.hpp"

namespace ferry {

bool operator==(const rate_limit& x, const rate_limit& y) {
  return x.rate == y.rate && x.burst == y.burst;
}

bool event_rules::any() const {
  return !allowed_pubkeys.empty() || !denied_pubkeys.empty()
         || !allowed_kinds.empty() || !denied_kinds.empty()
         || max_content_bytes > 0 || max_tags > 0 || max_age_seconds > 0
         || max_future_seconds > 0;
}

bool operator==(const event_rules& x, const event_rules& y) {
  return x.allowed_pubkeys == y.allowed_pubkeys
         && x.denied_pubkeys == y.denied_pubkeys
         && x.allowed_kinds == y.allowed_kinds
         && x.denied_kinds == y.denied_kinds
         && x.max_content_bytes == y.max_content_bytes
         && x.max_tags == y.max_tags && x.max_age_seconds == y.max_age_seconds
         && x.max_future_seconds == y.max_future_seconds;
}

} // namespace ferry
