// Outbound sync (directions down, up and both; modes req_stream and
// negentropy) between two real `ferry node` processes on loopback: node B has
// a [[sync.server]] pointing at node A's relay and must mirror A's matching
// events into its own store (and A B's, syncing up).
//
// Every wait is bounded and polls (REQ/COUNT or HTTP every 100 ms); a failed
// wait reports both nodes' log tails.

#include "tests/integration/sync_helpers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>

using namespace ferry;
using namespace ferry::sync_test;
using namespace std::chrono_literals;

TEST_CASE("sync mirrors exactly the remote's matching events",
          "[integration][sync]") {
  test::temp_dir dir_a, dir_b;
  auto now = test::unix_now();
  std::vector<nostr::event> all;
  for (int k = 0; k < 3; ++k) {
    auto keys = nostr::generate_keypair();
    // 100 per key: 60 kind 1, 40 kind 7.
    auto notes = make_events(keys, 60, now - 10, 1, "note" + std::to_string(k));
    auto reactions = make_events(keys, 40, now - 5, 7, "+" + std::to_string(k));
    all.insert(all.end(), notes.begin(), notes.end());
    all.insert(all.end(), reactions.begin(), reactions.end());
  }
  REQUIRE(all.size() == 300);
  node a{test::node_config(dir_a)};
  publish(a.port, all);
  REQUIRE(count_of(a.port, R"({"kinds":[1]})") == 180);
  REQUIRE(count_of(a.port, R"({"kinds":[7]})") == 120);

  node b{b_config(dir_b, sync_server_toml(a.port))};
  require_mirrored(a, b, kind1_all);
  CHECK(ids_of(b.port, kind1_all) == ids_of(a.port, kind1_all));
  CHECK(count_of(b.port, R"({"kinds":[7]})") == 0);
  CHECK(count_of(b.port, "{}") == 180);
  check_clean_shutdown(b, a);
}

TEST_CASE_METHOD(two_nodes,
                 "events published on the remote reach the node live",
                 "[integration][sync]") {
  auto now = test::unix_now();
  node a{test::node_config(dir_a)};
  publish(a.port, make_events(keys, 20, now - 100, 1, "old"));
  node b{b_config(dir_b, sync_server_toml(a.port))};
  require_mirrored(a, b, kind1_all);

  // Caught up: now stream. Three rounds, each must arrive in a bounded time.
  for (int round = 0; round < 3; ++round) {
    auto fresh = make_events(keys, 10, test::unix_now(), 1,
                             "live" + std::to_string(round));
    auto start = std::chrono::steady_clock::now();
    publish(a.port, fresh);
    auto want = id_set(fresh);
    auto filter = ids_filter(want);
    bool ok = test::poll_until(
      [&] {
        auto got = try_ids(b.port, filter);
        return got && *got == want;
      },
      10s);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start)
                .count();
    if (!ok)
      FAIL("live round " << round << ": events did not reach B within 10 s\n"
                         << logs(&a.process, &b.process));
    // A live stream delivers at once; a catch-up poll would take far longer.
    CHECK(ms < 5000);
  }
  CHECK(count_of(b.port, "{}") == 50);
  check_clean_shutdown(b, a);
}

TEST_CASE_METHOD(two_nodes, "a restarted node fills the gap it was down for",
                 "[integration][sync]") {
  auto now = test::unix_now();
  node a{test::node_config(dir_a)};
  publish(a.port, make_events(keys, 100, now - 1000, 1, "before"));
  auto b_cfg = b_config(dir_b, sync_server_toml(a.port));
  {
    node b{b_cfg};
    require_mirrored(a, b, kind1_all);
    stop(b);
  }
  // While B is down: 50 more, spread over the last minute.
  publish(a.port, make_events(keys, 50, test::unix_now(), 1, "gap"));
  REQUIRE(count_of(a.port, "{}") == 150);
  node b{b_cfg};
  require_mirrored(a, b, kind1_all);
  CHECK(count_of(b.port, "{}") == 150);
  check_clean_shutdown(b, a);
}

TEST_CASE_METHOD(two_nodes,
                 "the node backs off while the remote is down and reconnects when "
                 "it returns",
                 "[integration][sync]") {
  auto a_port = test::free_port();
  auto a_cfg = config_on_port(dir_a, a_port);
  auto b_cfg = b_config(dir_b, sync_server_toml(a_port));

  auto a = std::make_unique<node>(a_cfg);
  REQUIRE(a->port == a_port);
  publish(a_port, make_events(keys, 30, test::unix_now() - 60, 1, "first"));
  node b{b_cfg};
  auto b_admin = b.admin_port();
  require_mirrored(*a, b, kind1_all);

  stop(*a);
  // B keeps running and says it is retrying: in its sync health/stats or log.
  static const std::regex retrying{
    "backoff|backing.off|back off|reconnect|retry|next attempt", std::regex::icase};
  std::string reports;
  bool noticed = test::poll_until(
    [&] {
      reports = sync_reports(b_admin, "node-a");
      return std::regex_search(reports, retrying)
             || std::regex_search(b.process.output(), retrying);
    },
    20s, 200ms);
  CHECK(b.process.is_running());
  if (!noticed)
    FAIL_CHECK("B shows no backoff/reconnect while A is down\n"
               << reports << logs(nullptr, &b.process));

  // A returns on the same port (same store, same identity).
  a = std::make_unique<node>(a_cfg);
  REQUIRE(a->port == a_port);
  auto fresh = make_events(keys, 25, test::unix_now(), 1, "after");
  publish(a_port, fresh);
  auto want = id_set(fresh);
  bool ok = test::poll_until(
    [&] {
      auto got = try_ids(b.port, kind1_all);
      return got && std::includes(got->begin(), got->end(), want.begin(), want.end());
    },
    30s); // covers B's longest backoff step before it tries again
  if (!ok)
    FAIL("B did not get A's new events within 30 s of A's restart\n"
         << sync_reports(b_admin, "node-a") << logs(&a->process, &b.process));
  require_mirrored(*a, b, kind1_all);
  check_clean_shutdown(b, *a);
}

TEST_CASE_METHOD(two_nodes,
                 "a wrong remote identity blocks sync and is reported, the right one "
                 "syncs",
                 "[integration][sync]") {
  node a{test::node_config(dir_a)};
  auto identity = test::wait_for_identity(a.process);
  if (!identity)
    FAIL("no node identity line\n" << logs(&a.process, nullptr));
  publish(a.port, make_events(keys, 40, test::unix_now() - 10, 1, "id"));

  auto wrong = nostr::to_hex(nostr::generate_keypair().pubkey);
  REQUIRE(wrong != *identity);
  server_options o;
  o.relay_info_mode = "required";
  o.auth_pubkey = wrong;
  node b{b_config(dir_b, sync_server_toml(a.port, o))};
  auto b_admin = b.admin_port();
  std::string reports;
  bool reported = test::poll_until(
    [&] {
      reports = sync_reports(b_admin, "node-a");
      return lower(reports).find("identity") != std::string::npos;
    },
    20s, 200ms);
  if (!reported)
    FAIL_CHECK("B's sync health/stats do not mention the identity mismatch\n"
               << reports << logs(&a.process, &b.process));
  // Reported means checked: nothing may have been synced.
  CHECK(count_of(b.port, "{}") == 0);

  // The right identity, through the admin API (the stored definition is the
  // truth once a server is known; ferry.toml only seeds new ids).
  auto res = admin(b_admin, "PUT", "/api/v1/sync/servers/node-a",
                   "{\"url\":\"" + relay_url(a.port)
                     + "\",\"filters\":[{\"kinds\":[1]}],\"relay_info_mode\":"
                       "\"required\",\"auth_pubkey\":\""
                     + *identity + "\",\"tls\":{\"mode\":\"disabled\"}}");
  require_answered(res, b.process);
  INFO(res.response.body);
  REQUIRE(res.response.status == 200);
  require_mirrored(a, b, kind1_all);
  CHECK(count_of(b.port, "{}") == 40);
  check_clean_shutdown(b, a);
}

