// Ferry's negentropy CLIENT engine over a real WebSocket, against two
// servers: nostr-tools' negentropy classes in tests/interop/neg_relay.mjs
// (a third-party implementation, run with node), and a real `ferry node`.
// Both must give exactly the have/need sets the seeded events imply.
// Then the node's negentropy memory: sessions share item sets, a budget
// refuses what would not fit, and closing, timing out or disconnecting
// gives the memory back.

#include "actors/relay/item_set_cache.hpp"
#include "messages/nostr/negentropy.hpp"
#include "tests/fixtures/json.hpp"
#include "tests/fixtures/node_process.hpp"
#include "tests/integration/sync_helpers.hpp"

#include <catch2/catch.hpp>

#include <simdjson.h>

#include <algorithm>
#include <random>
#include <set>

using namespace ferry;
namespace neg = ferry::nostr::negentropy;
using nostr::bytes32;

namespace {

const std::string harness = test::source_dir() + "/tests/interop/neg_relay.mjs";

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

namespace {

const std::string admin_token = sync_test::admin_token;

/// A node with `events` published, a 1 MiB negentropy budget and an admin
/// token for /metrics; `negentropy` adds [relay.negentropy] keys.
struct budget_node {
  test::temp_dir dir;
  std::vector<nostr::event> events;
  std::unique_ptr<test::ferry_process> process;
  uint16_t port = 0;
  uint16_t admin_port = 0;

  budget_node(size_t n, const std::string& negentropy) : events(make_events(n)) {
    test::node_settings s;
    s.admin_extra = "token = \"" + admin_token + "\"\n";
    s.extra = "[relay.negentropy]\nmax_memory_mb = 1\n" + negentropy;
    auto cfg = test::node_config_with(dir, s);
    process = std::make_unique<test::ferry_process>(
      std::vector<std::string>{"node", "--config", cfg});
    auto relay = process->wait_for_port();
    REQUIRE(relay);
    port = *relay;
    auto admin = test::wait_for_admin_port(*process);
    REQUIRE(admin);
    admin_port = *admin;
    net::simple_ws_client ws;
    REQUIRE(ws.connect("127.0.0.1", port) == "");
    for (const auto& ev : events)
      REQUIRE(ws.send("[\"EVENT\"," + nostr::to_json(ev) + "]") == "");
    for (size_t i = 0; i < events.size(); ++i) {
      auto ok = test::receive_until(ws, "[\"OK\",");
      REQUIRE(ok);
      CAPTURE(*ok);
      REQUIRE(ok->find(",true,") != std::string::npos);
    }
  }

  ~budget_node() {
    CHECK(process->kill(SIGTERM) == 0);
  }

  /// One sample of /metrics.
  double metric(const std::string& name) const {
    auto res = sync_test::admin(admin_port, "GET", "/metrics");
    REQUIRE(res.error == "");
    auto& body = res.response.body;
    auto pos = body.find("\n" + name + " ");
    INFO(body.substr(0, 2000));
    REQUIRE(pos != std::string::npos);
    return std::stod(body.substr(pos + name.size() + 2));
  }

  /// The relay server's status, as the console shows it.
  boost::json::object relay_status() const {
    auto res = sync_test::admin(admin_port, "GET", "/api/v1/actors/relay-server");
    REQUIRE(res.error == "");
    return test::parse_object(res.response.body).at("status").as_object();
  }

