// The outbound WebSocket (`connect_ws`): the upgrade with permessage-deflate,
// reading with back-pressure, the outbound queue and the close handshake.

#include "net/ws_client.hpp"

#include "net/idle_watch.hpp"
#include "net/ws_client_connect.hpp"
#include "net/ws_close_reason.hpp"
#include "net/ws_message_text.hpp"


#include <atomic>
#include <deque>

namespace ferry::net {
namespace client_detail {
namespace {

/// Time the queued frames plus the close handshake get after `close()` or an
/// overflow before the socket is closed hard, so a relay that stopped reading
/// cannot keep the connection.
constexpr auto ws_close_grace = std::chrono::seconds(5);

/// permessage-deflate, offered to every relay: what we send is compressed
/// with a 2^13-byte window at memory level 6 (about 64 KiB) and the fastest
/// level; what the relay sends may use its full 32 KiB window, which is
/// where the bandwidth goes.
constexpr int ws_deflate_window_bits = 13;
constexpr int ws_deflate_mem_level = 6;
constexpr int ws_deflate_level = 1;

bool is_http_error(const beast::error_code& ec) {
  return ec.category()
         == http::make_error_code(http::error::end_of_stream).category();
}

bool is_websocket_error(const beast::error_code& ec) {
  return ec.category()
         == websocket::make_error_code(websocket::error::closed).category();
}

// -- WebSocket session --------------------------------------------------------

template <class Layer>
class ws_session : public ws_client_connection, public session_base<Layer> {
public:
  using base = session_base<Layer>;

  ws_session(net::io_context& ioc, connect_plan plan,
             ws_client_callbacks callbacks, std::chrono::milliseconds timeout,
             size_t max_frame_bytes, size_t max_outbound_bytes,
             std::chrono::milliseconds idle_timeout)
    : base(ioc, std::move(plan), timeout),
      close_timer_(this->layer_.get_executor()),
      idle_timer_(this->layer_.get_executor()),
      callbacks_(std::move(callbacks)),
      max_frame_bytes_(max_frame_bytes),
      max_outbound_bytes_(max_outbound_bytes),
      idle_(idle_timeout) {
    // nop
  }

  ~ws_session() override {
    // Only reached unfinished when the io_context went away with our handlers
    // still queued; the owner is promised on_close in every case.
    if (!this->finished_ && callbacks_.on_close)
      callbacks_.on_close(failure_kind::none, "io stopped");
  }

  // -- ws_client_connection ---------------------------------------------------

  void send(std::shared_ptr<const std::string> frame) override {
    if (!frame)
      return;
    net::post(this->layer_.get_executor(),
              beast::bind_front_handler(&ws_session::on_send, self(),
                                        std::move(frame)));
  }

  size_t queued_bytes() const override {
    return queued_bytes_.load(std::memory_order_relaxed);
  }

  void close(std::string reason) override {
    net::post(this->layer_.get_executor(),
              beast::bind_front_handler(&ws_session::request_close, self(),
                                        websocket::close_code::normal,
                                        failure_kind::none, std::move(reason)));
  }

  void pause_reading() override {
    net::post(this->layer_.get_executor(),
              [self = self()] { self->paused_ = true; });
  }

  void resume_reading() override {
    net::post(this->layer_.get_executor(), [self = self()] {
      self->paused_ = false;
      if (self->opened_ && !self->reading_ && !self->finished_
          && !self->close_pending_)
        self->do_read();
    });
  }

  uint64_t bytes_received() const override {
    return bytes_received_.load(std::memory_order_relaxed);
  }

  uint64_t bytes_sent() const override {
    return bytes_sent_.load(std::memory_order_relaxed);
  }

private:
  using frame_ptr = std::shared_ptr<const std::string>;

  std::shared_ptr<ws_session> self() {
    return this->template shared_as<ws_session>();
  }

  // -- handshake --------------------------------------------------------------

  void on_transport_ready() override {
    this->step_ = session_step::websocket_handshake;
    auto& ws = this->layer_;
    ws.set_option(
      websocket::stream_base::decorator([](websocket::request_type& req) {
        req.set(http::field::user_agent, user_agent);
      }));
    ws.read_message_max(max_frame_bytes_);
    websocket::permessage_deflate deflate;
    deflate.client_enable = true;
    deflate.client_max_window_bits = ws_deflate_window_bits;
    deflate.memLevel = ws_deflate_mem_level;
    deflate.compLevel = ws_deflate_level;
    ws.set_option(deflate);
    ws.async_handshake(upgrade_response_, this->plan_.host_header,
                       this->plan_.url.target,
                       beast::bind_front_handler(&ws_session::on_handshake,
                                                 self()));
  }