namespace {

/// A string field of B's stats for server `id`.
std::string stat_text(uint16_t admin_port, const std::string& id,
                      const std::string& field) {
  auto res = admin(admin_port, "GET", "/api/v1/sync/servers/" + id);
  if (!res.error.empty() || res.response.status != 200)
    return {};
  std::regex re{"\"" + field + "\":\"([^\"]*)\""};
  std::smatch m;
  if (!std::regex_search(res.response.body, m, re))
    return {};
  return m[1].str();
}

} // namespace

TEST_CASE_METHOD(two_nodes,
                 "the node answers the remote's NIP-42 challenge and syncs",
                 "[integration][sync]") {
  // NIP-77: the NEG-OPEN sent on connect crosses A's challenge and is
  // refused with auth-required:; it must be sent again after AUTH, not
  // taken for a relay without NIP-77.
  auto mode = GENERATE(std::string{"req_stream"}, std::string{"negentropy"});
  CAPTURE(mode);
  auto a_port = test::free_port();
  test::node_settings a_settings;
  a_settings.relay_port = a_port;
  // AUTH events must name this URL: the one B is configured with.
  a_settings.relay_extra
    = "auth_required = true\npublic_url = \"" + relay_url(a_port) + "\"\n";
  auto a_cfg = test::node_config_with(dir_a, a_settings);
  // A refuses unauthenticated EVENTs, so its events are imported.
  auto events = make_events(keys, 60, test::unix_now() - 10, 1, "auth");
  import_into(dir_a, a_cfg, events);
  node a{a_cfg};

  // Without authentication A answers nothing: the REQ is refused.
  {
    net::simple_ws_client client;
    REQUIRE(client.connect("127.0.0.1", a.port).empty());
    REQUIRE(client.send(R"(["REQ","q",{"kinds":[1]}])").empty());
    std::vector<std::string> frames;
    auto closed = test::receive_until(client, "[\"CLOSED\"", &frames);
    REQUIRE(closed);
    CHECK(closed->find("auth-required") != std::string::npos);
  }

  server_options o;
  o.mode = mode;
  node b{b_config(dir_b, sync_server_toml(a_port, o))};
  auto want = id_set(events);
  std::set<std::string> got;
  bool ok = test::poll_until([&] {
    auto ids = try_ids(b.port, kind1_all);
    if (ids)
      got = *ids;
    return got == want;
  });
  if (!ok)
    FAIL("B holds " << got.size() << " of 60 events from an auth_required A\n"
                    << logs(&a.process, &b.process));
  // The REQs sent again after AUTH still end the catch-up (its batches at
  // PENDING BATCHES wait for their EOSE).
  auto b_admin = b.admin_port();
  if (!test::poll_until([&] {
        auto res = admin(b_admin, "GET", "/api/v1/sync/servers/node-a/stats");
        return res.response.body.find("\"catchup_complete\":true")
               != std::string::npos;
      }))
    FAIL("B never completed its catch-up of an auth_required A\n"
         << sync_reports(b_admin, "node-a") << logs(&a.process, &b.process));
  if (mode == "negentropy") {
    CHECK(stat_text(b_admin, "node-a", "negentropy") == "supported");
    CHECK(test::poll_until(
      [&] { return stat_of(b_admin, "node-a", "neg_rounds") >= 1; }));
  }
  check_clean_shutdown(b, a);
}

TEST_CASE("catch-up pages through more history than the remote's max_limit",
          "[integration][sync]") {
  test::temp_dir dir_a, dir_b;
  auto now = test::unix_now();
  std::vector<nostr::event> events;
  // 1200 kind-1 events from two keys, two per second each, so pages cut
  // through seconds that hold several events.
  for (int k = 0; k < 2; ++k) {
    auto more = make_events(nostr::generate_keypair(), 600, now - 100, 1,
                            "page" + std::to_string(k), 2);
    events.insert(events.end(), more.begin(), more.end());
  }
  test::node_settings a_settings;
  a_settings.relay_extra = "[relay.limits]\nmax_limit = 500\ndefault_limit = 500\n";
  auto a_cfg = test::node_config_with(dir_a, a_settings);
  import_into(dir_a, a_cfg, events);
  node a{a_cfg};
  // A serves at most 500 per REQ...
  CHECK(ids_of(a.port, kind1_all).size() == 500);
  CHECK(count_of(a.port, R"({"kinds":[1]})") == 1200);

  // ...and B must still get all 1200.
  node b{b_config(dir_b, sync_server_toml(a.port))};
  auto want = id_set(events);
  int64_t count = -1;
  bool ok = test::poll_until([&] {
    count = count_of(b.port, R"({"kinds":[1]})");
    return count == 1200;
  });
  if (!ok)
    FAIL("B holds " << count << " of 1200 events (-1: B does not answer)\n"
                    << logs(&a.process, &b.process));
  CHECK(ids_of(b.port, kind1_all) == want);
  check_clean_shutdown(b, a);
}

namespace {

/// 25 kind-1 events sharing one second, then 10 older ones a second apart.
struct crowded_history {
  std::vector<nostr::event> older;
  std::vector<nostr::event> all;

  crowded_history() {
    auto now = test::unix_now();
    auto keys = nostr::generate_keypair();
    all = make_events(keys, 25, now - 100, 1, "crowded", 25);
    older = make_events(keys, 10, now - 101, 1, "older");
    all.insert(all.end(), older.begin(), older.end());
  }
};

} // namespace

TEST_CASE("catch-up fetches every event of a second that holds more than a "
          "page",
          "[integration][sync]") {
  test::temp_dir dir_a, dir_b;
  // Pages of 10 (the filter's limit) through a second of 25.
  crowded_history history;
  node a{test::node_config(dir_a)};
  publish(a.port, history.all);
  REQUIRE(count_of(a.port, R"({"kinds":[1]})") == 35);

  server_options options;
  options.filters = "[{ kinds = [1], limit = 10 }]";
  node b{b_config(dir_b, sync_server_toml(a.port, options))};
  require_exactly(a, b, kind1_all, id_set(history.all), 10s);
  check_clean_shutdown(b, a);
}

