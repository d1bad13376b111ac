#include "net/ws_client.hpp"

#include "net/simple_client.hpp"
#include "tests/net/net_fixture.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <mutex>
#include <optional>
#include <thread>
#include <vector>

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

/// A loopback server that accepts every connection and then stalls: it never
/// reads, writes or closes. Its receive buffer is small, so a large request
/// body stalls the writer soon.
class stalling_server {
public:
  stalling_server() : acceptor_(ioc_) {
    using namespace boost::asio;
    ip::tcp::endpoint endpoint{ip::make_address("127.0.0.1"), 0};
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(socket_base::receive_buffer_size(4096));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    do_accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~stalling_server() {
    ioc_.stop();
    thread_.join();
  }

  uint16_t port() const {
    return acceptor_.local_endpoint().port();
  }

  std::string where() const {
    return "127.0.0.1:" + std::to_string(port());
  }

private:
  void do_accept() {
    acceptor_.async_accept(
      [this](boost::system::error_code ec, boost::asio::ip::tcp::socket s) {
        if (ec)
          return;
        accepted_.push_back(std::move(s));
        do_accept();
      });
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<boost::asio::ip::tcp::socket> accepted_;
  std::thread thread_;
};

TEST_CASE("http_send says which step timed out", "[http_send]") {
  stalling_server stalled;
  io_runtime io{1};
  outgoing_http_request req;
  req.url = "http://" + stalled.where() + "/relay/x/members";
  SECTION("waiting for the response on an established connection") {
    auto result = send_and_wait(io, req, 300ms);
    CHECK(result.failure == failure_kind::timeout);
    CHECK(result.status == 0);
    CHECK(result.error == "no HTTP response from " + stalled.where()
                            + " within 300 ms (connected, request sent)");
  }
  SECTION("writing a request the server does not read") {
    req.method = "POST";
    req.body = std::string(32 * 1024 * 1024, 'x');
    auto result = send_and_wait(io, req, 300ms);
    CHECK(result.failure == failure_kind::timeout);
    CHECK(result.error == "writing the HTTP request to " + stalled.where()
                            + " timed out after 300 ms (connected)");
  }
  SECTION("in the TLS handshake") {
    req.url = "https://" + stalled.where() + "/relay/x";
    auto result = send_and_wait(io, req, 300ms);
    CHECK(result.failure == failure_kind::timeout);
    CHECK(result.error == "TLS handshake with " + stalled.where()
                            + " timed out after 300 ms");
  }
}

TEST_CASE("simple_http_request says which step timed out", "[http_send]") {
  stalling_server stalled;
  auto slow = simple_http_request("127.0.0.1", stalled.port(), "GET", "/x", {},
                                  {}, 300ms);
  CHECK(slow.error == "waiting for the response from " + stalled.where()
                        + " timed out after 300 ms (connected, request sent)");
  auto unread = simple_http_request("127.0.0.1", stalled.port(), "POST", "/x",
                                    {}, std::string(32 * 1024 * 1024, 'x'),
                                    300ms);
  CHECK(unread.error == "writing the request to " + stalled.where()
                          + " timed out after 300 ms (connected)");
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
