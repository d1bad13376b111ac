#include "net/io_runtime.hpp"

#include "net/thread_name.hpp"

#include <algorithm>

namespace ferry::net {

io_runtime::io_runtime(size_t threads) : work_(ioc_.get_executor()) {
  threads = std::max<size_t>(threads, 1);
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i)
    threads_.emplace_back([this] {
      name_this_thread("io");
      // A handler that throws must not take the whole node down with
      // std::terminate: the exception belongs to one connection, the other
      // connections on this thread keep being served.
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (...) {
          // nop
        }
      }
    });
}

io_runtime::~io_runtime() {
  stop();
}

void io_runtime::stop() {
  work_.reset();
  ioc_.stop();
  // Joining ourselves would deadlock; a thread of this runtime that calls
  // stop() leaves run() right after its current handler and is joined by the
  // destructor, which never runs on a thread of its own runtime.
  auto self = std::this_thread::get_id();
  for (auto& thread : threads_)
    if (thread.joinable() && thread.get_id() != self)
      thread.join();
}

} // namespace ferry::net
