#pragma once

#include "net/ws_server.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::net {

/// A blocking WebSocket client over plain TCP for tests, benchmarks and CLI
/// tools. Each client runs its own io_context on the calling thread, so it
/// needs no io_runtime. Not thread-safe: use one client from one thread.
class simple_ws_client {
public:
  simple_ws_client();

  /// Closes the connection (if open) with a normal close frame.
  ~simple_ws_client();

  simple_ws_client(const simple_ws_client&) = delete;
  simple_ws_client& operator=(const simple_ws_client&) = delete;

  /// Connects and performs the WebSocket handshake, dropping any previous
  /// connection first. Name resolution is not covered by `timeout`.
  /// @returns an error text, empty on success.
  std::string connect(const std::string& host, uint16_t port,
                      const std::string& target = "/",
                      std::chrono::milliseconds timeout
                      = std::chrono::seconds(5));

  /// Sends `text` as one text message and waits until it is written.
  /// @returns an error text, empty on success.
  std::string send(std::string_view text);

  /// Waits up to `timeout` for the next message. @returns nullopt on timeout
  /// (the connection stays usable and the message is returned by a later
  /// call) or when the connection closed (`is_open()` is false then).
  std::optional<std::string> receive(std::chrono::milliseconds timeout);

  /// Sends a normal close frame and waits briefly for the peer's answer.
  void close();

  /// False once the client has observed the connection end.
  bool is_open() const;

  /// The reason the peer gave in its close frame; empty if none arrived.
  const std::string& close_reason() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The result of `simple_http_request`: a response or an error text.
struct http_result {
  /// Empty on success.
  std::string error;
  /// Header names lowercased; `content_type` repeats the Content-Type header.
  http_response response;
};

/// Performs one HTTP/1.1 request over a fresh plain TCP connection.
/// `timeout` covers connecting, writing and reading.
http_result simple_http_request(const std::string& host, uint16_t port,
                                const std::string& method,
                                const std::string& target,
                                const std::map<std::string, std::string>& headers
                                = {},
                                const std::string& body = {},
                                std::chrono::milliseconds timeout
                                = std::chrono::seconds(5));

} // namespace ferry::net
