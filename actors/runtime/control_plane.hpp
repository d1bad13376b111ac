#pragma once

#include "actors/infra/relay_registry.hpp"
#include "actors/runtime/admin_route.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "messages/config_reload.hpp"
#include "config/config.hpp"
#include "messages/control_plane.hpp"
#include "messages/federation.hpp"
#include "messages/inspector.hpp"
#include "messages/nostr/nip98.hpp"
#include "messages/sync_manager.hpp"
#include "net/io_runtime.hpp"
#include "net/ws_server.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace ferry {

/// One admin HTTP request and its answer callback, as the I/O thread hands
/// it to the CONTROL PLANE.
struct admin_exchange {
  net::http_request request;
  std::function<void(net::http_response)> respond;
  bool answered = false;
  /// The NIP-98 signer (hex) of a request to an `admin_access::signed_peer`
  /// route; empty otherwise.
  std::string caller;

  /// Answers the request; later calls do nothing.
  void answer(net::http_response res);

  /// Answers 503 when the exchange is dropped unanswered (the actor quit, or
  /// a request to the inspector was abandoned), so no client hangs.
  ~admin_exchange();
};

// -- access (exposed for tests) ----------------------------------------------

/// NIP-98 events the admin API accepted lately (`nostr::http_auth_memory`),
/// kept apart for the routes any node key may call and for the others, so
/// that strangers filling theirs cannot lock the operators' keys out.
struct admin_nip98_memory {
  /// Each holds at most this many events, about 10 MB: every event is
  /// gone two minutes after it came at the latest, so this is ~800
  /// accepted NIP-98 requests a second, sustained, before new ones are
  /// refused with 503.
  static constexpr size_t capacity = 100000;
  nostr::http_auth_memory peers{capacity};
  nostr::http_auth_memory operators{capacity};
};

/// How the admin API checks NIP-98 beyond the `[admin]` section.
struct admin_nip98 {
  /// This admin API's URL as its clients reach it (`[federation]
  /// public_admin_url`, without a trailing '/'): a u tag must be exactly it
  /// followed by the request target, whatever the Host header says. Empty:
  /// `http(s)://<Host><target>`, the weaker check, which whoever holds a
  /// request signed for another node can pass by sending that node's Host.
  std::string public_url;
  /// The events accepted lately, shared by the control plane's incarnations
  /// so that a restart forgets none (never null in a control plane).
  std::shared_ptr<admin_nip98_memory> seen
    = std::make_shared<admin_nip98_memory>();
};

/// Checks the `Authorization` header of an admin request: a Bearer token equal
/// to `cfg.token` (when one is configured; compared in constant time), or a
/// NIP-98 event for the request's URL (see `admin_nip98::public_url`) signed
/// by one of `cfg.nip98_pubkeys`. @returns an empty string when authorized,
/// otherwise the reason; `event` is set for an authorized NIP-98 request.
std::string admin_authorize(const config::admin_config& cfg,
                            const std::string& public_url,
                            const net::http_request& req, int64_t now,
                            std::optional<nostr::http_auth_event>& event);

/// Checks a NIP-98 `Authorization` header for the request's URL:
/// `public_url` and the target when it is set, else `http://<Host><target>`
/// (or `https://`, as a client behind a TLS-terminating proxy signs it),
/// whoever signed it. @returns an empty string and sets `event` when valid,
/// otherwise the reason.
std::string peer_authorize(const std::string& public_url,
                           const net::http_request& req, int64_t now,
                           nostr::http_auth_event& event);

/// True when `address` is a loopback address (127.0.0.0/8, ::1).
bool is_loopback_address(const std::string& address);

// -- the actor ----------------------------------------------------------------

struct control_plane_state {
  /// The `[admin]` section it was spawned with.
  config::admin_config config;

  /// Where NIP-98 u tags must point, and the events accepted lately.
  admin_nip98 nip98;

  /// Where every question about the node goes; the slot follows restarts.
  handle_slot_ptr<inspector_actor> inspector;

  /// Where the /api/v1/sync routes go; the slot follows restarts.
  handle_slot_ptr<sync_manager_actor> sync_manager;

  /// Where the /api/v1/relays routes go; the slots follow restarts.
  infra_handles infra;

  /// Where the /api/v1/federation routes go (null or empty: they answer 503).
  handle_slot_ptr<federation_actor> federation;

  /// Where /api/v1/config/reload goes (null or empty: it answers 503).
  handle_slot_ptr<config_reloader_actor> reloader;

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
/// `config.port`, checks each request's access and hands it to its route in
/// the one route table (`admin_routes()`), whose handlers ask the INSPECTOR,
/// the SYNC MANAGER or the hosted relay actors. Quits with
/// `ec::network_failure` when the port cannot be bound; logs
/// `control-plane listening on http://<address>:<port>` when it can.
/// @param self The actor handle.
/// @param config The `[admin]` section (port 0 picks a free port).
/// @param nip98 The public URL NIP-98 events must name, if any, and the
///        memory that refuses each event's second use.
/// @param inspector The node's inspector (the current incarnation).
/// @param sync_manager The node's sync manager (may be null or empty: the
///        sync routes then answer 503).
/// @param infra The relay registry and infra reconciler for
///        /api/v1/relays (null or empty slots: those routes answer 503).
/// @param federation The federation manager (null or empty: federation is
///        off and its routes answer 503).
/// @param reloader The config reloader (null or empty: reloads answer 503).
/// @param io The I/O threads the server runs on.
control_plane_actor::behavior_type
control_plane(control_plane_actor::stateful_pointer<control_plane_state> self,
              config::admin_config config, admin_nip98 nip98,
              handle_slot_ptr<inspector_actor> inspector,
              handle_slot_ptr<sync_manager_actor> sync_manager,
              infra_handles infra,
              handle_slot_ptr<federation_actor> federation,
              handle_slot_ptr<config_reloader_actor> reloader,
              std::shared_ptr<net::io_runtime> io);

} // namespace ferry