  /// Waits until the node holds no negentropy memory.
  void require_released() const {
    CHECK(test::poll_until([this] {
      return metric("ferry_negentropy_memory_bytes") == 0
             && metric("ferry_negentropy_sessions") == 0;
    }));
  }
};

/// The first query of a client that holds nothing.
std::string empty_query() {
  neg::client client{std::make_shared<const neg::item_set>()};
  return neg::encode_hex(client.initiate());
}

std::string neg_open(const std::string& sub, const std::string& filter) {
  return "[\"NEG-OPEN\",\"" + sub + "\"," + filter + ",\"" + empty_query()
         + "\"]";
}

/// The verb and text of the answer to one NEG-OPEN.
std::pair<std::string, std::string> open_session(net::simple_ws_client& ws,
                                                 const std::string& sub,
                                                 const std::string& filter) {
  REQUIRE(ws.send(neg_open(sub, filter)) == "");
  auto frame = ws.receive(std::chrono::seconds{10});
  REQUIRE(frame);
  auto [verb, id, text] = fields_of(*frame);
  CHECK(id == sub);
  return {verb, text};
}

/// A filter of its own for each `k`: the newest 3000 - k notes.
std::string distinct_filter(size_t k) {
  return "{\"kinds\":[1],\"limit\":" + std::to_string(3000 - k) + "}";
}

} // namespace

TEST_CASE("a ferry node shares one item set between sessions with the same "
          "filter, and gives it back when they disconnect",
          "[integration][negentropy]") {
  // Unshared, 400 sessions over 3000 events would need ~48 MB; shared they
  // fit the 1 MiB budget.
  budget_node node{3000, "max_sessions_per_connection = 8\n"};
  std::vector<std::unique_ptr<net::simple_ws_client>> clients;
  for (int c = 0; c < 50; ++c) {
    auto ws = std::make_unique<net::simple_ws_client>();
    REQUIRE(ws->connect("127.0.0.1", node.port) == "");
    for (int s = 0; s < 8; ++s)
      REQUIRE(ws->send(neg_open("all-" + std::to_string(s), "{}")) == "");
    clients.push_back(std::move(ws));
  }
  for (auto& ws : clients) {
    for (int s = 0; s < 8; ++s) {
      auto frame = ws->receive(std::chrono::seconds{20});
      REQUIRE(frame);
      CAPTURE(frame->substr(0, 200));
      REQUIRE(fields_of(*frame)[0] == "NEG-MSG");
    }
  }
  const double set_bytes = sizeof(neg::item_set) + 3000 * sizeof(neg::item);
  const double expected = set_bytes + 400 * neg_session_bytes;
  CHECK(node.metric("ferry_negentropy_item_sets") == 1);
  CHECK(node.metric("ferry_negentropy_sessions") == 400);
  CHECK(node.metric("ferry_negentropy_memory_bytes") == expected);
  CHECK(node.metric("ferry_negentropy_refusals_total") == 0);
  auto status = node.relay_status();
  CHECK(status.at("negentropy_memory_bytes").as_int64() == expected);
  CHECK(status.at("negentropy_max_memory_bytes").as_int64() == 1 << 20);
  CHECK(status.at("negentropy_item_sets").as_int64() == 1);
  CHECK(status.at("negentropy_builds").as_int64() == 1);
  CHECK(status.at("negentropy_shared").as_int64() == 399);
  // Reconciliation stays exact for another client meanwhile.
  net::simple_ws_client ws;
  REQUIRE(ws.connect("127.0.0.1", node.port) == "");
  check_overlaps(ws, node.events, 4096);
  check_overlaps(ws, node.events, neg::default_frame_size_limit);
  // Dropping the connections without NEG-CLOSE frees everything.
  clients.clear();
  node.require_released();
  CHECK(node.metric("ferry_negentropy_item_sets") == 0);
}

TEST_CASE("a ferry node refuses NEG-OPENs beyond its negentropy memory "
          "budget, and frees it on NEG-CLOSE and on disconnect",
          "[integration][negentropy]") {
  budget_node node{3000, "max_sessions_per_connection = 20\n"};
  net::simple_ws_client ws;
  REQUIRE(ws.connect("127.0.0.1", node.port) == "");
  // Each set holds ~120 KB: about eight fit the budget.
  size_t refused = 0;
  std::string reason;
  for (size_t k = 0; k < 20 && refused == 0; ++k) {
    auto [verb, text] = open_session(ws, "s" + std::to_string(k),
                                     distinct_filter(k));
    if (verb == "NEG-ERR") {
      refused = k;
      reason = text;
    } else {
      REQUIRE(verb == "NEG-MSG");
    }
  }
  INFO(reason);
  REQUIRE(refused >= 5);
  CHECK(reason.rfind("blocked: the relay's negentropy memory budget is full", 0)
        == 0);
  CHECK(reason.find("try again later or narrow the filter") != std::string::npos);
  CHECK(node.metric("ferry_negentropy_refusals_total") == 1);
  CHECK(node.metric("ferry_negentropy_memory_bytes") <= 1 << 20);
  CHECK(node.metric("ferry_negentropy_sessions") == refused);
  // NEG-CLOSE gives the set back: the refused filter now fits.
  REQUIRE(ws.send("[\"NEG-CLOSE\",\"s0\"]") == "");
  auto [verb, text] = open_session(ws, "again", distinct_filter(refused));
  CHECK(verb == "NEG-MSG");
  CHECK(node.metric("ferry_negentropy_sessions") == refused);
  // Full again; a disconnect gives everything back.
  CHECK(open_session(ws, "more", distinct_filter(refused + 1)).first
        == "NEG-ERR");
  ws.close();
  node.require_released();
  net::simple_ws_client next;
  REQUIRE(next.connect("127.0.0.1", node.port) == "");
  CHECK(open_session(next, "more", distinct_filter(refused + 1)).first
        == "NEG-MSG");
}

TEST_CASE("a ferry node frees the memory of idle negentropy sessions",
          "[integration][negentropy]") {
  budget_node node{500, "idle_timeout_seconds = 1\n"};
  net::simple_ws_client ws;
  REQUIRE(ws.connect("127.0.0.1", node.port) == "");
  CHECK(open_session(ws, "a", "{}").first == "NEG-MSG");
  CHECK(open_session(ws, "b", R"({"kinds":[1],"limit":10})").first
        == "NEG-MSG");
  CHECK(node.metric("ferry_negentropy_sessions") == 2);
  CHECK(node.metric("ferry_negentropy_memory_bytes") > 0);
  for (int i = 0; i < 2; ++i) {
    auto closed = test::receive_until(ws, "[\"NEG-ERR\"");
    REQUIRE(closed);
    CHECK(closed->find("closed: negentropy session idle") != std::string::npos);
  }
  node.require_released();
}
