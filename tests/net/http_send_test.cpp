#include "net/ws_client.hpp"

#include "tests/net/net_fixture.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <mutex>
#include <optional>

using namespace ferry::net;
using namespace std::chrono_literals;
using ferry::net::test::server_fixture;
using ferry::net::test::wait_until;

namespace {

/// Runs `http_send` and waits (bounded) for its one result.
http_send_result send_and_wait(io_runtime& io, outgoing_http_request req,
                          std::chrono::milliseconds timeout = 5000ms) {
  std::mutex mtx;
  std::optional<http_send_result> result;
  http_send(io.context(), std::move(req), {},
            [&](http_send_result res) {
              std::lock_guard<std::mutex> guard{mtx};
              result = std::move(res);
            },
            timeout);
  REQUIRE(wait_until(
    [&] {
      std::lock_guard<std::mutex> guard{mtx};
      return result.has_value();
    },
    10000ms));
  std::lock_guard<std::mutex> guard{mtx};
  return *result;
}

} // namespace

TEST_CASE_METHOD(server_fixture,
                 "http_send sends method, headers and body and returns any "
                 "status",
                 "[http_send]") {
  std::mutex mtx;
  std::vector<http_request> seen;
  start({}, [&](http_request req, std::function<void(http_response)> respond) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      seen.push_back(req);
    }
    auto status = req.method == "PATCH" ? 404u : 201u;
    respond(http_response{status, "application/json", {}, R"({"ok":1})"});
  });
  io_runtime io{1};
  outgoing_http_request post;
  post.method = "POST";
  post.url = "http://127.0.0.1:" + std::to_string(port()) + "/relay/club";
  post.headers["Authorization"] = "Nostr abc";
  post.headers["Content-Type"] = "application/json";
  post.body = R"({"host":"club.example.com"})";
  auto created = send_and_wait(io, post);
  CHECK(created.failure == failure_kind::none);
  CHECK(created.status == 201);
  CHECK(created.body == R"({"ok":1})");
  auto patch = post;
  patch.method = "PATCH";
  auto missing = send_and_wait(io, patch);
  CHECK(missing.failure == failure_kind::none);
  CHECK(missing.status == 404);
  std::lock_guard<std::mutex> guard{mtx};
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].target == "/relay/club");
  CHECK(seen[0].body == post.body);
  CHECK(seen[0].headers["authorization"] == "Nostr abc");
  CHECK(seen[0].headers["content-type"] == "application/json");
  CHECK(seen[1].method == "PATCH");
  CHECK(seen[1].body == post.body);
}

TEST_CASE("http_send reports a server that never answers as a timeout",
          "[http_send]") {
  // Listening, so the kernel accepts the connection, but nobody reads.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor silent{
    ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  io_runtime io{1};
  outgoing_http_request req;
  req.method = "POST";
  req.url = "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port())
            + "/relay/x";
  req.body = "{}";
  auto result = send_and_wait(io, req, 300ms);
  INFO(result.error);
  CHECK(result.failure == failure_kind::timeout);
  CHECK(result.status == 0);
}

TEST_CASE("http_send refuses a bad method or URL without a request",
          "[http_send]") {
  io_runtime io{1};
  outgoing_http_request req;
  req.method = "PO ST";
  req.url = "http://127.0.0.1:9/x";
  auto bad_method = send_and_wait(io, req);
  CHECK(bad_method.failure == failure_kind::http);
  CHECK(bad_method.error == "bad method 'PO ST'");
  req.method = "GET";
  req.url = "nope://x";
  CHECK(send_and_wait(io, req).failure == failure_kind::dns);
}
