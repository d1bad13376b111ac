#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry::net {

/// Where the failure happened, so health tracking can treat persistent ones
/// differently. `none` is a close the owner asked for.
enum class failure_kind : uint8_t {
  none,
  dns,            // name resolution failed, or the URL does not parse
  tcp,            // no TCP connection (refused, unreachable)
  tls,            // TLS setup or handshake failed (untrusted, wrong name)
  pin,            // the leaf key matches no SPKI pin, or a pin is malformed
  http,           // the server answered the upgrade with something not 101
  websocket,      // the upgrade response broke the WebSocket handshake
  protocol,       // after open: bad frames, oversize message, outbound overflow
  closed_by_peer, // the peer closed or dropped an open connection
  timeout,        // a step timed out (the reason names which), or the
                  // keep-alive found the peer silent
};

/// "none", "dns", ..., "closed_by_peer", "timeout".
std::string to_string(failure_kind kind);

/// TLS settings of one relay.
struct tls_options {
  /// Speak TLS. A wss:// or https:// URL turns TLS on by itself; `enabled`
  /// can turn it on for a ws:// URL too, but nothing turns it off for a
  /// wss:// one: a TLS URL is never downgraded to plain text.
  bool enabled = false;
  /// SNI and verification name; empty: the URL host.
  std::string hostname;
  /// Extra trust anchors (PEM), added to the system store.
  std::string ca_certfile;
  /// Optional client certificate chain and its key (PEM); both or neither.
  std::string client_certfile;
  std::string client_keyfile;
  /// SHA-256 of the leaf certificate's SubjectPublicKeyInfo (DER), as hex or
  /// base64; the leaf must match one of them. Pins add to the CA and name
  /// checks, they do not replace them. Empty: no pinning.
  std::vector<std::string> spki_sha256_pins;
};

/// A URL split into what the connection needs.
struct parsed_url {
  bool tls = false;
  /// Without brackets for IPv6 literals ("::1").
  std::string host;
  uint16_t port = 0;
  /// Path and query, never empty ("/" at least); the fragment is dropped.
  std::string target;
};

/// Parses ws://, wss://, http:// and https:// URLs (scheme case-insensitive,
/// default ports 80 and 443, IPv6 literals in brackets).
/// @returns the parts, or an error text.
std::variant<parsed_url, std::string> parse_url(std::string_view url);

/// What the owner does with one outbound connection's events. All of them run
/// on the connection's strand, in order, and must not block (the owner
/// forwards them to an actor with `caf::anon_send`).
struct ws_client_callbacks {
  /// The WebSocket handshake is done.
  std::function<void()> on_open;
  /// One complete message (text or binary).
  std::function<void(std::string frame)> on_frame;
  /// The connection is gone; called exactly once, also when it never opened
  /// (with `none` and "io stopped" if the io_context is destroyed first).
  std::function<void(failure_kind, const std::string& reason)> on_close;
};

/// One outbound WebSocket. Every member function is thread-safe and never
/// blocks: work is posted to the connection's strand. Dropping the handle
/// does not close the connection; `close` does.
class ws_client_connection {
public:
  virtual ~ws_client_connection() = default;

  /// Queues a message; frames sent before `on_open` go out right after it.
  /// When the queued bytes would exceed the outbound cap, the queue is
  /// dropped and the connection closes with `failure_kind::protocol`
  /// ("outbound overflow").
  virtual void send(std::shared_ptr<const std::string> frame) = 0;

  /// Bytes queued and not yet written.
  virtual size_t queued_bytes() const = 0;

  /// Sends a close frame with `reason` after the queued frames, then closes;
  /// `on_close` gets `failure_kind::none` and `reason`. Before `on_open` it
  /// abandons the connect attempt.
  virtual void close(std::string reason) = 0;

  /// Stops reading after the message being read: the remote's frames wait in
  /// the TCP buffers, so TCP slows the remote down (back-pressure from a full
  /// ingest pipeline).
  virtual void pause_reading() = 0;

  /// Reads again after `pause_reading`.
  virtual void resume_reading() = 0;

  /// Payload bytes of the messages received so far.
  virtual uint64_t bytes_received() const = 0;

  /// Payload bytes of the messages written so far.
  virtual uint64_t bytes_sent() const = 0;
};

/// Connects asynchronously on `ioc`: resolve, TCP connect, TLS handshake
/// (SNI, CA and name verification, SPKI pins), WebSocket handshake. Nothing
/// is called before this function returns. `connect_timeout` covers
/// everything up to `on_open`; afterwards a relay that sends nothing gets a
/// ping after half to all of `idle_timeout`, and one that stays silent (not
/// even a pong) times out after one to one and a half of it. A message
/// larger than `max_frame_bytes` from the relay is a protocol failure.
/// Nothing retries: the owner decides.
std::shared_ptr<ws_client_connection>
connect_ws(boost::asio::io_context& ioc, const std::string& url,
           const tls_options& tls, ws_client_callbacks callbacks,
           std::chrono::milliseconds connect_timeout = std::chrono::seconds(10),
           size_t max_frame_bytes = 16 * 1024 * 1024,
           size_t max_outbound_bytes = 64 * 1024 * 1024,
           std::chrono::milliseconds idle_timeout = std::chrono::seconds(60));

/// The outcome of `http_get` (and `http_send`). Any complete response counts
/// as success (`failure == none`), whatever its status; the caller judges the
/// status.
struct http_get_result {
  failure_kind failure = failure_kind::none;
  std::string error;
  unsigned status = 0;
  std::string body;
};

/// The outcome of `http_send`: the same as `http_get`'s. (Not `http_result`:
/// that is simple_client's.)
using http_send_result = http_get_result;

/// Performs one HTTP/1.1 GET with the same TLS settings as `connect_ws` (for
/// NIP-11, pass `Accept: application/nostr+json` in `headers`). Redirects are
/// not followed. `timeout` covers everything; bodies above 4 MiB fail with
/// `failure_kind::http`. `done` is called exactly once, on an I/O thread
/// (with `tcp` and "io stopped" if the io_context is destroyed first).
void http_get(boost::asio::io_context& ioc, const std::string& url,
              const tls_options& tls,
              std::map<std::string, std::string> headers,
              std::function<void(http_get_result)> done,
              std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// One outgoing HTTP request for `http_send`.
struct outgoing_http_request {
  /// The request method as it goes on the wire ("POST", "PATCH", ...).
  std::string method = "GET";
  /// http:// or https://; https:// always verifies the server (CA and name).
  std::string url;
  /// Extra header fields (Host, User-Agent and Content-Length are set).
  std::map<std::string, std::string> headers;
  /// Sent as is; empty: no body.
  std::string body;
};

/// Performs one HTTP/1.1 request with any method and body, with the same TLS
/// handling, limits and guarantees as `http_get`: `timeout` covers
/// everything, redirects are not followed, and `done` is called exactly once
/// on an I/O thread.
void http_send(boost::asio::io_context& ioc, outgoing_http_request request,
               const tls_options& tls,
               std::function<void(http_send_result)> done,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));

} // namespace ferry::net
