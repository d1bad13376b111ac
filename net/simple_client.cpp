#include "net/simple_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <cctype>

namespace ferry::net {
namespace {

// Declared inside ferry::net so that `net::` means Asio in this file and not
// the enclosing namespace.
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

/// How long `send` waits for a peer that does not read.
constexpr auto send_timeout = std::chrono::seconds(10);

/// How long `close` waits for the peer's close frame.
constexpr auto close_timeout = std::chrono::seconds(2);

/// Largest response body `simple_http_request` accepts.
constexpr uint64_t http_response_limit = 64 * 1024 * 1024;

constexpr const char* user_agent = "ferry-simple-client";

std::string lowercase(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return result;
}

/// Runs `ioc` until `done()` holds or `deadline` passes. Operations still
/// pending at the deadline stay pending: a WebSocket read must not be
/// cancelled, because Beast fails the whole stream when it is.
template <class Predicate>
bool run_until(net::io_context& ioc, Predicate done,
               clock_type::time_point deadline) {
  if (ioc.stopped())
    ioc.restart();
  while (!done() && ioc.run_one_until(deadline) != 0) {
    // nop
  }
  return done();
}

/// Runs `ioc` until `done()` holds; for operations bounded by a tcp_stream
/// expiry, which therefore always complete.
template <class Predicate>
void run_until(net::io_context& ioc, Predicate done) {
  if (ioc.stopped())
    ioc.restart();
  while (!done() && ioc.run_one() != 0) {
    // nop
  }
}

} // namespace

// -- simple_ws_client ---------------------------------------------------------

struct simple_ws_client::impl {
  std::string connect(const std::string& host, uint16_t port,
                      const std::string& target,
                      std::chrono::milliseconds timeout) {
    reset();
    ioc_.emplace();
    ws_.emplace(*ioc_);
    auto where = host + ":" + std::to_string(port);
    tcp::resolver resolver{*ioc_};
    beast::error_code ec;
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec)
      return "resolve " + where + ": " + ec.message();
    auto& stream = beast::get_lowest_layer(*ws_);
    stream.expires_after(timeout);
    bool done = false;
    stream.async_connect(results,
                         [&](beast::error_code err, const tcp::endpoint&) {
                           ec = err;
                           done = true;
                         });
    run_until(*ioc_, [&] { return done; });
    if (ec)
      return "connect " + where + ": " + ec.message();
    // Messages go out as they are sent, as browsers and nostr clients send
    // them: with Nagle, a small message written right after another waited
    // ~40 ms for the server's delayed ACK (a CLOSE followed by a REQ).
    // Without it (it cannot fail on a connected TCP socket) only latency
    // suffers.
    beast::error_code no_delay_error;
    stream.socket().set_option(tcp::no_delay{true}, no_delay_error);
    ws_->set_option(
      websocket::stream_base::decorator([](websocket::request_type& req) {
        req.set(http::field::user_agent, user_agent);
      }));
    done = false;
    ws_->async_handshake(where, target, [&](beast::error_code err) {
      ec = err;
      done = true;
    });
    run_until(*ioc_, [&] { return done; });
    if (ec) {
      drop();
      return "handshake " + where + target + ": " + ec.message();
    }
    // From here on the WebSocket's own timeouts apply; Beast wants the
    // tcp_stream's expiry off then.
    stream.expires_never();
    ws_->set_option(
      websocket::stream_base::timeout::suggested(beast::role_type::client));
    // A test tool must see whatever the server sends, however large.
    ws_->read_message_max(0);
    ws_->text(true);
    open_ = true;
    return {};
  }

  std::string send(std::string_view text) {
    if (!open_)
      return "write: not connected";
    write_done_ = false;
    ws_->async_write(net::buffer(text.data(), text.size()),
                     [this](beast::error_code ec, size_t) {
                       write_ec_ = ec;
                       write_done_ = true;
                     });
    if (!run_until(*ioc_, [this] { return write_done_; },
                   clock_type::now() + send_timeout)) {
      // The write still references `text`: closing the socket makes it
      // complete now instead of after we returned.
      drop();
      run_until(*ioc_, [this] { return write_done_; });
      return "write: timed out";
    }
    if (write_ec_) {
      drop();
      return "write: " + write_ec_.message();
    }
    return {};
  }

  std::optional<std::string> receive(std::chrono::milliseconds timeout) {
    if (!read_pending_ && !read_done_) {
      if (!open_)
        return std::nullopt;
      read_pending_ = true;
      ws_->async_read(buffer_, [this](beast::error_code ec, size_t) {
        read_pending_ = false;
        read_done_ = true;
        read_ec_ = ec;
      });
    }
    if (!run_until(*ioc_, [this] { return read_done_; },
                   clock_type::now() + timeout))
      return std::nullopt;
    read_done_ = false;
    if (read_ec_) {
      if (read_ec_ == websocket::error::closed) {
        const auto& reason = ws_->reason().reason;
        close_reason_.assign(reason.data(), reason.size());
      }
      drop();
      return std::nullopt;
    }
    auto message = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    return message;
  }

