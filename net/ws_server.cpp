#include "net/ws_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ferry::net {
namespace {

// Declared inside ferry::net so that `net::` means Asio in this file and not
// the enclosing namespace.
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

/// Largest HTTP request body we buffer; larger ones get 413.
constexpr size_t http_body_limit = 1024 * 1024;

/// How long an HTTP connection may take to send a request (also the idle
/// limit of a keep-alive connection) and to read our response.
constexpr auto http_timeout = std::chrono::seconds(30);

/// How long we keep draining a request body we refused, so that closing the
/// socket with unread input does not reset the connection before the client
/// has read our 413.
constexpr auto http_linger = std::chrono::seconds(2);

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

/// The longest reason a close frame can carry (RFC 6455, 5.5).
constexpr size_t ws_close_reason_max = 123;

std::string endpoint_text(const tcp::endpoint& ep) {
  auto address = ep.address();
  auto host = address.to_string();
  if (address.is_v6())
    host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

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
  bool started_ = false;
  mutable std::mutex mtx_;
  bool stopped_ = false;
  std::unordered_map<const session_base*, entry> sessions_;
};

using server_ptr = std::shared_ptr<server_state>;

// -- WebSocket session --------------------------------------------------------

template <class Stream>
class websocket_session
  : public ws_connection,
    public session_base,
    public std::enable_shared_from_this<websocket_session<Stream>> {
public:
  /// `next_layer` becomes the WebSocket's stream: a socket for plain TCP, the
  /// handshaken TLS stream for TLS.
  template <class NextLayer>
  websocket_session(NextLayer&& next_layer, server_ptr server)
    : ws_(std::forward<NextLayer>(next_layer)),
      close_timer_(ws_.get_executor()),
      server_(std::move(server)) {
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(ws_).socket().remote_endpoint(ec);
    if (!ec)
      remote_ = endpoint_text(ep);
  }

  ~websocket_session() override {
    server_->remove(this);
    // Only reached unfinished when the io_context went away with our handlers
    // still queued; the owner is promised on_close in every case.
    if (opened_ && !finished_ && callbacks_.on_close)
      callbacks_.on_close("io stopped");
  }

  /// Accepts the upgrade `req` and starts the session.
  void run(http::request<http::string_body> req) {
    if (!server_->add(this->shared_from_this()))
      return;
    net::dispatch(ws_.get_executor(),
                  beast::bind_front_handler(&websocket_session::on_run,
                                            this->shared_from_this(),
                                            std::move(req)));
  }

  // -- ws_connection ----------------------------------------------------------

  void send(std::shared_ptr<const std::string> frame) override {
    if (!frame)
      return;
    std::vector<std::shared_ptr<const std::string>> frames;
    frames.push_back(std::move(frame));
    net::post(ws_.get_executor(),
              beast::bind_front_handler(&websocket_session::on_send,
                                        this->shared_from_this(),
                                        std::move(frames)));
  }

  void send_all(std::vector<std::string> frames) override {
    std::vector<std::shared_ptr<const std::string>> shared;
    shared.reserve(frames.size());
    for (auto& frame : frames)
      shared.push_back(std::make_shared<const std::string>(std::move(frame)));
    net::post(ws_.get_executor(),
              beast::bind_front_handler(&websocket_session::on_send,
                                        this->shared_from_this(),
                                        std::move(shared)));
  }

  size_t queued_bytes() const override {
    return queued_bytes_.load(std::memory_order_relaxed);
  }

  void frame_done() override {
    // Never below zero, even if the owner acknowledges too often.
    auto current = inflight_.load();
    do {
      if (current == 0)
        return;
    } while (!inflight_.compare_exchange_weak(current, current - 1));
    // Only the step from "at the cap" to "below it" can unpause reading.
    if (current == server_->opts().max_inflight)
      net::post(ws_.get_executor(),
                beast::bind_front_handler(&websocket_session::do_read,
                                          this->shared_from_this()));
  }

  void close(std::string reason) override {
    net::post(ws_.get_executor(),
              beast::bind_front_handler(&websocket_session::on_close_request,
                                        this->shared_from_this(),
                                        std::move(reason)));
  }

  const std::string& remote_address() const override {
    return remote_;
  }

  // -- session_base -----------------------------------------------------------

  void shutdown() override {
    net::post(ws_.get_executor(),
              beast::bind_front_handler(&websocket_session::on_shutdown,
                                        this->shared_from_this()));
  }

private:
  using frame_ptr = std::shared_ptr<const std::string>;

  void on_run(http::request<http::string_body> req) {
    ws_.set_option(
      websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(
      websocket::stream_base::decorator([](websocket::response_type& res) {
        res.set(http::field::server, "ferry");
      }));
    // Beast would fail the whole connection on an oversize message; we
    // discard such messages ourselves and keep the connection.
    ws_.read_message_max(0);
    ws_.text(true);
    ws_.async_accept(req,
                     beast::bind_front_handler(&websocket_session::on_accept,
                                               this->shared_from_this()));
  }

  void on_accept(beast::error_code ec) {
    if (ec || shutting_down_) {
      // The owner never saw this connection, so there is nobody to tell.
      finished_ = true;
      beast::get_lowest_layer(ws_).close();
      server_->remove(this);
      return;
    }
    opened_ = true;
    if (server_->on_open())
      callbacks_ = server_->on_open()(this->shared_from_this());
    // Counted once the owner knows the connection, so that a count the owner
    // sees always has its on_open behind it.
    server_->mark_open(this);
    do_read();
  }

  // -- reading ----------------------------------------------------------------

  void do_read() {
    if (reading_ || !opened_ || finished_ || close_started_)
      return;
    if (inflight_.load() >= server_->opts().max_inflight)
      return; // frame_done() resumes
    reading_ = true;
    // Never buffer more than one byte beyond the limit: that byte is what
    // tells an oversize message apart from one of exactly the limit.
    const auto& opts = server_->opts();
    auto limit = ws_read_chunk;
    if (!discarding_)
      limit = std::min(limit, opts.max_frame_bytes + 1 - message_bytes_);
    ws_.async_read_some(buffer_, limit,
                        beast::bind_front_handler(&websocket_session::on_read,
                                                  this->shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t bytes) {
    reading_ = false;
    if (finished_)
      return;
    if (ec) {
      // A read suspended by our own close handshake; on_close_done ends it.
      if (close_started_ && ec == net::error::operation_aborted)
        return;
      if (close_pending_)
        return finish(close_text_);
      if (ec == websocket::error::closed)
        return finish(peer_close_text());
      return finish("read: " + ec.message());
    }
    message_bytes_ += bytes;
    if (!discarding_ && message_bytes_ > server_->opts().max_frame_bytes)
      discarding_ = true;
    if (discarding_)
      buffer_.consume(buffer_.size());
    if (ws_.is_message_done()) {
      // After close() the owner wants no more traffic from this peer.
      if (!close_pending_) {
        if (discarding_) {
          if (callbacks_.on_oversize)
            callbacks_.on_oversize(message_bytes_);
        } else {
          // Counted before the call: the owner may acknowledge from another
          // thread before on_frame even returns.
          ++inflight_;
          if (callbacks_.on_frame)
            callbacks_.on_frame(beast::buffers_to_string(buffer_.data()));
        }
      }
      buffer_.consume(buffer_.size());
      message_bytes_ = 0;
      discarding_ = false;
    }
    do_read();
  }

  std::string peer_close_text() const {
    const auto& reason = ws_.reason();
    auto text = "closed by peer (" + std::to_string(reason.code);
    if (!reason.reason.empty())
      text += ": " + std::string(reason.reason.data(), reason.reason.size());
    return text + ")";
  }

  // -- writing ----------------------------------------------------------------

  void on_send(std::vector<frame_ptr> frames) {
    // Nothing goes out after a close was requested: the close frame is last.
    if (!opened_ || finished_ || close_pending_)
      return;
    const auto cap = server_->opts().max_outbound_bytes;
    for (auto& frame : frames) {
      if (queued_bytes_.load() + frame->size() > cap)
        return overflow();
      queued_bytes_ += frame->size();
      queue_.push_back(std::move(frame));
      // Exactly one write in flight: only a frame that lands in an empty
      // queue starts one, on_write continues with the rest.
      if (queue_.size() == 1)
        do_write();
    }
  }

  void overflow() {
    // The front frame is being written and a WebSocket frame cannot be cut
    // off midway, so it stays; everything behind it goes.
    while (queue_.size() > 1) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    const auto& notice = server_->opts().overflow_notice;
    if (!notice.empty()) {
      queued_bytes_ += notice.size();
      queue_.push_back(std::make_shared<const std::string>(notice));
      if (queue_.size() == 1)
        do_write();
    }
    request_close(websocket::close_code::policy_error, "outbound overflow",
                  ws_close_grace);
  }

  void do_write() {
    ws_.async_write(net::buffer(*queue_.front()),
                    beast::bind_front_handler(&websocket_session::on_write,
                                              this->shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (finished_)
      return;
    if (ec)
      return finish(close_pending_ ? close_text_ : "write: " + ec.message());
    queued_bytes_ -= queue_.front()->size();
    queue_.pop_front();
    if (!queue_.empty())
      do_write();
    else if (close_pending_)
      do_close();
  }

  // -- closing ----------------------------------------------------------------

  void on_close_request(std::string reason) {
    request_close(websocket::close_code::normal, std::move(reason),
                  ws_close_grace);
  }

  void on_shutdown() {
    shutting_down_ = true;
    if (finished_)
      return;
    if (!opened_) {
      // Still in the handshake: on_accept sees the error and cleans up.
      beast::get_lowest_layer(ws_).close();
      return;
    }
    if (close_pending_) {
      // Already closing (overflow, owner): only shorten the grace.
      arm_close_timer(ws_stop_grace);
      return;
    }
    while (queue_.size() > 1) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    request_close(websocket::close_code::going_away, "server stopping",
                  ws_stop_grace);
  }

  /// Closes after the queued frames; the first request's reason wins.
  void request_close(websocket::close_code code, std::string reason,
                     std::chrono::steady_clock::duration grace) {
    if (!opened_ || finished_ || close_pending_)
      return;
    close_pending_ = true;
    close_code_ = code;
    close_text_ = std::move(reason);
    arm_close_timer(grace);
    if (queue_.empty())
      do_close();
  }

  void do_close() {
    close_started_ = true;
    auto reason = close_text_.substr(0, ws_close_reason_max);
    ws_.async_close(websocket::close_reason(close_code_, reason),
                    beast::bind_front_handler(&websocket_session::on_close_done,
                                              this->shared_from_this()));
  }

  void on_close_done(beast::error_code) {
    // Whatever the handshake's outcome, the reason is the one we closed for.
    finish(close_text_);
  }

  void arm_close_timer(std::chrono::steady_clock::duration grace) {
    close_timer_.expires_after(grace);
    close_timer_.async_wait(beast::bind_front_handler(
      &websocket_session::on_close_timeout, this->shared_from_this()));
  }

  void on_close_timeout(beast::error_code ec) {
    if (ec == net::error::operation_aborted || finished_)
      return;
    // The pending operations now fail and the first one reports close_text_.
    beast::get_lowest_layer(ws_).close();
  }

  /// Ends the session exactly once.
  void finish(const std::string& reason) {
    if (finished_)
      return;
    finished_ = true;
    close_timer_.cancel();
    queue_.clear();
    queued_bytes_ = 0;
    beast::get_lowest_layer(ws_).close();
    server_->remove(this);
    // Released before the call: the owner's callbacks may hold the owner.
    auto on_close = std::move(callbacks_.on_close);
    callbacks_ = ws_callbacks{};
    if (on_close)
      on_close(reason);
  }

  websocket::stream<Stream> ws_;
  net::steady_timer close_timer_;
  server_ptr server_;
  std::string remote_;
  ws_callbacks callbacks_;
  // Inbound.
  beast::flat_buffer buffer_;
  size_t message_bytes_ = 0;
  bool discarding_ = false;
  bool reading_ = false;
  std::atomic<size_t> inflight_{0};
  // Outbound; the front frame is the one being written.
  std::deque<frame_ptr> queue_;
  std::atomic<size_t> queued_bytes_{0};
  // Lifecycle.
  bool opened_ = false;
  bool shutting_down_ = false;
  bool close_pending_ = false;
  bool close_started_ = false;
  bool finished_ = false;
  websocket::close_code close_code_ = websocket::close_code::normal;
  std::string close_text_;
};

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
    if (!ec)
      remote_ = endpoint_text(ep);
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
      beast::get_lowest_layer(stream_).expires_never();
      handed_off_ = true;
      using ws_session = websocket_session<Stream>;
      // TLS state lives in the stream, so a TLS stream moves over whole.
      if constexpr (is_tls<Stream>)
        std::make_shared<ws_session>(std::move(stream_), server_)
          ->run(parser_->release());
      else
        std::make_shared<ws_session>(stream_.release_socket(), server_)
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
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool linger_ = false;
  bool stopped_ = false;
  bool handed_off_ = false;
};

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

} // namespace

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
struct ws_server::impl : server_state {
  using server_state::server_state;
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

bool ws_server::tls() const {
  return impl_->opts().tls != nullptr;
}

uint64_t ws_server::handshake_failures() const {
  return impl_->handshake_failures();
}

} // namespace ferry::net
