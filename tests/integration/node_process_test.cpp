#include "tests/fixtures/node_process.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

/// Connects a client to a node's relay port.
void connect(net::simple_ws_client& client, uint16_t port) {
  auto err = client.connect("127.0.0.1", port);
  REQUIRE(err.empty());
}

std::string event_frame(const nostr::event& ev) {
  return "[\"EVENT\"," + nostr::to_json(ev) + "]";
}

/// Sends a REQ and returns the ids of the stored events it yields.
std::set<std::string> stored_ids(net::simple_ws_client& client,
                                 const std::string& filter) {
  REQUIRE(client.send("[\"REQ\",\"q\"," + filter + "]").empty());
  std::vector<std::string> events;
  REQUIRE(test::receive_until(client, "[\"EOSE\"", &events));
  std::set<std::string> ids;
  for (auto& frame : events) {
    auto pos = frame.find("\"id\":\"");
    REQUIRE(pos != std::string::npos);
    ids.insert(frame.substr(pos + 6, 64));
  }
  return ids;
}

/// `ferry node` on a fresh directory with `relay_extra` in its [relay]
/// section, up and listening.
struct running_node {
  explicit running_node(const std::string& relay_extra)
    : process{{"node", "--config", test::node_config(dir, relay_extra)}} {
    auto relay_port = process.wait_for_port();
    REQUIRE(relay_port);
    port = *relay_port;
  }

  test::temp_dir dir;
  test::ferry_process process;
  uint16_t port = 0;
};

} // namespace

TEST_CASE("acknowledged events survive a SIGKILL of the node",
          "[integration][durability]") {
  test::temp_dir dir;
  auto cfg = test::node_config(dir);
  auto keys = nostr::generate_keypair();
  std::set<std::string> acknowledged;
  {
    test::ferry_process node{{"node", "--config", cfg}};
    auto port = node.wait_for_port();
    REQUIRE(port);
    net::simple_ws_client client;
    connect(client, *port);
    auto now = test::unix_now();
    for (int i = 0; i < 300; ++i)
      REQUIRE(client.send(event_frame(
                test::make_note(keys, now - i, "note " + std::to_string(i))))
                .empty());
    for (int i = 0; i < 300; ++i) {
      auto ok = test::receive_until(client, "[\"OK\"");
      REQUIRE(ok);
      REQUIRE(ok->find(",true,") != std::string::npos);
      acknowledged.insert(ok->substr(7, 64));
    }
    // No orderly shutdown: whatever was acknowledged must already be durable.
    CHECK(node.kill(SIGKILL) == 128 + SIGKILL);
  }
  REQUIRE(acknowledged.size() == 300);
  test::ferry_process node{{"node", "--config", cfg}};
  auto port = node.wait_for_port();
  REQUIRE(port);
  net::simple_ws_client client;
  connect(client, *port);
  auto ids = stored_ids(client, "{\"authors\":[\"" + nostr::to_hex(keys.pubkey)
                                  + "\"],\"limit\":1000}");
  CHECK(ids == acknowledged);
  CHECK(node.kill(SIGTERM) == 0);
}

TEST_CASE("import counts accepted, duplicate and invalid lines and export prints "
          "them back newest first",
          "[integration][cli]") {
  test::temp_dir dir;
  auto cfg = test::node_config(dir);
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  std::string jsonl;
  std::vector<nostr::event> events;
  for (int i = 0; i < 20; ++i) {
    events.push_back(test::make_note(keys, now - 100 + i, "e" + std::to_string(i)));
    jsonl += nostr::to_json(events.back()) + "\n";
  }
  jsonl += nostr::to_json(events[3]) + "\n"; // duplicate
  auto forged = events[4];
  forged.content = "forged";
  jsonl += nostr::to_json(forged) + "\n"; // id no longer matches
  jsonl += "{not json\n";
  auto input = dir.file("in.jsonl");
  test::write_file(input, jsonl);

  test::ferry_process import{{"import", input, "--config", cfg}};
  REQUIRE(import.wait() == 0);
  auto summary = import.output();
  CAPTURE(summary);
  CHECK(summary.find("accepted 20, duplicate 1, invalid 2") != std::string::npos);

  test::ferry_process again{{"import", input, "--config", cfg}};
  REQUIRE(again.wait() == 0);
  CHECK(again.output().find("accepted 0, duplicate 21, invalid 2")
        != std::string::npos);

  test::ferry_process exported{{"export", "--config", cfg, "--filter",
                                "{\"kinds\":[1],\"limit\":5}"}};
  REQUIRE(exported.wait() == 0);
  std::string expected;
  for (int i = 19; i >= 15; --i)
    expected += nostr::to_json(events[i]) + "\n";
  CHECK(exported.output() == expected);

  test::ferry_process bad_filter{{"export", "--config", cfg, "--filter",
                                  "{\"kinds\":\"x\"}"}};
  CHECK(bad_filter.wait() == 2);
}

