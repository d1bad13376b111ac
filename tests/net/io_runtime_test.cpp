#include "net/io_runtime.hpp"

#include "tests/net/net_fixture.hpp"

#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>

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