TEST_CASE("a remote that serves less than a crowded second still lets the "
          "catch-up end",
          "[integration][sync]") {
  test::temp_dir dir_a, dir_b;
  // A serves at most 20 per REQ, so of the 25 events sharing one second B
  // can get only 20 by REQ; asking for that second again must stop there.
  crowded_history history;
  test::node_settings a_settings;
  a_settings.relay_extra = "[relay.limits]\nmax_limit = 20\ndefault_limit = 20\n";
  node a{test::node_config_with(dir_a, a_settings)};
  publish(a.port, history.all);

  server_options options;
  options.filters = "[{ kinds = [1], limit = 5 }]";
  node b{b_config(dir_b, sync_server_toml(a.port, options))};
  auto b_admin = b.admin_port();
  bool ended = test::poll_until(
    [&] { return stat_flag(b_admin, "node-a", "catchup_complete"); }, 10s);
  if (!ended)
    FAIL("B's catch-up did not end\n" << sync_reports(b_admin, "node-a")
                                       << logs(&a.process, &b.process));
  wait_for_ids(b, kind1_all, id_set(history.older), false, "B", &a);
  CHECK(count_of(b.port, R"({"kinds":[1]})") >= 30);
  check_clean_shutdown(b, a);
}

// A cursor says "every event these filters match from this remote, up to
// here, is stored": it means nothing for other filters. B syncs kinds [1]
// from A, which also holds kind-7 events from long before; the operator
// then PUTs kinds [1, 7]. Before, the connection restarted on the old
// cursor, its catch-up began the overlap window before it, and A's old
// kind-7 events never came.
TEST_CASE_METHOD(two_nodes,
                 "a sync server given other filters catches up on them from "
                 "the beginning",
                 "[integration][sync][admin]") {
  const std::string mode = GENERATE(std::string{"req_stream"},
                                    std::string{"negentropy"});
  CAPTURE(mode);
  node a{test::node_config(dir_a)};
  const auto now = test::unix_now();
  auto notes = make_events(keys, 20, now - 100, 1, "note");
  auto reactions = make_events(keys, 20, now - 5000, 7, "+");
  publish(a.port, notes);
  publish(a.port, reactions);
  server_options o;
  o.mode = mode;
  node b{b_config(dir_b, sync_server_toml(a.port, o))};
  auto b_admin = b.admin_port();
  auto caught_up = [&] {
    bool complete = test::poll_until(
      [&] { return stat_flag(b_admin, "node-a", "catchup_complete"); }, 20s);
    if (!complete)
      FAIL("B's catch-up did not complete\n"
           << sync_reports(b_admin, "node-a") << logs(&a.process, &b.process));
  };
  caught_up();
  REQUIRE(ids_of(b.port, kind1_all) == id_set(notes));
  REQUIRE(count_of(b.port, R"({"kinds":[7]})") == 0);

  auto res = admin(b_admin, "PUT", "/api/v1/sync/servers/node-a",
                   "{\"url\":\"" + relay_url(a.port)
                     + "\",\"filters\":[{\"kinds\":[1,7]}],\"mode\":\""
                     + mode + "\",\"tls\":{\"mode\":\"disabled\"}}");
  require_answered(res, b.process);
  INFO(res.response.body);
  REQUIRE(res.response.status == 200);
  caught_up();
  // Complete means stored: nothing may arrive after it.
  CHECK(ids_of(b.port, R"({"kinds":[7],"limit":5000})") == id_set(reactions));
  CHECK(ids_of(b.port, kind1_all) == id_set(notes));
  check_clean_shutdown(b, a);
}

TEST_CASE_METHOD(two_nodes,
                 "the admin API manages sync servers", "[integration][sync][admin]") {
  node a{test::node_config(dir_a)};
  publish(a.port, make_events(keys, 30, test::unix_now() - 10, 1, "api"));
  node b{b_config(dir_b, "")};
  auto b_admin = b.admin_port();
  const std::string base = "/api/v1/sync/servers/";
  auto body = [&](const std::string& url, const std::string& more) {
    return "{\"url\":\"" + url + "\",\"filters\":[{\"kinds\":[1]}]"
           + ",\"direction\":\"down\",\"mode\":\"req_stream\"" + more + "}";
  };
  const std::string plain = ",\"tls\":{\"mode\":\"disabled\"}";

  { // No token: 401.
    auto res = net::simple_http_request("127.0.0.1", b_admin, "GET", base + "node-a");
    require_answered(res, b.process);
    CHECK(res.response.status == 401);
  }

  // Invalid definitions: 400 naming the field.
  struct bad_case {
    const char* field;
    std::string body;
  };
  std::vector<bad_case> bad{
    {"url", body("http://127.0.0.1:1", plain)},
    {"filters", "{\"url\":\"" + relay_url(a.port)
                  + "\",\"filters\":[{\"kinds\":\"x\"}],\"tls\":{\"mode\":\"disabled\"}}"},
    {"pins", body("wss://relay.example.com",
                  ",\"tls\":{\"mode\":\"required\",\"pins\":[{\"type\":\"spki_sha256\","
                  "\"value\":\"not-a-digest\"}]}")},
    {"direction", "{\"url\":\"" + relay_url(a.port)
                    + "\",\"filters\":[{\"kinds\":[1]}],\"direction\":\"sideways\""
                    + plain + "}"},
  };
  for (auto& c : bad) {
    auto res = admin(b_admin, "PUT", base + "bad", c.body);
    INFO(c.field << ": " << c.body << " -> " << res.error << " "
                 << res.response.status << " " << res.response.body);
    require_answered(res, b.process);
    CHECK(res.response.status == 400);
    CHECK(res.response.body.find(c.field) != std::string::npos);
  }
  {
    auto res = admin(b_admin, "GET", base + "bad");
    require_answered(res, b.process);
    CHECK(res.response.status == 404);
  }

  auto res = admin(b_admin, "GET", base + "no-such-server");
  require_answered(res, b.process);
  CHECK(res.response.status == 404);

  // A valid definition: created, listed back, and syncing.
  res = admin(b_admin, "PUT", base + "node-a", body(relay_url(a.port), plain));
  INFO(res.error << " " << res.response.status << " " << res.response.body);
  require_answered(res, b.process);
  CHECK((res.response.status == 200 || res.response.status == 201));
  CHECK(res.response.content_type.rfind("application/json", 0) == 0);
  CHECK(res.response.body.find("\"id\":\"node-a\"") != std::string::npos);
  res = admin(b_admin, "GET", base + "node-a");
  require_answered(res, b.process);
  CHECK(res.response.status == 200);
  CHECK(res.response.body.find("\"url\":\"" + relay_url(a.port)) != std::string::npos);
  require_mirrored(a, b, kind1_all);

  for (auto action : {"stop", "start", "sync-now"}) {
    auto r = admin(b_admin, "POST", base + "node-a/" + action);
    INFO(action << " -> " << r.error << " " << r.response.status << " "
                << r.response.body);
    require_answered(r, b.process);
    CHECK(r.response.status >= 200);
    CHECK(r.response.status < 300);
  }
  res = admin(b_admin, "GET", base + "node-a/stats");
  require_answered(res, b.process);
  CHECK(res.response.status == 200);
  for (auto action : {"start", "stop", "sync-now", "stats"}) {
    auto r = admin(b_admin, action == std::string{"stats"} ? "GET" : "POST",
                   base + "no-such-server/" + action);
    require_answered(r, b.process);
    CHECK(r.response.status == 404);
  }

  // Still syncing after stop/start: a new event arrives live.
  auto fresh = make_events(keys, 1, test::unix_now(), 1, "after-restart");
  publish(a.port, fresh);
  require_mirrored(a, b, kind1_all);

  // DELETE: gone from the API, and no longer syncing.
  res = admin(b_admin, "DELETE", base + "node-a");
  require_answered(res, b.process);
  CHECK((res.response.status == 200 || res.response.status == 204));
  res = admin(b_admin, "GET", base + "node-a");
  require_answered(res, b.process);
  CHECK(res.response.status == 404);
  auto late = make_events(keys, 1, test::unix_now(), 1, "after-delete");
  publish(a.port, late);
  // A bounded negative check: had the stream survived, the event would arrive
  // in well under 3 s (the live test requires < 5 s, typically ms).
  bool leaked = test::poll_until(
    [&] { return count_of(b.port, "{\"ids\":[\"" + hex_id(late[0]) + "\"]}") > 0; },
    3s);
  CHECK_FALSE(leaked);
  check_clean_shutdown(b, a);
}

