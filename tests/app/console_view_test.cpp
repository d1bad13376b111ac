#include "app/console_view.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <caf/settings.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <sstream>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

actor_info make_actor(std::string name, std::string kind, std::string parent,
                      child_state state = child_state::running) {
  actor_info info;
  info.name = std::move(name);
  info.kind = std::move(kind);
  info.parent = std::move(parent);
  info.state = state;
  return info;
}

/// A small node: the root supervisor, a nested supervisor with two
/// verifiers (one of them restarting), and the writer.
std::vector<actor_info> sample_tree() {
  auto root = make_actor("root", "supervisor", "");
  root.uptime = 3725;
  auto ingest = make_actor("ingest", "supervisor", "root");
  ingest.uptime = 3725;
  auto v1 = make_actor("verifier-1", "verifier", "ingest");
  v1.mailbox = 12;
  v1.uptime = 59;
  auto v2 = make_actor("verifier-2", "verifier", "ingest",
                       child_state::restarting);
  v2.restarts = 3;
  v2.last_error = "injected fault";
  v2.last_error_at = 1714564800;
  auto writer = make_actor("writer", "writer", "root");
  writer.mailbox = -1;
  writer.uptime = 90061;
  caf::put(writer.status, "events.stored", int64_t{42});
  caf::put(writer.status, "events.batch", caf::timespan{250ms});
  caf::put(writer.status, "path", std::string{"/var/lib/ferry"});
  caf::put(writer.status, "sync", true);
  caf::put(writer.status, "fill", 0.5);
  return {root, ingest, v1, v2, writer};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> result;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    result.push_back(line);
  return result;
}

} // namespace

TEST_CASE("durations show their two largest units", "[console]") {
  CHECK(console::format_duration(0) == "0s");
  CHECK(console::format_duration(59) == "59s");
  CHECK(console::format_duration(187) == "3m07s");
  CHECK(console::format_duration(7500) == "2h05m");
  CHECK(console::format_duration(273600) == "3d04h");
  CHECK(console::format_duration(-1) == "-");
  CHECK(console::format_time(0) == "-");
  CHECK(console::format_time(1714564800) == "2024-05-01T12:00:00Z");
}

TEST_CASE("times read as how long ago they were", "[console]") {
  int64_t now = 1714564800;
  CHECK(console::format_ago(0, now) == "-");
  CHECK(console::format_ago(now - 2, now) == "just now");
  CHECK(console::format_ago(now - 42, now) == "42 s ago");
  CHECK(console::format_ago(now - 180, now) == "3 min ago");
  CHECK(console::format_ago(now - 5 * 3600 - 10, now) == "5 h ago");
  CHECK(console::format_ago(now - 86400 - 5, now) == "1 day ago");
  CHECK(console::format_ago(now - 3 * 86400, now) == "3 days ago");
  CHECK(console::format_ago(now + 180, now) == "in 3 min");
  CHECK(console::is_time_key("at"));
  CHECK(console::is_time_key("last_error_at"));
  CHECK(console::is_time_key("last_connected"));
  CHECK(console::is_time_key("cursor"));
  CHECK(console::is_time_key("last_seen"));
  CHECK(console::is_time_key("last_reload"));
  CHECK(console::is_time_key("last_catchup_completed"));
  CHECK(console::is_time_key("last_heartbeat"));
  CHECK(console::unix_seconds_of("last_heartbeat", 1714564800123) == 1714564800);
  CHECK(console::unix_seconds_of("last_seen", 1714564800) == 1714564800);
  CHECK_FALSE(console::is_time_key("attempts"));
  CHECK_FALSE(console::is_time_key("format"));
}

