// Ferry's negentropy CLIENT engine over a real WebSocket, against two
// servers: nostr-tools' negentropy classes in tests/interop/neg_relay.mjs
// (a third-party implementation, run with node), and a real `ferry node`.
// Both must give exactly the have/need sets the seeded events imply.

#include "messages/nostr/negentropy.hpp"
#include "tests/fixtures/node_process.hpp"

#include <catch2/catch.hpp>

#include <simdjson.h>

#include <algorithm>
#include <random>
#include <set>

using namespace ferry;
namespace neg = ferry::nostr::negentropy;
using nostr::bytes32;

namespace {

const std::string harness = FERRY_SOURCE_DIR "/tests/interop/neg_relay.mjs";

/// Signed events, many sharing a second (so bounds need id prefixes).
std::vector<nostr::event> make_events(size_t n) {
  auto keys = nostr::generate_keypair();
  const int64_t base = test::unix_now() - 100000;
  std::vector<nostr::event> events;
  for (size_t i = 0; i < n; ++i)
    events.push_back(test::make_note(keys, base + static_cast<int64_t>(i % 200),
                                     "negentropy " + std::to_string(i)));
  return events;
}

struct reconciled {
  std::vector<bytes32> have;
  std::vector<bytes32> need;
  size_t rounds = 0;
};

/// A frame's [verb, sub, payload] strings.
std::array<std::string, 3> fields_of(const std::string& frame) {
  simdjson::dom::parser parser;
  simdjson::dom::array arr;
  REQUIRE_FALSE(parser.parse(frame).get(arr));
  std::array<std::string, 3> out;
  size_t i = 0;
  for (auto element : arr) {
    std::string_view text;
    REQUIRE(i < 3);
    REQUIRE_FALSE(element.get(text));
    out[i++] = std::string{text};
  }
  REQUIRE(i == 3);
  return out;
}

/// Our client engine over `ws`: NEG-OPEN, NEG-MSG until done, NEG-CLOSE.
reconciled run_client(net::simple_ws_client& ws, const std::string& sub,
                      const std::string& filter,
                      std::vector<neg::item> items, size_t frame_limit) {
  neg::client client{std::make_shared<const neg::item_set>(std::move(items)),
                     frame_limit};
  reconciled result;
  REQUIRE(ws.send("[\"NEG-OPEN\",\"" + sub + "\"," + filter + ",\""
                  + neg::encode_hex(client.initiate()) + "\"]")
          == "");
  for (;;) {
    REQUIRE(result.rounds < 500);
    auto frame = ws.receive(std::chrono::seconds{10});
    REQUIRE(frame);
    CAPTURE(frame->substr(0, 200));
    auto [verb, id, payload] = fields_of(*frame);
    REQUIRE(verb == "NEG-MSG");
    REQUIRE(id == sub);
    std::string response;
    REQUIRE(neg::decode_hex(payload, response));
    neg::client::round round;
    REQUIRE(client.reconcile(response, round) == "");
    ++result.rounds;
    result.have.insert(result.have.end(), round.have.begin(), round.have.end());
    result.need.insert(result.need.end(), round.need.begin(), round.need.end());
    if (!round.next)
      break;
    REQUIRE(ws.send("[\"NEG-MSG\",\"" + sub + "\",\""
                    + neg::encode_hex(*round.next) + "\"]")
            == "");
  }
  REQUIRE(ws.send("[\"NEG-CLOSE\",\"" + sub + "\"]") == "");
  return result;
}

void check_same(std::vector<bytes32> actual, const std::vector<bytes32>& expected) {
  std::sort(actual.begin(), actual.end());
  CHECK(std::adjacent_find(actual.begin(), actual.end()) == actual.end());
  std::set<bytes32> want(expected.begin(), expected.end());
  CHECK(actual.size() == want.size());
  CHECK(std::equal(actual.begin(), actual.end(), want.begin(), want.end()));
}

/// Reconciles at 0%, 1%, 50% and 100% overlap of `events` (all on the
/// server), the client also holding ids the server lacks.
void check_overlaps(net::simple_ws_client& ws,
                    const std::vector<nostr::event>& events, size_t frame_limit) {
  std::mt19937_64 rng{42};
  for (double overlap : {0.0, 0.01, 0.5, 1.0}) {
    CAPTURE(overlap, frame_limit);
    auto shared = static_cast<size_t>(events.size() * overlap);
    std::vector<neg::item> items;
    std::vector<bytes32> need;
    for (size_t i = 0; i < events.size(); ++i) {
      if (i < shared)
        items.push_back({static_cast<uint64_t>(events[i].created_at), events[i].id});
      else
        need.push_back(events[i].id);
    }
    std::vector<bytes32> have;
    for (int i = 0; i < 25; ++i) {
      bytes32 id;
      for (auto& b : id)
        b = static_cast<uint8_t>(rng());
      have.push_back(id);
      items.push_back({static_cast<uint64_t>(events[0].created_at + i), id});
    }
    auto result = run_client(ws, "sync-" + std::to_string(overlap), "{\"kinds\":[1]}",
                             items, frame_limit);
    check_same(result.need, need);
    check_same(result.have, have);
  }
}

} // namespace

TEST_CASE("our negentropy client agrees with nostr-tools' negentropy as the server",
          "[integration][negentropy][interop]") {
  test::temp_dir dir;
  auto events = make_events(3000);
  std::string jsonl;
  for (const auto& ev : events)
    jsonl += nostr::to_json(ev) + "\n";
  auto file = dir.file("events.jsonl");
  test::write_file(file, jsonl);
  // The harness's smallest frames make many rounds and cut id lists short.
  for (std::string limit : {"4096", "60000"}) {
    CAPTURE(limit);
    test::ferry_process relay{{harness, "--events", file, "--port", "0",
                               "--frame-size-limit", limit},
                              {},
                              "node"};
    auto port = relay.wait_for_port();
    INFO(relay.output());
    REQUIRE(port);
    net::simple_ws_client ws;
    REQUIRE(ws.connect("127.0.0.1", *port) == "");
    check_overlaps(ws, events, 4096);
    check_overlaps(ws, events, neg::default_frame_size_limit);
  }
}

TEST_CASE("our negentropy client reconciles against a ferry node",
          "[integration][negentropy]") {
  test::temp_dir dir;
  auto cfg = test::node_config(dir, {}, "[relay.negentropy]\nframe_size_limit = 4096\n");
  test::ferry_process node{{"node", "--config", cfg}};
  auto port = node.wait_for_port();
  REQUIRE(port);
  net::simple_ws_client ws;
  REQUIRE(ws.connect("127.0.0.1", *port) == "");
  auto events = make_events(3000);
  for (const auto& ev : events)
    REQUIRE(ws.send("[\"EVENT\"," + nostr::to_json(ev) + "]") == "");
  for (size_t i = 0; i < events.size(); ++i)
    REQUIRE(test::receive_until(ws, "[\"OK\",")->find(",true,") != std::string::npos);
  check_overlaps(ws, events, 4096);
  check_overlaps(ws, events, neg::default_frame_size_limit);
  CHECK(node.kill(SIGTERM) == 0);
}