TEST_CASE_METHOD(two_nodes,
                 "direction up sends the node's matching events, also those written "
                 "while the remote was down",
                 "[integration][sync][up]") {
  auto a_port = test::free_port();
  auto a_cfg = config_on_port(dir_a, a_port);
  server_options up;
  up.direction = "up";
  auto a = std::make_unique<node>(a_cfg);
  node b{b_config(dir_b, sync_server_toml(a_port, up))};
  auto b_admin = b.admin_port();
  auto now = test::unix_now();
  publish(b.port, make_events(keys, 100, now - 50, 1, "mine"));
  publish(b.port, make_events(keys, 20, now - 50, 7, "not synced"));
  require_holds(b, *a, kind1_all, "A after B's first events");
  CHECK(count_of(a_port, "{}") == 100);

  stop(*a);
  // Older than anything A has: a created_at cursor would skip these.
  publish(b.port, make_events(keys, 30, now - 5000, 1, "while away"));
  a = std::make_unique<node>(a_cfg);
  REQUIRE(a->port == a_port);
  require_holds(b, *a, kind1_all, "A after its restart", 40s);
  CHECK(count_of(a_port, "{}") == 130);
  CHECK(count_of(b.port, "{}") == 150); // nothing came down
  bool counted = test::poll_until(
    [&] { return stat_of(b_admin, "node-a", "sent_ok") >= 130; }, 10s);
  CHECK(counted);
  CHECK(stat_of(b_admin, "node-a", "sent_refused") == 0);
  check_clean_shutdown(b, *a);
}

TEST_CASE("direction both ends with the union on each side and never echoes",
          "[integration][sync][up]") {
  test::temp_dir dir_a, dir_b;
  auto alice = nostr::generate_keypair();
  auto bob = nostr::generate_keypair();
  auto now = test::unix_now();
  node a{test::node_config(dir_a)};
  publish(a.port, make_events(alice, 50, now - 100, 1, "from a"));
  server_options both;
  both.direction = "both";
  node b{b_config(dir_b, sync_server_toml(a.port, both))};
  auto b_admin = b.admin_port();
  publish(b.port, make_events(bob, 40, now - 100, 1, "from b"));
  require_holds(a, b, kind1_all, "B after the catch-up");
  require_holds(b, a, kind1_all, "A after the catch-up");

  // Live, both ways.
  publish(a.port, make_events(alice, 10, test::unix_now(), 1, "a live"));
  publish(b.port, make_events(bob, 10, test::unix_now(), 1, "b live"));
  require_holds(a, b, kind1_all, "B after live events");
  require_holds(b, a, kind1_all, "A after live events");
  CHECK(count_of(a.port, "{}") == 110);
  CHECK(count_of(b.port, "{}") == 110);
  // B sent exactly its own 50 events up: the 60 it got from A stayed home.
  bool settled = test::poll_until(
    [&] { return stat_of(b_admin, "node-a", "sent_ok") == 50; }, 10s);
  if (!settled)
    FAIL_CHECK("sent_ok never reached 50\n" << sync_reports(b_admin, "node-a"));
  CHECK(stat_of(b_admin, "node-a", "sent") == 50);
  CHECK(stat_of(b_admin, "node-a", "accepted") == 60);
  // The 60 events from A were read from B's change log and skipped as
  // echoes; the stats say so, and when B last connected.
  CHECK(test::poll_until(
    [&] { return stat_of(b_admin, "node-a", "echoes_skipped") == 60; }, 10s));
  CHECK(stat_of(b_admin, "node-a", "last_connected") >= now);
  check_clean_shutdown(b, a);
}

TEST_CASE("negentropy sync ends with the union the direction asks for, "
          "moving only the difference",
          "[integration][sync][negentropy]") {
  auto overlap = GENERATE(0, 1, 50, 100);
  auto direction = GENERATE(std::string{"down"}, std::string{"up"},
                            std::string{"both"});
  CAPTURE(overlap, direction);
  test::temp_dir dir_a, dir_b;
  auto keys = nostr::generate_keypair();
  // Older than the overlap window: the live tail after the reconciliation
  // must not bring any of them again.
  auto base = test::unix_now() - 5000;
  constexpr size_t per_side = 200;
  auto shared_n = per_side * overlap / 100;
  auto shared = make_events(keys, shared_n, base, 1, "shared");
  auto a_only = make_events(keys, per_side - shared_n, base - 1000, 1, "a");
  auto b_only = make_events(keys, per_side - shared_n, base - 2000, 1, "b");
  auto a_events = shared;
  a_events.insert(a_events.end(), a_only.begin(), a_only.end());
  auto b_events = shared;
  b_events.insert(b_events.end(), b_only.begin(), b_only.end());
  auto a_cfg = test::node_config(dir_a);
  import_into(dir_a, a_cfg, a_events);
  server_options o;
  o.mode = "negentropy";
  o.direction = direction;
  node a{a_cfg};
  auto b_cfg = b_config(dir_b, sync_server_toml(a.port, o));
  import_into(dir_b, b_cfg, b_events);
  node b{b_cfg};
  auto b_admin = b.admin_port();

  auto all = id_set(a_events);
  for (auto& id : id_set(b_only))
    all.insert(id);
  bool down = direction != "up";
  bool up = direction != "down";
  wait_for_ids(b, kind1_all, down ? all : id_set(b_events), true, "B", &a, 30s);
  wait_for_ids(a, kind1_all, up ? all : id_set(a_events), true, "A", &b, 30s);
  // With full overlap the stores match before B reconciled at all: wait for
  // its reconciliation, then count what it moved.
  bool reconciled = test::poll_until(
    [&] { return stat_of(b_admin, "node-a", "neg_rounds") >= 1; }, 10s);
  if (!reconciled)
    FAIL_CHECK("B never reconciled\n" << sync_reports(b_admin, "node-a"));
  bool settled = test::poll_until(
    [&] {
      return stat_of(b_admin, "node-a", "received")
               == static_cast<int64_t>(down ? a_only.size() : 0)
             && stat_of(b_admin, "node-a", "sent_ok")
                  == static_cast<int64_t>(up ? b_only.size() : 0);
    },
    10s);
  if (!settled)
    FAIL_CHECK("B moved more than the difference\n"
               << sync_reports(b_admin, "node-a"));
  CHECK(stat_of(b_admin, "node-a", "sent")
        == static_cast<int64_t>(up ? b_only.size() : 0));
  CHECK(stat_text(b_admin, "node-a", "negentropy") == "supported");
  check_clean_shutdown(b, a);
}