TEST_CASE("a flood of EVENTs is answered in full through a small in-flight "
          "window",
          "[integration][backpressure]") {
  running_node node{"[relay.limits]\nmax_inflight_messages = 4\n"};
  net::simple_ws_client client;
  connect(client, node.port);
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  for (int i = 0; i < 500; ++i)
    REQUIRE(client.send(event_frame(test::make_note(keys, now, std::to_string(i))))
              .empty());
  size_t accepted = 0;
  for (int i = 0; i < 500; ++i) {
    auto ok = test::receive_until(client, "[\"OK\"");
    REQUIRE(ok);
    accepted += ok->find(",true,") != std::string::npos;
  }
  CHECK(accepted == 500);
  CHECK(node.process.kill(SIGTERM) == 0);
}

TEST_CASE("a client that stops reading is disconnected with a NOTICE",
          "[integration][backpressure]") {
  running_node node{"[relay.limits]\nmax_outbound_bytes = 65536\n"};
  net::simple_ws_client slow;
  connect(slow, node.port);
  REQUIRE(slow.send(R"(["REQ","live",{"kinds":[1]}])").empty());
  REQUIRE(test::receive_until(slow, "[\"EOSE\""));
  // The slow client now reads nothing while 24 MB of live events are sent.
  net::simple_ws_client writer;
  connect(writer, node.port);
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  std::string content(4000, 'x');
  for (int i = 0; i < 6000; ++i) {
    REQUIRE(writer.send(event_frame(
                          test::make_note(keys, now, content + std::to_string(i))))
              .empty());
    if (i % 500 == 499)
      for (int j = 0; j < 500; ++j)
        REQUIRE(test::receive_until(writer, "[\"OK\""));
  }
  auto notice = test::receive_until(slow, "[\"NOTICE\"", nullptr, 30s);
  REQUIRE(notice);
  CHECK(notice->find("error: disconnected") != std::string::npos);
  CHECK_FALSE(slow.receive(5s));
  CHECK_FALSE(slow.is_open());
  // The node and other clients carry on.
  REQUIRE(writer.send(R"(["COUNT","c",{"kinds":[1]}])").empty());
  auto count = test::receive_until(writer, "[\"COUNT\"");
  REQUIRE(count);
  CHECK(*count == R"(["COUNT","c",{"count":6000}])");
  CHECK(node.process.kill(SIGTERM) == 0);
}

TEST_CASE("NIP-11 relay information is served on the relay port",
          "[integration][nip11]") {
  running_node node{"name = \"test relay\"\n"};
  auto res = net::simple_http_request("127.0.0.1", node.port, "GET", "/",
                                      {{"Accept", "application/nostr+json"}});
  REQUIRE(res.error.empty());
  CHECK(res.response.status == 200);
  CHECK(res.response.content_type == "application/nostr+json");
  CHECK(res.response.headers["access-control-allow-origin"] == "*");
  CHECK(res.response.body.find(R"("name":"test relay")") != std::string::npos);
  CHECK(res.response.body.find(R"("supported_nips":[1,9,11,40,42,45,77])")
        != std::string::npos);
  auto plain = net::simple_http_request("127.0.0.1", node.port, "GET", "/");
  REQUIRE(plain.error.empty());
  CHECK(plain.response.content_type.rfind("text/plain", 0) == 0);
  CHECK(node.process.kill(SIGTERM) == 0);
}
