#include "net/io_runtime.hpp"
#include "net/thread_name.hpp"

#include "tests/fixtures/thread_names.hpp"
#include "tests/net/net_fixture.hpp"

#include <boost/asio/post.hpp>

#include <pthread.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

using ferry::net::io_runtime;
using ferry::net::test::wait_until;

TEST_CASE("io_runtime runs handlers on its own threads", "[io_runtime]") {
  io_runtime runtime{2};
  std::mutex mtx;
  std::set<std::thread::id> ids;
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i)
    boost::asio::post(runtime.context(), [&] {
      {
        std::lock_guard<std::mutex> guard{mtx};
        ids.insert(std::this_thread::get_id());
      }
      ++done;
    });
  REQUIRE(wait_until([&] { return done == 100; }));
  std::lock_guard<std::mutex> guard{mtx};
  CHECK(ids.count(std::this_thread::get_id()) == 0);
  CHECK(ids.size() <= 2);
}

TEST_CASE("io_runtime's threads are named io", "[io_runtime]") {
  auto count_io = [] {
    auto names = ferry::test::thread_names();
    return std::count(names.begin(), names.end(), "io");
  };
  auto before = count_io();
  {
    io_runtime runtime{2};
    std::atomic<int> done{0};
    // Each thread names itself first thing: once both ran a handler, both
    // carry the name.
    for (int i = 0; i < 2; ++i)
      boost::asio::post(runtime.context(), [&] { ++done; });
    REQUIRE(wait_until([&] { return done == 2 && count_io() == before + 2; }));
  }
  CHECK(count_io() == before);
}

TEST_CASE("a thread's name keeps the kernel's 15 bytes", "[io_runtime]") {
  std::string seen;
  std::thread named{[&] {
    ferry::net::name_this_thread("a-name-longer-than-fifteen-bytes");
    char buf[32] = {};
    ::pthread_getname_np(::pthread_self(), buf, sizeof buf);
    seen = buf;
  }};
  named.join();
  CHECK(seen == "a-name-longer-t");
}

TEST_CASE("io_runtime survives a throwing handler", "[io_runtime]") {
  io_runtime runtime{1};
  std::atomic<bool> ran{false};
  boost::asio::post(runtime.context(), [] { throw std::runtime_error("boom"); });
  boost::asio::post(runtime.context(), [&] { ran = true; });
  CHECK(wait_until([&] { return ran.load(); }));
}

TEST_CASE("io_runtime stop is idempotent", "[io_runtime]") {
  io_runtime runtime{0}; // still one thread
  std::atomic<bool> ran{false};
  boost::asio::post(runtime.context(), [&] { ran = true; });
  REQUIRE(wait_until([&] { return ran.load(); }));
  runtime.stop();
  runtime.stop();
  CHECK(runtime.context().stopped());
}