// Into an empty store a reconciliation would list every id A holds and B
// would fetch each by id: the catch-up pages A with REQ instead and never
// reconciles. The next one, with events held, reconciles; direction both
// still sends up what B gets afterwards.
TEST_CASE("a NIP-77 catch-up into an empty store pages the remote with REQ, "
          "and the next one reconciles",
          "[integration][sync][negentropy]") {
  auto direction = GENERATE(std::string{"down"}, std::string{"both"});
  CAPTURE(direction);
  test::temp_dir dir_a, dir_b;
  auto keys = nostr::generate_keypair();
  auto history = make_events(keys, 1200, test::unix_now() - 5000, 1, "a");
  auto a_cfg = test::node_config(dir_a);
  import_into(dir_a, a_cfg, history);
  node a{a_cfg};
  server_options o;
  o.mode = "negentropy";
  o.direction = direction;
  o.reconcile_when_empty = false;
  node b{b_config(dir_b, sync_server_toml(a.port, o))};
  auto b_admin = b.admin_port();
  auto want = id_set(history);
  wait_for_ids(b, kind1_all, want, true, "B", &a, 30s);
  REQUIRE(test::poll_until(
    [&] { return stat_flag(b_admin, "node-a", "catchup_complete"); }));
  {
    INFO(sync_reports(b_admin, "node-a"));
    CHECK(stat_of(b_admin, "node-a", "neg_paged") == 1);
    CHECK(stat_of(b_admin, "node-a", "neg_rounds") == 0);
    CHECK(stat_of(b_admin, "node-a", "neg_need") == 0);
    CHECK(stat_of(b_admin, "node-a", "cursor") > 0);
    CHECK(stat_text(b_admin, "node-a", "negentropy") == "supported");
  }

  auto later = make_events(keys, 30, test::unix_now() - 100, 1, "later");
  publish(a.port, later);
  for (const auto& ev : later)
    want.insert(nostr::to_hex(ev.id));
  auto res = admin(b_admin, "POST", "/api/v1/sync/servers/node-a/sync-now");
  REQUIRE(res.response.status == 200);
  wait_for_ids(b, kind1_all, want, true, "B", &a, 30s);
  bool reconciled = test::poll_until(
    [&] { return stat_of(b_admin, "node-a", "neg_rounds") >= 1; }, 10s);
  INFO(sync_reports(b_admin, "node-a"));
  CHECK(reconciled);
  CHECK(stat_of(b_admin, "node-a", "neg_paged") == 1);
  if (direction == "both") {
    auto from_b = make_events(keys, 5, test::unix_now() - 10, 1, "from b");
    publish(b.port, from_b);
    for (const auto& ev : from_b)
      want.insert(nostr::to_hex(ev.id));
    wait_for_ids(a, kind1_all, want, true, "A", &b, 30s);
  }
  check_clean_shutdown(b, a);
}

TEST_CASE_METHOD(two_nodes,
                 "negentropy sync falls back to REQ against a relay without NIP-77",
                 "[integration][sync][negentropy]") {
  test::node_settings a_settings;
  a_settings.extra = "[relay.negentropy]\nenabled = false\n";
  node a{test::node_config_with(dir_a, a_settings)};
  publish(a.port, make_events(keys, 120, test::unix_now() - 100, 1, "plain"));
  server_options o;
  o.mode = "negentropy";
  node b{b_config(dir_b, sync_server_toml(a.port, o))};
  auto b_admin = b.admin_port();
  require_mirrored(a, b, kind1_all);
  auto status = stat_text(b_admin, "node-a", "negentropy");
  CHECK_THAT(status, Catch::Matchers::StartsWith("unsupported: "));
  // Live events still arrive over the REQ tail.
  auto fresh = make_events(keys, 5, test::unix_now(), 1, "after");
  publish(a.port, fresh);
  require_holds(a, b, kind1_all, "B after the fallback");
  check_clean_shutdown(b, a);
}

namespace {

/// Server "node-a" of B's: catching up over NIP-77.
server_options over_negentropy() {
  server_options o;
  o.mode = "negentropy";
  return o;
}

/// Node B catching up (direction down, server "node-a" with `o`) with
/// neg_relay.mjs holding `events`, started with `flags` too.
struct b_from_neg_relay {
  b_from_neg_relay(const std::vector<nostr::event>& events,
                   std::vector<std::string> flags,
                   const server_options& o = over_negentropy())
    : relay{neg_relay_args(dir_r, events, std::move(flags)), {}, "node"} {
    auto port = relay.wait_for_port();
    INFO(relay.output());
    REQUIRE(port);
    relay_port = *port;
    b.emplace(b_config(dir_b, sync_server_toml(*port, o)));
    b_admin = b->admin_port();
  }

  /// Waits until B holds exactly `want` and reports its catch-up complete.
  void require_caught_up_with(const std::set<std::string>& want) {
    wait_for_ids(*b, kind1_all, want, true, "B", nullptr, 30s);
    bool complete = test::poll_until(
      [&] { return stat_flag(b_admin, "node-a", "catchup_complete"); }, 10s);
    if (!complete)
      FAIL("B holds every event but its catch-up is not complete\n"
           << sync_reports(b_admin, "node-a") << logs(nullptr, &b->process) << relay.output());
  }

  /// Waits until B holds the one deletion (kind 5) the remote sends.
  bool holds_one_deletion() {
    return test::poll_until(
      [&] { return count_of(b->port, R"({"kinds":[5]})") == 1; }, 10s);
  }

  /// B's connection to the remote never failed (its stats' last_error is
  /// empty).
  void check_never_failed() {
    auto stats = admin(b_admin, "GET", "/api/v1/sync/servers/node-a/stats");
    CHECK_THAT(stats.response.body, Catch::Matchers::Contains("\"last_error\":\"\""));
  }

  test::temp_dir dir_b;
  test::temp_dir dir_r;
  test::ferry_process relay;
  uint16_t relay_port = 0;
  std::optional<node> b;
  uint16_t b_admin = 0;
};

/// neg_relay.mjs's flags for a remote that holds `most` subscriptions per
/// connection and drops a REQ beyond them with a NOTICE ("unannounced"),
/// names the limit in its NIP-11 document too ("advertised"), or refuses
/// such a REQ with CLOSED ("closed").
std::vector<std::string> subscription_limit_flags(const std::string& limit,
                                                  int most) {
  std::vector<std::string> flags{"--max-subs", std::to_string(most)};
  if (limit == "advertised")
    flags.push_back("--advertise-limits");
  if (limit == "closed") {
    flags.push_back("--max-subs-reason");
    flags.push_back("blocked: too many open subscriptions (max "
                    + std::to_string(most) + ")");
  }
  return flags;
}

} // namespace

// A remote that caps the ids of a filter below our REQs' size and will not
// serve one event: what it refused in large REQs is fetched in smaller ones,
// and only the event it refuses alone is given up. Before, each refused REQ
// gave its 500 ids up and the catch-up ended without them.
TEST_CASE("a NIP-77 catch-up fetches in smaller REQs what the remote refused "
          "in large ones, and gives up only an event refused alone",
          "[integration][sync][negentropy][interop]") {
  auto keys = nostr::generate_keypair();
  auto remote_events = make_events(keys, 200, test::unix_now() - 4000, 1, "r");
  const auto not_served = nostr::to_hex(remote_events[77].id);
  b_from_neg_relay scene{remote_events, {"--max-ids", "30", "--refuse-id", not_served}};
  const auto b_admin = scene.b_admin;
  auto want = id_set(remote_events);
  want.erase(not_served);
  scene.require_caught_up_with(want);
  INFO(sync_reports(b_admin, "node-a"));
  CHECK(stat_of(b_admin, "node-a", "fetch_refused") == 1);
  CHECK(stat_of(b_admin, "node-a", "fetch_missing") == 0);
  CHECK(stat_of(b_admin, "node-a", "received") == 199);
  check_clean_shutdown(*scene.b);
}

