// The node's supervision tree, seen from outside a real `ferry node`: one
// supervisor per subsystem under the root, and a crash loop in one
// subsystem escalating to a restart of that subsystem only.
#include "messages/nostr/event.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/keys.hpp"
#include "net/simple_client.hpp"
#include "tests/fixtures/node_process.hpp"
#include "tests/fixtures/paths.hpp"
#include "tests/fixtures/small_window_client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

using namespace ferry;

/// One row of `ferry console --json actors`.
struct actor_row {
  std::string parent;
  std::string kind;
  std::string state;
  int64_t restarts = 0;
  std::string last_error;
};

/// GRASP on and a restart budget of one restart per minute, so a second
/// crash of a child escalates.
const std::string escalating_config
  = "[grasp]\nenabled = true\nservice_domain = \"localhost\"\n"
    "[supervision]\nbase_ms = 10\ncap_ms = 50\n"
    "max_restarts = 1\nwindow_seconds = 60\n";

/// A real node with fault injection allowed and `extra` at the end of its
/// config.
struct crashing_node {
  explicit crashing_node(const std::string& extra = escalating_config) {
    test::node_settings settings;
    settings.console_extra = "fault_injection = true";
    settings.extra = extra;
    process.emplace(std::vector<std::string>{
      "node", "--config", test::node_config_with(dir, settings)});
    auto port = test::wait_for_output(
      *process, "console-gate listening on 127\\.0\\.0\\.1:([0-9]+)");
    INFO(process->output());
    REQUIRE(port);
    console_address = "127.0.0.1:" + *port;
    auto relay = test::wait_for_output(*process, "listening on ws://[0-9.]+:([0-9]+)");
    REQUIRE(relay);
    relay_port = static_cast<uint16_t>(std::stoi(*relay));
  }

  /// Runs `ferry console --node <this node> ARGS...`; its exit status and
  /// output.
  std::pair<int, std::string> console(std::vector<std::string> args) {
    args.insert(args.begin(), {"console", "--node", console_address});
    test::ferry_process run{args};
    auto status = run.wait();
    return {status, run.output()};
  }

  std::map<std::string, actor_row> actors() {
    order.clear();
    auto [status, out] = console({"--json", "actors"});
    INFO(out);
    REQUIRE(status == 0);
    std::map<std::string, actor_row> rows;
    auto parsed = boost::json::parse(out);
    for (auto& x : parsed.as_array()) {
      auto& obj = x.as_object();
      actor_row row;
      row.parent = std::string{obj.at("parent").as_string()};
      row.kind = std::string{obj.at("kind").as_string()};
      row.state = std::string{obj.at("state").as_string()};
      row.restarts = obj.at("restarts").to_number<int64_t>();
      row.last_error = std::string{obj.at("last_error").as_string()};
      rows[std::string{obj.at("name").as_string()}] = row;
      order.push_back(std::string{obj.at("name").as_string()});
    }
    return rows;
  }

  /// Where `name` stood in the last `actors()` listing.
  size_t position(const std::string& name) const {
    return static_cast<size_t>(
      std::find(order.begin(), order.end(), name) - order.begin());
  }

  /// Crashes `name` as soon as it runs.
  void crash(const std::string& name) {
    REQUIRE(test::poll_until([&] {
      auto rows = actors();
      return rows[name].state == "running";
    }));
    auto [status, out] = console({"fault", name});
    INFO(out);
    REQUIRE(status == 0);
  }

  test::temp_dir dir;
  std::optional<test::ferry_process> process;
  std::vector<std::string> order;
  std::string console_address;
  uint16_t relay_port = 0;
};

/// Publishes `count` fresh events on one connection; the OK of each.
std::vector<std::string> publish(uint16_t port, int count) {
  auto author = nostr::generate_keypair();
  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", port).empty());
  for (int i = 0; i < count; ++i) {
    nostr::event ev;
    ev.kind = 1;
    ev.created_at = test::unix_now() - i;
    ev.content = "note " + std::to_string(i);
    nostr::sign_event(ev, author);
    REQUIRE(client.send("[\"EVENT\"," + nostr::to_json(ev) + "]").empty());
  }
  std::vector<std::string> oks;
  for (int i = 0; i < count; ++i) {
    auto ok = test::receive_until(client, "[\"OK\"");
    REQUIRE(ok);
    oks.push_back(*ok);
  }
  return oks;
}

} // namespace

