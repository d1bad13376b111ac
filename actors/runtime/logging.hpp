#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace ferry::log {

/// Sets up the node's one logger (stderr) at `level` (trace, debug, info,
/// warn, error, critical, off). Every line starts with the component's name.
void init(const std::string& level);

/// The node's logger.
spdlog::logger& get();

template <class... Ts>
void debug(spdlog::format_string_t<Ts...> fmt, Ts&&... xs) {
  get().debug(fmt, std::forward<Ts>(xs)...);
}

template <class... Ts>
void info(spdlog::format_string_t<Ts...> fmt, Ts&&... xs) {
  get().info(fmt, std::forward<Ts>(xs)...);
}

template <class... Ts>
void warn(spdlog::format_string_t<Ts...> fmt, Ts&&... xs) {
  get().warn(fmt, std::forward<Ts>(xs)...);
}

template <class... Ts>
void error(spdlog::format_string_t<Ts...> fmt, Ts&&... xs) {
  get().error(fmt, std::forward<Ts>(xs)...);
}

} // namespace ferry::log
