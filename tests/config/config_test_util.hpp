#pragma once

#include "config/config.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/message.hpp>

#include <string>

namespace ferry::config::test {

/// The context text of a config error, the part an operator reads.
inline std::string error_text(const caf::error& error) {
  const auto& context = error.context();
  if (context.size() == 1 && context.match_element<std::string>(0))
    return context.get_as<std::string>(0);
  return caf::to_string(error);
}

/// Loads `toml` as if from `ferry.toml` and returns its error text, or
/// "no error" so a config that loads shows up plainly in a failed check.
inline std::string load_error(const std::string& toml) {
  auto result = load_string(toml, "ferry.toml");
  return result ? "no error" : error_text(result.error());
}

} // namespace ferry::config::test
