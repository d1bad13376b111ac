#pragma once

#include "messages/control_plane.hpp"
#include "messages/inspector.hpp"
#include "net/ws_server.hpp"

#include <caf/config_value.hpp>
#include <caf/error.hpp>

#include <boost/json/value.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry {

struct control_plane_state;

/// What a route handler gets to talk to the node through: the CONTROL PLANE
/// itself, with the handles of the actors it asks in its state.
using control_plane_pointer
  = control_plane_actor::stateful_pointer<control_plane_state>;

// -- routes -------------------------------------------------------------------

/// Who may call a route.
enum class admin_access {
  /// Only a request with valid credentials (deny by default).
  credentials,
  /// Anyone, when the control plane serves health openly (on a loopback
  /// address or with `public_health`); otherwise as `credentials`.
  open_health,
  /// Any caller with a valid NIP-98 signature, whatever its key (another
  /// operator's node); the handler finds the signer in `admin_exchange::caller`.
  signed_peer,
};

/// The values of a route's `{name}` segments in one request, percent-decoded.
class admin_route_args {
public:
  /// Records that the segment `{name}` had `value`.
  void add(std::string_view name, std::string value);

  /// The value of the segment `{name}`; throws `std::out_of_range` when the
  /// route's pattern has no such segment (a handler asking the wrong name).
  const std::string& at(std::string_view name) const;

  /// The request's query without its '?', still percent-encoded
  /// (net::decode_query reads it); empty for routes that take none.
  std::string query;

private:
  std::vector<std::pair<std::string_view, std::string>> values_;
};

/// Answers one request that matched its route (access already checked).
using admin_handler
  = std::function<void(control_plane_pointer self, const admin_exchange_ptr& ex,
                       const admin_route_args& args)>;

/// One admin API route: a request with `method` whose path matches
/// `pattern` goes to `handler`. A pattern is an origin-form path whose
/// segments are literals or `{name}`, which matches any one segment, e.g.
/// `/api/v1/sync/servers/{id}/stats`.
struct admin_route {
  std::string method;
  std::string pattern;
  admin_access access;
  admin_handler handler;
  /// Whether the route reads a query string; a query on any other route is
  /// refused before it is routed.
  bool takes_query = false;
};

/// The admin API's route table, with the one decision dispatch needs: what a
/// parsed request path and its method resolve to.
class admin_router {
public:
  /// What one request resolves to.
  struct resolution {
    /// The route for this method on this path; null when there is none.
    const admin_route* route = nullptr;
    /// The route's `{name}` segments.
    admin_route_args args;
    /// The methods of the routes on this path in table order, e.g.
    /// "GET, PUT, DELETE" (for a 405's `Allow`); empty when no route has this
    /// path.
    std::string allowed;
    /// True when routes have this path and all of them are
    /// `admin_access::open_health`.
    bool open = false;
  };

  explicit admin_router(std::vector<admin_route> routes);

  /// Resolves a request from its parsed target's segments (see
  /// net::request_target) and its method. The first route in table order
  /// whose pattern matches and whose method is `method` wins.
  resolution resolve(std::string_view method,
                     const std::vector<std::string>& segments) const;

  const std::vector<admin_route>& routes() const {
    return routes_;
  }

private:
  std::vector<admin_route> routes_;
  /// Each route's pattern split at '/', in the order of `routes_`.
  std::vector<std::vector<std::string>> patterns_;
};

/// Each subsystem adds its routes to the table in its own file.
/// actors/runtime/admin_routes.cpp: /health, /metrics, /api/v1/actors.
void add_runtime_admin_routes(std::vector<admin_route>& table);
/// actors/sync/admin_routes.cpp: /api/v1/sync.
void add_sync_admin_routes(std::vector<admin_route>& table);
/// actors/grasp/admin_routes.cpp: /api/v1/grasp.
void add_grasp_admin_routes(std::vector<admin_route>& table);
/// actors/infra/admin_routes.cpp: /api/v1/relays.
void add_infra_admin_routes(std::vector<admin_route>& table);
/// actors/cluster/admin_routes.cpp: /api/v1/cluster.
void add_cluster_admin_routes(std::vector<admin_route>& table);
/// actors/federation/admin_routes.cpp: /api/v1/federation.
void add_federation_admin_routes(std::vector<admin_route>& table);

/// The one route table of the admin API: every subsystem's routes.
const admin_router& admin_routes();

// -- building blocks of the handlers (exposed for tests) ----------------------

/// `body` serialized as the answer, with `status`.
net::http_response json_response(unsigned status,
                                 const boost::json::value& body);

/// A JSON text an actor produced as the answer, with `status`.
net::http_response json_text_response(unsigned status, std::string body);

/// `{"error":{"code":<status>,"message":<message>}}` with that status.
net::http_response admin_error(unsigned status, std::string_view message);

/// As `admin_error`, plus `"field":<field>` in the error object when `field`
/// is not empty (a 400 for a bad sync server definition names the field).
net::http_response admin_error(unsigned status, std::string_view message,
                               std::string_view field);

/// The field a validation message names: the text before its first ": "
/// when that is a field path (no blanks), e.g. `filters[1].kinds` of
/// `filters[1].kinds: must be ...`; empty otherwise.
std::string field_of(std::string_view message);

/// The HTTP status for a failed request to the SYNC MANAGER: 404 for
/// `ec::not_found`, 400 for `ec::invalid_input`, 504 for a timeout, 500 for
/// `ec::storage_failure`, 503 otherwise.
unsigned sync_status_for(const caf::error& err);

/// The HTTP status for a failed request about hosted relays: as
/// `sync_status_for`, plus 409 for `ec::conflict` and 502 for
/// `ec::upstream_failure`.
unsigned infra_status_for(const caf::error& err);

/// A status report value as JSON (`status_json`, shared with the SYNC
/// MANAGER): integers and reals as numbers, booleans, strings, atoms and
/// timespans (in CAF's text form) as strings, lists as arrays, dictionaries
/// as objects.
boost::json::value admin_json(const caf::config_value& x);

/// A status map as a JSON object (nested dictionaries become nested objects).
boost::json::value admin_json(const status_map& xs);

/// One actor of the tree as a JSON object.
boost::json::value admin_json(const actor_info& x);

/// The node's inspector (the current incarnation; invalid when none runs).
inspector_actor current_inspector(control_plane_pointer self);

} // namespace ferry
