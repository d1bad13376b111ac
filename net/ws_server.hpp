#pragma once

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio::ssl {
class context;
} // namespace boost::asio::ssl

namespace ferry::net {

/// A plain HTTP request as the server hands it to its owner.
struct http_request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/api/v1/actors?x=1"
  std::map<std::string, std::string> headers; // names lowercased
  std::string body;
  std::string remote_address; // "ip:port"
};

/// The answer to an `http_request`.
struct http_response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers; // extra headers
  std::string body;
};

/// The JSON error answer every HTTP error of ours carries, on both ports:
/// `{"error":{"code":<status>,"message":<message>}}`, plus `"field":<field>`
/// in the error object when `field` is not empty.
http_response json_error_response(unsigned status, std::string_view message,
                                  std::string_view field = {});

/// Several text frames in one buffer, frame i being `bytes[ends[i-1], ends[i])`:
/// a relay streaming stored events allocates once per batch, not per event.
struct frame_batch {
  std::string bytes;
  std::vector<size_t> ends;

  /// Ends the frame whose bytes were appended to `bytes` since the last one.
  void end_frame() {
    ends.push_back(bytes.size());
  }

  size_t size() const {
    return ends.size();
  }

  bool empty() const {
    return ends.empty();
  }
};

/// One accepted WebSocket connection, seen from its owner. Every member
/// function is thread-safe and never blocks: work is posted to the
/// connection's strand.
class ws_connection {
public:
  virtual ~ws_connection() = default;

  /// Queues a text frame. When the queued bytes would exceed the outbound cap,
  /// the queue is dropped, `overflow_notice` (if set) is sent as the last frame
  /// and the connection is closed: a slow reader never grows memory unbounded.
  virtual void send(std::shared_ptr<const std::string> frame) = 0;

  /// Queues several frames at once (one post for all of them).
  virtual void send_all(std::vector<std::string> frames) = 0;

  /// Queues a batch of frames at once (one post and one allocation for all).
  virtual void send_batch(frame_batch batch) = 0;

  /// Bytes queued and not yet written to the socket.
  virtual size_t queued_bytes() const = 0;

  /// The most a producer that can wait (a query streaming stored events)
  /// should have queued for this connection now: a quarter of the
  /// connection's share of the server's budget (`max_outbound_total_bytes`),
  /// or a part of the room below a quarter of the budget when larger (see
  /// `outbound_producers`), so that such producers alone fill at most half
  /// of it; no limit without a budget. Past its share, once the budget is full, a
  /// connection's next frame ends it.
  virtual size_t outbound_allowance() const {
    return std::numeric_limits<size_t>::max();
  }

  /// The owner finished one frame delivered by `on_frame`, of `frame_bytes`
  /// (its size): it holds nothing of it any more. Reading pauses while
  /// `max_inflight` frames are unfinished, or while the connection holds
  /// more than its share of `max_inbound_total_bytes`, and resumes here.
  virtual void frame_done(size_t frame_bytes) = 0;

  /// Sends a close frame with `reason` after the queued frames, then closes.
  virtual void close(std::string reason) = 0;

  /// "ip:port" of the peer.
  virtual const std::string& remote_address() const = 0;
};

/// What the owner does with one connection's traffic. Both are called on the
/// connection's strand, in order; they must be cheap and non-blocking (hand
/// the work to an actor with `caf::anon_send`).
struct ws_callbacks {
  /// One complete text or binary message.
  std::function<void(std::string frame)> on_frame;
  /// A message longer than `max_frame_bytes` arrived; it was read and
  /// discarded without buffering it, and the connection stays open.
  std::function<void(size_t bytes)> on_oversize;
  /// The connection is gone (called exactly once), with the reason.
  std::function<void(const std::string& reason)> on_close;
};

