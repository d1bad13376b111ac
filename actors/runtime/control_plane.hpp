#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "actors/infra/relay_registry.hpp"
#include "config/config.hpp"
#include "messages/control_plane.hpp"
#include "messages/inspector.hpp"
#include "messages/sync_manager.hpp"
#include "net/io_runtime.hpp"
#include "net/ws_server.hpp"

#include <caf/config_value.hpp>

#include <boost/json/value.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace ferry {

/// One admin HTTP request and its answer callback, as the I/O thread hands
/// it to the CONTROL PLANE.
struct admin_exchange {
  net::http_request request;
  std::function<void(net::http_response)> respond;
  bool answered = false;

  /// Answers the request; later calls do nothing.
  void answer(net::http_response res);

  /// Answers 503 when the exchange is dropped unanswered (the actor quit, or
  /// a request to the inspector was abandoned), so no client hangs.
  ~admin_exchange();
};

// -- building blocks of the admin API (exposed for tests) --------------------

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

/// Checks the `Authorization` header of an admin request: a Bearer token equal
/// to `cfg.token` (when one is configured; compared in constant time), or a
/// NIP-98 event for `http://<Host><target>` signed by one of
/// `cfg.nip98_pubkeys`. @returns an empty string when authorized, otherwise
/// the reason.
std::string admin_authorize(const config::admin_config& cfg,
                            const net::http_request& req, int64_t now);

/// True when `address` is a loopback address (127.0.0.0/8, ::1).
bool is_loopback_address(const std::string& address);

// -- the actor ----------------------------------------------------------------

struct control_plane_state {
  /// The `[admin]` section it was spawned with.
  config::admin_config config;

  /// Where every question about the node goes; the slot follows restarts.
  handle_slot_ptr<inspector_actor> inspector;

  /// Where the /api/v1/sync routes go; the slot follows restarts.
  handle_slot_ptr<sync_manager_actor> sync_manager;

  /// Where the /api/v1/relays routes go; the slots follow restarts.
  infra_handles infra;

  /// Keeps the io_context alive as long as the server needs it.
  std::shared_ptr<net::io_runtime> io;

  /// The HTTP server; stopped when the actor quits.
  std::shared_ptr<net::ws_server> server;

  /// /health and /metrics are served without auth (loopback or
  /// `public_health`).
  bool open_health = false;

  /// The bound port.
  uint16_t port = 0;

  /// Requests answered so far, and how many of them were refused with 401.
  uint64_t requests = 0;
  uint64_t unauthorized = 0;

  ~control_plane_state();

  static inline constexpr const char* name = "control-plane";
};

/// The CONTROL PLANE: serves the admin HTTP API on `config.address` and
/// `config.port` and answers it by asking the INSPECTOR (and the SYNC MANAGER
/// for /api/v1/sync). Quits with
/// `ec::network_failure` when the port cannot be bound; logs
/// `control-plane listening on http://<address>:<port>` when it can.
/// @param self The actor handle.
/// @param config The `[admin]` section (port 0 picks a free port).
/// @param inspector The node's inspector (the current incarnation).
/// @param sync_manager The node's sync manager (may be null or empty: the
///        sync routes then answer 503).
/// @param infra The relay registry and infra reconciler for
///        /api/v1/relays (null or empty slots: those routes answer 503).
/// @param io The I/O threads the server runs on.
control_plane_actor::behavior_type
control_plane(control_plane_actor::stateful_pointer<control_plane_state> self,
              config::admin_config config,
              handle_slot_ptr<inspector_actor> inspector,
              handle_slot_ptr<sync_manager_actor> sync_manager,
              infra_handles infra, std::shared_ptr<net::io_runtime> io);

} // namespace ferry
