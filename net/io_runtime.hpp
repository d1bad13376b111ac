#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <cstddef>
#include <thread>
#include <vector>

namespace ferry::net {

/// Owns the io_context and the threads that run it. Sockets live here, never
/// on CAF workers.
class io_runtime {
public:
  /// Starts `threads` threads (at least one) running the context.
  explicit io_runtime(size_t threads);

  /// Stops the context and joins the threads.
  ~io_runtime();

  io_runtime(const io_runtime&) = delete;
  io_runtime& operator=(const io_runtime&) = delete;

  boost::asio::io_context& context() {
    return ioc_;
  }

  /// Stops the context and joins the threads; idempotent.
  void stop();

private:
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

} // namespace ferry::net
