#pragma once

// The parts of the WebSocket server its sessions share: the stream types,
// the limits, and the server state that registers every session. Internal
// to net/ws_server.cpp and net/ws_session.hpp.

#include "net/ws_close_reason.hpp"
#include "net/ws_server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>

namespace ferry::net::detail {

// Declared inside ferry::net so that `net::` means Asio in these files and
// not the enclosing namespace.
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

// Sessions are templates on their stream, so the plain path pays nothing
// (no virtual call, no branch) for TLS being possible.
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

template <class Stream>
constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

/// Largest chunk read from a WebSocket at once; bounds the memory a message
/// we discard can take.
constexpr size_t ws_read_chunk = 64 * 1024;

/// Time the queued frames plus the close handshake get after `close()` or an
/// overflow before the socket is closed hard. Memory is bounded already; this
/// only bounds how long a peer that stopped reading keeps its socket. It is
/// generous because a slow reader that resumes should still get the notice.
constexpr auto ws_close_grace = std::chrono::seconds(60);

/// The same, when the whole server stops.
constexpr auto ws_stop_grace = std::chrono::seconds(1);

inline std::string endpoint_text(const tcp::endpoint& ep) {
  auto address = ep.address();
  auto host = address.to_string();
  if (address.is_v6())
    host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

/// Bytes all sessions hold in one direction, and the budget they share:
/// each session's share is the budget divided among the sessions. Each
/// session moves the total with its own count.
class byte_budget {
public:
  /// `sessions`: the sessions sharing it, counted by the server.
  byte_budget(size_t budget, const std::atomic<size_t>& sessions)
    : budget_(budget), sessions_(sessions) {
  }

  void add(size_t bytes) {
    total_.fetch_add(bytes, std::memory_order_relaxed);
  }

  void remove(size_t bytes) {
    total_.fetch_sub(bytes, std::memory_order_relaxed);
  }

  size_t total() const {
    return total_.load(std::memory_order_relaxed);
  }

  size_t share() const {
    auto sessions = sessions_.load(std::memory_order_relaxed);
    return budget_ / std::max<size_t>(1, sessions);
  }

  /// Bytes the sessions may still add before they hold `part` bytes
  /// together; 0 once they do.
  size_t room_below(size_t part) const {
    auto held = total();
    return held < part ? part - held : 0;
  }

  size_t budget() const {
    return budget_;
  }

  /// Whether a session holding `own` bytes goes beyond its share by adding
  /// `adding`: the total is over the budget then, and the session over its
  /// share. Never without a budget (0).
  bool beyond_share(size_t own, size_t adding = 0) const {
    if (budget_ == 0 || total() + adding <= budget_)
      return false;
    return own + adding > share();
  }

private:
  const size_t budget_;
  const std::atomic<size_t>& sessions_;
  std::atomic<size_t> total_{0};
};

/// What the server's registry can do with any of its sessions.
class session_base {
public:
  virtual ~session_base() = default;

  /// Closes the session because the server stops; thread-safe.
  virtual void shutdown() = 0;
};

// -- server state -------------------------------------------------------------

/// Shared by the listener and every session: sessions keep it alive, it only
/// keeps weak references to them.
class server_state : public std::enable_shared_from_this<server_state> {
public:
  server_state(net::io_context& ioc, ws_server_options opts,
               ws_server::open_handler on_open, ws_server::http_handler on_http)
    : ioc_(ioc),
      opts_(std::move(opts)),
      on_open_(std::move(on_open)),
      on_http_(std::move(on_http)),
      acceptor_(net::make_strand(ioc)),
      retry_timer_(acceptor_.get_executor()) {
    // max_inflight == 0 would never read anything; treat it as "no cap".
    if (opts_.max_inflight == 0)
      opts_.max_inflight = std::numeric_limits<size_t>::max();
  }

  std::string start();

  void stop();

  uint16_t port() const {
    return port_;
  }

  /// Adds a session; false when the server already stopped.
  bool add(const std::shared_ptr<session_base>& session) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopped_)
      return false;
    sessions_.emplace(session.get(), entry{session, false});
    return true;
  }

