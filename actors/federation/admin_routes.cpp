// The federation subsystem's admin routes: the peers' side (NIP-98 signed by
// any node key: status, register, status mirroring, verify, unlink, our
// collections) and the operator's side (/api/v1/federation/peers, pulls,
// our-collections), all answered by the FEDERATION MANAGER with an HTTP
// status and a JSON body.

#include "actors/runtime/admin_route.hpp"
#include "actors/runtime/control_plane.hpp"
#include "messages/error.hpp"

#include <chrono>
#include <string>

namespace ferry {

namespace {

/// How long the control plane waits for the federation manager (a change is
/// a synced store write).
constexpr auto federation_timeout = std::chrono::seconds{5};

/// A pull runs a whole reconciliation with the peer's relay (the manager
/// gives up on it after 60 s).
constexpr auto pull_timeout = std::chrono::seconds{70};

/// A route that hands the request to the federation manager as `op`, with
/// the path's `{name}` when `named` and the query string.
admin_handler ask_federation(std::string op, bool named,
                             caf::timespan timeout = federation_timeout) {
  return [op = std::move(op), named, timeout](control_plane_pointer self,
                                              const admin_exchange_ptr& ex,
                                              const admin_route_args& args) {
    auto& slot = self->state.federation;
    auto manager = slot ? slot->get() : federation_actor{};
    if (!manager)
      return ex->answer(admin_error(
        503, slot ? "the federation manager is not running"
                  : "federation is disabled (federation.enabled = false)"));
    federation_call call;
    call.op = op;
    if (named)
      call.name = args.at("name");
    const auto& req = ex->request;
    call.body = req.body;
    call.query = args.query;
    call.caller = ex->caller;
    call.method = req.method;
    if (!call.caller.empty()) {
      call.authorization = req.headers.at("authorization");
      call.url = "http://" + req.headers.at("host") + req.target;
    }
    self->request(manager, timeout, std::move(call))
      .then(
        [ex](federation_reply& answer) {
          ex->answer(json_text_response(answer.status, std::move(answer.body)));
        },
        [ex](caf::error& err) {
          ex->answer(admin_error(sync_status_for(err), render(err)));
        });
  };
}

} // namespace

void add_federation_admin_routes(std::vector<admin_route>& table) {
  using access = admin_access;
  constexpr auto base = "/api/v1/federation";
  auto path = [base](const char* rest) { return std::string{base} + rest; };
  table.insert(
    table.end(),
    {
      // -- a peer's calls, signed by its node key --
      {"GET", path("/status"), access::signed_peer,
       ask_federation("status", false)},
      {"POST", path("/status"), access::signed_peer,
       ask_federation("mirror", false)},
      {"POST", path("/register"), access::signed_peer,
       ask_federation("register", false)},
      {"GET", path("/link"), access::signed_peer,
       ask_federation("verify", false), true},
      {"DELETE", path("/link"), access::signed_peer,
       ask_federation("unlink", false)},
      {"GET", path("/collections"), access::signed_peer,
       ask_federation("collections", false)},
      {"GET", path("/collections/{name}/events"), access::signed_peer,
       ask_federation("collection_events", true), true},
      // -- the operator's --
      {"GET", path("/peers"), access::credentials,
       ask_federation("list", false)},
      {"GET", path("/peers/{name}"), access::credentials,
       ask_federation("get", true)},
      {"PUT", path("/peers/{name}"), access::credentials,
       ask_federation("put", true)},
      {"DELETE", path("/peers/{name}"), access::credentials,
       ask_federation("delete", true)},
      {"POST", path("/peers/{name}/reset"), access::credentials,
       ask_federation("reset", true)},
      {"POST", path("/peers/{name}/pause"), access::credentials,
       ask_federation("pause", true)},
      {"POST", path("/peers/{name}/resume"), access::credentials,
       ask_federation("resume", true)},
      {"POST", path("/peers/{name}/approve"), access::credentials,
       ask_federation("approve", true)},
      {"POST", path("/peers/{name}/status"), access::credentials,
       ask_federation("set_status", true)},
      {"PUT", path("/peers/{name}/collections"), access::credentials,
       ask_federation("set_collections", true)},
      {"POST", path("/peers/{name}/pull"), access::credentials,
       ask_federation("pull", true, pull_timeout)},
      {"GET", path("/our-collections"), access::credentials,
       ask_federation("our_collections", false)},
    });
}

} // namespace ferry