  void on_handshake(beast::error_code ec) {
    if (this->finished_)
      return;
    if (ec == websocket::error::upgrade_declined)
      return this->finish(failure_kind::http,
                          "upgrade declined: HTTP "
                            + std::to_string(upgrade_response_.result_int()));
    // With TLS 1.3 the server judges our client certificate after our side
    // of the TLS handshake has completed, so its alert lands here.
    if (ec && is_tls_error(ec))
      return this->finish(failure_kind::tls,
                          "websocket handshake: " + ec.message());
    if (ec && is_http_error(ec))
      return this->finish(failure_kind::http,
                          "websocket handshake: " + ec.message());
    if (ec)
      return this->finish(failure_kind::websocket,
                          "websocket handshake: " + ec.message());
    this->end_deadline();
    opened_ = true;
    upgrade_response_ = {};
    // The client preset: a timeout for the close handshake, none when idle
    // (watch_idle is ours).
    this->layer_.set_option(
      websocket::stream_base::timeout::suggested(beast::role_type::client));
    this->layer_.control_callback(
      [this](websocket::frame_type, beast::string_view) { ++frames_read_; });
    watch_idle();
    if (callbacks_.on_open)
      callbacks_.on_open();
    do_read();
    if (!queue_.empty())
      do_write();
  }

  // -- reading ----------------------------------------------------------------

  void do_read() {
    reading_ = true;
    this->layer_.async_read(buffer_,
                            beast::bind_front_handler(&ws_session::on_read,
                                                      self()));
  }

  void on_read(beast::error_code ec, size_t bytes) {
    reading_ = false;
    if (this->finished_)
      return;
    if (ec) {
      // A read suspended by our own close handshake; on_close_done ends it.
      if (close_started_ && ec == net::error::operation_aborted)
        return;
      if (close_pending_)
        return this->finish(close_kind_, close_text_);
      return fail("read", ec);
    }
    bytes_received_ += bytes;
    ++frames_read_;
    // After close() the owner wants no more traffic from this relay.
    if (!close_pending_ && callbacks_.on_frame)
      callbacks_.on_frame(ws_message_text(buffer_.data()));
    buffer_.consume(buffer_.size());
    if (!paused_)
      do_read();
  }

  /// Classifies an error of an open connection.
  void fail(const char* what, beast::error_code ec) {
    if (ec == websocket::error::closed) {
      const auto& reason = this->layer_.reason();
      auto text = "closed by peer (" + std::to_string(reason.code);
      if (!reason.reason.empty())
        text += ": " + std::string(reason.reason.data(), reason.reason.size());
      return this->finish(failure_kind::closed_by_peer, text + ")");
    }
    if (ec == websocket::error::message_too_big)
      return this->finish(failure_kind::protocol,
                          "message larger than "
                            + std::to_string(max_frame_bytes_) + " bytes");
    if (is_websocket_error(ec))
      return this->finish(failure_kind::protocol,
                          std::string(what) + ": " + ec.message());
    this->finish(failure_kind::closed_by_peer,
                 std::string(what) + ": " + ec.message());
  }

  // -- idle watch -------------------------------------------------------------

  /// Signs of life: every message and control frame read (idle_watch).
  /// While reading is paused nothing is read, pongs included, so a long
  /// pause times out too.
  void watch_idle() {
    idle_timer_.expires_after(idle_.tick_interval());
    idle_timer_.async_wait(
      beast::bind_front_handler(&ws_session::on_idle_tick, self()));
  }

  void on_idle_tick(beast::error_code ec) {
    if (ec || this->finished_)
      return;
    switch (idle_.tick(frames_read_)) {
      case idle_watch::step::none:
        break;
      case idle_watch::step::ping:
        if (!close_pending_ && !pinging_) {
          pinging_ = true;
          this->layer_.async_ping({}, beast::bind_front_handler(
                                        &ws_session::on_ping_sent, self()));
        }
        break;
      case idle_watch::step::time_out:
        return this->finish(failure_kind::timeout,
                            "relay silent for " + duration_text(idle_.timeout()));
    }
    watch_idle();
  }

  void on_ping_sent(beast::error_code) {
    // A failed ping shows as a failed read or write as well.
    pinging_ = false;
  }

  // -- writing ----------------------------------------------------------------

  void on_send(frame_ptr frame) {
    // Nothing goes out after a close was requested: the close frame is last.
    if (this->finished_ || close_pending_)
      return;
    if (queued_bytes_.load() + frame->size() > max_outbound_bytes_)
      return overflow();
    queued_bytes_ += frame->size();
    queue_.push_back(std::move(frame));
    // Exactly one write in flight: only a frame that lands in an empty queue
    // of an open connection starts one, on_write continues with the rest and
    // on_handshake with what was queued before it.
    if (opened_ && queue_.size() == 1)
      do_write();
  }

