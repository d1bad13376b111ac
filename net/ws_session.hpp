#pragma once

// One WebSocket connection of the server (net/ws_server.cpp): reads frames
// for its owner, queues and writes the owner's frames, closes. Internal.

#include "net/idle_watch.hpp"
#include "net/message_deflater.hpp"
#include "net/write_batching_stream.hpp"
#include "net/ws_message_text.hpp"
#include "net/ws_server_state.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <array>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::net::detail {

/// Frames written to the socket at once: many small events per system call,
/// and still an early first write for the first events of a query.
constexpr size_t ws_batch_bytes = 64 * 1024;

/// permessage-deflate's window for what the server sends: deflate's
/// largest, since a corpus event then takes 500 bytes on the wire against
/// 550 at 2^13. The compressor's memory is message_deflater's, 96 KiB and
/// its last output; the decompressor's window is the client's choice, at
/// most 32 KiB.
constexpr int ws_deflate_window_bits = 15;

/// The header of an unmasked, unfragmented text frame of `size` bytes: what
/// a server puts before a message (RFC 6455, 5.2). RSV1 marks a message
/// compressed with permessage-deflate (RFC 7692, 6).
inline std::string_view text_frame_header(size_t size, bool compressed,
                                          std::array<char, 10>& out) {
  // FIN, RSV1 if compressed, opcode 1 (text).
  out[0] = static_cast<char>(compressed ? 0xc1 : 0x81);
  size_t length_bytes = 0;
  if (size < 126) {
    out[1] = static_cast<char>(size);
  } else if (size <= 0xffff) {
    out[1] = 126;
    length_bytes = 2;
  } else {
    out[1] = 127;
    length_bytes = 8;
  }
  for (size_t i = 0; i < length_bytes; ++i)
    out[2 + i] = static_cast<char>((size >> (8 * (length_bytes - 1 - i))) & 0xff);
  return {out.data(), 2 + length_bytes};
}

// -- WebSocket session --------------------------------------------------------