  void close() {
    if (!open_)
      return;
    open_ = false;
    close_done_ = false;
    ws_->async_close(websocket::close_code::normal,
                     [this](beast::error_code) { close_done_ = true; });
    if (!run_until(*ioc_, [this] { return close_done_; },
                   clock_type::now() + close_timeout))
      drop();
  }

  /// Ends the connection without a close handshake.
  void drop() {
    open_ = false;
    if (ws_)
      beast::get_lowest_layer(*ws_).close();
  }

  /// Forgets the previous connection; its pending handlers are destroyed
  /// with its io_context, never invoked.
  void reset() {
    drop();
    ws_.reset();
    ioc_.reset();
    buffer_.clear();
    read_pending_ = false;
    read_done_ = false;
    close_reason_.clear();
  }

  std::optional<net::io_context> ioc_;
  std::optional<websocket::stream<beast::tcp_stream>> ws_;
  beast::flat_buffer buffer_;
  bool open_ = false;
  bool read_pending_ = false;
  bool read_done_ = false;
  beast::error_code read_ec_;
  bool write_done_ = false;
  beast::error_code write_ec_;
  bool close_done_ = false;
  std::string close_reason_;
};

simple_ws_client::simple_ws_client() : impl_(std::make_unique<impl>()) {
  // nop
}

simple_ws_client::~simple_ws_client() {
  impl_->close();
}

std::string simple_ws_client::connect(const std::string& host, uint16_t port,
                                      const std::string& target,
                                      std::chrono::milliseconds timeout) {
  return impl_->connect(host, port, target, timeout);
}

std::string simple_ws_client::send(std::string_view text) {
  return impl_->send(text);
}

std::optional<std::string>
simple_ws_client::receive(std::chrono::milliseconds timeout) {
  return impl_->receive(timeout);
}

void simple_ws_client::close() {
  impl_->close();
}

bool simple_ws_client::is_open() const {
  return impl_->open_;
}

const std::string& simple_ws_client::close_reason() const {
  return impl_->close_reason_;
}

// -- simple_http_request ------------------------------------------------------

http_result
simple_http_request(const std::string& host, uint16_t port,
                    const std::string& method, const std::string& target,
                    const std::map<std::string, std::string>& headers,
                    const std::string& body, std::chrono::milliseconds timeout) {
  http_result result;
  auto where = host + ":" + std::to_string(port);
  net::io_context ioc;
  tcp::resolver resolver{ioc};
  beast::error_code ec;
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) {
    result.error = "resolve " + where + ": " + ec.message();
    return result;
  }
  http::request<http::string_body> req;
  auto verb = http::string_to_verb(method);
  if (verb == http::verb::unknown)
    req.method_string(method);
  else
    req.method(verb);
  req.target(target);
  req.version(11);
  req.set(http::field::host, where);
  req.set(http::field::user_agent, user_agent);
  for (const auto& [name, value] : headers)
    req.set(name, value);
  req.body() = body;
  req.prepare_payload();
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(http_response_limit);
  beast::error_code write_ec;
  beast::error_code read_ec;
  // One expiry bounds the whole exchange, so ioc.run() always returns.
  stream.expires_after(timeout);
  stream.async_connect(endpoints, [&](beast::error_code err,
                                      const tcp::endpoint&) {
    if (err) {
      ec = err;
      return;
    }
    http::async_write(stream, req, [&](beast::error_code err, size_t) {
      // A server may answer (413) and stop reading before the body is
      // written: read the answer even when the write failed.
      write_ec = err;
      http::async_read(stream, buffer, parser,
                       [&](beast::error_code err, size_t) { read_ec = err; });
    });
  });
  ioc.run();
  // A timeout says which step it cut short: a slow answer on an established
  // connection is no connect failure.
  auto timed_out = " timed out after " + std::to_string(timeout.count()) + " ms";
  if (ec) {
    result.error = ec == beast::error::timeout
                     ? "connect to " + where + timed_out
                     : "connect " + where + ": " + ec.message();
    return result;
  }
  if (read_ec) {
    if (write_ec)
      result.error = write_ec == beast::error::timeout
                       ? "writing the request to " + where + timed_out
                           + " (connected)"
                       : "write: " + write_ec.message();
    else
      result.error = read_ec == beast::error::timeout
                       ? "waiting for the response from " + where + timed_out
                           + " (connected, request sent)"
                       : "read: " + read_ec.message();
    return result;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  auto res = parser.release();
  result.response.status = res.result_int();
  result.response.content_type = std::string(res[http::field::content_type]);
  for (const auto& field : res)
    result.response.headers[lowercase(field.name_string())]
      = std::string(field.value());
  result.response.body = std::move(res.body());
  return result;
}

} // namespace ferry::net