TEST_CASE("each subsystem has its own supervisor under the root",
          "[integration][supervision]") {
  crashing_node n;
  auto rows = n.actors();
  const std::map<std::string, std::string> parent_of{
    {"ingest", "node"},         {"relay", "node"},
    {"sync", "node"},           {"grasp", "node"},
    {"infra", "node"},          {"runtime", "node"},
    {"writer", "ingest"},       {"verifier-1", "ingest"},
    {"hub", "relay"},           {"query-worker-1", "relay"},
    {"relay-server", "relay"},  {"sync-manager", "sync"},
    {"pending-batches", "sync"}, {"health-tracker", "sync"},
    {"grasp-sync", "grasp"},    {"grasp-driver", "grasp"},
    {"self-subscriber", "grasp"}, {"relay-registry", "infra"},
    {"infra-reconciler", "infra"}, {"inspector", "runtime"},
    {"control-plane", "runtime"}, {"console-gate", "runtime"},
  };
  for (auto& [name, parent] : parent_of) {
    INFO(name);
    REQUIRE(rows.count(name) == 1);
    CHECK(rows[name].parent == parent);
    CHECK(rows[name].state == "running");
    if (parent == "node")
      CHECK(rows[name].kind == "supervisor");
  }
  // Listed depth first: each supervisor right before its children.
  CHECK(n.position("node") == 0);
  CHECK(n.position("ingest") == 1);
  CHECK(n.position("writer") == n.position("ingest") + 1);
  CHECK(n.position("hub") == n.position("relay") + 1);
  CHECK(n.position("health-tracker") == n.position("sync") + 1);
  CHECK(n.position("grasp-driver") == n.position("grasp") + 1);
  CHECK(n.position("relay-registry") == n.position("infra") + 1);
  CHECK(n.position("inspector") == n.position("runtime") + 1);
  // Nothing hangs off the root but the subsystems.
  for (auto& [name, row] : rows)
    if (row.parent == "node")
      CHECK(parent_of.count(name) == 1);
}

// Two verifiers, one of them stopped by the operator or restarting after a
// crash (a 5 s backoff): a client's events all go to the other and are all
// accepted. Before, half of them went to the gone verifier's handle and came
// back "error: request_receiver_down".
TEST_CASE("while one verifier is stopped or restarting, clients' events go "
          "to the other",
          "[integration][supervision]") {
  crashing_node n{"[ingest]\nverifiers = 2\n"
                  "[supervision]\nbase_ms = 5000\ncap_ms = 5000\n"};
  auto all_accepted = [&](const std::string& when) {
    INFO(when);
    for (const auto& ok : publish(n.relay_port, 6)) {
      INFO(ok);
      CHECK(ok.find(",true,") != std::string::npos);
    }
  };
  all_accepted("both running");
  auto [stopped, stop_out] = n.console({"stop", "verifier-1"});
  INFO(stop_out);
  REQUIRE(stopped == 0);
  all_accepted("verifier-1 stopped");
  auto [started, start_out] = n.console({"start", "verifier-1"});
  INFO(start_out);
  REQUIRE(started == 0);
  n.crash("verifier-2");
  CHECK(n.actors()["verifier-2"].state == "restarting");
  all_accepted("verifier-2 restarting");
  CHECK(n.actors()["verifier-2"].state == "restarting");
}

TEST_CASE("an event a stuck plugin holds is answered when the operator "
          "restarts the plugin",
          "[integration][supervision]") {
  // The plugin never answers and its timeout is far off: only the plugin
  // host's end can answer the event. CAF drops the promises of an actor
  // that ends; the host answers what it holds as it goes.
  crashing_node n{"[policy.plugin]\ncommand = \"" + test::source_dir()
                  + "/tests/plugins/hang.js\"\ntimeout_ms = 600000\n"};
  auto author = nostr::generate_keypair();
  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", n.relay_port).empty());
  nostr::event ev;
  ev.kind = 1;
  ev.created_at = test::unix_now();
  ev.content = "held by the plugin";
  nostr::sign_event(ev, author);
  REQUIRE(client.send("[\"EVENT\"," + nostr::to_json(ev) + "]").empty());
  REQUIRE(test::poll_until([&] {
    auto [status, out] = n.console({"--json", "actor", "policy-plugin"});
    if (status != 0)
      return false;
    auto parsed = boost::json::parse(out);
    auto waiting = parsed.at("status").as_object().if_contains("waiting");
    return waiting && waiting->to_number<int64_t>() == 1;
  }));
  auto [restarted, out] = n.console({"restart", "policy-plugin"});
  INFO(out);
  REQUIRE(restarted == 0);
  auto ok = test::receive_until(client, "[\"OK\"");
  REQUIRE(ok);
  CHECK(*ok == "[\"OK\",\"" + nostr::to_hex(ev.id)
                 + "\",false,\"error: the write policy plugin could not judge "
                   "this event (the plugin host stopped)\"]");
}