TEST_CASE("the JSON form shows every time as ISO 8601 and never as null",
          "[console]") {
  auto x = boost::json::parse(
    R"({"relay":{"id":"club","updated_at":1714564800},)"
    R"("activity":[{"seq":1,"at":1714564800},{"seq":2,"at":0}],"count":7})");
  auto iso = console::with_iso_times(x);
  CHECK(iso.at("relay").at("updated_at").as_string() == "2024-05-01T12:00:00Z");
  CHECK(iso.at("activity").at(0).at("at").as_string()
        == "2024-05-01T12:00:00Z");
  CHECK(iso.at("activity").at(1).at("at").is_null());
  CHECK(iso.at("activity").at(0).at("seq").as_int64() == 1);
  CHECK(iso.at("count").as_int64() == 7);
  // The cluster's member times are milliseconds.
  auto member = console::with_iso_times(boost::json::parse(
    R"({"members":[{"name":"b","last_heartbeat":1714564800250}]})"));
  CHECK(member.at("members").at(0).at("last_heartbeat").as_string()
        == "2024-05-01T12:00:00Z");
}

TEST_CASE("the actors table is a tree with one line per actor", "[console]") {
  auto lines = lines_of(console::render_actors(sample_tree()));
  REQUIRE(lines.size() == 6);
  CHECK(lines[0]
        == "NAME            KIND        STATE       MAILBOX  RESTARTS  UPTIME  "
           "LAST-ERROR");
  CHECK(lines[1]
        == "root            supervisor  running     0        0         1h02m   -");
  CHECK(lines[2]
        == "  ingest        supervisor  running     0        0         1h02m   -");
  CHECK(lines[3]
        == "    verifier-1  verifier    running     12       0         59s     -");
  CHECK(lines[4]
        == "    verifier-2  verifier    restarting  0        3         -       "
           "injected fault");
  CHECK(lines[5]
        == "  writer        writer      running     ?        0         1d01h   -");
}

TEST_CASE("an actor whose parent is unknown starts a new tree", "[console]") {
  auto lines = lines_of(
    console::render_actors({make_actor("orphan", "verifier", "gone")}));
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].rfind("orphan  ", 0) == 0);
  CHECK(console::render_actors({})
        == "NAME  KIND  STATE  MAILBOX  RESTARTS  UPTIME  LAST-ERROR\n");
}

TEST_CASE("the actor view shows every field and status key", "[console]") {
  auto writer = sample_tree()[4];
  caf::put(writer.status, "mailbox", int64_t{3});
  auto text = console::render_actor(writer, 1714564800);
  // One key/value layout, and the mailbox once.
  CHECK(text
        == "name           writer\n"
           "kind           writer\n"
           "parent         root\n"
           "state          running\n"
           "mailbox        ?\n"
           "restarts       0\n"
           "uptime         1d01h\n"
           "last error     -\n"
           "last error at  -\n"
           "\n"
           "STATUS\n"
           "events.batch   250ms\n"
           "events.stored  42\n"
           "fill           0.5\n"
           "path           /var/lib/ferry\n"
           "sync           true\n");
  auto failed = sample_tree()[3];
  auto failed_text = console::render_actor(failed, 1714564800 + 180);
  CHECK(failed_text.find("last error     injected fault\n")
        != std::string::npos);
  CHECK(failed_text.find("last error at  3 min ago\n") != std::string::npos);
  CHECK(failed_text.find("uptime         -\n") != std::string::npos);
  CHECK(failed_text.find("STATUS\n(empty)\n") != std::string::npos);
}

TEST_CASE("status values render by type", "[console]") {
  status_map st;
  caf::put(st, "list", caf::config_value::list{caf::config_value{int64_t{1}},
                                               caf::config_value{"two"}});
  caf::put(st, "span.ns", caf::timespan{1500});
  caf::put(st, "span.us", caf::timespan{3000});
  caf::put(st, "atom", caf::atom("relay"));
  caf::put(st, "none", caf::config_value::list{});
  caf::put(st, "seen_at", int64_t{100});
  CHECK(console::render_status(st, 160)
        == "atom     relay\n"
           "list     [1, two]\n"
           "none     -\n"
           "seen_at  1 min ago\n"
           "span.ns  1500ns\n"
           "span.us  3us\n");
  CHECK(console::render_status({}, 0) == "(empty)\n");
}

