#pragma once

// What the outbound WebSocket (net/ws_client.cpp) and the HTTP requests
// (net/ws_client_http.cpp) share: the connection plan worked out from the
// URL and TLS settings, and the session base that resolves, connects and
// does the TLS handshake under one deadline. Internal to net/.

#include "net/ws_client.hpp"
#include "net/ws_client_tls.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ferry::net::client_detail {

// Declared inside ferry::net so that `net::` means Asio in these files and
// not the enclosing namespace.
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

constexpr const char* user_agent = "ferry";

/// Whether every character is visible ASCII: what ends up in the request line
/// and the Host header must not smuggle spaces or line breaks into them.
bool is_visible_ascii(std::string_view text);

/// Whether OpenSSL itself failed, as opposed to the socket under it.
inline bool is_tls_error(const beast::error_code& ec) {
  return ec.category() == net::error::get_ssl_category();
}

bool is_ip_literal(const std::string& host);

/// The step a session is in, so that a timeout says what timed out: a slow
/// answer on an established connection is no connect failure.
enum class session_step {
  start,
  resolve,
  connect,
  tls_handshake,
  websocket_handshake,
  http_write,
  http_read,
};

/// The reason a session that timed out in `step` reports.
std::string timeout_reason(session_step step, std::chrono::milliseconds limit,
                           const std::string& where);

/// Everything a session needs before its first step, worked out in the
/// caller's thread. A plan with an error is reported by the session at once.
struct connect_plan {
  parsed_url url;
  std::string host_header;
  std::string tls_name;
  /// Null for plain TCP.
  std::shared_ptr<ssl::context> ctx;
  std::vector<spki_pin> pins;
  failure_kind error_kind = failure_kind::none;
  std::string error;
};

/// The plan for `url`; a URL that does not parse or TLS settings that do not
/// work give a plan with an error.
connect_plan make_plan(const std::string& url, const tls_options& tls);

// -- session base -------------------------------------------------------------

using tls_transport = beast::ssl_stream<beast::tcp_stream>;

/// The byte stream under a layer: the layer itself, or what a WebSocket runs
/// on.
template <class Layer>
struct transport_of {
  using type = Layer;
};

template <class Transport>
struct transport_of<websocket::stream<Transport>> {
  using type = Transport;
};

template <class Layer>
constexpr bool uses_tls
  = std::is_same_v<typename transport_of<Layer>::type, tls_transport>;

template <class Transport>
Transport& transport(Transport& layer) {
  return layer;
}

template <class Transport>
Transport& transport(websocket::stream<Transport>& layer) {
  return layer.next_layer();
}

/// Builds a layer on `ex`; TLS layers also need the context.
template <class Layer>
Layer make_layer(const net::any_io_executor& ex, ssl::context* ctx) {
  if constexpr (uses_tls<Layer>)
    return Layer(ex, *ctx);
  else
    return Layer(ex);
}

/// Resolve, TCP connect and TLS handshake under one deadline: the part the
/// WebSocket and the HTTP sessions share. Everything runs on one strand.
template <class Layer>
class session_base : public std::enable_shared_from_this<session_base<Layer>> {
public:
  virtual ~session_base() = default;

  /// Starts the session; nothing runs before this returns.
  void run() {
    net::post(layer_.get_executor(),
              beast::bind_front_handler(&session_base::on_run,
                                        this->shared_from_this()));
  }

protected:
  session_base(net::io_context& ioc, connect_plan plan,
               std::chrono::milliseconds timeout)
    : plan_(std::move(plan)),
      resolver_(net::make_strand(ioc)),
      layer_(make_layer<Layer>(resolver_.get_executor(), plan_.ctx.get())),
      deadline_(resolver_.get_executor()),
      timeout_(timeout) {
    // nop
  }

  /// TCP is connected and, for TLS, the handshake is done.
  virtual void on_transport_ready() = 0;

  /// Reports the end of the session to its owner; called once, by `finish`.
  virtual void on_finish(failure_kind kind, const std::string& reason) = 0;