TEST_CASE("a REQ whose query worker ends is closed with an error, and the "
          "connection serves the next one",
          "[integration][supervision]") {
  // A 1 MiB cap makes the worker's high-water mark 256 KiB: a REQ for more
  // than the socket takes waits at its worker for the reader.
  crashing_node n{"[relay.limits]\nmax_outbound_bytes = 1048576\n"
                  "max_limit = 5000\n"};
  constexpr int stored = 1500;
  {
    net::simple_ws_client writer;
    REQUIRE(writer.connect("127.0.0.1", n.relay_port).empty());
    auto keys = nostr::generate_keypair();
    auto now = test::unix_now();
    for (int i = 0; i < stored; ++i) {
      auto ev = test::make_note(keys, now - stored + i,
                                std::string(4000, 'a' + static_cast<char>(i % 26)));
      REQUIRE(writer.send("[\"EVENT\"," + nostr::to_json(ev) + "]").empty());
      if (i % 500 == 499)
        for (int j = 0; j < 500; ++j)
          REQUIRE(test::receive_until(writer, "[\"OK\""));
    }
  }
  test::small_window_client reader{n.relay_port};
  reader.send(R"(["REQ","all",{"kinds":[1],"limit":5000}])");
  reader.wait_until_socket_stalls();
  // Both: the connection uses one of them.
  for (const char* worker : {"query-worker-1", "query-worker-2"}) {
    auto [status, out] = n.console({"restart", worker});
    INFO(out);
    REQUIRE(status == 0);
  }
  int events = 0;
  std::optional<std::string> last;
  while ((last = reader.receive()) && last->rfind("[\"EVENT\"", 0) == 0)
    ++events;
  REQUIRE(last);
  CHECK(*last == R"(["CLOSED","all","error: the query worker stopped; try again"])");
  CHECK(events < stored);
  REQUIRE(test::poll_until([&] {
    auto rows = n.actors();
    return rows["query-worker-1"].state == "running"
           && rows["query-worker-2"].state == "running";
  }));
  reader.send(R"(["REQ","one",{"kinds":[1],"limit":1}])");
  auto event = reader.receive();
  REQUIRE(event);
  CHECK(event->rfind("[\"EVENT\",\"one\"", 0) == 0);
  CHECK(reader.receive() == std::optional<std::string>{R"(["EOSE","one"])"});
}

TEST_CASE("a crash loop in GRASP restarts GRASP, never the writer, and a "
          "subsystem that keeps failing stops the node",
          "[integration][supervision]") {
  crashing_node n;
  n.crash("grasp-sync");
  REQUIRE(test::poll_until([&] {
    auto rows = n.actors();
    return rows["grasp-sync"].state == "running"
           && rows["grasp-sync"].restarts == 1;
  }));
  // A second crash within the window is one too many for GRASP's budget:
  // its supervisor gives up and the root starts a fresh GRASP.
  n.crash("grasp-sync");
  REQUIRE(test::poll_until([&] {
    auto rows = n.actors();
    return rows["grasp"].restarts == 1 && rows["grasp"].state == "running"
           && rows["grasp-sync"].state == "running";
  }));
  auto rows = n.actors();
  CHECK_THAT(rows["grasp"].last_error,
             Catch::Contains("grasp gave up on grasp-sync"));
  // The fresh GRASP supervisor counts from zero.
  CHECK(rows["grasp-sync"].restarts == 0);
  for (auto name : {"ingest", "writer", "verifier-1", "relay", "hub",
                    "relay-server", "sync", "sync-manager", "infra",
                    "runtime"}) {
    INFO(name);
    CHECK(rows[name].restarts == 0);
    CHECK(rows[name].state == "running");
    CHECK(rows[name].last_error.empty());
  }
  CHECK(n.process->is_running());
  // GRASP failing again within the root's window is one escalation too
  // many for the root: nothing would be left running, so the node exits
  // non-zero instead of serving on without it.
  n.crash("grasp-sync");
  REQUIRE(test::poll_until([&] {
    return n.actors()["grasp-sync"].restarts == 1;
  }));
  n.crash("grasp-sync");
  REQUIRE(test::poll_until([&] { return !n.process->is_running(); }));
  CHECK(n.process->wait() == 1);
  CHECK_THAT(n.process->output(),
             Catch::Contains("the root supervisor gave up")
               && Catch::Contains("node gave up on grasp"));
}
