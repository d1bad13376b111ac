// The cluster subsystem's admin routes: /api/v1/cluster (the JSON view) and
// /api/v1/cluster/leave, answered through the INSPECTOR by the CLUSTER
// MANAGER.

#include "actors/runtime/admin_route.hpp"
#include "actors/runtime/control_plane.hpp"
#include "messages/error.hpp"

#include <chrono>

namespace ferry {

namespace {

/// How long the control plane waits: the inspector asks the cluster manager,
/// which asks the membership and the sync manager.
constexpr auto cluster_timeout = std::chrono::seconds{8};

/// A leave takes its goodbyes and the hand-over: the inspector gives it 40 s.
constexpr auto leave_timeout = std::chrono::seconds{45};

void get_cluster(control_plane_pointer self, const admin_exchange_ptr& ex,
                 const admin_route_args&) {
  auto inspector = current_inspector(self);
  if (!inspector)
    return ex->answer(admin_error(503, "the inspector is not running"));
  self->request(inspector, cluster_timeout, atom::get_v, atom::members_v)
    .then(
      [ex](std::string& body) {
        ex->answer(json_text_response(200, std::move(body)));
      },
      [ex](caf::error& err) {
        ex->answer(admin_error(sync_status_for(err), render(err)));
      });
}

void leave_cluster(control_plane_pointer self, const admin_exchange_ptr& ex,
                   const admin_route_args&) {
  auto inspector = current_inspector(self);
  if (!inspector)
    return ex->answer(admin_error(503, "the inspector is not running"));
  self->request(inspector, leave_timeout, atom::leave_v)
    .then(
      [ex](std::string& body) {
        ex->answer(json_text_response(200, std::move(body)));
      },
      [ex](caf::error& err) {
        ex->answer(admin_error(sync_status_for(err), render(err)));
      });
}

} // namespace

void add_cluster_admin_routes(std::vector<admin_route>& table) {
  table.push_back(
    {"GET", "/api/v1/cluster", admin_access::credentials, get_cluster});
  // Hands this member's relays to the others and leaves the cluster; the
  // node keeps serving its store until it is stopped.
  table.push_back({"POST", "/api/v1/cluster/leave", admin_access::credentials,
                   leave_cluster});
}

} // namespace ferry
