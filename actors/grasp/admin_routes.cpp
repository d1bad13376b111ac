// The GRASP subsystem's admin routes: /api/v1/grasp/repos, answered through
// the INSPECTOR by GRASP SYNC with JSON texts it builds.

#include "actors/runtime/admin_route.hpp"
#include "actors/runtime/control_plane.hpp"
#include "messages/error.hpp"

#include <chrono>

namespace ferry {

namespace {

/// How long the control plane waits for the inspector.
constexpr auto inspector_timeout = std::chrono::seconds{5};

/// Asks the inspector `xs...` and answers with the JSON text it relays.
template <class... Ts>
void ask_grasp(control_plane_pointer self, const admin_exchange_ptr& ex,
               Ts... xs) {
  auto inspector = current_inspector(self);
  if (!inspector)
    return ex->answer(admin_error(503, "the inspector is not running"));
  self->request(inspector, inspector_timeout, xs...)
    .then(
      [ex](std::string& body) {
        ex->answer(json_text_response(200, std::move(body)));
      },
      [ex](caf::error& err) {
        ex->answer(admin_error(sync_status_for(err), render(err)));
      });
}

void list_repos(control_plane_pointer self, const admin_exchange_ptr& ex,
                const admin_route_args&) {
  ask_grasp(self, ex, atom::repos_v);
}

void get_repo(control_plane_pointer self, const admin_exchange_ptr& ex,
              const admin_route_args& args) {
  ask_grasp(self, ex, atom::repo_v, args.at("address"));
}

} // namespace

void add_grasp_admin_routes(std::vector<admin_route>& table) {
  table.insert(table.end(),
               {
                 {"GET", "/api/v1/grasp/repos", admin_access::credentials,
                  list_repos},
                 {"GET", "/api/v1/grasp/repos/{address}",
                  admin_access::credentials, get_repo},
               });
}

} // namespace ferry
