#include "net/ws_server.hpp"

#include "tests/net/net_fixture.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/time.h>

using namespace ferry::net;
using ferry::net::test::server_fixture;

namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos;
       pos = text.find(what, pos + what.size()))
    ++n;
  return n;
}

} // namespace

TEST_CASE_METHOD(server_fixture, "HTTP keep-alive serves several requests on "
                                 "one connection",
                 "[ws_server][http]") {
  std::mutex mtx;
  std::vector<std::string> remotes;
  start({}, [&](http_request req, std::function<void(http_response)> respond) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      remotes.push_back(req.remote_address);
    }
    respond(http_response{200, "text/plain", {}, "path " + req.target});
  });
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket{ioc};
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port()});
  // A blocking read that can never hang the test run.
  timeval limit{2, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit,
               sizeof(limit));
  // Both requests at once (pipelined); the second asks to close afterwards.
  std::string requests = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                         "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  boost::asio::write(socket, boost::asio::buffer(requests));
  std::string answer;
  boost::system::error_code ec;
  boost::asio::read(socket, boost::asio::dynamic_buffer(answer), ec);
  CHECK(ec == boost::asio::error::eof);
  CHECK(count(answer, "HTTP/1.1 200 OK") == 2);
  CHECK(answer.find("path /a") < answer.find("path /b"));
  std::lock_guard<std::mutex> guard{mtx};
  REQUIRE(remotes.size() == 2);
  CHECK(remotes[0] == remotes[1]);
}
