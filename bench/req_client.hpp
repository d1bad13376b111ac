#pragma once

// The REQ benchmark's client: a blocking Beast WebSocket client that counts
// the bytes it reads off the socket (compressed or not), may offer
// permessage-deflate, and reads events as a real client does — it parses each
// one for its id and created_at. Not a test helper: it exists to measure.

#include "bench/bench_util.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <simdjson.h>

#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>

namespace ferry::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

/// A blocking TCP socket that counts the bytes read from it: the bytes on
/// the wire under the WebSocket layer. It reads the socket in large chunks:
/// Beast asks for at most 1536 bytes at a time for frame headers, which cost
/// the client a system call per event and left less of the 2 cores to the
/// node the bench measures (a browser's or Node's WebSocket reads big chunks
/// too).
class counting_socket {
public:
  using executor_type = tcp::socket::executor_type;

  explicit counting_socket(asio::io_context& ioc) : socket_(ioc) {
    // nop
  }

  executor_type get_executor() {
    return socket_.get_executor();
  }

  tcp::socket& socket() {
    return socket_;
  }

  template <class Buffers>
  size_t read_some(const Buffers& buffers) {
    beast::error_code ec;
    auto n = read_some(buffers, ec);
    if (ec)
      throw beast::system_error{ec};
    return n;
  }

  template <class Buffers>
  size_t read_some(const Buffers& buffers, beast::error_code& ec) {
    if (chunk_.size() == 0) {
      auto n = socket_.read_some(chunk_.prepare(read_chunk_bytes), ec);
      if (ec)
        return 0;
      chunk_.commit(n);
      bytes_read += n;
    }
    auto n = asio::buffer_copy(buffers, chunk_.data());
    chunk_.consume(n);
    return n;
  }

  template <class Buffers>
  size_t write_some(const Buffers& buffers) {
    return socket_.write_some(buffers);
  }

  template <class Buffers>
  size_t write_some(const Buffers& buffers, beast::error_code& ec) {
    return socket_.write_some(buffers, ec);
  }

  uint64_t bytes_read = 0;

private:
  static constexpr size_t read_chunk_bytes = 64 * 1024;

  tcp::socket socket_;
  /// Read from the socket, not yet handed to the WebSocket layer.
  beast::flat_buffer chunk_;
};

/// Beast's close handshake ends by tearing the transport down.
inline void teardown(beast::role_type role, counting_socket& stream,
                     beast::error_code& ec) {
  websocket::teardown(role, stream.socket(), ec);
}

/// One message as the client saw it.
struct client_message {
  enum class type { event, eose, closed, other } kind = type::other;
  /// For events: the parsed id (hex) and created_at.
  std::string_view id;
  int64_t created_at = 0;
};

class req_client {
public:
  /// Connects to ws://127.0.0.1:`port`/, offering permessage-deflate when
  /// `offer_deflate`. Throws on failure.
  req_client(uint16_t port, bool offer_deflate) : ws_(ioc_) {
    tcp::resolver resolver{ioc_};
    asio::connect(ws_.next_layer().socket(), resolver.resolve("127.0.0.1", std::to_string(port)));
    ws_.next_layer().socket().set_option(tcp::no_delay(true));
    websocket::permessage_deflate pmd;
    pmd.client_enable = offer_deflate;
    ws_.set_option(pmd);
    ws_.read_message_max(0);
    websocket::response_type res;
    ws_.handshake(res, "127.0.0.1:" + std::to_string(port), "/");
    extensions_ = std::string{res[beast::http::field::sec_websocket_extensions]};
    watchdog_ = std::thread([this] { watch(); });
  }

  ~req_client() {
    stop_ = true;
    watchdog_.join();
    beast::error_code ignored;
    ws_.close(websocket::close_code::normal, ignored);
  }

  req_client(const req_client&) = delete;
  req_client& operator=(const req_client&) = delete;

  /// The Sec-WebSocket-Extensions header of the server's handshake answer.
  const std::string& extensions() const {
    return extensions_;
  }

  uint64_t wire_bytes() const {
    return ws_.next_layer().bytes_read;
  }

  uint64_t payload_bytes() const {
    return payload_bytes_;
  }

  void send(const std::string& text) {
    ws_.write(asio::buffer(text));
  }

  /// Reads the next message and classifies it; an EVENT is parsed.
  client_message receive() {
    buffer_.clear();
    beast::error_code ec;
    ws_.read(buffer_, ec);
    if (ec)
      throw std::runtime_error("read: " + ec.message()
                               + (stalled_ ? " (nothing arrived for 30 s)" : ""));
    progress_ = true;
    auto data = static_cast<const char*>(buffer_.data().data());
    auto size = buffer_.size();
    payload_bytes_ += size;
    client_message msg;
    std::string_view text{data, size};
    if (text.rfind("[\"EVENT\",", 0) == 0) {
      msg.kind = client_message::type::event;
      // simdjson reads past the end: the copy carries the padding.
      padded_.assign(data, size);
      padded_.append(simdjson::SIMDJSON_PADDING, ' ');
      simdjson::ondemand::document doc;
      simdjson::ondemand::object ev;
      if (parser_.iterate(padded_.data(), size, padded_.size()).get(doc)
          || doc.at(2).get_object().get(ev) || ev["id"].get_string().get(msg.id)
          || ev["created_at"].get_int64().get(msg.created_at))
        throw std::runtime_error("unparsable EVENT: " + std::string{text.substr(0, 200)});
    } else if (text.rfind("[\"EOSE\",", 0) == 0) {
      msg.kind = client_message::type::eose;
    } else if (text.rfind("[\"CLOSED\",", 0) == 0) {
      msg.kind = client_message::type::closed;
      last_other_ = std::string{text};
    } else {
      last_other_ = std::string{text};
    }
    return msg;
  }

  /// The last message that was neither EVENT nor EOSE.
  const std::string& last_other() const {
    return last_other_;
  }

private:
  /// Cuts the socket when nothing arrives for 30 s, so a stuck node fails
  /// the bench instead of hanging it.
  void watch() {
    int quiet_ticks = 0;
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
      if (progress_.exchange(false)) {
        quiet_ticks = 0;
      } else if (++quiet_ticks == 300) {
        stalled_ = true;
        ::shutdown(ws_.next_layer().socket().native_handle(), SHUT_RDWR);
      }
    }
  }

  asio::io_context ioc_;
  websocket::stream<counting_socket> ws_;
  beast::flat_buffer buffer_;
  std::string padded_;
  simdjson::ondemand::parser parser_;
  std::string extensions_;
  std::string last_other_;
  uint64_t payload_bytes_ = 0;
  std::thread watchdog_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> progress_{false};
  std::atomic<bool> stalled_{false};
};

} // namespace ferry::bench
