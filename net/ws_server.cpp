#include "net/ws_server.hpp"

#include "net/ws_server_state.hpp"
#include "net/ws_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <utility>
#include <vector>

namespace ferry::net {
namespace detail {
namespace {

/// Largest HTTP request body we buffer; larger ones get 413.
constexpr size_t http_body_limit = 1024 * 1024;

/// How long an HTTP connection may take to send a request (also the idle
/// limit of a keep-alive connection) and to read our response.
constexpr auto http_timeout = std::chrono::seconds(30);

/// How long we keep draining a request body we refused, so that closing the
/// socket with unread input does not reset the connection before the client
/// has read our 413.
constexpr auto http_linger = std::chrono::seconds(2);

std::string lowercase(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return result;
}

/// Whether `ec` from reading a request means the client sent something that
/// is not HTTP/1.1 (as opposed to leaving, timing out or exceeding a limit).
bool is_malformed_request(const beast::error_code& ec) {
  static const std::vector<http::error> malformed{
    http::error::bad_line_ending,    http::error::bad_method,
    http::error::bad_target,         http::error::bad_version,
    http::error::bad_field,          http::error::bad_value,
    http::error::bad_content_length, http::error::bad_transfer_encoding,
    http::error::bad_chunk,          http::error::bad_chunk_extension,
    http::error::bad_obs_fold,       http::error::multiple_content_length};
  return std::any_of(malformed.begin(), malformed.end(),
                     [&](http::error e) { return ec == e; });
}

// -- HTTP session -------------------------------------------------------------

template <class Stream>
class http_session : public session_base,
                     public std::enable_shared_from_this<http_session<Stream>> {
public:
  http_session(tcp::socket&& socket, server_ptr server)
    : stream_(open_stream(std::move(socket), *server)),
      executor_(stream_.get_executor()),
      server_(std::move(server)) {
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) {
      remote_ = endpoint_text(ep);
      address_ = ep.address().to_string();
    }
  }

  ~http_session() override {
    server_->remove(this);
  }

  void run() {
    if (!server_->add(this->shared_from_this()))
      return;
    if constexpr (is_tls<Stream>)
      net::dispatch(executor_,
                    beast::bind_front_handler(&http_session::do_handshake,
                                              this->shared_from_this()));
    else
      net::dispatch(executor_,
                    beast::bind_front_handler(&http_session::do_read,
                                              this->shared_from_this()));
  }

  void shutdown() override {
    net::post(executor_,
              beast::bind_front_handler(&http_session::on_shutdown,
                                        this->shared_from_this()));
  }

  /// Hands `res` to the session's strand; any thread.
  void post_response(http_response res) {
    net::post(executor_,
              beast::bind_front_handler(&http_session::on_response,
                                        this->shared_from_this(),
                                        std::move(res)));
  }

private:
  /// Shared by every copy of the `respond` function given to the owner:
  /// answers once, and answers 500 if the owner drops it unanswered, so the
  /// client is not left waiting.
  struct responder {
    explicit responder(std::shared_ptr<http_session> session)
      : session(std::move(session)) {
      // nop
    }

    ~responder() {
      if (!done.exchange(true))
        session->post_response(
          json_error_response(500, "the server dropped the request"));
    }

    void operator()(http_response res) {
      if (!done.exchange(true))
        session->post_response(std::move(res));
    }

    std::shared_ptr<http_session> session;
    std::atomic<bool> done{false};
  };

  static Stream open_stream(tcp::socket&& socket, const server_state& server) {
    if constexpr (is_tls<Stream>)
      return Stream{std::move(socket), *server.opts().tls};
    else
      return Stream{std::move(socket)};
  }

  void do_handshake() {
    if (stopped_)
      return;
    // A client that connects and never finishes its handshake holds a
    // socket for no longer than this.
    beast::get_lowest_layer(stream_).expires_after(
      server_->opts().handshake_timeout);
    stream_.async_handshake(ssl::stream_base::server,
                            beast::bind_front_handler(
                              &http_session::on_handshake,
                              this->shared_from_this()));
  }

  void on_handshake(beast::error_code ec) {
    if (stopped_)
      return;
    if (ec) {
      // Only this connection fails; the listener and the others go on.
      server_->handshake_failed(remote_, ec == beast::error::timeout
                                           ? "handshake timed out"
                                           : ec.message());
      return beast::get_lowest_layer(stream_).close();
    }
    do_read();
  }