TEST_CASE("health lists its reasons", "[console]") {
  CHECK(console::render_health({"ok", {}}) == "ok\n");
  CHECK(console::render_health({"degraded", {"verifier-2 restarting", "b"}})
        == "degraded\n  - verifier-2 restarting\n  - b\n");
  CHECK(boost::json::serialize(console::to_json(
          health_report{"degraded", {"writer failed"}}))
        == R"({"status":"degraded","reasons":["writer failed"]})");
}

TEST_CASE("the JSON form has every field with typed status values",
          "[console]") {
  auto text = boost::json::serialize(console::to_json(sample_tree()));
  auto parsed = boost::json::parse(text);
  auto& actors = parsed.as_array();
  REQUIRE(actors.size() == 5);
  auto& v2 = actors[3].as_object();
  CHECK(v2.at("name").as_string() == "verifier-2");
  CHECK(v2.at("kind").as_string() == "verifier");
  CHECK(v2.at("parent").as_string() == "ingest");
  CHECK(v2.at("state").as_string() == "restarting");
  CHECK(v2.at("mailbox").as_int64() == 0);
  CHECK(v2.at("restarts").to_number<int64_t>() == 3);
  CHECK(v2.at("uptime").as_int64() == 0);
  CHECK(v2.at("last_error").as_string() == "injected fault");
  CHECK(v2.at("last_error_at").as_string() == "2024-05-01T12:00:00Z");
  CHECK(actors[0].as_object().at("last_error_at").is_null());
  CHECK(v2.at("status").as_object().empty());
  auto& writer = actors[4].as_object();
  CHECK(writer.at("mailbox").is_null());
  auto& status = writer.at("status").as_object();
  CHECK(status.at("events").as_object().at("stored").as_int64() == 42);
  CHECK(status.at("events").as_object().at("batch").as_string() == "250ms");
  CHECK(status.at("path").as_string() == "/var/lib/ferry");
  CHECK(status.at("sync").as_bool());
  CHECK(status.at("fill").as_double() == 0.5);
}

/// Stats as the inspector answers them, with two tracked relays.
status_map sample_stats() {
  status_map stats;
  caf::put(stats, "ingest.stored", int64_t{7});
  caf::settings servers;
  status_map live;
  caf::put(live, "status", std::string{"live"});
  caf::put(live, "lag_seconds", int64_t{0});
  caf::put(live, "attempts", int64_t{0});
  caf::put(live, "last_error", std::string{});
  status_map failing;
  caf::put(failing, "status", std::string{"backing_off"});
  caf::put(failing, "lag_seconds", int64_t{187});
  caf::put(failing, "attempts", int64_t{4});
  caf::put(failing, "last_error", std::string{"connection refused"});
  servers.emplace("a.relay", caf::config_value{std::move(live)});
  servers.emplace("b", caf::config_value{std::move(failing)});
  caf::put(stats, "sync.servers", std::move(servers));
  caf::put(stats, "sync.live", int64_t{1});
  return stats;
}

TEST_CASE("stats show each sync server's state and lag in a table",
          "[console]") {
  auto text = console::render_stats(sample_stats(), 0);
  CHECK(text
        == "ingest.stored  7\n"
           "sync.live      1\n"
           "\n"
           "SYNC\n"
           "SERVER   STATE        LAG    ATTEMPTS  LAST-ERROR\n"
           "a.relay  live         0s     0         -\n"
           "b        backing_off  3m07s  4         connection refused\n");
}

