#include "net/simple_client.hpp"

#include "tests/net/net_fixture.hpp"

#include <catch2/catch.hpp>

using namespace ferry::net;
using namespace std::chrono_literals;
using ferry::net::test::server_fixture;
using ferry::net::test::wait_until;

TEST_CASE_METHOD(server_fixture, "a receive timeout keeps the client usable",
                 "[simple_client]") {
  start();
  simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", port()).empty());
  REQUIRE(wait_until([&] { return opened() == 1; }));
  CHECK_FALSE(client.receive(20ms));
  CHECK(client.is_open());
  // Sending while a read is still pending from the timed-out receive.
  REQUIRE(client.send("ping").empty());
  REQUIRE(wait_until([&] { return frames().size() == 1; }));
  connection(0)->send(std::make_shared<const std::string>("late"));
  auto got = client.receive(2000ms);
  REQUIRE(got);
  CHECK(*got == "late");
}

TEST_CASE("connecting to a closed port fails with a message",
          "[simple_client]") {
  uint16_t port = 0;
  {
    server_fixture fix;
    fix.start();
    port = fix.port();
  }
  simple_ws_client client;
  auto error = client.connect("127.0.0.1", port, "/", 1000ms);
  CHECK(error.rfind("connect 127.0.0.1:" + std::to_string(port), 0) == 0);
  CHECK_FALSE(client.is_open());
  CHECK_FALSE(client.receive(10ms));
  CHECK_FALSE(client.send("x").empty());
  auto http = simple_http_request("127.0.0.1", port, "GET", "/", {}, {}, 1000ms);
  CHECK_FALSE(http.error.empty());
}

TEST_CASE_METHOD(server_fixture, "a client can reconnect after a close",
                 "[simple_client]") {
  echo = true;
  start();
  simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", port()).empty());
  client.close();
  CHECK_FALSE(client.is_open());
  REQUIRE(client.connect("127.0.0.1", port()).empty());
  REQUIRE(client.send("again").empty());
  auto got = client.receive(2000ms);
  REQUIRE(got);
  CHECK(*got == "again");
}
