#pragma once

#include "actors/relay/client_session.hpp"
#include "config/config.hpp"
#include "messages/relay.hpp"
#include "net/ws_server.hpp"

#include <caf/actor_system.hpp>

#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>

namespace ferry {

/// The NIP-11 relay information document for `cfg`, listing exactly the NIPs
/// this relay implements; `self_pubkey` is the node's identity (NIP-11
/// `self`), which syncing peers check.
std::string relay_info_json(const config::relay_config& cfg,
                            const std::string& self_pubkey);

/// Answers plain HTTP on the relay port: NIP-11 for
/// `Accept: application/nostr+json`, CORS pre-flight, a short text otherwise.
net::http_response relay_http_response(const net::http_request& req,
                                       const std::string& relay_info);

/// The relay's listener: every accepted WebSocket gets a CLIENT SESSION
/// spawned in `sys`, and its traffic is forwarded to it as messages. With
/// `tls` (from `net::make_server_tls_context`) it speaks only TLS.
std::shared_ptr<net::ws_server>
make_relay_listener(caf::actor_system& sys, boost::asio::io_context& ioc,
                    const config::relay_config& cfg,
                    const std::string& self_pubkey,
                    std::shared_ptr<const relay_context> ctx,
                    std::shared_ptr<boost::asio::ssl::context> tls = nullptr);

struct relay_server_state {
  std::shared_ptr<net::ws_server> listener;
  /// Reported in the status; null when negentropy is disabled.
  std::shared_ptr<const item_set_cache> item_sets;

  ~relay_server_state() {
    if (listener)
      listener->stop();
  }

  static inline constexpr const char* name = "relay-server";
};

/// The RELAY SERVER: owns a started listener and stops it when it quits; its
/// status also shows the negentropy memory of `item_sets`.
relay_server_actor::behavior_type
relay_server(relay_server_actor::stateful_pointer<relay_server_state> self,
             std::shared_ptr<net::ws_server> listener,
             std::shared_ptr<const item_set_cache> item_sets);

} // namespace ferry
