// The infra subsystem's admin routes: /api/v1/relays (hosted relays), answered
// by the RELAY REGISTRY, and the members of a hosted relay by the INFRA
// RECONCILER, with JSON texts they build.

#include "actors/runtime/admin_route.hpp"
#include "actors/runtime/control_plane.hpp"
#include "messages/error.hpp"

#include <chrono>

namespace ferry {

namespace {

/// How long the control plane waits for the registry or the reconciler: a
/// members request waits for the management API on top of the actor.
constexpr auto infra_timeout = std::chrono::seconds{10};

/// Asks the actor in `slot` and answers with its JSON text (`status` on
/// success), or with the error it names.
template <class Handle, class... Ts>
void ask_infra(control_plane_pointer self, const admin_exchange_ptr& ex,
               const handle_slot_ptr<Handle>& slot, const char* what,
               unsigned status, Ts... xs) {
  auto handle = slot ? slot->get() : Handle{};
  if (!handle) {
    ex->answer(admin_error(503, std::string{"the "} + what
                                  + " is not running"));
    return;
  }
  self->request(handle, infra_timeout, xs...)
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

/// Asks the relay registry `xs...`, answering `status` on success.
template <class... Ts>
void ask_registry(control_plane_pointer self, const admin_exchange_ptr& ex,
                  unsigned status, Ts... xs) {
  ask_infra(self, ex, self->state.infra.registry, "relay registry", status,
            xs...);
}

/// A route that asks the relay registry `xs..., id` about the relay `{id}`.
template <class... Ts>
admin_handler about_relay(Ts... xs) {
  return [=](control_plane_pointer self, const admin_exchange_ptr& ex,
             const admin_route_args& args) {
    ask_registry(self, ex, 200, xs..., args.at("id"));
  };
}

/// A route that hands the relay registry `x, id, body`: a definition or a
/// patch for the relay `{id}`.
template <class Atom>
admin_handler change_relay(Atom x) {
  return [=](control_plane_pointer self, const admin_exchange_ptr& ex,
             const admin_route_args& args) {
    ask_registry(self, ex, 200, x, args.at("id"), ex->request.body);
  };
}

void list_relays(control_plane_pointer self, const admin_exchange_ptr& ex,
                 const admin_route_args&) {
  ask_registry(self, ex, 200, atom::get_v, atom::relays_v);
}

void create_relay(control_plane_pointer self, const admin_exchange_ptr& ex,
                  const admin_route_args&) {
  ask_registry(self, ex, 201, atom::create_v, ex->request.body);
}

void relay_members(control_plane_pointer self, const admin_exchange_ptr& ex,
                   const admin_route_args& args) {
  ask_infra(self, ex, self->state.infra.reconciler, "infra reconciler", 200,
            atom::members_v, args.at("id"));
}

} // namespace

void add_infra_admin_routes(std::vector<admin_route>& table) {
  using access = admin_access;
  table.insert(
    table.end(),
    {
      {"GET", "/api/v1/relays", access::credentials, list_relays},
      {"POST", "/api/v1/relays", access::credentials, create_relay},
      {"GET", "/api/v1/relays/{id}", access::credentials,
       about_relay(atom::get_v, atom::relay_v)},
      {"PUT", "/api/v1/relays/{id}", access::credentials,
       change_relay(atom::put_v)},
      {"PATCH", "/api/v1/relays/{id}", access::credentials,
       change_relay(atom::patch_v)},
      {"DELETE", "/api/v1/relays/{id}", access::credentials,
       about_relay(atom::erase_v)},
      {"GET", "/api/v1/relays/{id}/activity", access::credentials,
       about_relay(atom::get_v, atom::activity_v)},
      {"GET", "/api/v1/relays/{id}/members", access::credentials,
       relay_members},
      {"POST", "/api/v1/relays/{id}/activate", access::credentials,
       about_relay(atom::activate_v)},
      {"POST", "/api/v1/relays/{id}/deactivate", access::credentials,
       about_relay(atom::deactivate_v)},
    });
}

} // namespace ferry