  /// Ends the session exactly once.
  void finish(failure_kind kind, const std::string& reason) {
    if (finished_)
      return;
    finished_ = true;
    end_deadline();
    resolver_.cancel();
    beast::get_lowest_layer(layer_).close();
    on_finish(kind, reason);
  }

  /// The deadline no longer applies, even if it already fired.
  void end_deadline() {
    deadline_active_ = false;
    deadline_.cancel();
  }

  template <class Derived>
  std::shared_ptr<Derived> shared_as() {
    return std::static_pointer_cast<Derived>(this->shared_from_this());
  }

  connect_plan plan_;
  tcp::resolver resolver_;
  Layer layer_;
  net::steady_timer deadline_;
  std::chrono::milliseconds timeout_;
  /// The step in progress, for the timeout's reason.
  session_step step_ = session_step::start;
  bool finished_ = false;

private:
  void on_run() {
    if (finished_)
      return;
    if (!plan_.error.empty())
      return finish(plan_.error_kind, plan_.error);
    deadline_active_ = true;
    deadline_.expires_after(timeout_);
    deadline_.async_wait(beast::bind_front_handler(&session_base::on_deadline,
                                                   this->shared_from_this()));
    step_ = session_step::resolve;
    resolver_.async_resolve(
      plan_.url.host, std::to_string(plan_.url.port),
      beast::bind_front_handler(&session_base::on_resolve,
                                this->shared_from_this()));
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (finished_)
      return;
    if (ec)
      return finish(failure_kind::dns,
                    "resolve " + plan_.url.host + ": " + ec.message());
    step_ = session_step::connect;
    beast::get_lowest_layer(layer_).async_connect(
      results, beast::bind_front_handler(&session_base::on_connect,
                                         this->shared_from_this()));
  }

  void on_connect(beast::error_code ec, tcp::endpoint) {
    if (finished_)
      return;
    if (ec)
      return finish(failure_kind::tcp, "connect " + plan_.host_header + ": "
                                          + ec.message());
    // Small frames answered one by one (NEG-MSG rounds, OKs): no Nagle delay.
    beast::error_code ignored;
    beast::get_lowest_layer(layer_).socket().set_option(tcp::no_delay(true),
                                                        ignored);
    if constexpr (uses_tls<Layer>) {
      auto& stream = transport(layer_);
      // RFC 6066 allows no IP literals in SNI.
      if (!is_ip_literal(plan_.tls_name)
          && !SSL_set_tlsext_host_name(stream.native_handle(),
                                       plan_.tls_name.c_str()))
        return finish(failure_kind::tls, "tls setup: cannot set SNI");
      stream.set_verify_callback(
        verifier{plan_.tls_name, plan_.pins, &verify_}, ec);
      if (ec)
        return finish(failure_kind::tls, "tls setup: " + ec.message());
      step_ = session_step::tls_handshake;
      stream.async_handshake(
        ssl::stream_base::client,
        beast::bind_front_handler(&session_base::on_ssl_handshake,
                                  this->shared_from_this()));
    } else {
      on_transport_ready();
    }
  }

  void on_ssl_handshake(beast::error_code ec) {
    if (finished_)
      return;
    if (ec && !verify_.pin_mismatch.empty())
      return finish(failure_kind::pin, "pin_mismatch: " + verify_.pin_mismatch);
    if (ec) {
      auto reason = "tls handshake: " + ec.message();
      if (!verify_.failure.empty())
        reason += " (" + verify_.failure + ")";
      return finish(failure_kind::tls, reason);
    }
    on_transport_ready();
  }

  void on_deadline(beast::error_code ec) {
    if (ec == net::error::operation_aborted || !deadline_active_ || finished_)
      return;
    finish(failure_kind::timeout,
           timeout_reason(step_, timeout_, plan_.host_header));
  }

  verify_record verify_;
  bool deadline_active_ = false;
};

} // namespace ferry::net::client_detail
