#include "messages/policy.hpp"

namespace ferry {

std::string to_string(policy_action x) {
  switch (x) {
    case policy_action::accept:
      return "accept";
    case policy_action::reject:
      return "reject";
    case policy_action::shadow_reject:
      return "shadowReject";
  }
  return "unknown";
}

ingest_result to_ingest_result(const policy_verdict& x) {
  switch (x.action) {
    case policy_action::accept:
      break;
    case policy_action::reject:
      return {ingest_status::refused, x.message};
    case policy_action::shadow_reject:
      return {ingest_status::shadowed, ""};
  }
  return {ingest_status::stored, ""};
}

std::string address_of(const std::string& remote) {
  if (!remote.empty() && remote.front() == '[') {
    auto close = remote.find(']');
    return close == std::string::npos ? remote : remote.substr(1, close - 1);
  }
  auto colon = remote.rfind(':');
  return colon == std::string::npos ? remote : remote.substr(0, colon);
}

} // namespace ferry
