// A restart of the hub (the actor that hands committed events to live
// subscriptions), on a real `ferry node`: the clients' open subscriptions
// are registered with its next incarnation, so their live part goes on.

#include "tests/integration/sync_helpers.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

using namespace ferry;
using namespace std::chrono_literals;

TEST_CASE("after a hub restart, an open subscription still receives the "
          "events published later",
          "[integration][relay][supervision]") {
  test::temp_dir dir;
  sync_test::node relay{sync_test::b_config(dir, "")};
  auto admin_port = relay.admin_port();
  auto keys = nostr::generate_keypair();

  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", relay.port).empty());
  REQUIRE(client.send(R"(["REQ","live",{"kinds":[1],"limit":0}])").empty());
  REQUIRE(test::receive_until(client, "[\"EOSE\""));
  auto before = test::make_note(keys, test::unix_now(), "before", 1);
  sync_test::publish(relay.port, {before});
  REQUIRE(test::receive_until(client, "[\"EVENT\",\"live\""));

  auto restart = sync_test::admin(admin_port, "POST",
                                  "/api/v1/actors/hub/restart");
  REQUIRE(restart.response.status == 200);
  // What the old hub took before it went reaches no one; a note published
  // every 100 ms shows when the new one serves the subscription.
  std::optional<std::string> received;
  for (int i = 0; i < 50 && !received; ++i) {
    auto note = test::make_note(keys, test::unix_now(),
                                "after " + std::to_string(i), 1);
    sync_test::publish(relay.port, {note});
    received = test::receive_until(client, "[\"EVENT\",\"live\"", nullptr,
                                   100ms);
  }
  INFO(relay.process.output());
  REQUIRE(received);
  CHECK(received->find("\"after ") != std::string::npos);
}