// A remote that asks for NIP-42 only when we fetch by id, its challenge
// coming with the CLOSED: the connection answers it and asks again, without
// starting over.
TEST_CASE("a NIP-77 catch-up answers a challenge that comes with a refused "
          "fetch, and fetches everything",
          "[integration][sync][negentropy][interop]") {
  auto keys = nostr::generate_keypair();
  auto remote_events = make_events(keys, 80, test::unix_now() - 4000, 1, "r");
  b_from_neg_relay scene{remote_events, {"--auth-for-ids"}};
  const auto b_admin = scene.b_admin;
  scene.require_caught_up_with(id_set(remote_events));
  INFO(sync_reports(b_admin, "node-a"));
  CHECK(stat_of(b_admin, "node-a", "received") == 80);
  // The same connection went on.
  scene.check_never_failed();
  check_clean_shutdown(*scene.b);
}

// A remote that holds 3 subscriptions per connection. When its NIP-11
// document names the limit, the catch-up keeps its fetch REQs within it (the
// live and deletion tails take two). When it says nothing and drops the REQs
// beyond it with a NOTICE, as relays did before NIP-01 had CLOSED, those
// fetch REQs are found unanswered and asked for again with fewer open at
// once; before, the catch-up waited for their answers for ever. When it
// refuses them with CLOSED "blocked: ...", they are asked for again as they
// were, with fewer open; before, they were split down to single ids, which
// were given up as events the relay would not serve, and the cursor moved
// past them. Each way the catch-up completes on the same connection.
TEST_CASE("a NIP-77 catch-up keeps its fetches within the remote's "
          "subscription limit, and asks again for those it never answers",
          "[integration][sync][negentropy][interop]") {
  auto keys = nostr::generate_keypair();
  auto remote_events = make_events(keys, 2000, test::unix_now() - 9000, 1, "r");
  const std::string limit = GENERATE(std::string{"unannounced"},
                                     std::string{"advertised"},
                                     std::string{"closed"});
  CAPTURE(limit);
  auto flags = subscription_limit_flags(limit, 3);
  b_from_neg_relay scene{remote_events, flags};
  const auto b_admin = scene.b_admin;
  scene.require_caught_up_with(id_set(remote_events));
  INFO(sync_reports(b_admin, "node-a") << "\n" << scene.relay.output());
  if (limit == "unannounced")
    CHECK(stat_of(b_admin, "node-a", "fetch_unanswered") >= 1);
  else
    CHECK(stat_of(b_admin, "node-a", "fetch_unanswered") == 0);
  CHECK(stat_of(b_admin, "node-a", "fetch_missing") == 0);
  CHECK(stat_of(b_admin, "node-a", "fetch_refused") == 0);
  CHECK(stat_of(b_admin, "node-a", "received") == 2000);
  scene.check_never_failed();
  check_clean_shutdown(*scene.b);
}

// A remote that holds 2 subscriptions per connection, caught up with by REQ
// paging. One filter: its pages take turns beside the live tail, each closed
// before the next is asked for; before, the next page was asked for while
// the last was still open, the remote refused or dropped it, and the
// catch-up failed and started over into the same refusal, or waited 5
// minutes for the dropped page's batch to time out. Three filters: told by
// NIP-11, the catch-up asks for one page at a time; not told, it asks for
// three, and those the remote refuses (CLOSED) or drops (NOTICE) are asked
// for again once a page of ours has ended.
TEST_CASE("a REQ catch-up pages within the remote's subscription limit, and "
          "asks again for the pages it refused or dropped",
          "[integration][sync]") {
  const int filter_count = GENERATE(1, 3);
  const std::string limit = GENERATE(std::string{"unannounced"},
                                     std::string{"advertised"},
                                     std::string{"closed"});
  CAPTURE(filter_count, limit);
  std::vector<nostr::event> remote_events;
  std::string filters = "[";
  for (int k = 0; k < filter_count; ++k) {
    auto keys = nostr::generate_keypair();
    // Two per second, several pages per filter.
    auto more = make_events(keys, 1200 / filter_count, test::unix_now() - 9000,
                            1, "f" + std::to_string(k), 2);
    remote_events.insert(remote_events.end(), more.begin(), more.end());
    filters += std::string{k > 0 ? ", " : ""} + "{ kinds = [1], authors = [\""
               + nostr::to_hex(keys.pubkey) + "\"], limit = 150 }";
  }
  filters += "]";
  server_options paged;
  paged.filters = filters;
  // Pages only: no deletion histories competing for room.
  paged.follow_deletions = false;
  b_from_neg_relay scene{remote_events, subscription_limit_flags(limit, 2), paged};
  const auto b_admin = scene.b_admin;
  scene.require_caught_up_with(id_set(remote_events));
  INFO(sync_reports(b_admin, "node-a") << "\n" << scene.relay.output());
  if (filter_count == 1 || limit == "advertised")
    CHECK(stat_of(b_admin, "node-a", "reqs_asked_again") == 0);
  else
    CHECK(stat_of(b_admin, "node-a", "reqs_asked_again") >= 2);
  scene.check_never_failed();
  check_clean_shutdown(*scene.b);
}

// A remote that holds one subscription of ours, declared in its NIP-11
// document, found when it drops a REQ beyond it with a NOTICE, or when it
// refuses one with CLOSED: the live tail makes room for the pages, and a
// catch-up from the first one's end (less the overlap window) opens it again
// (its first page is all it reads); the deletion tail is given up for the
// session.
// Before, every page beside the live tail was dropped or refused and the
// catch-up never ended.
TEST_CASE("a REQ catch-up from a remote that holds one subscription closes "
          "the live tail to page, and opens it again after",
          "[integration][sync]") {
  const std::string limit = GENERATE(std::string{"advertised"}, std::string{"unannounced"},
                                     std::string{"closed"});
  CAPTURE(limit);
  auto keys = nostr::generate_keypair();
  // Two per second, eight pages of 150.
  auto remote_events = make_events(keys, 1200, test::unix_now() - 9000, 1, "one", 2);
  server_options paged;
  paged.filters = "[{ kinds = [1], limit = 150 }]";
  b_from_neg_relay scene{remote_events, subscription_limit_flags(limit, 1), paged};
  scene.require_caught_up_with(id_set(remote_events));
  INFO(sync_reports(scene.b_admin, "node-a") << logs(nullptr, &scene.b->process)
                                             << scene.relay.output());
  const auto output = scene.b->process.output();
  CHECK(output.find("remote holds 1 subscription of ours: the live tail closes while "
                    "the catch-up pages")
        != std::string::npos);
  CHECK(output.find("opens the live tail again") != std::string::npos);
  // The overlap window before the newest event holds 600 events, more than
  // the live tail's first page: said, and not paged.
  CHECK(output.find("the live tail's first page after the paging was full") != std::string::npos);
  // The live tail is open again: an event the remote takes now reaches B.
  auto later = make_events(keys, 1, test::unix_now(), 1, "later");
  publish(scene.relay_port, later);
  auto want = id_set(remote_events);
  want.insert(hex_id(later.front()));
  wait_for_ids(*scene.b, kind1_all, want, true, "B", nullptr, 10s);
  check_clean_shutdown(*scene.b);
}