  void do_read() {
    if (stopped_)
      return;
    parser_.emplace();
    parser_->body_limit(http_body_limit);
    beast::get_lowest_layer(stream_).expires_after(http_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read,
                                               this->shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (stopped_)
      return;
    if (ec == http::error::end_of_stream)
      return do_shutdown();
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      keep_alive_ = false;
      linger_ = true;
      version_ = 11;
      return on_response(
        ec == http::error::body_limit
          ? json_error_response(413, "request body too large (limit "
                                       + std::to_string(http_body_limit)
                                       + " bytes)")
          : json_error_response(431, "request header fields too large"));
    }
    // A request Beast cannot parse (bad request line, bad header) gets an
    // answer too; the connection ends after it, as nothing after the broken
    // part can be trusted.
    if (is_malformed_request(ec)) {
      keep_alive_ = false;
      linger_ = true;
      version_ = 11;
      return on_response(
        json_error_response(400, "malformed HTTP request: " + ec.message()));
    }
    if (ec)
      return close_socket();
    if (server_->opts().websocket && websocket::is_upgrade(parser_->get())) {
      if (auto refused = server_->reserve_websocket(address_, remote_);
          refused != server_state::refusal::none)
        return refuse_websocket(refused);
      beast::get_lowest_layer(stream_).expires_never();
      handed_off_ = true;
      using ws_session = websocket_session<Stream>;
      // TLS state lives in the stream, so a TLS stream moves over whole.
      if constexpr (is_tls<Stream>)
        std::make_shared<ws_session>(std::move(stream_), server_, address_)
          ->run(parser_->release());
      else
        std::make_shared<ws_session>(stream_.release_socket(), server_, address_)
          ->run(parser_->release());
      return;
    }
    auto req = parser_->release();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    if (!server_->on_http())
      return on_response(json_error_response(404, "not found"));
    http_request request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    for (const auto& field : req) {
      auto& value = request.headers[lowercase(field.name_string())];
      if (!value.empty())
        value += ", ";
      value += std::string(field.value());
    }
    request.body = std::move(req.body());
    request.remote_address = remote_;
    auto respond = std::make_shared<responder>(this->shared_from_this());
    server_->on_http()(std::move(request), [respond](http_response res) {
      (*respond)(std::move(res));
    });
  }

  /// Answers an upgrade no place was left for; the connection ends after.
  void refuse_websocket(server_state::refusal why) {
    keep_alive_ = false;
    version_ = parser_->get().version();
    const auto& opts = server_->opts();
    auto res
      = why == server_state::refusal::address_full
          ? json_error_response(
              429, "too many connections from this address: at most "
                     + std::to_string(opts.max_connections_per_address)
                     + " at once; try again later")
          : json_error_response(
              503, "too many connections: this relay serves at most "
                     + std::to_string(opts.max_connections)
                     + " WebSockets at once; try again later");
    res.headers["Retry-After"] = "10";
    on_response(std::move(res));
  }

  void on_response(http_response res) {
    if (stopped_)
      return;
    res_ = {};
    res_.version(version_);
    // Beast throws on a status outside 100..999; that is the owner's bug and
    // the client still deserves an answer.
    res_.result(res.status >= 100 && res.status <= 999 ? res.status : 500u);
    res_.set(http::field::server, "ferry");
    if (!res.content_type.empty())
      res_.set(http::field::content_type, res.content_type);
    for (const auto& [name, value] : res.headers)
      res_.set(name, value);
    res_.keep_alive(keep_alive_);
    res_.body() = std::move(res.body);
    res_.prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(http_timeout);
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&http_session::on_write,
                                                this->shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (stopped_)
      return;
    if (ec)
      return close_socket();
    if (linger_)
      return do_linger();
    if (res_.need_eof())
      return do_shutdown();
    do_read();
  }