  /// Counts `session` as an open WebSocket from now on.
  void mark_open(const session_base* session) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto i = sessions_.find(session); i != sessions_.end())
      i->second.open_websocket = true;
  }

  void remove(const session_base* session) {
    std::lock_guard<std::mutex> guard{mtx_};
    sessions_.erase(session);
  }

  size_t websocket_count() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return static_cast<size_t>(
      std::count_if(sessions_.begin(), sessions_.end(),
                    [](const auto& kvp) { return kvp.second.open_websocket; }));
  }

  const ws_server_options& opts() const {
    return opts_;
  }

  /// Why `reserve_websocket` gave no place.
  enum class refusal { none, server_full, address_full };

  /// Takes a place for one more WebSocket session from `address` (the
  /// peer's IP), given back by `release_websocket` as the session goes.
  refusal reserve_websocket(const std::string& address,
                            const std::string& remote) {
    auto refused = [&](refusal why) {
      ++refused_;
      if (opts_.on_connection_refused)
        opts_.on_connection_refused(remote, why == refusal::address_full);
      return why;
    };
    const auto cap = opts_.max_connections;
    auto n = websocket_places_.load();
    do {
      if (cap != 0 && n >= cap)
        return refused(refusal::server_full);
    } while (!websocket_places_.compare_exchange_weak(n, n + 1));
    if (const auto per_address = opts_.max_connections_per_address;
        per_address != 0) {
      bool address_full = false;
      {
        std::lock_guard<std::mutex> guard{places_mtx_};
        auto& held = places_by_address_[address];
        address_full = held >= per_address;
        if (!address_full)
          ++held;
      }
      if (address_full) {
        --websocket_places_;
        return refused(refusal::address_full);
      }
    }
    return refusal::none;
  }

  void release_websocket(const std::string& address) {
    if (opts_.max_connections_per_address != 0) {
      std::lock_guard<std::mutex> guard{places_mtx_};
      if (auto i = places_by_address_.find(address);
          i != places_by_address_.end() && --i->second == 0)
        places_by_address_.erase(i);
    }
    --websocket_places_;
  }

  uint64_t refused_connections() const {
    return refused_;
  }

  /// The frames queued for all sessions (`max_outbound_total_bytes`).
  byte_budget& outbound() {
    return outbound_;
  }

  const byte_budget& outbound() const {
    return outbound_;
  }

  /// The client messages all sessions hold (`max_inbound_total_bytes`).
  byte_budget& inbound() {
    return inbound_;
  }

  const byte_budget& inbound() const {
    return inbound_;
  }

  /// What a session should hold queued at most (see
  /// `ws_connection::outbound_allowance`), the larger of two parts, each of
  /// which alone fills at most a quarter of the budget, so that both
  /// together leave half of it to the slices' last events and to live
  /// events (a session beyond its share is ended once the budget is full):
  /// - a quarter of the share: held by every session at once, a quarter;
  /// - a part of the room below a quarter of the budget: each of the
  ///   `outbound_producers` may be granted it at the same moment, and
  ///   together they take half of that room, so grants stop short of a
  ///   quarter whatever their timing, and shrink as it fills.
  /// With half the share and grants below half the budget, 100 readers
  /// of a 1 MiB budget filled it and one was ended. With the share part
  /// alone, 10,000 connections left a query 26 KB at a time with the
  /// budget empty (bench_req "page-500 +10000 idle": 59% slower than
  /// alone).
  size_t outbound_allowance() const {
    if (opts_.max_outbound_total_bytes == 0)
      return std::numeric_limits<size_t>::max();
    const auto producers = std::max<size_t>(1, opts_.outbound_producers);
    const auto granted = outbound_.room_below(outbound_.budget() / 4) / (2 * producers);
    return std::max(outbound_.share() / 4, granted);
  }

  /// A session closes because its outbound queue overflowed.
  void overflowed(const std::string& remote, bool shared_budget) const {
    if (opts_.on_overflow)
      opts_.on_overflow(remote, shared_budget);
  }

  /// A TLS handshake with `remote` failed; the session closes itself.
  void handshake_failed(const std::string& remote, const std::string& reason) {
    ++handshake_failures_;
    if (opts_.on_handshake_failure)
      opts_.on_handshake_failure(remote, reason);
  }

  uint64_t handshake_failures() const {
    return handshake_failures_;
  }

  const ws_server::open_handler& on_open() const {
    return on_open_;
  }

  const ws_server::http_handler& on_http() const {
    return on_http_;
  }

private:
  struct entry {
    std::weak_ptr<session_base> session;
    /// HTTP sessions and WebSockets in their handshake are closed by stop()
    /// but are no connections of the owner's.
    bool open_websocket;
  };

  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void on_retry(beast::error_code ec);

  net::io_context& ioc_;
  ws_server_options opts_;
  ws_server::open_handler on_open_;
  ws_server::http_handler on_http_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_timer_;
  std::atomic<uint16_t> port_{0};
  std::atomic<uint64_t> handshake_failures_{0};
  /// WebSocket sessions from their upgrade until their socket closes: what
  /// `max_connections` caps, and the divisor of a session's outbound share.
  std::atomic<size_t> websocket_places_{0};
  std::atomic<uint64_t> refused_{0};
  /// Places held per peer address, with `max_connections_per_address`.
  std::mutex places_mtx_;
  std::unordered_map<std::string, size_t> places_by_address_;
  byte_budget outbound_{opts_.max_outbound_total_bytes, websocket_places_};
  byte_budget inbound_{opts_.max_inbound_total_bytes, websocket_places_};
  bool started_ = false;
  mutable std::mutex mtx_;
  bool stopped_ = false;
  std::unordered_map<const session_base*, entry> sessions_;
};

using server_ptr = std::shared_ptr<server_state>;

} // namespace ferry::net::detail
