// The sync subsystem's admin routes: /api/v1/sync (sync servers, their stats,
// the sync health), answered by the SYNC MANAGER with JSON texts it builds.

#include "actors/runtime/admin_route.hpp"
#include "actors/runtime/control_plane.hpp"
#include "messages/cluster/replication.hpp"
#include "messages/error.hpp"

#include <boost/json.hpp>

#include <chrono>

namespace ferry {

namespace json = boost::json;

namespace {

/// How long the control plane waits for the sync manager (a store write is
/// synced to disk; a listing asks every connection).
constexpr auto sync_manager_timeout = std::chrono::seconds{5};

/// Picks the HTTP status of a successful answer from its body.
using status_of_body = unsigned (*)(const std::string& body);

unsigned always_ok(const std::string&) {
  return 200;
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

/// How long a one-shot sync a `ferry sync` handed over may run.
constexpr auto one_shot_sync_timeout = std::chrono::hours{6};

/// Asks the sync manager and answers with its JSON text, with the status
/// `status_of` picks, giving it `timeout`.
template <class... Ts>
void ask_sync_within(caf::timespan timeout, control_plane_pointer self,
                     const admin_exchange_ptr& ex, status_of_body status_of,
                     Ts... xs) {
  auto& slot = self->state.sync_manager;
  auto manager = slot ? slot->get() : sync_manager_actor{};
  if (!manager) {
    ex->answer(admin_error(503, "the sync manager is not running"));
    return;
  }
  self->request(manager, timeout, xs...)
    .then(
      [ex, status_of](std::string& body) {
        auto status = status_of(body);
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

/// `ask_sync_within` the usual time.
template <class... Ts>
void ask_sync(control_plane_pointer self, const admin_exchange_ptr& ex,
              status_of_body status_of, Ts... xs) {
  ask_sync_within(sync_manager_timeout, self, ex, status_of, xs...);
}

/// A route that asks the sync manager `xs...`, without arguments from the
/// path.
template <class... Ts>
admin_handler ask_sync_about(Ts... xs) {
  return [xs...](control_plane_pointer self, const admin_exchange_ptr& ex,
                 const admin_route_args&) {
    ask_sync(self, ex, always_ok, xs...);
  };
}

/// A route that asks the sync manager `xs..., id` for the server `{id}`.
template <class... Ts>
admin_handler ask_sync_about_server(Ts... xs) {
  return [xs...](control_plane_pointer self, const admin_exchange_ptr& ex,
                 const admin_route_args& args) {
    ask_sync(self, ex, always_ok, xs..., args.at("id"));
  };
}

/// Whether `id` is a replication link, which only the cluster manager
/// defines; answers 400 then.
bool refuse_replication_id(const admin_exchange_ptr& ex,
                           const std::string& id) {
  if (!cluster::replicated_member(id))
    return false;
  ex->answer(admin_error(400,
                         "id: the prefix \"cluster.\" is reserved for the "
                         "replication links between cluster members",
                         "id"));
  return true;
}

void put_server(control_plane_pointer self, const admin_exchange_ptr& ex,
                const admin_route_args& args) {
  if (refuse_replication_id(ex, args.at("id")))
    return;
  ask_sync(self, ex, sync_put_status, atom::put_v, args.at("id"),
           ex->request.body);
}

void erase_server(control_plane_pointer self, const admin_exchange_ptr& ex,
                  const admin_route_args& args) {
  if (refuse_replication_id(ex, args.at("id")))
    return;
  ask_sync(self, ex, always_ok, atom::erase_v, args.at("id"));
}

void sync_health(control_plane_pointer self, const admin_exchange_ptr& ex,
                 const admin_route_args&) {
  ask_sync(self, ex, sync_health_status, atom::health_v);
}

/// `ferry sync URL` beside this node hands it the job: the answer waits for
/// the whole sync.
void run_one_shot(control_plane_pointer self, const admin_exchange_ptr& ex,
                  const admin_route_args&) {
  ask_sync_within(one_shot_sync_timeout, self, ex, always_ok, atom::neg_v,
                  ex->request.body);
}

} // namespace

void add_sync_admin_routes(std::vector<admin_route>& table) {
  using access = admin_access;
  table.insert(
    table.end(),
    {
      {"GET", "/api/v1/sync/stats", access::credentials,
       ask_sync_about(atom::stats_v)},
      {"GET", "/api/v1/sync/health", access::credentials, sync_health},
      {"GET", "/api/v1/sync/servers", access::credentials,
       ask_sync_about(atom::get_v, atom::servers_v)},
      {"GET", "/api/v1/sync/servers/{id}", access::credentials,
       ask_sync_about_server(atom::get_v, atom::server_v)},
      {"PUT", "/api/v1/sync/servers/{id}", access::credentials, put_server},
      {"DELETE", "/api/v1/sync/servers/{id}", access::credentials,
       erase_server},
      {"GET", "/api/v1/sync/servers/{id}/stats", access::credentials,
       ask_sync_about_server(atom::stats_v)},
      {"POST", "/api/v1/sync/servers/{id}/start", access::credentials,
       ask_sync_about_server(atom::start_v)},
      {"POST", "/api/v1/sync/servers/{id}/stop", access::credentials,
       ask_sync_about_server(atom::stop_v)},
      {"POST", "/api/v1/sync/servers/{id}/sync-now", access::credentials,
       ask_sync_about_server(atom::sync_now_v)},
      {"POST", "/api/v1/sync/run", access::credentials, run_one_shot},
      {"GET", "/api/v1/sync/run/{id}", access::credentials,
       ask_sync_about_server(atom::get_v, atom::neg_v)},
    });
}

} // namespace ferry
