#pragma once

// The RELAY CONNECTION's session with its remote: the NIP-11 identity check,
// the WebSocket, the NIP-42 answer to a challenge, and how a session ends
// (fail: everything of the session is dropped, the health tracker's backoff
// decides when the next one begins). Internal to actors/sync/relay_*.

#include "actors/sync/relay_connection_self.hpp"
#include "messages/health.hpp"
#include "messages/sync.hpp"
#include "net/ws_client.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace boost::json {
class object;
} // namespace boost::json

namespace ferry {

/// The session part of a RELAY CONNECTION's state.
struct relay_session {
  /// Our page size. Big pages matter: a catch-up is one round trip per page.
  static constexpr uint64_t our_page_size = 5000;
  net::tls_options tls;
  std::shared_ptr<net::ws_client_connection> conn;
  /// Page size: ours, or the remote's NIP-11 max_limit when smaller.
  uint64_t page_size = our_page_size;
  /// The remote's NIP-11 max_limit (0: it declares none).
  uint64_t remote_max_limit = 0;
  /// The remote's NIP-11 max_subscriptions (0: it declares none).
  uint64_t remote_max_subscriptions = 0;
  // NIP-42
  std::string challenge;
  std::string auth_event_id;
  bool authenticated = false;
  /// REQs refused with auth-required:, sent again after AUTH succeeds.
  std::vector<std::string> waiting_for_auth;
  std::string last_error;
  int64_t last_connected = 0;
  int64_t disconnected_at = 0;
};

namespace relay_conn {

/// Where a relay serves its NIP-11 document: ws:// → http://, wss:// →
/// https://, the same host and path.
std::string info_url(const std::string& ws_url);

/// The TLS settings of a sync server definition.
net::tls_options tls_options_of(const sync_server& def);

/// Takes the limits a remote declares in its NIP-11 `limitation` (`info`:
/// the document, or nullptr when there is none). A session keeps only what
/// its own document says: a remote that raised or dropped a limit since the
/// last session, or whose document could not be read this time, leaves none
/// of the earlier figures behind.
void take_remote_limits(relay_session& session,
                        const boost::json::object* info);

/// One attempt: NIP-11 identity check (unless disabled), then connect.
void begin(self_pointer self);

/// The NIP-11 document (or why there is none) arrived.
void on_relay_info(self_pointer self, uint64_t gen, uint32_t status,
                   const std::string& body);

/// The transport ended the session (failure kind as sent by net/).
void on_transport_closed(self_pointer self, uint64_t gen, uint8_t kind,
                         const std::string& reason);

/// Signs and sends the AUTH event for the remote's challenge.
void authenticate(self_pointer self);

/// The remote's AUTH frame: a challenge to answer.
void on_auth_challenge(self_pointer self, std::string challenge);

/// The remote's OK for our AUTH event.
void on_auth_ok(self_pointer self, bool accepted, const std::string& reason);

/// Ends the current connection attempt or connection and schedules the next
/// one after the health tracker's backoff.
void fail(self_pointer self, error_class kind, const std::string& reason);

} // namespace relay_conn

} // namespace ferry