  void overflow() {
    // A frame being written cannot be cut off midway, so it stays.
    auto keep = opened_ && !queue_.empty() ? 1u : 0u;
    while (queue_.size() > keep) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    request_close(websocket::close_code::policy_error, failure_kind::protocol,
                  "outbound overflow");
  }

  void do_write() {
    this->layer_.async_write(net::buffer(*queue_.front()),
                             beast::bind_front_handler(&ws_session::on_write,
                                                       self()));
  }

  void on_write(beast::error_code ec, size_t bytes) {
    if (this->finished_)
      return;
    if (ec) {
      if (close_pending_)
        return this->finish(close_kind_, close_text_);
      return fail("write", ec);
    }
    bytes_sent_ += bytes;
    queued_bytes_ -= queue_.front()->size();
    queue_.pop_front();
    if (!queue_.empty())
      do_write();
    else if (close_pending_)
      do_close();
  }

  // -- closing ----------------------------------------------------------------

  /// Closes after the queued frames; the first request's reason wins.
  void request_close(websocket::close_code code, failure_kind kind,
                     std::string reason) {
    if (this->finished_ || close_pending_)
      return;
    // Before the handshake there is nobody to say goodbye to.
    if (!opened_)
      return this->finish(kind, reason);
    close_pending_ = true;
    close_code_ = code;
    close_kind_ = kind;
    close_text_ = std::move(reason);
    close_timer_.expires_after(ws_close_grace);
    close_timer_.async_wait(
      beast::bind_front_handler(&ws_session::on_close_timeout, self()));
    if (queue_.empty())
      do_close();
  }

  void do_close() {
    close_started_ = true;
    this->layer_.async_close(close_frame_reason(close_code_, close_text_),
                             beast::bind_front_handler(
                               &ws_session::on_close_done, self()));
  }

  void on_close_done(beast::error_code) {
    // Whatever the handshake's outcome, the reason is the one we closed for.
    this->finish(close_kind_, close_text_);
  }

  void on_close_timeout(beast::error_code ec) {
    if (ec == net::error::operation_aborted)
      return;
    this->finish(close_kind_, close_text_);
  }

  void on_finish(failure_kind kind, const std::string& reason) override {
    close_timer_.cancel();
    idle_timer_.cancel();
    queue_.clear();
    queued_bytes_ = 0;
    // Released before the call: the owner's callbacks may hold the owner.
    auto on_close = std::move(callbacks_.on_close);
    callbacks_ = ws_client_callbacks{};
    if (on_close)
      on_close(kind, reason);
  }

  net::steady_timer close_timer_;
  net::steady_timer idle_timer_;
  ws_client_callbacks callbacks_;
  size_t max_frame_bytes_;
  size_t max_outbound_bytes_;
  idle_watch idle_;
  /// Messages and control frames read: the idle watch's signs of life.
  uint64_t frames_read_ = 0;
  bool pinging_ = false;
  websocket::response_type upgrade_response_;
  // Inbound.
  beast::flat_buffer buffer_;
  std::atomic<uint64_t> bytes_received_{0};
  // Outbound; once open, the front frame is the one being written.
  std::deque<frame_ptr> queue_;
  std::atomic<size_t> queued_bytes_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  // Lifecycle.
  bool opened_ = false;
  /// A read is pending; `paused_` stops the next one from being issued.
  bool reading_ = false;
  bool paused_ = false;
  bool close_pending_ = false;
  bool close_started_ = false;
  websocket::close_code close_code_ = websocket::close_code::normal;
  failure_kind close_kind_ = failure_kind::none;
  std::string close_text_;
};

} // namespace
} // namespace client_detail

using namespace client_detail;

std::shared_ptr<ws_client_connection>
connect_ws(boost::asio::io_context& ioc, const std::string& url,
           const tls_options& tls, ws_client_callbacks callbacks,
           std::chrono::milliseconds connect_timeout, size_t max_frame_bytes,
           size_t max_outbound_bytes, std::chrono::milliseconds idle_timeout) {
  auto plan = make_plan(url, tls);
  using tls_session = ws_session<websocket::stream<tls_transport>>;
  using plain_session = ws_session<websocket::stream<beast::tcp_stream>>;
  if (plan.ctx) {
    auto session = std::make_shared<tls_session>(
      ioc, std::move(plan), std::move(callbacks), connect_timeout,
      max_frame_bytes, max_outbound_bytes, idle_timeout);
    session->run();
    return session;
  }
  // Also the session for a plan with an error, which it reports at once.
  auto session = std::make_shared<plain_session>(
    ioc, std::move(plan), std::move(callbacks), connect_timeout,
    max_frame_bytes, max_outbound_bytes, idle_timeout);
  session->run();
  return session;
}

} // namespace ferry::net
