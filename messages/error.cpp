#include "messages/error.hpp"

namespace ferry {

std::string to_string(ec x) {
  switch (x) {
    case ec::invalid_configuration:
      return "invalid_configuration";
    case ec::storage_failure:
      return "storage_failure";
    case ec::network_failure:
      return "network_failure";
    case ec::invalid_input:
      return "invalid_input";
    case ec::relay_unreachable:
      return "relay_unreachable";
    case ec::injected_fault:
      return "injected_fault";
  }
  return "unknown_error";
}

} // namespace ferry
