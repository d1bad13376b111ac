// The down cursor of a sync server never passes an event that is not stored
// (README "Sync"): real `ferry node` processes, killed with SIGKILL at the
// moment the old cursor rules went wrong, must still end with every event.
//
// Every wait is bounded and polls; a failed wait reports the nodes' logs.

#include "tests/integration/sync_helpers.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace ferry;
using namespace ferry::sync_test;
using namespace std::chrono_literals;

TEST_CASE("a node killed while paging its catch-up still fetches every older "
          "event after the restart",
          "[integration][sync][cursor]") {
  test::temp_dir dir_a, dir_b;
  // Old history (hours before the overlap window), one event per second per
  // key, served 10 at a time: the catch-up takes hundreds of round trips.
  std::vector<nostr::event> history;
  auto old = test::unix_now() - 10'000;
  for (int k = 0; k < 2; ++k) {
    auto more = make_events(nostr::generate_keypair(), 2000, old, 1,
                            "old" + std::to_string(k));
    history.insert(history.end(), more.begin(), more.end());
  }
  test::node_settings a_settings;
  a_settings.relay_extra = "[relay.limits]\nmax_limit = 10\ndefault_limit = 10\n";
  auto a_cfg = test::node_config_with(dir_a, a_settings);
  import_into(dir_a, a_cfg, history);
  node a{a_cfg};
  auto b_cfg = b_config(dir_b, sync_server_toml(a.port));
  auto fresh = test::make_note(nostr::generate_keypair(), test::unix_now(),
                               "published during the catch-up");
  {
    node b{b_cfg};
    auto b_admin = b.admin_port();
    // The first page is in: the live subscription has had its EOSE, older
    // pages are being fetched.
    bool started = test::poll_until(
      [&] { return stat_of(b_admin, "node-a", "received") > 0; }, 20s, 2ms);
    if (!started)
      FAIL("B never started its catch-up\n" << logs(&a.process, &b.process));
    publish(a.port, {fresh});
    // Stored from the live subscription (before the fix its commit moved
    // the cursor to now), then killed at once.
    auto want = std::set<std::string>{hex_id(fresh)};
    bool live = test::poll_until(
      [&] { return try_ids(b.port, ids_filter(want)) == want; }, 20s, 2ms);
    if (!live)
      FAIL("the live event never reached B\n" << logs(&a.process, &b.process));
    b.process.kill(SIGKILL);
  }
  // The kill has to land while paging still had work left, or this test
  // proves nothing.
  test::ferry_process exported{{"export", "--config", b_cfg}};
  REQUIRE(exported.wait() == 0);
  size_t held = 0;
  std::istringstream lines{exported.output()};
  for (std::string line; std::getline(lines, line);)
    held += line.rfind("{", 0) == 0;
  INFO("B held " << held << " events when it was killed");
  REQUIRE(held < history.size());

  node b{b_cfg};
  auto want = id_set(history);
  want.insert(hex_id(fresh));
  require_exactly(a, b, kind1_all, want, 60s);
  check_clean_shutdown(b, a);
}

TEST_CASE("negentropy sync gets an event that reaches the remote while it "
          "reconciles",
          "[integration][sync][negentropy][cursor]") {
  test::temp_dir dir_b, dir_r;
  auto keys = nostr::generate_keypair();
  auto history = make_events(keys, 200, test::unix_now() - 4000, 1, "r");
  // Published on the remote right after it answered our NEG-OPEN (back-dated
  // a minute, within the overlap window): not in the reconciliation, and
  // already stored when a `limit: 0` tail opened after it would ask.
  auto late = test::make_note(keys, test::unix_now() - 60, "arrives late");
  auto write_jsonl = [&](const std::string& name,
                         const std::vector<nostr::event>& events) {
    std::string jsonl;
    for (auto& ev : events)
      jsonl += nostr::to_json(ev) + "\n";
    auto file = dir_r.file(name);
    test::write_file(file, jsonl);
    return file;
  };
  test::ferry_process relay{{test::source_dir() + "/tests/interop/neg_relay.mjs",
                             "--events", write_jsonl("events.jsonl", history),
                             "--arrive-after-neg-open",
                             write_jsonl("late.jsonl", {late})},
                            {},
                            "node"};
  auto relay_port = relay.wait_for_port();
  INFO(relay.output());
  REQUIRE(relay_port);
  server_options o;
  o.mode = "negentropy";
  node b{b_config(dir_b, sync_server_toml(*relay_port, o))};
  auto want = id_set(history);
  want.insert(hex_id(late));
  wait_for_ids(b, kind1_all, want, true, "B", nullptr, 20s);
  check_clean_shutdown(b);
}
