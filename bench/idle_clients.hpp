// Many idle WebSocket clients for the benches, as a busy relay has them
// connected. Each is one blocking socket that did its handshake and then
// reads nothing: one file descriptor per client, where a simple_ws_client
// takes an io_context of its own (three), so 10,000 fit in this machine's
// open-file limit of 20,000.
#pragma once

#include "bench/bench_util.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ferry::bench {

class idle_clients {
public:
  /// Connects `n` clients to 127.0.0.1:`port`; throws on the first failure.
  idle_clients(uint16_t port, size_t n) {
    raise_open_file_limit();
    namespace net = boost::asio;
    const net::ip::tcp::endpoint relay{net::ip::make_address("127.0.0.1"), port};
    sockets_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      auto ws = std::make_unique<stream>(io_);
      boost::beast::error_code ec;
      ws->next_layer().connect(relay, ec);
      if (!ec)
        ws->handshake("127.0.0.1", "/", ec);
      if (ec)
        throw std::runtime_error("idle client " + std::to_string(i) + " of "
                                 + std::to_string(n) + ": " + ec.message());
      sockets_.push_back(std::move(ws));
    }
  }

  /// The sockets close without a close handshake, as clients that go away.
  ~idle_clients() = default;

  idle_clients(const idle_clients&) = delete;
  idle_clients& operator=(const idle_clients&) = delete;

  size_t size() const {
    return sockets_.size();
  }

private:
  using stream = boost::beast::websocket::stream<boost::asio::ip::tcp::socket>;

  boost::asio::io_context io_;
  std::vector<std::unique_ptr<stream>> sockets_;
};

} // namespace ferry::bench
