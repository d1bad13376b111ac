#include "actors/runtime/admin_route.hpp"

#include "actors/runtime/control_plane.hpp"
#include "actors/runtime/json_status.hpp"
#include "messages/error.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <stdexcept>

namespace ferry {

namespace json = boost::json;

namespace {

std::vector<std::string> split_pattern(std::string_view pattern) {
  std::vector<std::string> result;
  size_t start = 1; // after the leading '/'
  while (start <= pattern.size()) {
    auto slash = pattern.find('/', start);
    if (slash == std::string_view::npos)
      slash = pattern.size();
    result.emplace_back(pattern.substr(start, slash - start));
    start = slash + 1;
  }
  return result;
}

bool is_placeholder(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

/// Whether `segments` fit `pattern`; fills `args` when they do.
bool matches(const std::vector<std::string>& pattern,
             const std::vector<std::string>& segments, admin_route_args& args) {
  if (pattern.size() != segments.size())
    return false;
  for (size_t i = 0; i < pattern.size(); ++i)
    if (!is_placeholder(pattern[i]) && pattern[i] != segments[i])
      return false;
  for (size_t i = 0; i < pattern.size(); ++i)
    if (is_placeholder(pattern[i])) {
      std::string_view name = pattern[i];
      args.add(name.substr(1, name.size() - 2), segments[i]);
    }
  return true;
}

} // namespace

// -- routes -------------------------------------------------------------------

void admin_route_args::add(std::string_view name, std::string value) {
  values_.emplace_back(name, std::move(value));
}

const std::string& admin_route_args::at(std::string_view name) const {
  for (const auto& [key, value] : values_)
    if (key == name)
      return value;
  throw std::out_of_range{"the route has no segment {" + std::string{name}
                          + "}"};
}

admin_router::admin_router(std::vector<admin_route> routes)
  : routes_(std::move(routes)) {
  for (const auto& route : routes_)
    patterns_.push_back(split_pattern(route.pattern));
}

admin_router::resolution
admin_router::resolve(std::string_view method,
                      const std::vector<std::string>& segments) const {
  resolution result;
  std::vector<std::string_view> methods;
  bool all_open = true;
  for (size_t i = 0; i < routes_.size(); ++i) {
    admin_route_args args;
    if (!matches(patterns_[i], segments, args))
      continue;
    const auto& route = routes_[i];
    all_open = all_open && route.access == admin_access::open_health;
    if (std::find(methods.begin(), methods.end(), route.method)
        == methods.end()) {
      methods.push_back(route.method);
      result.allowed += (result.allowed.empty() ? "" : ", ") + route.method;
    }
    if (!result.route && route.method == method) {
      result.route = &route;
      result.args = std::move(args);
    }
  }
  result.open = !result.allowed.empty() && all_open;
  return result;
}

// -- building blocks ----------------------------------------------------------

net::http_response json_response(unsigned status, const json::value& body) {
  return json_text_response(status, json::serialize(body));
}

net::http_response json_text_response(unsigned status, std::string body) {
  net::http_response res;
  res.status = status;
  res.content_type = "application/json";
  res.body = std::move(body);
  return res;
}

net::http_response admin_error(unsigned status, std::string_view message) {
  return net::json_error_response(status, message);
}

net::http_response admin_error(unsigned status, std::string_view message,
                               std::string_view field) {
  return net::json_error_response(status, message, field);
}

std::string field_of(std::string_view message) {
  auto colon = message.find(": ");
  if (colon == std::string_view::npos || colon == 0)
    return {};
  auto field = message.substr(0, colon);
  if (field.find_first_of(" \t") != std::string_view::npos)
    return {};
  return std::string{field};
}

unsigned sync_status_for(const caf::error& err) {
  if (err.category() == caf::atom("ferry")) {
    switch (static_cast<ec>(err.code())) {
      case ec::not_found:
        return 404;
      case ec::invalid_input:
        return 400;
      case ec::storage_failure:
        return 500;
      default:
        return 503;
    }
  }
  if (err == caf::sec::request_timeout)
    return 504;
  return 503;
}

unsigned infra_status_for(const caf::error& err) {
  if (err.category() == caf::atom("ferry")) {
    if (err.code() == static_cast<uint8_t>(ec::conflict))
      return 409;
    if (err.code() == static_cast<uint8_t>(ec::upstream_failure))
      return 502;
  }
  return sync_status_for(err);
}

json::value admin_json(const caf::config_value& x) {
  return status_json(x);
}

json::value admin_json(const status_map& xs) {
  return status_json(xs);
}

json::value admin_json(const actor_info& x) {
  return json::object{
    {"name", x.name},
    {"kind", x.kind},
    {"parent", x.parent},
    {"state", to_string(x.state)},
    {"mailbox", x.mailbox},
    {"restarts", x.restarts},
    {"last_error", x.last_error},
    {"last_error_at", x.last_error_at},
    {"uptime", x.uptime},
    {"status", admin_json(x.status)},
  };
}

inspector_actor current_inspector(control_plane_pointer self) {
  return self->state.inspector ? self->state.inspector->get()
                               : inspector_actor{};
}

} // namespace ferry
