#include "tests/fixtures/node_process.hpp"
#include "tests/fixtures/small_window_client.hpp"

#include <catch2/catch.hpp>

#include <random>
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

using test::running_node;

/// Content that deflate barely shrinks, so compressed frames stay large.
std::string incompressible_text(std::mt19937& rng, size_t size) {
  static constexpr char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out(size, ' ');
  for (auto& c : out)
    c = alphabet[rng() % 64];
  return out;
}

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

TEST_CASE("import reads stdin, blank lines and a last line without a newline "
          "included",
          "[integration][cli]") {
  test::temp_dir dir;
  auto cfg = test::node_config(dir);
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  std::string jsonl;
  for (int i = 0; i < 5; ++i)
    jsonl += nostr::to_json(test::make_note(keys, now - 10 + i, "s" + std::to_string(i)))
             + "\n\n";
  jsonl += nostr::to_json(test::make_note(keys, now, "last")); // no '\n'
  auto input = dir.file("in.jsonl");
  test::write_file(input, jsonl);

  test::ferry_process import{{"import", "--config", cfg}, input};
  REQUIRE(import.wait() == 0);
  auto summary = import.output();
  CAPTURE(summary);
  CHECK(summary.find("imported 6 lines") != std::string::npos);
  CHECK(summary.find("accepted 6, duplicate 0, invalid 0") != std::string::npos);

  test::ferry_process exported{{"export", "--config", cfg, "--filter",
                                "{\"limit\":1}"}};
  REQUIRE(exported.wait() == 0);
  CHECK(exported.output().find("\"content\":\"last\"") != std::string::npos);
}

TEST_CASE("export reads the store beside a running node, its latest events "
          "included, and import beside it is refused",
          "[integration][cli]") {
  running_node node;
  const auto& cfg = node.config;
  // Acknowledged moments ago: in the node's WAL and memtable, not in an SST.
  net::simple_ws_client client;
  connect(client, node.port);
  auto keys = nostr::generate_keypair();
  std::set<std::string> published;
  for (int i = 0; i < 5; ++i) {
    auto ev = test::make_note(keys, test::unix_now() - i, "beside " + std::to_string(i));
    REQUIRE(client.send(event_frame(ev)).empty());
    auto ok = test::receive_until(client, "[\"OK\"");
    REQUIRE(ok);
    REQUIRE(ok->find(",true,") != std::string::npos);
    published.insert(nostr::to_hex(ev.id));
  }

  test::ferry_process exported{{"export", "--config", cfg}};
  REQUIRE(exported.wait() == 0);
  auto output = exported.output();
  INFO(output);
  CHECK(output.find("a node holds") != std::string::npos);
  // RocksDB's own complaint about the taken lock is not the operator's news.
  CHECK(output.find("LOCK") == std::string::npos);
  std::set<std::string> found;
  for (const auto& id : published)
    if (output.find(id) != std::string::npos)
      found.insert(id);
  CHECK(found == published);

  auto input = node.dir.file("in.jsonl");
  test::write_file(input, "");
  test::ferry_process import{{"import", input, "--config", cfg}};
  CHECK(import.wait() == 1);
  CHECK(import.output().find("is a node running on this store? stop it first")
        != std::string::npos);

  // The node goes on serving and writing after the reader is gone.
  auto later = test::make_note(keys, test::unix_now(), "after the export");
  REQUIRE(client.send(event_frame(later)).empty());
  auto ok = test::receive_until(client, "[\"OK\"");
  REQUIRE(ok);
  CHECK(ok->find(",true,") != std::string::npos);
  CHECK(stored_ids(client, R"({"kinds":[1]})").size() == published.size() + 1);
  CHECK(node.process.kill(SIGTERM) == 0);
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

TEST_CASE("with permessage-deflate, a REQ waits for a slow reader and the "
          "outbound cap still cuts off one that never reads",
          "[integration][backpressure][compression]") {
  // A 1 MiB cap makes the query worker's high-water mark 256 KiB.
  running_node node{"compression = true\n[relay.limits]\nmax_outbound_bytes = "
                    "1048576\nmax_limit = 5000\n"};
  test::small_window_client never_reads{node.port, /*deflate=*/true};
  never_reads.send(R"(["REQ","live",{"kinds":[1],"limit":0}])");
  REQUIRE(never_reads.receive() == std::string(R"(["EOSE","live"])"));
  // 12 MB of events, ~9 MB deflated: more than the kernel's socket buffers
  // and the cap together hold for the client that reads nothing.
  constexpr int stored = 3000;
  net::simple_ws_client writer;
  connect(writer, node.port);
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  std::mt19937 rng{13};
  for (int i = 0; i < stored; ++i) {
    REQUIRE(writer
              .send(event_frame(test::make_note(keys, now - stored + i,
                                                incompressible_text(rng, 4000))))
              .empty());
    if (i % 500 == 499)
      for (int j = 0; j < 500; ++j)
        REQUIRE(test::receive_until(writer, "[\"OK\""));
  }
  std::optional<std::string> notice;
  while (auto frame = never_reads.receive())
    if (frame->rfind("[\"NOTICE\"", 0) == 0)
      notice = frame;
  REQUIRE(notice);
  CHECK(notice->find("error: disconnected: more than 1048576 bytes queued")
        != std::string::npos);

  // The slow reader asks for all of it, then reads nothing until the node's
  // writes stall on its socket: the REQ must wait below the cap, not run on
  // into it, and then deliver everything.
  test::small_window_client slow{node.port, /*deflate=*/true};
  slow.send(R"(["REQ","all",{"kinds":[1],"limit":5000}])");
  slow.wait_until_socket_stalls();
  int events = 0;
  std::optional<std::string> last;
  while ((last = slow.receive()) && last->rfind("[\"EVENT\"", 0) == 0)
    ++events;
  REQUIRE(last);
  CHECK(*last == R"(["EOSE","all"])");
  CHECK(events == stored);
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
