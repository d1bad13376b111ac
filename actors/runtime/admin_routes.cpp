// The runtime's admin routes: /health, /metrics and /api/v1/actors, answered
// by asking the INSPECTOR, the status page, and /api/v1/config/reload,
// answered by the CONFIG RELOADER.

#include "actors/runtime/admin_route.hpp"
#include "actors/runtime/config_reloader.hpp"
#include "actors/runtime/control_plane.hpp"
#include "actors/runtime/logging.hpp"
#include "actors/runtime/metrics.hpp"
#include "actors/runtime/status_page.hpp"
#include "messages/error.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <vector>

namespace ferry {

namespace json = boost::json;

namespace {

/// How long the control plane waits for the inspector.
constexpr auto inspector_timeout = std::chrono::seconds{5};

constexpr std::string_view prometheus_content_type
  = "text/plain; version=0.0.4";

/// The HTTP status for a failed request to the inspector.
unsigned status_for(const caf::error& err) {
  if (err.category() == caf::atom("ferry")
      && err.code() == static_cast<uint8_t>(ec::invalid_input))
    return 404;
  if (err == caf::sec::request_timeout)
    return 504;
  return 503;
}

/// Asks the inspector and hands the answer to `on_ok`; a missing inspector or
/// a failed request answers the exchange with an error.
template <class OnOk, class... Ts>
void ask(control_plane_pointer self, const admin_exchange_ptr& ex, OnOk on_ok,
         Ts... xs) {
  auto inspector = current_inspector(self);
  if (!inspector) {
    ex->answer(admin_error(503, "the inspector is not running"));
    return;
  }
  self->request(inspector, inspector_timeout, xs...)
    .then(std::move(on_ok), [ex](caf::error& err) {
      ex->answer(admin_error(status_for(err), render(err)));
    });
}

void serve_health(control_plane_pointer self, const admin_exchange_ptr& ex,
                  const admin_route_args&) {
  auto report_json = [](unsigned status, const health_report& report) {
    json::array reasons;
    for (const auto& reason : report.reasons)
      reasons.emplace_back(reason);
    return json_response(status, json::object{{"status", report.status},
                                              {"reasons", std::move(reasons)}});
  };
  auto inspector = current_inspector(self);
  if (!inspector) {
    ex->answer(
      report_json(503, {"degraded", {"the inspector is not running"}}));
    return;
  }
  // A health check must get an answer it can act on even when the inspector
  // is stuck: that is itself a degradation.
  self->request(inspector, inspector_timeout, atom::health_v)
    .then(
      [ex, report_json](health_report& report) {
        ex->answer(report_json(report.status == "ok" ? 200 : 503, report));
      },
      [ex, report_json](caf::error& err) {
        ex->answer(report_json(
          503, {"degraded", {"the inspector did not answer: " + render(err)}}));
      });
}

void serve_metrics(control_plane_pointer self, const admin_exchange_ptr& ex,
                   const admin_route_args&) {
  auto finish = [ex] {
    net::http_response res;
    res.content_type = std::string{prometheus_content_type};
    res.body = metrics::serialize();
    ex->answer(std::move(res));
  };
  auto inspector = current_inspector(self);
  // The process-wide counters are worth a scrape even without the
  // inspector's view; only the per-actor and store gauges go stale.
  if (!inspector) {
    finish();
    return;
  }
  auto name = self->name();
  self->request(inspector, inspector_timeout, atom::get_v, atom::actors_v)
    .then(
      [self, inspector, finish, name](std::vector<actor_info>& actors) {
        for (const auto& a : actors)
          metrics::actor_observed(a.name, a.mailbox, a.restarts);
        self->request(inspector, inspector_timeout, atom::stats_v)
          .then(
            [finish](status_map& stats) {
              metrics::stats_observed(stats);
              finish();
            },
            [finish, name](caf::error& err) {
              log::warn("{} serves /metrics without stats: {}", name,
                        render(err));
              finish();
            });
      },
      [finish, name](caf::error& err) {
        log::warn("{} serves /metrics without the actor view: {}", name,
                  render(err));
        finish();
      });
}

void list_actors(control_plane_pointer self, const admin_exchange_ptr& ex,
                 const admin_route_args&) {
  ask(
    self, ex,
    [ex](std::vector<actor_info>& actors) {
      json::array result;
      for (const auto& a : actors)
        result.push_back(admin_json(a));
      ex->answer(json_response(200, result));
    },
    atom::get_v, atom::actors_v);
}

void get_actor(control_plane_pointer self, const admin_exchange_ptr& ex,
               const admin_route_args& args) {
  ask(
    self, ex,
    [ex](actor_info& info) {
      ex->answer(json_response(200, admin_json(info)));
    },
    atom::get_v, args.at("name"));
}

/// POST /api/v1/actors/{name}/<action>: the inspector's `Action` on the
/// actor, answered with the outcome it reports.
template <class Action>
admin_handler drive_actor(Action action) {
  return [action](control_plane_pointer self, const admin_exchange_ptr& ex,
                  const admin_route_args& args) {
    auto on_outcome = [ex](std::string& outcome) {
      ex->answer(json_response(200, json::object{{"result", outcome}}));
    };
    ask(self, ex, on_outcome, action, args.at("name"));
  };
}

/// The key a config error names: `ferry.toml: relay.port: expected ...`
/// names `relay.port`; empty when the text has no key.
std::string config_key_of(const std::string& message) {
  auto first = message.find(": ");
  if (first == std::string::npos)
    return {};
  return field_of(message.substr(first + 2));
}

void reload_config(control_plane_pointer self, const admin_exchange_ptr& ex,
                   const admin_route_args&) {
  auto& slot = self->state.reloader;
  auto reloader = slot ? slot->get() : config_reloader_actor{};
  if (!reloader) {
    ex->answer(admin_error(503, "the config reloader is not running"));
    return;
  }
  self->request(reloader, config_reload_timeout, atom::reload_v)
    .then(
      [ex](std::string& report) {
        ex->answer(json_text_response(200, std::move(report)));
      },
      [ex](caf::error& err) {
        auto message = render(err);
        if (err.category() == caf::atom("ferry")
            && err.code() == static_cast<uint8_t>(ec::invalid_configuration)) {
          ex->answer(admin_error(400, message, config_key_of(message)));
          return;
        }
        ex->answer(admin_error(infra_status_for(err), message));
      });
}

void serve_status_page(control_plane_pointer, const admin_exchange_ptr& ex,
                       const admin_route_args&) {
  net::http_response res;
  res.content_type = "text/html; charset=utf-8";
  res.headers["Content-Security-Policy"]
    = std::string{status_page_security_policy()};
  res.headers["Cache-Control"] = "no-store";
  res.headers["X-Content-Type-Options"] = "nosniff";
  res.headers["Referrer-Policy"] = "no-referrer";
  res.body = std::string{status_page_html()};
  ex->answer(std::move(res));
}

} // namespace

void add_runtime_admin_routes(std::vector<admin_route>& table) {
  using access = admin_access;
  table.insert(
    table.end(),
    {
      {"GET", "/health", access::open_health, serve_health},
      {"GET", "/metrics", access::open_health, serve_metrics},
      // The page holds no data (its script asks the API below with the
      // operator's token), so it opens like /health: on a loopback address
      // or with public_health; elsewhere it needs credentials like the rest.
      {"GET", "/status", access::open_health, serve_status_page},
      {"GET", "/api/v1/actors", access::credentials, list_actors},
      {"GET", "/api/v1/actors/{name}", access::credentials, get_actor},
      {"POST", "/api/v1/actors/{name}/restart", access::credentials,
       drive_actor(atom::restart_v)},
      {"POST", "/api/v1/actors/{name}/stop", access::credentials,
       drive_actor(atom::stop_v)},
      {"POST", "/api/v1/actors/{name}/start", access::credentials,
       drive_actor(atom::start_v)},
      {"POST", "/api/v1/config/reload", access::credentials, reload_config},
    });
}

} // namespace ferry