template <class Stream>
class websocket_session
  : public ws_connection,
    public session_base,
    public std::enable_shared_from_this<websocket_session<Stream>> {
public:
  /// `next_layer` becomes the WebSocket's stream: a socket for plain TCP, the
  /// handshaken TLS stream for TLS.
  /// `address` is the peer's IP its place was reserved for.
  template <class NextLayer>
  websocket_session(NextLayer&& next_layer, server_ptr server,
                    std::string address)
    : ws_(std::forward<NextLayer>(next_layer)),
      close_timer_(ws_.get_executor()),
      idle_timer_(ws_.get_executor()),
      server_(std::move(server)),
      idle_(server_->opts().idle_timeout),
      address_(std::move(address)) {
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(ws_).socket().remote_endpoint(ec);
    if (!ec)
      remote_ = endpoint_text(ep);
  }

  /// Made only on a place `server->reserve_websocket` gave.
  ~websocket_session() override {
    server_->remove(this);
    give_back_place();
    // Frames the owner never finished (it went first) are gone with it.
    server_->inbound().remove(inbound_held_.exchange(0));
    // Only reached unfinished when the io_context went away with our handlers
    // still queued; the owner is promised on_close in every case.
    if (opened_ && !finished_ && callbacks_.on_close)
      callbacks_.on_close("io stopped");
  }

  /// Accepts the upgrade `req` and starts the session.
  void run(http::request<http::string_body> req) {
    if (!server_->add(this->shared_from_this()))
      return;
    ws_.next_layer().keep_alive_with(this->weak_from_this());
    net::dispatch(ws_.get_executor(),
                  beast::bind_front_handler(&websocket_session::on_run,
                                            this->shared_from_this(),
                                            std::move(req)));
  }

  // -- ws_connection ----------------------------------------------------------

  void send(std::shared_ptr<const std::string> frame) override {
    if (!frame)
      return;
    std::vector<queued_frame> frames;
    frames.push_back(queued_frame::whole(std::move(frame)));
    post_frames(std::move(frames));
  }

  void send_all(std::vector<std::string> frames) override {
    std::vector<queued_frame> queued;
    queued.reserve(frames.size());
    for (auto& frame : frames)
      queued.push_back(
        queued_frame::whole(std::make_shared<const std::string>(std::move(frame))));
    post_frames(std::move(queued));
  }

  void send_batch(frame_batch batch) override {
    if (batch.empty())
      return;
    auto storage = std::make_shared<const frame_batch>(std::move(batch));
    std::vector<queued_frame> queued;
    queued.reserve(storage->size());
    std::string_view bytes = storage->bytes;
    size_t begin = 0;
    for (auto end : storage->ends) {
      queued.push_back({storage, bytes.substr(begin, end - begin)});
      begin = end;
    }
    post_frames(std::move(queued));
  }

  size_t queued_bytes() const override {
    return queued_bytes_.load(std::memory_order_relaxed);
  }

  size_t outbound_allowance() const override {
    return server_->outbound_allowance();
  }

  void frame_done(size_t frame_bytes) override {
    // Never below zero, even if the owner acknowledges too often.
    auto current = inflight_.load();
    do {
      if (current == 0)
        return;
    } while (!inflight_.compare_exchange_weak(current, current - 1));
    auto held = inbound_held_.load();
    size_t released = 0;
    do {
      released = std::min(held, frame_bytes);
    } while (!inbound_held_.compare_exchange_weak(held, held - released));
    server_->inbound().remove(released);
    // Only the step from "at the cap" to "below it", or a pause for the
    // inbound budget, can unpause reading. The flag is taken after the
    // release, which do_read's second look then sees.
    bool paused_for_budget = budget_paused_.exchange(false);
    if (current == server_->opts().max_inflight || paused_for_budget)
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
  /// One queued frame: its text, inside storage it may share with the
  /// other frames of its batch.
  struct queued_frame {
    std::shared_ptr<const void> storage;
    std::string_view text;

    static queued_frame whole(std::shared_ptr<const std::string> frame) {
      std::string_view text = *frame;
      return {std::move(frame), text};
    }
  };

  void on_run(http::request<http::string_body> req) {
    // The server preset for the handshakes; idleness is watch_idle's.
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.set_option(
      websocket::stream_base::decorator([this](websocket::response_type& res) {
        res.set(http::field::server, "ferry");
        // Beast has negotiated the extensions by now; we compress what we
        // send on the terms it settled, Beast inflates what the client sends.
        auto extensions = res[http::field::sec_websocket_extensions];
        deflate_terms_ = server_deflate_terms({extensions.data(), extensions.size()});
      }));
    // Beast would fail the whole connection on an oversize message; we
    // discard such messages ourselves and keep the connection.
    ws_.read_message_max(0);
    if (server_->opts().compression) {
      // Beast negotiates (offering at most our window) and inflates; its
      // compressor is never used, so it never allocates.
      websocket::permessage_deflate deflate;
      deflate.server_enable = true;
      deflate.server_max_window_bits = ws_deflate_window_bits;
      ws_.set_option(deflate);
    }
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
      give_back_place();
      return;
    }
    opened_ = true;
    if (deflate_terms_)
      deflater_ = std::make_unique<message_deflater>(*deflate_terms_, ws_deflate_window_bits);
    if (server_->on_open())
      callbacks_ = server_->on_open()(this->shared_from_this());
    // Counted once the owner knows the connection, so that a count the owner
    // sees always has its on_open behind it.
    server_->mark_open(this);
    ws_.control_callback(
      [this](websocket::frame_type, beast::string_view) { ++signs_of_life_; });
    watch_idle();
    do_read();
  }

  // -- reading ----------------------------------------------------------------

  void do_read() {
    if (reading_ || !opened_ || finished_ || close_started_)
      return;
    if (inflight_.load() >= server_->opts().max_inflight)
      return; // frame_done() resumes
    if (beyond_inbound_share()) {
      // Raised before the second look: a frame_done() after that look
      // finds the flag and resumes; one between both takes it, and its
      // posted do_read reads.
      budget_paused_ = true;
      if (beyond_inbound_share())
        return;
      if (!budget_paused_.exchange(false))
        return;
    }
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
    ++signs_of_life_;
    message_bytes_ += bytes;
    if (!discarding_ && message_bytes_ > server_->opts().max_frame_bytes) {
      discarding_ = true;
      release_partial_message();
    }
    if (discarding_) {
      buffer_.consume(buffer_.size());
    } else {
      partial_held_ += bytes;
      server_->inbound().add(bytes);
    }
    if (ws_.is_message_done()) {
      // After close() the owner wants no more traffic from this peer.
      if (!close_pending_) {
        if (discarding_) {
          if (callbacks_.on_oversize)
            callbacks_.on_oversize(message_bytes_);
        } else {
          // Counted before the call: the owner may acknowledge from another
          // thread before on_frame even returns. The server's total has
          // the bytes already.
          ++inflight_;
          inbound_held_ += std::exchange(partial_held_, 0);
          if (callbacks_.on_frame)
            callbacks_.on_frame(ws_message_text(buffer_.data()));
        }
      }
      release_partial_message();
      buffer_.consume(buffer_.size());
      // A large message's buffer goes with it: an idle connection keeps
      // only what small messages need.
      if (buffer_.capacity() > ws_read_chunk)
        buffer_.shrink_to_fit();
      message_bytes_ = 0;
      discarding_ = false;
    }
    do_read();
  }

  /// Whether this connection holds more than its share of the inbound
  /// budget while the server holds more than the budget, and has frames at
  /// its owner: one whose frames were all finished always reads on, so
  /// that a paused connection always has a frame_done() to come.
  bool beyond_inbound_share() const {
    return inflight_.load() > 0
           && server_->inbound().beyond_share(inbound_held_.load() + partial_held_);
  }

  /// The part of a message read so far is no longer held (discarded, or
  /// the connection ended).
  void release_partial_message() {
    server_->inbound().remove(std::exchange(partial_held_, 0));
  }

  std::string peer_close_text() const {
    const auto& reason = ws_.reason();
    auto text = "closed by peer (" + std::to_string(reason.code);
    if (!reason.reason.empty())
      text += ": " + std::string(reason.reason.data(), reason.reason.size());
    return text + ")";
  }

  // -- writing ----------------------------------------------------------------

  /// Counts the frames as queued at once, in the owner's thread: a producer
  /// that checks `queued_bytes` sees what it sent even while the strand is
  /// busy (compressing, say) and has not taken the frames yet. Frames that
  /// would pass the cap are never queued: the strand is told to overflow.
  void post_frames(std::vector<queued_frame> frames) {
    size_t bytes = 0;
    for (const auto& frame : frames)
      bytes += frame.text.size();
    const auto& opts = server_->opts();
    auto queued = queued_bytes_.load();
    do {
      const std::string* notice = nullptr;
      if (queued + bytes > opts.max_outbound_bytes)
        notice = &opts.overflow_notice;
      else if (server_->outbound().beyond_share(queued, bytes))
        notice = &opts.shared_overflow_notice;
      if (notice) {
        net::post(ws_.get_executor(),
                  beast::bind_front_handler(&websocket_session::on_overflow,
                                            this->shared_from_this(), notice));
        return;
      }
    } while (!queued_bytes_.compare_exchange_weak(queued, queued + bytes));
    server_->outbound().add(bytes);
    net::post(ws_.get_executor(),
              beast::bind_front_handler(&websocket_session::on_send,
                                        this->shared_from_this(),
                                        std::move(frames), bytes));
  }

  void on_send(std::vector<queued_frame> frames, size_t bytes) {
    // Nothing goes out after a close was requested: the close frame is last.
    if (!opened_ || finished_ || close_pending_) {
      unqueue(bytes);
      return;
    }
    for (auto& frame : frames)
      queue_.push_back(std::move(frame));
    // One batch in flight at a time; on_flushed starts the next.
    if (batch_frames_ == 0)
      do_write();
  }

  /// `notice` is one of the server's options, which outlive the session.
  void on_overflow(const std::string* notice) {
    if (!opened_ || finished_ || close_pending_)
      return;
    server_->overflowed(remote_,
                        notice == &server_->opts().shared_overflow_notice);
    overflow(*notice);
  }

  void overflow(const std::string& notice) {
    // The frames of the batch in flight are being written and a WebSocket
    // frame cannot be cut off midway, so they stay; everything behind goes.
    while (queue_.size() > batch_frames_) {
      unqueue(queue_.back().text.size());
      queue_.pop_back();
    }
    if (!notice.empty()) {
      enqueue(notice.size());
      queue_.push_back(queued_frame::whole(std::make_shared<const std::string>(notice)));
      if (batch_frames_ == 0)
        do_write();
    }
    request_close(websocket::close_code::policy_error, "outbound overflow",
                  ws_close_grace);
  }

  /// Writes the frames at the front of the queue, up to `ws_batch_bytes`,
  /// as one socket write. Each message is framed here, straight into the
  /// stream's buffer (compressed first if permessage-deflate was agreed):
  /// Beast's write operation per message (with a handler posted for each)
  /// cost more than the socket write itself (bench_req profile).
  /// Compression (message_deflater) runs in the order of the socket, as
  /// context takeover needs. Between whole messages Beast's own control
  /// frames still fit in, as whole frames.
  void do_write() {
    if (!ws_.is_open()) {
      // The peer's close frame has arrived: as Beast would for a write.
      return net::post(ws_.get_executor(),
                       beast::bind_front_handler(&websocket_session::on_flushed,
                                                 this->shared_from_this(),
                                                 net::error::operation_aborted));
    }
    auto& stream = ws_.next_layer();
    stream.hold();
    batch_bytes_ = 0;
    std::array<char, 10> header;
    do {
      auto frame = queue_[batch_frames_++].text;
      batch_bytes_ += frame.size();
      if (deflater_)
        frame = deflater_->compress(frame);
      stream.append_framed(text_frame_header(frame.size(), deflater_ != nullptr, header));
      stream.append_framed(frame);
    } while (batch_frames_ < queue_.size() && batch_bytes_ < ws_batch_bytes);
    stream.flush(beast::bind_front_handler(&websocket_session::on_flushed,
                                           this->shared_from_this()));
  }

  void on_flushed(beast::error_code ec) {
    if (finished_)
      return;
    if (ec)
      return finish(close_pending_ ? close_text_ : "write: " + ec.message());
    size_t written = 0;
    for (; batch_frames_ > 0; --batch_frames_) {
      written += queue_.front().text.size();
      queue_.pop_front();
    }
    unqueue(written);
    if (!queue_.empty())
      do_write();
    else if (close_pending_)
      do_close();
  }

  // -- idle watch -------------------------------------------------------------

  /// Signs of life: every read (a message, a part of one, a control frame),
  /// and a backlog of ours that the peer is taking: bytes of ours were
  /// unacknowledged at the last tick and the peer has acknowledged more
  /// since. A client reading a long backlog slowly thus lives as long as it
  /// reads, where Beast's idle timeout counted only what the peer sent, so
  /// such a client had to read up to the ping (queued behind the backlog)
  /// within half the timeout. Acknowledgements alone are not enough: a hung
  /// client's kernel still acknowledges a ping or a trickle of live events;
  /// only a backlog that moves shows a reading peer. While reading is paused
  /// because the owner has not taken the frames in flight, the wait is ours
  /// and counts as alive. Once a close is pending, the close timer bounds
  /// the rest.
  void watch_idle() {
    idle_timer_.expires_after(idle_.tick_interval());
    idle_timer_.async_wait(beast::bind_front_handler(&websocket_session::on_idle_tick,
                                                     this->shared_from_this()));
  }

  void on_idle_tick(beast::error_code ec) {
    if (ec || finished_ || close_pending_)
      return;
    if (!reading_
        && (inflight_.load() >= server_->opts().max_inflight || budget_paused_))
      ++signs_of_life_;
    auto sending = read_tcp_send_state(
      beast::get_lowest_layer(ws_).socket().native_handle());
    if (sending) {
      if (backlog_at_last_tick_ && sending->bytes_acked > acked_at_last_tick_)
        ++signs_of_life_;
      backlog_at_last_tick_ = sending->outstanding || !queue_.empty();
      acked_at_last_tick_ = sending->bytes_acked;
    }
    switch (idle_.tick(signs_of_life_)) {
      case idle_watch::step::none:
        break;
      case idle_watch::step::ping:
        if (!pinging_) {
          pinging_ = true;
          ws_.async_ping({}, beast::bind_front_handler(&websocket_session::on_ping_sent,
                                                       this->shared_from_this()));
        }
        break;
      case idle_watch::step::time_out:
        return finish("idle timeout: nothing read or taken for "
                      + duration_text(idle_.timeout()));
    }
    watch_idle();
  }

  void on_ping_sent(beast::error_code) {
    // A failed ping shows as a failed read or write as well.
    pinging_ = false;
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
    while (queue_.size() > batch_frames_) {
      unqueue(queue_.back().text.size());
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
    ws_.async_close(close_frame_reason(close_code_, close_text_),
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

  /// The place under `max_connections` goes back with the socket: the owner
  /// may hold the connection object for a while longer.
  void give_back_place() {
    if (std::exchange(holds_place_, false))
      server_->release_websocket(address_);
  }

  /// Queued bytes are counted for the session and for the server at once.
  void enqueue(size_t bytes) {
    queued_bytes_ += bytes;
    server_->outbound().add(bytes);
  }

  void unqueue(size_t bytes) {
    queued_bytes_ -= bytes;
    server_->outbound().remove(bytes);
  }

  /// Ends the session exactly once.
  void finish(const std::string& reason) {
    if (finished_)
      return;
    finished_ = true;
    close_timer_.cancel();
    idle_timer_.cancel();
    // Frames still on their way to on_send are counted until they get there.
    for (const auto& frame : queue_)
      unqueue(frame.text.size());
    queue_.clear();
    batch_frames_ = 0;
    // The compressor's ~70 KiB go now, not when the last handler lets go.
    deflater_.reset();
    release_partial_message();
    beast::get_lowest_layer(ws_).close();
    server_->remove(this);
    give_back_place();
    // Released before the call: the owner's callbacks may hold the owner.
    auto on_close = std::move(callbacks_.on_close);
    callbacks_ = ws_callbacks{};
    if (on_close)
      on_close(reason);
  }

  websocket::stream<write_batching_stream<Stream>> ws_;
  net::steady_timer close_timer_;
  net::steady_timer idle_timer_;
  server_ptr server_;
  idle_watch idle_;
  /// Reads, and ticks with a backlog the peer took from: the idle watch's
  /// signs of life.
  uint64_t signs_of_life_ = 0;
  bool backlog_at_last_tick_ = false;
  uint64_t acked_at_last_tick_ = 0;
  bool pinging_ = false;
  std::string remote_;
  std::string address_;
  ws_callbacks callbacks_;
  // Inbound.
  beast::flat_buffer buffer_;
  size_t message_bytes_ = 0;
  bool discarding_ = false;
  bool reading_ = false;
  std::atomic<size_t> inflight_{0};
  /// This connection's part of the server's inbound total: the bytes of
  /// the frames at its owner (`inflight_` of them), and of the message
  /// being read.
  std::atomic<size_t> inbound_held_{0};
  size_t partial_held_ = 0;
  /// Reading stopped for the inbound budget; the next frame_done() resumes.
  std::atomic<bool> budget_paused_{false};
  // Outbound; the first `batch_frames_` frames are being written.
  std::deque<queued_frame> queue_;
  size_t batch_frames_ = 0;
  size_t batch_bytes_ = 0;
  std::atomic<size_t> queued_bytes_{0};
  /// The permessage-deflate terms settled in the handshake, if any, and
  /// the compressor made on them once the connection is open.
  std::optional<deflate_terms> deflate_terms_;
  std::unique_ptr<message_deflater> deflater_;
  // Lifecycle.
  bool holds_place_ = true;
  bool opened_ = false;
  bool shutting_down_ = false;
  bool close_pending_ = false;
  bool close_started_ = false;
  bool finished_ = false;
  websocket::close_code close_code_ = websocket::close_code::normal;
  std::string close_text_;
};

} // namespace ferry::net::detail