TEST_CASE("the watch screen fits the terminal", "[console]") {
  console::watch_screen view;
  view.node = "127.0.0.1:7449";
  view.clock = "12:00:00";
  view.health = {"degraded", {"sync server b fails"}};
  view.actors = sample_tree();
  view.stats = sample_stats();
  auto lines = lines_of(console::render_watch(view, 40, 100));
  REQUIRE(lines.size() == 20);
  CHECK(lines[0] == "ferry console  127.0.0.1:7449  12:00:00");
  CHECK(lines[2] == "HEALTH degraded");
  CHECK(lines[3] == "  - sync server b fails");
  CHECK(lines[5].rfind("NAME", 0) == 0);
  CHECK(lines[10] == "  writer        writer      running");
  CHECK(lines[12] == "STATS");
  CHECK(lines[13] == "ingest.stored  7");
  CHECK(lines[16] == "SYNC");
  CHECK(lines[18].rfind("a.relay  live         0s", 0) == 0);
  for (auto& line : lines)
    CHECK(line.size() <= 40);
  view.problem = "the node did not answer in time";
  auto short_lines = lines_of(console::render_watch(view, 200, 4));
  REQUIRE(short_lines.size() == 4);
  CHECK(short_lines[2] == "! the node did not answer in time");
}

TEST_CASE("the servers table shows each sync server", "[console_view]") {
  auto servers = boost::json::parse(R"([
    {"id":"a","url":"wss://a.example","enabled":true,"running":true,
     "runtime":{"state":"live","received":12,"accepted":10,"cursor":1700000000,
                "last_error":""}},
    {"id":"b","url":"wss://b.example","enabled":false,"running":false,
     "runtime":{"received":0,"last_error":"tcp: refused"}}
  ])");
  auto out = console::render_servers(servers, 1700000180);
  std::istringstream lines{out};
  std::string header, a, b;
  std::getline(lines, header);
  std::getline(lines, a);
  std::getline(lines, b);
  CHECK(header.rfind("ID", 0) == 0);
  CHECK_THAT(header, Catch::Matchers::Contains("LAST-ERROR"));
  CHECK_THAT(a, Catch::Matchers::Contains("wss://a.example"));
  CHECK_THAT(a, Catch::Matchers::Contains("live"));
  CHECK_THAT(a, Catch::Matchers::Contains("3 min ago"));
  // Missing and empty fields show as "-".
  CHECK(a.substr(a.size() - 1) == "-");
  CHECK_THAT(b, Catch::Matchers::Contains("tcp: refused"));
  CHECK_THAT(b, Catch::Matchers::Contains("false"));
  CHECK(console::render_servers(boost::json::parse("[]"), 0)
        == "(no sync servers)\n");
}

TEST_CASE("JSON answers render as key/value lines", "[console_view]") {
  auto x = boost::json::parse(
    R"({"id":"a","filters":[1,"b"],"runtime":{"received":3,"ok":true},"n":null,)"
    R"("none":[],"last_connected":100})");
  CHECK(console::render_json(x, 280)
        == "id                a\n"
           "filters           [1, b]\n"
           "runtime.received  3\n"
           "runtime.ok        true\n"
           "n                 -\n"
           "none              -\n"
           "last_connected    3 min ago\n");
  CHECK(console::render_json(boost::json::parse("{}"), 0) == "(empty)\n");
}

TEST_CASE("lists of objects in a JSON answer render as tables",
          "[console_view]") {
  // `relay ID`: the relay, then its activity log.
  auto relay = boost::json::parse(
    R"({"relay":{"id":"club","status":"active"},"activity":[)"
    R"({"seq":1,"type":"create_relay","at":1714564800},)"
    R"({"seq":2,"type":"fail_relay_sync","at":1714564800,"error":"HTTP 500"}]})");
  CHECK(console::render_json(relay, 1714564800 + 120)
        == "relay.id      club\n"
           "relay.status  active\n"
           "\n"
           "ACTIVITY\n"
           "SEQ  TYPE             AT         ERROR\n"
           "1    create_relay     2 min ago  -\n"
           "2    fail_relay_sync  2 min ago  HTTP 500\n");
  // `refused`-like answers that are a bare list are one table.
  CHECK(console::render_json(boost::json::parse(R"([{"a":1},{"b":"x"}])"), 0)
        == "A  B\n1  -\n-  x\n");
}