/// Configuration of one listening server.
struct ws_server_options {
  std::string address = "127.0.0.1";
  uint16_t port = 0; // 0: pick a free port (tests)
  size_t max_frame_bytes = 512 * 1024;
  size_t max_outbound_bytes = 32 * 1024 * 1024;
  size_t max_inflight = 256;
  /// Frame sent before closing a connection whose outbound queue overflowed.
  std::string overflow_notice;
  /// WebSockets served at once; an upgrade beyond it is answered 503, so a
  /// crowd of clients cannot take the process's memory or file descriptors
  /// (RocksDB needs some). 0: no cap.
  size_t max_connections = 0;
  /// WebSockets served at once to one peer address; an upgrade beyond it is
  /// answered 429, so that one address cannot take every place. Behind a
  /// reverse proxy every client has the proxy's address. 0: no cap.
  size_t max_connections_per_address = 0;
  /// Bytes queued for all connections together. Beyond it, a frame for a
  /// connection holding more than its share (the budget divided among the
  /// open connections) ends that connection with `shared_overflow_notice`;
  /// connections within their share go on. So the queues together stay
  /// below about twice the budget, whatever the number of slow readers.
  /// 0: no budget (each connection still has `max_outbound_bytes`).
  size_t max_outbound_total_bytes = 0;
  /// Frame sent before closing a connection beyond its share.
  std::string shared_overflow_notice;
  /// Producers that may queue against `outbound_allowance` at the same
  /// moment (the relay's query workers). Each may be granted the room below
  /// a quarter of the budget divided by twice their number, so all of them
  /// granted at once stay below a quarter of the budget.
  size_t outbound_producers = 1;
  /// Bytes of client messages held at once by all connections together:
  /// frames handed to the owner and not finished (`frame_done`), and the
  /// parts of messages being read. Beyond it, a connection holding more
  /// than its share (the budget divided among the open connections) and
  /// with frames unfinished stops reading until its owner finishes them, so
  /// a crowd of clients that send faster than the owner works cannot take
  /// the memory: the frames held stay below the budget plus one message per
  /// connection, where `max_inflight` alone allowed that many messages per
  /// connection. 0: no budget.
  size_t max_inbound_total_bytes = 0;
  /// Accept WebSocket upgrades; when false, every request is plain HTTP.
  bool websocket = true;
  /// Negotiate permessage-deflate (RFC 7692) with clients that offer it.
  bool compression = false;
  /// Set: every connection speaks TLS (wss://, https://) with this context
  /// (see `make_server_tls_context`); null: plain TCP.
  std::shared_ptr<boost::asio::ssl::context> tls;
  /// How long a client may take to complete its TLS handshake.
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);
  /// A WebSocket peer that shows no sign of life for this long is
  /// disconnected: it sent nothing (no message, no pong) and took nothing of
  /// a backlog of ours; a quiet one is pinged after half of it, so it is
  /// dropped after one to one and a half timeouts. 110 s: a ping after 55 s
  /// of silence (as strfry does) keeps a quiet subscriber's connection open
  /// through proxies that drop idle ones after 60 s (nginx's default
  /// `proxy_read_timeout`), where Beast's suggested 300 s pinged only every
  /// 150 s.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(110);
  /// Called on an I/O thread when a TLS handshake fails or times out, with
  /// the peer ("ip:port") and why; that connection is closed, nothing else
  /// is affected. Must be cheap and non-blocking.
  std::function<void(const std::string& remote, const std::string& reason)>
    on_handshake_failure;
  /// Called on an I/O thread when an upgrade is refused, with the peer
  /// ("ip:port") and whether the cap it met was the address's
  /// (`max_connections_per_address`) or the server's. Cheap, non-blocking.
  std::function<void(const std::string& remote, bool address_cap)>
    on_connection_refused;
  /// Called on an I/O thread when a connection is closed because its
  /// outbound queue overflowed, with the peer and whether the limit it met
  /// was its share of `max_outbound_total_bytes` (else
  /// `max_outbound_bytes`). Cheap, non-blocking.
  std::function<void(const std::string& remote, bool shared_budget)>
    on_overflow;
};

/// An HTTP + WebSocket server on one port (Beast). HTTP requests and WebSocket
/// upgrades share the port: an upgrade request becomes a WebSocket session,
/// anything else goes to `on_http`.
class ws_server {
public:
  /// Called on the I/O thread for each new WebSocket; returns its callbacks.
  using open_handler =
    std::function<ws_callbacks(const std::shared_ptr<ws_connection>&)>;

  /// Called on the I/O thread for each plain HTTP request; must not block.
  /// `respond` is thread-safe and must be called exactly once.
  using http_handler = std::function<void(
    http_request request, std::function<void(http_response)> respond)>;

  ws_server(boost::asio::io_context& ioc, ws_server_options opts,
            open_handler on_open, http_handler on_http);
  ~ws_server();

  /// Binds and starts accepting. @returns an error text, empty on success.
  std::string start();

  /// The bound port (after `start`).
  uint16_t port() const;

  /// Stops accepting and closes every open connection.
  void stop();

  /// Connections currently open.
  size_t connection_count() const;

  /// Bytes queued for all connections together.
  size_t outbound_queued_bytes() const;

  /// Bytes of client messages held by all connections together (see
  /// `max_inbound_total_bytes`).
  size_t inbound_held_bytes() const;

  /// Upgrades refused at `max_connections` or
  /// `max_connections_per_address` so far.
  uint64_t refused_connections() const;

  /// Whether the server speaks TLS.
  bool tls() const;

  /// TLS handshakes that failed or timed out so far.
  uint64_t handshake_failures() const;

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace ferry::net
