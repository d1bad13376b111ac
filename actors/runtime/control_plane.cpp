#include "actors/runtime/control_plane.hpp"

#include "actors/runtime/json_status.hpp"
#include "actors/runtime/logging.hpp"
#include "actors/runtime/metrics.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/nostr/nip98.hpp"
#include "messages/secret.hpp"
#include "net/request_target.hpp"

#include <caf/send.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <variant>
#include <vector>

namespace ferry {

namespace json = boost::json;

namespace {

using self_pointer = control_plane_actor::stateful_pointer<control_plane_state>;

/// How long the control plane waits for the inspector.
constexpr auto inspector_timeout = std::chrono::seconds{5};

/// How long the control plane waits for the sync manager (a store write is
/// synced to disk; a listing asks every connection).
constexpr auto sync_manager_timeout = std::chrono::seconds{5};

constexpr std::string_view prometheus_content_type
  = "text/plain; version=0.0.4";

net::http_response json_response(unsigned status, const json::value& body) {
  net::http_response res;
  res.status = status;
  res.content_type = "application/json";
  res.body = json::serialize(body);
  return res;
}

bool equal_nocase(std::string_view x, std::string_view y) {
  return x.size() == y.size()
         && std::equal(x.begin(), x.end(), y.begin(), [](char a, char b) {
              return std::tolower(static_cast<unsigned char>(a))
                     == std::tolower(static_cast<unsigned char>(b));
            });
}

/// The HTTP status for a failed request to the inspector.
unsigned status_for(const caf::error& err) {
  if (err.category() == caf::atom("ferry")
      && err.code() == static_cast<uint8_t>(ec::invalid_input))
    return 404;
  if (err == caf::sec::request_timeout)
    return 504;
  return 503;
}

net::http_response method_not_allowed(std::string_view allowed) {
  auto res = admin_error(405, "method not allowed; use "
                                + std::string{allowed});
  res.headers["Allow"] = std::string{allowed};
  return res;
}

inspector_actor current_inspector(self_pointer self) {
  return self->state.inspector ? self->state.inspector->get()
                               : inspector_actor{};
}

/// Asks the inspector and hands the answer to `on_ok`; a missing inspector or
/// a failed request answers the exchange with an error.
template <class OnOk, class... Ts>
void ask(self_pointer self, const admin_exchange_ptr& ex, OnOk on_ok,
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

void serve_health(self_pointer self, const admin_exchange_ptr& ex) {
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

void serve_metrics(self_pointer self, const admin_exchange_ptr& ex) {
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

/// Routes /api/v1/actors[/{name}[/{action}]] (auth already checked).
void serve_actors(self_pointer self, const admin_exchange_ptr& ex,
                  const std::vector<std::string>& parts) {
  const auto& method = ex->request.method;
  // parts: "api", "v1", "actors", then the name and the action, if any.
  if (parts.size() == 3) {
    if (method != "GET")
      return ex->answer(method_not_allowed("GET"));
    return ask(
      self, ex,
      [ex](std::vector<actor_info>& actors) {
        json::array result;
        for (const auto& a : actors)
          result.push_back(admin_json(a));
        ex->answer(json_response(200, result));
      },
      atom::get_v, atom::actors_v);
  }
  const auto& name = parts[3];
  if (parts.size() == 4) {
    if (method != "GET")
      return ex->answer(method_not_allowed("GET"));
    return ask(
      self, ex,
      [ex](actor_info& info) {
        ex->answer(json_response(200, admin_json(info)));
      },
      atom::get_v, name);
  }
  if (parts.size() != 5)
    return ex->answer(admin_error(404, "not found"));
  auto on_outcome = [ex](std::string& outcome) {
    ex->answer(json_response(200, json::object{{"result", outcome}}));
  };
  auto action = parts[4];
  if (action != "restart" && action != "stop" && action != "start")
    return ex->answer(admin_error(404, "not found"));
  if (method != "POST")
    return ex->answer(method_not_allowed("POST"));
  if (action == "restart")
    ask(self, ex, on_outcome, atom::restart_v, name);
  else if (action == "stop")
    ask(self, ex, on_outcome, atom::stop_v, name);
  else
    ask(self, ex, on_outcome, atom::start_v, name);
}

// -- /api/v1/sync --------------------------------------------------------------

sync_manager_actor current_sync_manager(self_pointer self) {
  return self->state.sync_manager ? self->state.sync_manager->get()
                                  : sync_manager_actor{};
}

/// A JSON text from the sync manager as the answer, with `status`.
net::http_response json_text_response(unsigned status, std::string body) {
  net::http_response res;
  res.status = status;
  res.content_type = "application/json";
  res.body = std::move(body);
  return res;
}

/// Asks the sync manager and answers with its JSON text; `status_of` picks
/// the HTTP status of a successful answer (200 unless it says otherwise).
template <class... Ts>
void ask_sync(self_pointer self, const admin_exchange_ptr& ex,
              std::function<unsigned(const std::string&)> status_of,
              Ts... xs) {
  auto manager = current_sync_manager(self);
  if (!manager) {
    ex->answer(admin_error(503, "the sync manager is not running"));
    return;
  }
  self->request(manager, sync_manager_timeout, xs...)
    .then(
      [ex, status_of](std::string& body) {
        auto status = status_of ? status_of(body) : 200u;
        ex->answer(json_text_response(status, std::move(body)));
      },
      [ex](caf::error& err) {
        auto message = render(err);
        auto status = sync_status_for(err);
        ex->answer(admin_error(status, message,
                               status == 400 ? field_of(message)
                                             : std::string{}));
      });
}

/// The status of a sync health answer: 200 when "ok", else 503 (as /health).
unsigned sync_health_status(const std::string& body) {
  json::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object())
    return 503;
  auto status = v.as_object().if_contains("status");
  return status && status->is_string() && status->as_string() == "ok" ? 200
                                                                       : 503;
}

/// A PUT answers 201 when it created the server, 200 when it replaced one.
unsigned sync_put_status(const std::string& body) {
  json::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object())
    return 200;
  auto created = v.as_object().if_contains("created");
  return created && created->is_bool() && created->as_bool() ? 201 : 200;
}

/// Routes /api/v1/sync/... (auth already checked).
void serve_sync(self_pointer self, const admin_exchange_ptr& ex,
                const std::vector<std::string>& parts) {
  const auto& method = ex->request.method;
  // parts: "api", "v1", "sync", then "servers" [id [action]] | stats | health.
  if (parts.size() == 4 && parts[3] == "stats") {
    if (method != "GET")
      return ex->answer(method_not_allowed("GET"));
    return ask_sync(self, ex, nullptr, atom::stats_v);
  }
  if (parts.size() == 4 && parts[3] == "health") {
    if (method != "GET")
      return ex->answer(method_not_allowed("GET"));
    return ask_sync(self, ex, sync_health_status, atom::health_v);
  }
  if (parts.size() < 4 || parts[3] != "servers" || parts.size() > 6)
    return ex->answer(admin_error(404, "not found"));
  if (parts.size() == 4) {
    if (method != "GET")
      return ex->answer(method_not_allowed("GET"));
    return ask_sync(self, ex, nullptr, atom::get_v, atom::servers_v);
  }
  const auto& id = parts[4];
  if (parts.size() == 5) {
    if (method == "GET")
      return ask_sync(self, ex, nullptr, atom::get_v, atom::server_v, id);
    if (method == "PUT")
      return ask_sync(self, ex, sync_put_status, atom::put_v, id,
                      ex->request.body);
    if (method == "DELETE")
      return ask_sync(self, ex, nullptr, atom::erase_v, id);
    return ex->answer(method_not_allowed("GET, PUT, DELETE"));
  }
  auto action = parts[5];
  if (action == "stats") {
    if (method != "GET")
      return ex->answer(method_not_allowed("GET"));
    return ask_sync(self, ex, nullptr, atom::stats_v, id);
  }
  if (action != "start" && action != "stop" && action != "sync-now")
    return ex->answer(admin_error(404, "not found"));
  if (method != "POST")
    return ex->answer(method_not_allowed("POST"));
  if (action == "start")
    ask_sync(self, ex, nullptr, atom::start_v, id);
  else if (action == "stop")
    ask_sync(self, ex, nullptr, atom::stop_v, id);
  else
    ask_sync(self, ex, nullptr, atom::sync_now_v, id);
}

// -- /api/v1/grasp -------------------------------------------------------------

/// Routes /api/v1/grasp/repos[/{address}] (auth already checked) through the
/// inspector to GRASP SYNC, relaying its JSON.
void serve_grasp(self_pointer self, const admin_exchange_ptr& ex,
                 const std::vector<std::string>& parts) {
  // parts: "api", "v1", "grasp", "repos", then the address, if any.
  if (parts.size() < 4 || parts.size() > 5 || parts[3] != "repos")
    return ex->answer(admin_error(404, "not found"));
  if (ex->request.method != "GET")
    return ex->answer(method_not_allowed("GET"));
  auto inspector = current_inspector(self);
  if (!inspector)
    return ex->answer(admin_error(503, "the inspector is not running"));
  auto on_answer = [ex](std::string& body) {
    ex->answer(json_text_response(200, std::move(body)));
  };
  auto on_error = [ex](caf::error& err) {
    ex->answer(admin_error(sync_status_for(err), render(err)));
  };
  if (parts.size() == 4) {
    self->request(inspector, inspector_timeout, atom::repos_v)
      .then(on_answer, on_error);
    return;
  }
  self->request(inspector, inspector_timeout, atom::repo_v, parts[4])
    .then(on_answer, on_error);
}

// -- /api/v1/relays ------------------------------------------------------------

/// Asks the actor in `slot` and answers with its JSON text (`status` on
/// success), or with the error it names.
template <class Handle, class... Ts>
void ask_infra(self_pointer self, const admin_exchange_ptr& ex,
               const handle_slot_ptr<Handle>& slot, const char* what,
               unsigned status, Ts... xs) {
  auto handle = slot ? slot->get() : Handle{};
  if (!handle) {
    ex->answer(admin_error(503, std::string{"the "} + what
                                  + " is not running"));
    return;
  }
  // A members request waits for the management API on top of the actor.
  self->request(handle, sync_manager_timeout * 2, xs...)
    .then(
      [ex, status](std::string& body) {
        ex->answer(json_text_response(status, std::move(body)));
      },
      [ex](caf::error& err) {
        auto message = render(err);
        auto code = infra_status_for(err);
        ex->answer(admin_error(code, message,
                               code == 400 || code == 409 ? field_of(message)
                                                          : std::string{}));
      });
}

/// Routes /api/v1/relays[/{id}[/{action}]] (auth already checked).
void serve_relays(self_pointer self, const admin_exchange_ptr& ex,
                  const std::vector<std::string>& parts) {
  const auto& method = ex->request.method;
  const auto& registry = self->state.infra.registry;
  constexpr auto registry_name = "relay registry";
  // parts: "api", "v1", "relays", then the id and the action, if any.
  if (parts.size() == 3) {
    if (method == "GET")
      return ask_infra(self, ex, registry, registry_name, 200, atom::get_v,
                       atom::relays_v);
    if (method == "POST")
      return ask_infra(self, ex, registry, registry_name, 201, atom::create_v,
                       ex->request.body);
    return ex->answer(method_not_allowed("GET, POST"));
  }
  if (parts.size() > 5)
    return ex->answer(admin_error(404, "not found"));
  const auto& id = parts[3];
  if (parts.size() == 4) {
    if (method == "GET")
      return ask_infra(self, ex, registry, registry_name, 200, atom::get_v,
                       atom::relay_v, id);
    if (method == "PUT")
      return ask_infra(self, ex, registry, registry_name, 200, atom::put_v,
                       id, ex->request.body);
    if (method == "PATCH")
      return ask_infra(self, ex, registry, registry_name, 200, atom::patch_v,
                       id, ex->request.body);
    if (method == "DELETE")
      return ask_infra(self, ex, registry, registry_name, 200, atom::erase_v,
                       id);
    return ex->answer(method_not_allowed("GET, PUT, PATCH, DELETE"));
  }
  auto action = parts[4];
  if (action == "activity" || action == "members") {
    if (method != "GET")
      return ex->answer(method_not_allowed("GET"));
    if (action == "activity")
      return ask_infra(self, ex, registry, registry_name, 200, atom::get_v,
                       atom::activity_v, id);
    return ask_infra(self, ex, self->state.infra.reconciler,
                     "infra reconciler", 200, atom::members_v, id);
  }
  if (action != "activate" && action != "deactivate")
    return ex->answer(admin_error(404, "not found"));
  if (method != "POST")
    return ex->answer(method_not_allowed("POST"));
  if (action == "activate")
    ask_infra(self, ex, registry, registry_name, 200, atom::activate_v, id);
  else
    ask_infra(self, ex, registry, registry_name, 200, atom::deactivate_v, id);
}

/// The only routes that may be served without auth (and only when
/// `open_health`): exactly these paths, nothing that merely starts like them.
bool is_open_route(const net::request_target& target) {
  const auto& parts = target.segments;
  return parts.size() == 1 && (parts[0] == "health" || parts[0] == "metrics");
}

bool is_api_route(const net::request_target& target, std::string_view area) {
  const auto& parts = target.segments;
  return parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1"
         && parts[2] == area;
}

void serve(self_pointer self, const admin_exchange_ptr& ex) {
  auto& st = self->state;
  ++st.requests;
  const auto& req = ex->request;
  // Invariant: access and routing are both decided from this one parsed
  // value; nothing below looks at the raw target again (only NIP-98 does,
  // because the client signed the URL exactly as it sent it).
  auto parsed = net::parse_request_target(req.target);
  if (auto why = std::get_if<std::string>(&parsed)) {
    log::debug("{} refused a {} from {}: bad request target: {}",
               self->name(), req.method, req.remote_address, *why);
    return ex->answer(
      admin_error(400, "bad request target: " + *why, "target"));
  }
  const auto& target = std::get<net::request_target>(parsed);
  if (target.has_query)
    return ex->answer(admin_error(
      400, "bad request target: no admin route takes a query", "target"));
  // Deny by default: everything but the open routes needs credentials, also
  // paths that match no route (so unknown paths reveal nothing either).
  if (!(st.open_health && is_open_route(target))) {
    if (auto why = admin_authorize(st.config, req, unix_now()); !why.empty()) {
      ++st.unauthorized;
      log::debug("{} refused {} {} from {}: {}", self->name(), req.method,
                 req.target, req.remote_address, why);
      auto res = admin_error(401, why);
      res.headers["WWW-Authenticate"] = "Bearer realm=\"ferry-admin\", Nostr";
      return ex->answer(std::move(res));
    }
  }
  const auto& parts = target.segments;
  if (is_open_route(target)) {
    if (req.method != "GET")
      return ex->answer(method_not_allowed("GET"));
    return parts[0] == "health" ? serve_health(self, ex)
                                : serve_metrics(self, ex);
  }
  if (is_api_route(target, "actors"))
    return serve_actors(self, ex, parts);
  if (is_api_route(target, "sync"))
    return serve_sync(self, ex, parts);
  if (is_api_route(target, "grasp"))
    return serve_grasp(self, ex, parts);
  if (is_api_route(target, "relays"))
    return serve_relays(self, ex, parts);
  ex->answer(admin_error(404, "not found"));
}

} // namespace

// -- admin_exchange -----------------------------------------------------------

void admin_exchange::answer(net::http_response res) {
  if (answered)
    return;
  answered = true;
  respond(std::move(res));
}

admin_exchange::~admin_exchange() {
  if (!answered && respond)
    respond(admin_error(503, "the admin API is shutting down"));
}

// -- building blocks ----------------------------------------------------------

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

net::http_response admin_error(unsigned status, std::string_view message) {
  return net::json_error_response(status, message);
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

std::string admin_authorize(const config::admin_config& cfg,
                            const net::http_request& req, int64_t now) {
  auto header = req.headers.find("authorization");
  if (header == req.headers.end() || header->second.empty())
    return "authorization required";
  const auto& value = header->second;
  // "<scheme> <credentials>"; HTTP strips trailing blanks, so "Bearer " with
  // an empty token arrives as the bare scheme.
  auto space = value.find(' ');
  auto scheme = std::string_view{value}.substr(0, space);
  if (equal_nocase(scheme, "Bearer")) {
    if (cfg.token.empty())
      return "bearer tokens are not accepted here";
    auto given = space == std::string::npos
                   ? std::string_view{}
                   : std::string_view{value}.substr(space + 1);
    if (!secret_equal(given, cfg.token))
      return "wrong bearer token";
    return {};
  }
  if (equal_nocase(scheme, "Nostr")) {
    if (cfg.nip98_pubkeys.empty())
      return "NIP-98 authorization is not accepted here";
    auto host = req.headers.find("host");
    if (host == req.headers.end() || host->second.empty())
      return "NIP-98 needs a Host header";
    auto url = "http://" + host->second + req.target;
    nostr::bytes32 pubkey{};
    if (auto why = nostr::verify_http_auth(value, url, req.method, req.body,
                                           now, &pubkey);
        !why.empty())
      return "NIP-98: " + why;
    auto& keys = cfg.nip98_pubkeys;
    if (std::find(keys.begin(), keys.end(), nostr::to_hex(pubkey))
        == keys.end())
      return "NIP-98: pubkey is not allowed";
    return {};
  }
  return "unsupported authorization scheme";
}

bool is_loopback_address(const std::string& address) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(address, ec);
  return !ec && addr.is_loopback();
}

// -- the actor ----------------------------------------------------------------

control_plane_state::~control_plane_state() {
  if (server)
    server->stop();
}

control_plane_actor::behavior_type
control_plane(control_plane_actor::stateful_pointer<control_plane_state> self,
              config::admin_config config,
              handle_slot_ptr<inspector_actor> inspector,
              handle_slot_ptr<sync_manager_actor> sync_manager,
              infra_handles infra, std::shared_ptr<net::io_runtime> io) {
  auto& st = self->state;
  st.open_health = config.public_health || is_loopback_address(config.address);
  st.inspector = std::move(inspector);
  st.sync_manager = std::move(sync_manager);
  st.infra = std::move(infra);
  st.io = std::move(io);
  net::ws_server_options opts;
  opts.address = config.address;
  opts.port = config.port;
  opts.websocket = false;
  // The server holds this callback as long as it runs; a weak handle keeps it
  // from holding the actor alive in turn.
  caf::weak_actor_ptr weak{self->ctrl()};
  auto on_http = [weak](net::http_request request,
                        std::function<void(net::http_response)> respond) {
    auto ex = std::make_shared<admin_exchange>();
    ex->request = std::move(request);
    ex->respond = std::move(respond);
    // Without the actor the exchange dies here and answers 503 itself.
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<control_plane_actor>(strong),
                     std::move(ex));
  };
  st.server = std::make_shared<net::ws_server>(st.io->context(),
                                               std::move(opts), nullptr,
                                               std::move(on_http));
  if (auto failure = st.server->start(); !failure.empty()) {
    st.server.reset();
    self->quit(caf::make_error(ec::network_failure, "admin: " + failure));
    return control_plane_actor::behavior_type::make_empty_behavior();
  }
  st.port = st.server->port();
  st.config = std::move(config);
  auto host = st.config.address.find(':') == std::string::npos
                ? st.config.address
                : "[" + st.config.address + "]";
  log::info("{} listening on http://{}:{}", self->name(), host, st.port);
  return {
    [self](atom::get, atom::status) -> status_map {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox",
               static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "address", st.config.address);
      caf::put(result, "port", static_cast<int64_t>(st.port));
      caf::put(result, "requests", static_cast<int64_t>(st.requests));
      caf::put(result, "unauthorized", static_cast<int64_t>(st.unauthorized));
      return result;
    },
    [self](admin_exchange_ptr& ex) { serve(self, ex); },
  };
}

} // namespace ferry