// A remote that serves every REQ as if it had no since or until answers each
// page with its newest events again. Only events a page's filter matches
// count for the paging, so it ends (REQ cannot reach further into such a
// remote) and the catch-up completes, instead of asking for the same page
// forever.
TEST_CASE("a REQ catch-up from a remote that ignores until ends its paging "
          "and completes",
          "[integration][sync]") {
  auto keys = nostr::generate_keypair();
  // Two per second, four pages of 150.
  auto remote_events = make_events(keys, 600, test::unix_now() - 9000, 1, "u", 2);
  server_options paged;
  paged.filters = "[{ kinds = [1], limit = 150 }]";
  paged.follow_deletions = false;
  b_from_neg_relay scene{remote_events, {"--ignore-until"}, paged};
  bool complete = test::poll_until(
    [&] { return stat_flag(scene.b_admin, "node-a", "catchup_complete"); }, 30s);
  INFO(sync_reports(scene.b_admin, "node-a") << logs(nullptr, &scene.b->process)
                                             << scene.relay.output());
  REQUIRE(complete);
  // What B holds came from the remote, the newest page at least.
  auto held = ids_of(scene.b->port, kind1_all);
  auto remote = id_set(remote_events);
  CHECK(std::includes(remote.begin(), remote.end(), held.begin(), held.end()));
  auto newest_page = id_set({remote_events.begin(), remote_events.begin() + 150});
  CHECK(std::includes(held.begin(), held.end(), newest_page.begin(), newest_page.end()));
  scene.check_never_failed();
  check_clean_shutdown(*scene.b);
}

// Two filters whose windows overlap: {kinds:[0]} brings the author's kind-0
// from long ago, which {authors:[X], limit:10} matches too, far below its
// own window of X's 10 newest notes. The remote limits each filter (a Ferry
// node) or caps the whole REQ at 10 events, filters in their order
// (neg_relay.mjs --max-per-req). Each filter is paged from what its own
// page brought. Before, the old kind-0 counted for the second filter too,
// its next page started below it, X's 20 older notes were never asked for,
// and the catch-up completed with the cursor past them.
TEST_CASE("a REQ catch-up of several filters pages each from its own window",
          "[integration][sync]") {
  const std::string remote = GENERATE(std::string{"limit per filter"},
                                      std::string{"cap per REQ"});
  CAPTURE(remote);
  auto keys = nostr::generate_keypair();
  const auto now = test::unix_now();
  auto events = make_events(keys, 30, now - 971, 1, "note");
  events.push_back(test::make_note(keys, now - 5000, "{\"name\":\"x\"}", 0));
  server_options o;
  o.filters = "[{ kinds = [0] }, { authors = [\"" + nostr::to_hex(keys.pubkey)
              + "\"], limit = 10 }]";
  o.follow_deletions = false;
  const std::string by_author = R"({"authors":[")" + nostr::to_hex(keys.pubkey)
                                + R"("],"limit":5000})";
  auto check_caught_up = [&](node& b, const std::string& remote_log) {
    auto b_admin = b.admin_port();
    bool complete = test::poll_until(
      [&] { return stat_flag(b_admin, "node-a", "catchup_complete"); }, 20s);
    INFO(sync_reports(b_admin, "node-a") << logs(nullptr, &b.process)
                                         << remote_log);
    REQUIRE(complete);
    // Complete means stored: nothing may arrive after it.
    CHECK(ids_of(b.port, by_author) == id_set(events));
  };
  if (remote == "limit per filter") {
    test::temp_dir dir_a, dir_b;
    node a{test::node_config(dir_a)};
    publish(a.port, events);
    node b{b_config(dir_b, sync_server_toml(a.port, o))};
    check_caught_up(b, "");
    check_clean_shutdown(b, a);
  } else {
    b_from_neg_relay scene{events, {"--max-per-req", "10"}, o};
    check_caught_up(*scene.b, scene.relay.output());
    scene.check_never_failed();
    check_clean_shutdown(*scene.b);
  }
}

// The deletion follower's history of an author learned during a REQ
// catch-up (asked for a second later) waits for room among the remote's
// subscriptions too, here 2: the live tail and a page. Told by NIP-11, it is
// asked for once the paging is over. Not told, it is refused (CLOSED) or
// dropped (NOTICE, found out because later pages were answered), and asked
// for again then. Before, a refused history was given up, so the deletion
// never came, and a dropped one held the catch-up until its batch timed out.
// The next catch-up opens the deletion tail too, and the remote has no room
// for a page beside the two tails: the deletion tail gives up its place
// until the catch-up after, and the paging goes on.
TEST_CASE("a deletion history learned during a REQ catch-up waits for room "
          "among the remote's subscriptions, and the deletion tail makes "
          "room for the next catch-up's pages",
          "[integration][sync]") {
  auto keys = nostr::generate_keypair();
  auto remote_events = make_events(keys, 300, test::unix_now() - 9000, 1, "h", 2);
  auto deletion = deletion_of(keys, remote_events[150]);
  auto want = id_set(remote_events);
  want.erase(nostr::to_hex(remote_events[150].id));
  remote_events.push_back(deletion);
  const std::string limit = GENERATE(std::string{"unannounced"},
                                     std::string{"advertised"},
                                     std::string{"closed"});
  CAPTURE(limit);
  // Pages of 10 answered 50 ms late: the paging outlasts the follower's
  // first flush.
  auto flags = subscription_limit_flags(limit, 2);
  flags.insert(flags.end(), {"--answer-delay-ms", "50"});
  server_options paged;
  paged.filters = "[{ kinds = [1], limit = 10 }]";
  b_from_neg_relay scene{remote_events, flags, paged};
  const auto b_admin = scene.b_admin;
  scene.require_caught_up_with(want);
  bool deleted = scene.holds_one_deletion();
  INFO(sync_reports(b_admin, "node-a") << "\n" << scene.relay.output());
  CHECK(deleted);
  if (limit == "advertised")
    CHECK(stat_of(b_admin, "node-a", "reqs_asked_again") == 0);
  else
    CHECK(stat_of(b_admin, "node-a", "reqs_asked_again") >= 1);

  // 40 newer events, two per second, and a catch-up of the overlap window.
  auto newer = make_events(keys, 40, test::unix_now() - 100, 1, "n", 2);
  publish(scene.relay_port, newer);
  for (const auto& ev : newer)
    want.insert(nostr::to_hex(ev.id));
  auto res = admin(b_admin, "POST", "/api/v1/sync/servers/node-a/sync-now");
  REQUIRE(res.response.status == 200);
  scene.require_caught_up_with(want);
  CHECK_THAT(scene.b->process.output(),
             Catch::Matchers::Contains("the tail stays closed until the next catch-up"));
  scene.check_never_failed();
  check_clean_shutdown(*scene.b);
}

