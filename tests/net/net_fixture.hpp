#pragma once

#include "net/io_runtime.hpp"
#include "net/ws_server.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ferry::net::test {

/// Polls `condition` until it holds or `limit` passes; tests wait on state,
/// never for a fixed time.
template <class Condition>
bool wait_until(Condition condition,
                std::chrono::milliseconds limit = std::chrono::seconds(2)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

/// A ws_server on 127.0.0.1:0 whose callbacks record everything they see.
class server_fixture {
public:
  /// Echo each frame back to its sender.
  bool echo = false;

  /// Acknowledge each frame (`frame_done`) as soon as it arrives.
  bool auto_done = true;

  /// Starts the server; `on_http` answers plain HTTP requests.
  void start(ws_server_options opts = {}, ws_server::http_handler on_http = {}) {
    opts.address = "127.0.0.1";
    opts.port = 0;
    server_ = std::make_unique<ws_server>(
      runtime_.context(), std::move(opts),
      [this](const std::shared_ptr<ws_connection>& conn) {
        return on_open(conn);
      },
      std::move(on_http));
    start_error_ = server_->start();
  }

  ~server_fixture() {
    // Sessions hold sockets of the runtime's io_context: release ours before
    // the runtime goes.
    if (server_)
      server_->stop();
    {
      std::lock_guard<std::mutex> guard{mtx_};
      connections_.clear();
    }
    server_.reset();
    runtime_.stop();
  }

  ws_server& server() {
    return *server_;
  }

  const std::string& start_error() const {
    return start_error_;
  }

  uint16_t port() const {
    return server_->port();
  }

  size_t connection_count() const {
    return server_->connection_count();
  }

  /// The `i`-th opened connection, or nullptr.
  std::shared_ptr<ws_connection> connection(size_t i = 0) {
    std::lock_guard<std::mutex> guard{mtx_};
    return i < connections_.size() ? connections_[i] : nullptr;
  }

  /// Lets go of the `i`-th opened connection, as an owner that ends.
  void forget_connection(size_t i) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (i < connections_.size())
      connections_[i] = nullptr;
  }

  size_t opened() {
    std::lock_guard<std::mutex> guard{mtx_};
    return connections_.size();
  }

  std::vector<std::string> frames() {
    std::lock_guard<std::mutex> guard{mtx_};
    return frames_;
  }

  /// For each frame, the capacity its text had beyond its size.
  std::vector<size_t> frame_spare_capacity() {
    std::lock_guard<std::mutex> guard{mtx_};
    return frame_spare_;
  }

  std::vector<size_t> oversize() {
    std::lock_guard<std::mutex> guard{mtx_};
    return oversize_;
  }

  std::vector<std::string> closes() {
    std::lock_guard<std::mutex> guard{mtx_};
    return closes_;
  }

private:
  ws_callbacks on_open(const std::shared_ptr<ws_connection>& conn) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      connections_.push_back(conn);
    }
    // Weak: the session owns these callbacks.
    std::weak_ptr<ws_connection> weak = conn;
    ws_callbacks callbacks;
    callbacks.on_frame = [this, weak](std::string frame) {
      auto conn = weak.lock();
      {
        std::lock_guard<std::mutex> guard{mtx_};
        frames_.push_back(frame);
        frame_spare_.push_back(frame.capacity() - frame.size());
      }
      const auto size = frame.size();
      if (echo && conn)
        conn->send(std::make_shared<const std::string>(std::move(frame)));
      if (auto_done && conn)
        conn->frame_done(size);
    };
    callbacks.on_oversize = [this](size_t bytes) {
      std::lock_guard<std::mutex> guard{mtx_};
      oversize_.push_back(bytes);
    };
    callbacks.on_close = [this](const std::string& reason) {
      std::lock_guard<std::mutex> guard{mtx_};
      closes_.push_back(reason);
    };
    return callbacks;
  }

  // Declared before the runtime: the runtime's threads use them until it
  // is gone.
  std::mutex mtx_;
  std::vector<std::string> frames_;
  std::vector<size_t> frame_spare_;
  std::vector<size_t> oversize_;
  std::vector<std::string> closes_;
  std::vector<std::shared_ptr<ws_connection>> connections_;
  std::string start_error_;
  io_runtime runtime_{2};
  std::unique_ptr<ws_server> server_;
};

} // namespace ferry::net::test
