#pragma once

// A stream layer under a Beast WebSocket that turns many small frame writes
// into one socket write. Beast writes each message with its own
// async_write_some; a relay streaming stored events would pay a system call
// (and, on loopback, the peer's wake-up) per event. Here every write is
// copied into a buffer and completes at once; the buffer goes to the socket
// as one write when the owner flushes — or at once when the owner is not
// batching (Beast's own pongs and close frames). Writes never overlap on the
// socket, and the teardown after a close frame waits for the buffer to drain.
// All members run on the stream's strand.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::net {

template <class NextLayer>
class write_batching_stream {
public:
  using executor_type = typename NextLayer::executor_type;
  using next_layer_type = NextLayer;

  template <class... Args>
  explicit write_batching_stream(Args&&... args) : next_(std::forward<Args>(args)...) {
    // nop
  }

  executor_type get_executor() noexcept {
    return next_.get_executor();
  }

  NextLayer& next_layer() noexcept {
    return next_;
  }

  const NextLayer& next_layer() const noexcept {
    return next_;
  }

  /// The object this stream lives in: a socket write in flight keeps it
  /// alive, since the write's completion touches this stream.
  void keep_alive_with(std::weak_ptr<void> owner) {
    owner_ = std::move(owner);
  }

  /// Writes from now on wait in the buffer until `flush`.
  void hold() {
    held_ = true;
  }

  /// Sends everything buffered; `done(ec)` runs once it is all on the socket
  /// (or a write failed). One flush at a time.
  void flush(std::function<void(boost::beast::error_code)> done) {
    held_ = false;
    flushed_ = std::move(done);
    if (!writing_ && pending_.empty())
      return finish_flush(error_);
    start_write();
  }

  /// Adds bytes that are already whole WebSocket frames, framed by the owner
  /// itself (cheaper than a Beast write per message); they go out with the
  /// other buffered writes at the next flush. Only while held.
  void append_framed(std::string_view frames) {
    if (!error_)
      pending_.append(frames.data(), frames.size());
  }

  /// Bytes accepted from the WebSocket layer and not yet on the socket.
  size_t buffered_bytes() const {
    return pending_.size() + in_flight_.size();
  }

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return next_.async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    using signature = void(boost::beast::error_code, size_t);
    return boost::asio::async_initiate<Handler, signature>(
      [this](auto&& done, const ConstBuffers& data) {
        size_t n = 0;
        if (!error_) {
          for (auto buffer : boost::beast::buffers_range_ref(data)) {
            pending_.append(static_cast<const char*>(buffer.data()), buffer.size());
            n += buffer.size();
          }
          if (!held_)
            start_write();
        }
        boost::asio::post(get_executor(), boost::beast::bind_front_handler(
                                            std::move(done), error_, n));
      },
      handler, buffers);
  }

  /// Runs `then` once nothing is buffered or being written.
  void when_drained(std::function<void()> then) {
    if (!writing_ && pending_.empty())
      return then();
    drained_ = std::move(then);
    held_ = false;
    start_write();
  }

private:
  void start_write() {
    if (writing_ || pending_.empty())
      return;
    writing_ = true;
    in_flight_.swap(pending_);
    boost::asio::async_write(next_, boost::asio::buffer(in_flight_),
                             [this, owner = owner_.lock()](boost::beast::error_code ec,
                                                           size_t) { on_written(ec); });
  }

  void on_written(boost::beast::error_code ec) {
    writing_ = false;
    in_flight_.clear();
    if (ec) {
      error_ = ec;
      pending_.clear();
    } else if (!pending_.empty() && !held_) {
      return start_write();
    }
    if (flushed_ && (error_ || pending_.empty() || held_))
      finish_flush(error_);
    if (drained_ && pending_.empty())
      std::exchange(drained_, nullptr)();
  }

  void finish_flush(boost::beast::error_code ec) {
    auto done = std::exchange(flushed_, nullptr);
    if (!done)
      return;
    boost::asio::post(get_executor(), [done = std::move(done), ec] { done(ec); });
  }

  NextLayer next_;
  std::string pending_;
  std::string in_flight_;
  bool held_ = false;
  bool writing_ = false;
  boost::beast::error_code error_;
  std::function<void(boost::beast::error_code)> flushed_;
  std::function<void()> drained_;
  std::weak_ptr<void> owner_;
};

/// Beast tears the transport down after the close handshake; the close frame
/// may still sit in the buffer, so the teardown waits for it.
template <class NextLayer, class Handler>
void async_teardown(boost::beast::role_type role, write_batching_stream<NextLayer>& stream,
                    Handler&& handler) {
  auto shared = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(handler));
  stream.when_drained([role, &stream, shared] {
    using boost::beast::websocket::async_teardown;
    async_teardown(role, stream.next_layer(), std::move(*shared));
  });
}

template <class NextLayer>
void teardown(boost::beast::role_type role, write_batching_stream<NextLayer>& stream,
              boost::beast::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

} // namespace ferry::net
