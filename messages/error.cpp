#include "messages/error.hpp"

#include <caf/atom.hpp>

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

std::string render(const caf::error& err) {
  if (err.category() != caf::atom("ferry"))
    return to_string(err);
  const auto& context = err.context();
  std::string result;
  for (size_t i = 0; i < context.size(); ++i) {
    if (!context.match_element<std::string>(i))
      return to_string(err);
    if (!result.empty())
      result += ": ";
    result += context.get_as<std::string>(i);
  }
  return result.empty() ? to_string(static_cast<ec>(err.code())) : result;
}

} // namespace ferry