TEST_CASE("the repos table shows where each repository stands",
          "[console_view]") {
  auto repos = boost::json::parse(R"([
    {"address":"30617:ab:ferry","relays":["wss://r1","wss://r2"],"roots":3,
     "confirmed_on":["wss://r1"],"pending_on":["wss://r2"]},
    {"address":"30617:ab:quiet","relays":[],"roots":0,
     "confirmed_on":[],"pending_on":[]}
  ])");
  std::istringstream lines{console::render_repos(repos)};
  std::string header, ferry_row, quiet_row;
  std::getline(lines, header);
  std::getline(lines, ferry_row);
  std::getline(lines, quiet_row);
  CHECK(header.rfind("ADDRESS", 0) == 0);
  CHECK_THAT(header, Catch::Matchers::Contains("CONFIRMED-ON"));
  CHECK_THAT(ferry_row, Catch::Matchers::Contains("[wss://r1, wss://r2]"));
  CHECK_THAT(ferry_row, Catch::Matchers::Contains(" 3 "));
  CHECK(ferry_row.substr(ferry_row.size() - 10) == "[wss://r2]");
  CHECK_THAT(quiet_row, Catch::Matchers::StartsWith("30617:ab:quiet"));
  // Empty lists read "-", as everywhere else.
  CHECK(quiet_row.find("[]") == std::string::npos);
  CHECK(quiet_row.substr(quiet_row.size() - 1) == "-");
  CHECK(console::render_repos(boost::json::parse("[]"))
        == "(no repositories)\n");
}

TEST_CASE("the relays table shows each hosted relay", "[console_view]") {
  auto relays = boost::json::parse(R"([
    {"id":"club","subdomain":"club","schema":"club_db","status":"active",
     "synced":true,"sync_error":"","failed_attempts":0,"given_up":false},
    {"id":"shop","subdomain":"shop","schema":"shop_db","status":"inactive",
     "synced":false,"sync_error":"POST /relay/shop: HTTP 500",
     "failed_attempts":6,"given_up":true}
  ])");
  auto out = console::render_relays(relays);
  CHECK(out
        == "ID    SUBDOMAIN  SCHEMA   STATUS    SYNCED  FAILURES      "
           "SYNC-ERROR\n"
           "club  club       club_db  active    true    0             -\n"
           "shop  shop       shop_db  inactive  false   6 (given up)  "
           "POST /relay/shop: HTTP 500\n");
  CHECK(console::render_relays(boost::json::parse("[]"))
        == "(no hosted relays)\n");
}

TEST_CASE("the cluster view lists hosted relays with the member that pushes "
          "each, and leaves the table out when there are none",
          "[console]") {
  auto view = boost::json::parse(R"({"self":"node-a","live":["node-a","node-b"],
    "members":[],"relays":[],"refused":[],
    "hosted_relays":[{"id":"club","owner":"node-b","pushed_here":false},
                     {"id":"shop","owner":"node-a","pushed_here":true}]})");
  auto text = console::render_cluster(view);
  CHECK_THAT(text, Catch::Matchers::Contains("HOSTED RELAYS"));
  std::istringstream lines{text};
  std::string line;
  std::vector<std::string> rows;
  while (std::getline(lines, line))
    if (line.rfind("club", 0) == 0 || line.rfind("shop", 0) == 0)
      rows.push_back(line);
  REQUIRE(rows.size() == 2);
  CHECK_THAT(rows[0], Catch::Matchers::Contains("node-b")
                        && Catch::Matchers::Contains("false"));
  CHECK_THAT(rows[1], Catch::Matchers::Contains("node-a")
                        && Catch::Matchers::Contains("true"));
  view.as_object()["hosted_relays"] = boost::json::array{};
  CHECK_THAT(console::render_cluster(view),
             !Catch::Matchers::Contains("HOSTED RELAYS"));
}