// A remote that holds 2 subscriptions per connection, caught up with over
// NIP-77 in two sessions. The second opens the deletion tail beside the
// live tail (the first taught B its authors), which leaves no room for a
// fetch by ids: told by NIP-11, or refused with CLOSED, the deletion tail gives up
// its place until the next catch-up, and the fetch goes on. Before, the
// refused fetch ended the connection, and every connection after it the
// same way.
TEST_CASE("a NIP-77 catch-up makes room for its fetches beside the live and "
          "deletion tails",
          "[integration][sync][negentropy][interop]") {
  const std::string limit = GENERATE(std::string{"advertised"},
                                     std::string{"closed"});
  CAPTURE(limit);
  auto keys = nostr::generate_keypair();
  auto remote_events = make_events(keys, 200, test::unix_now() - 4000, 1, "r");
  b_from_neg_relay scene{remote_events, subscription_limit_flags(limit, 2)};
  const auto b_admin = scene.b_admin;
  auto want = id_set(remote_events);
  scene.require_caught_up_with(want);

  // 40 events published while B is away: the next session fetches them.
  REQUIRE(admin(b_admin, "POST", "/api/v1/sync/servers/node-a/stop").response.status
          == 200);
  auto newer = make_events(keys, 40, test::unix_now() - 100, 1, "n");
  publish(scene.relay_port, newer);
  for (const auto& ev : newer)
    want.insert(nostr::to_hex(ev.id));
  REQUIRE(admin(b_admin, "POST", "/api/v1/sync/servers/node-a/start").response.status
          == 200);
  scene.require_caught_up_with(want);
  INFO(sync_reports(b_admin, "node-a") << "\n" << scene.relay.output());
  CHECK_THAT(scene.b->process.output(),
             Catch::Matchers::Contains("the tail stays closed until the next catch-up"));
  CHECK(stat_of(b_admin, "node-a", "fetch_missing") == 0);
  scene.check_never_failed();
  check_clean_shutdown(*scene.b);
}

// A remote that holds 4 subscriptions per connection, says so in NIP-11 and
// refuses a REQ beyond them with CLOSED, answering each REQ 700 ms late: a
// NIP-77 catch-up of 4,200 events by 300 authors keeps two fetches by id open
// beside the live tail for ~3.5 s. The deletion follower learns the authors
// from the first fetched events and wants their histories a second later, in
// the middle of the fetches: two subscriptions' worth of authors, and room
// for one. The second history waits until the first ends, so nothing is
// refused and nothing asked for again. Before, the room did not count the
// open fetches: both histories were sent into the remote, and one refused.
TEST_CASE("deletion histories learned during a NIP-77 catch-up wait for its "
          "fetches by id to leave room among the remote's subscriptions",
          "[integration][sync][negentropy][interop]") {
  std::vector<nostr::keypair> authors;
  for (int i = 0; i < 300; ++i)
    authors.push_back(nostr::generate_keypair());
  std::vector<nostr::event> remote_events;
  const auto newest = test::unix_now() - 9000;
  for (size_t i = 0; i < 4200; ++i)
    remote_events.push_back(test::make_note(authors[i % authors.size()],
                                            newest - static_cast<int64_t>(i / 2),
                                            "f " + std::to_string(i), 1));
  auto deletion = deletion_of(authors[7], remote_events[2107]);
  auto want = id_set(remote_events);
  want.erase(nostr::to_hex(remote_events[2107].id));
  remote_events.push_back(deletion);
  auto flags = subscription_limit_flags("closed", 4);
  flags.insert(flags.end(), {"--advertise-limits", "--answer-delay-ms", "700"});
  b_from_neg_relay scene{remote_events, flags};
  const auto b_admin = scene.b_admin;
  scene.require_caught_up_with(want);
  bool deleted = scene.holds_one_deletion();
  INFO(sync_reports(b_admin, "node-a") << "\n" << scene.relay.output());
  CHECK(deleted);
  CHECK(stat_of(b_admin, "node-a", "reqs_asked_again") == 0);
  CHECK(stat_of(b_admin, "node-a", "fetch_refused") == 0);
  scene.check_never_failed();
  check_clean_shutdown(*scene.b);
}

// A remote that rate-limits the fetch of one event: the catch-up does not
// end, its cursor does not move, and the connection backs off to try again.
TEST_CASE("a NIP-77 catch-up whose fetch is rate-limited does not end and "
          "keeps its cursor",
          "[integration][sync][negentropy][interop]") {
  auto keys = nostr::generate_keypair();
  auto remote_events = make_events(keys, 60, test::unix_now() - 4000, 1, "r");
  const auto limited = nostr::to_hex(remote_events[10].id);
  b_from_neg_relay scene{remote_events, {"--refuse-id", limited, "--refuse-reason",
                                         "rate-limited: slow down"}};
  const auto b_admin = scene.b_admin;
  // Each REQ holding that id is refused whole, so what B fetched before the
  // refusal depends on how its ids fell into REQs; the refusal itself is
  // what matters here.
  bool refused = test::poll_until(
    [&] {
      auto reports = sync_reports(b_admin, "node-a");
      return reports.find("rate-limited: slow down") != std::string::npos;
    },
    20s);
  INFO(sync_reports(b_admin, "node-a"));
  REQUIRE(refused);
  CHECK_FALSE(stat_flag(b_admin, "node-a", "catchup_complete"));
  CHECK(stat_of(b_admin, "node-a", "cursor") == 0);
  CHECK(stat_of(b_admin, "node-a", "fetch_missing") == 0);
  CHECK(stat_of(b_admin, "node-a", "fetch_refused") == 0);
  CHECK(ids_of(scene.b->port, kind1_all).count(limited) == 0);
  check_clean_shutdown(*scene.b);
}

TEST_CASE("negentropy sync reconciles against nostr-tools' negentropy",
          "[integration][sync][negentropy][interop]") {
  test::temp_dir dir_b, dir_r;
  auto keys = nostr::generate_keypair();
  auto remote_events = make_events(keys, 300, test::unix_now() - 4000, 1, "r");
  auto mine = make_events(keys, 50, test::unix_now() - 9000, 1, "mine");
  std::string jsonl;
  for (auto& ev : remote_events)
    jsonl += nostr::to_json(ev) + "\n";
  for (size_t i = 0; i < 100; ++i) // B already holds a third of them
    mine.push_back(remote_events[i]);
  auto file = dir_r.file("events.jsonl");
  test::write_file(file, jsonl);
  test::ferry_process relay{{test::source_dir() + "/tests/interop/neg_relay.mjs",
                             "--events", file, "--port", "0",
                             "--frame-size-limit", "4096"},
                            {},
                            "node"};
  auto relay_port = relay.wait_for_port();
  INFO(relay.output());
  REQUIRE(relay_port);
  server_options o;
  o.mode = "negentropy";
  o.direction = "both";
  auto b_cfg = b_config(dir_b, sync_server_toml(*relay_port, o));
  import_into(dir_b, b_cfg, mine);
  node b{b_cfg};
  auto b_admin = b.admin_port();
  auto want = id_set(remote_events);
  for (auto& id : id_set(mine))
    want.insert(id);
  wait_for_ids(b, kind1_all, want, true, "B", nullptr, 30s);
  bool settled = test::poll_until(
    [&] {
      return stat_of(b_admin, "node-a", "received") == 200
             && stat_of(b_admin, "node-a", "sent_ok") == 50;
    },
    10s);
  if (!settled)
    FAIL_CHECK("B did not move exactly the difference\n"
               << sync_reports(b_admin, "node-a") << relay.output());
  CHECK(stat_text(b_admin, "node-a", "negentropy") == "supported");
  check_clean_shutdown(b);
}
