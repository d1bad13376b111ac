#include "messages/error.hpp"

#include <caf/atom.hpp>
#include <caf/sec.hpp>

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
    case ec::not_found:
      return "not_found";
    case ec::conflict:
      return "conflict";
    case ec::upstream_failure:
      return "upstream_failure";
  }
  return "unknown_error";
}

std::string render(const caf::error& err) {
  if (!err)
    return "no error";
  const auto& context = err.context();
  std::string text;
  for (size_t i = 0; i < context.size(); ++i) {
    if (!context.match_element<std::string>(i))
      return to_string(err);
    if (!text.empty())
      text += ": ";
    text += context.get_as<std::string>(i);
  }
  if (err.category() == caf::atom("ferry"))
    return text.empty() ? to_string(static_cast<ec>(err.code())) : text;
  // CAF's own errors: the code's name, then what the context says.
  if (err.category() == caf::atom("system")) {
    auto code = to_string(static_cast<caf::sec>(err.code()));
    return text.empty() ? code : code + ": " + text;
  }
  return to_string(err);
}

} // namespace ferry
