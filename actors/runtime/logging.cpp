#include "actors/runtime/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <memory>

namespace ferry::log {

namespace {

std::shared_ptr<spdlog::logger> make_logger() {
  auto logger = spdlog::stderr_color_mt("ferry");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  return logger;
}

} // namespace

spdlog::logger& get() {
  static auto logger = make_logger();
  return *logger;
}

void init(const std::string& level) {
  get().set_level(spdlog::level::from_str(level));
  get().flush_on(spdlog::level::warn);
}

} // namespace ferry::log