  void do_shutdown() {
    if constexpr (is_tls<Stream>) {
      // close_notify, so that the client can tell our end from a
      // truncation; a client that never answers it is cut off.
      beast::get_lowest_layer(stream_).expires_after(http_linger);
      stream_.async_shutdown(beast::bind_front_handler(
        &http_session::on_tls_shutdown, this->shared_from_this()));
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  void on_tls_shutdown(beast::error_code) {
    close_socket();
  }

  void do_linger() {
    // After our close_notify OpenSSL discards what the client still sends,
    // so the TLS shutdown drains the refused body by itself.
    if constexpr (is_tls<Stream>) {
      do_shutdown();
    } else {
      do_shutdown();
      stream_.expires_after(http_linger);
      do_drain();
    }
  }

  void do_drain() {
    buffer_.clear();
    stream_.async_read_some(
      buffer_.prepare(ws_read_chunk),
      beast::bind_front_handler(&http_session::on_drain,
                                this->shared_from_this()));
  }

  void on_drain(beast::error_code ec, size_t) {
    if (ec || stopped_)
      return close_socket();
    do_drain();
  }

  void on_shutdown() {
    stopped_ = true;
    close_socket();
  }

  void close_socket() {
    // A stream handed to a WebSocket session is that session's to close.
    if (!handed_off_)
      beast::get_lowest_layer(stream_).close();
  }

  Stream stream_;
  /// The strand; kept apart from the stream, which moves to the WebSocket
  /// session on an upgrade while `shutdown` may still post here.
  typename Stream::executor_type executor_;
  server_ptr server_;
  beast::flat_buffer buffer_;
  std::string remote_;
  /// The peer's IP, which `max_connections_per_address` counts by.
  std::string address_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool linger_ = false;
  bool stopped_ = false;
  bool handed_off_ = false;
};

} // namespace

// -- server state: listening --------------------------------------------------

std::string server_state::start() {
  auto where = opts_.address + ":" + std::to_string(opts_.port);
  if (started_)
    return "listen " + where + ": already started";
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopped_)
      return "listen " + where + ": server stopped";
  }
  beast::error_code ec;
  beast::error_code ignored;
  auto address = net::ip::make_address(opts_.address, ec);
  if (ec)
    return "address " + opts_.address + ": " + ec.message();
  tcp::endpoint endpoint{address, opts_.port};
  acceptor_.open(endpoint.protocol(), ec);
  if (ec)
    return "open " + where + ": " + ec.message();
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor_.bind(endpoint, ec);
  if (ec) {
    acceptor_.close(ignored);
    return "bind " + where + ": " + ec.message();
  }
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_.close(ignored);
    return "listen " + where + ": " + ec.message();
  }
  port_ = acceptor_.local_endpoint(ignored).port();
  started_ = true;
  do_accept();
  return {};
}

void server_state::stop() {
  std::vector<std::shared_ptr<session_base>> live;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopped_)
      return;
    stopped_ = true;
    for (const auto& kvp : sessions_)
      if (auto session = kvp.second.session.lock())
        live.push_back(std::move(session));
  }
  // The acceptor belongs to its strand; closing it there cancels the accept.
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ignored;
    self->retry_timer_.cancel();
    self->acceptor_.close(ignored);
  });
  for (const auto& session : live)
    session->shutdown();
}

void server_state::do_accept() {
  acceptor_.async_accept(net::make_strand(ioc_),
                         beast::bind_front_handler(&server_state::on_accept,
                                                   shared_from_this()));
}

void server_state::on_accept(beast::error_code ec, tcp::socket socket) {
  if (!acceptor_.is_open())
    return;
  if (ec) {
    // Typically out of file descriptors: retrying at once would spin.
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait(
      beast::bind_front_handler(&server_state::on_retry, shared_from_this()));
    return;
  }
  // Nostr is request/answer (EVENT/OK, REQ/EOSE, NEG-MSG rounds): Nagle's
  // algorithm would hold each small answer back for the peer's delayed ACK.
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (opts_.tls)
    std::make_shared<http_session<tls_stream>>(std::move(socket),
                                               shared_from_this())
      ->run();
  else
    std::make_shared<http_session<plain_stream>>(std::move(socket),
                                                 shared_from_this())
      ->run();
  do_accept();
}

void server_state::on_retry(beast::error_code ec) {
  if (!ec && acceptor_.is_open())
    do_accept();
}

} // namespace detail

http_response json_error_response(unsigned status, std::string_view message,
                                  std::string_view field) {
  boost::json::object error{{"code", status}, {"message", message}};
  if (!field.empty())
    error["field"] = field;
  http_response res;
  res.status = status;
  res.content_type = "application/json";
  res.body = boost::json::serialize(
    boost::json::object{{"error", std::move(error)}});
  return res;
}

// -- ws_server ----------------------------------------------------------------

/// The header's handle on the state; the state itself must be nameable by
/// the sessions, which a private nested type is not.
struct ws_server::impl : detail::server_state {
  using detail::server_state::server_state;
};

ws_server::ws_server(boost::asio::io_context& ioc, ws_server_options opts,
                     open_handler on_open, http_handler on_http)
  : impl_(std::make_shared<impl>(ioc, std::move(opts), std::move(on_open),
                                 std::move(on_http))) {
  // nop
}

ws_server::~ws_server() {
  stop();
}

std::string ws_server::start() {
  return impl_->start();
}

uint16_t ws_server::port() const {
  return impl_->port();
}

void ws_server::stop() {
  impl_->stop();
}

size_t ws_server::connection_count() const {
  return impl_->websocket_count();
}

size_t ws_server::outbound_queued_bytes() const {
  return impl_->outbound().total();
}

size_t ws_server::inbound_held_bytes() const {
  return impl_->inbound().total();
}

uint64_t ws_server::refused_connections() const {
  return impl_->refused_connections();
}

bool ws_server::tls() const {
  return impl_->opts().tls != nullptr;
}

uint64_t ws_server::handshake_failures() const {
  return impl_->handshake_failures();
}

} // namespace ferry::net
