// Hot reload (issue 17): SIGHUP or POST /api/v1/config/reload re-reads
// ferry.toml on a running node. [[sync.server]] tables added, changed or
// removed in the file take effect (a real remote relay's events arrive
// through the added server), log.level applies, a session's limits change
// on connections already open, the built-in policy rules change for the
// next event, every other changed key is named as waiting
// for a restart until the node restarts, and a bad file is refused naming
// its key while the running config stays.

#include "tests/integration/sync_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <set>
#include <string>

using namespace ferry;
using namespace ferry::sync_test;
using namespace std::chrono_literals;

namespace {

namespace json = boost::json;

/// A down server on the remote at `port` with these filters.
std::string server(uint16_t port, const std::string& id,
                   const std::string& filters) {
  server_options o;
  o.id = id;
  o.filters = filters;
  return sync_server_toml(port, o);
}

/// B's config file with `servers`, `relay_extra` under [relay] and `extra`
/// sections after (the same path each time: the file is rewritten).
std::string write_b_config(const test::temp_dir& dir, const std::string& servers,
                           const std::string& relay_extra = {},
                           const std::string& extra = {}) {
  test::node_settings s;
  s.admin_extra = std::string{"token = \""} + admin_token + "\"\n";
  s.relay_extra = relay_extra;
  s.extra = servers + extra;
  return test::node_config_with(dir, s);
}

/// The ids of the sync servers B defines.
std::set<std::string> server_ids(uint16_t admin_port) {
  auto res = admin(admin_port, "GET", "/api/v1/sync/servers");
  std::set<std::string> ids;
  if (res.response.status != 200)
    return ids;
  auto body = json::parse(res.response.body);
  for (auto& def : body.as_array())
    ids.insert(std::string{def.at("id").as_string()});
  return ids;
}

std::set<std::string> strings_in(const json::value& report, const char* key) {
  std::set<std::string> out;
  for (auto& x : report.at(key).as_array())
    out.insert(std::string{x.as_string()});
  return out;
}

/// POSTs a reload to `b`, which must apply it; @returns its report.
json::value reload_ok(node& b, uint16_t admin_port) {
  auto res = admin(admin_port, "POST", "/api/v1/config/reload");
  require_answered(res, b.process);
  INFO(res.response.body);
  REQUIRE(res.response.status == 200);
  return json::parse(res.response.body);
}

} // namespace

TEST_CASE("SIGHUP applies the sync servers added, changed and removed in "
          "ferry.toml, and a reload names what waits for a restart",
          "[integration][reload]") {
  test::temp_dir dir_a, dir_b;
  node a{test::node_config(dir_a)};
  auto keys = nostr::generate_keypair();
  auto notes = make_events(keys, 5, test::unix_now(), 1, "reload");
  publish(a.port, notes);

  // Neither server asks for kind 1 yet.
  auto path = write_b_config(dir_b, server(a.port, "edited", "[{ kinds = [7] }]")
                                      + server(a.port, "gone",
                                               "[{ kinds = [7] }]"));
  node b{path};
  auto b_admin = b.admin_port();
  REQUIRE(server_ids(b_admin) == std::set<std::string>{"edited", "gone"});
  CHECK(count_of(b.port, kind1_all) == 0);
  // Open before the reload: the new subscription limit applies to it too.
  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", b.port).empty());

  write_b_config(dir_b,
                 server(a.port, "edited", "[{ kinds = [1] }]")
                   + server(a.port, "added", "[{ kinds = [1] }]"),
                 "[relay.limits]\nmax_subscriptions = 2\n"
                 "max_frame_bytes = 100000\n",
                 "[log]\nlevel = \"debug\"\n");
  b.process.signal(SIGHUP);
  auto applied = test::poll_until(
    [&] {
      return server_ids(b_admin) == std::set<std::string>{"added", "edited"};
    },
    10s, 50ms);
  if (!applied)
    FAIL("the servers did not follow the file\n" << logs(&a.process, &b.process));
  wait_for_ids(b, kind1_all, id_set(notes), false,
               "B after the reload added kind 1", &a);
  for (auto* sub : {"s1", "s2"}) {
    REQUIRE(client.send(std::string{"[\"REQ\",\""} + sub
                        + "\",{\"kinds\":[9999]}]")
              .empty());
    REQUIRE(test::receive_until(client, "[\"EOSE\""));
  }
  REQUIRE(client.send(R"(["REQ","s3",{"kinds":[9999]}])").empty());
  auto refused = test::receive_until(client, "[\"CLOSED\"");
  REQUIRE(refused);
  CHECK(*refused
        == R"x(["CLOSED","s3","blocked: too many open subscriptions (max 2)"])x");

  // What the SIGHUP applied is the running config now: the same file again
  // applies nothing new, and the frame size still waits for a restart.
  auto report = reload_ok(b, b_admin);
  CHECK(report.at("file").as_string() == path);
  CHECK(report.at("applied").as_array().empty());
  CHECK(strings_in(report, "restart_required")
        == std::set<std::string>{"relay.limits.max_frame_bytes"});
  for (auto* key : {"added", "changed", "removed", "failed"})
    CHECK(report.at("sync_servers").at(key).as_array().empty());
  auto output = b.process.output();
  CHECK(output.find("config-reloader reloaded " + path
                 + ": applied [\"log.level\",\"relay.limits.max_subscriptions\","
                   "\"sync.server\"]")
        != std::string::npos);
  stop(b);
  stop(a);
}

TEST_CASE("a reload of a bad file is refused naming the key, and the running "
          "config stays",
          "[integration][reload]") {
  test::temp_dir dir_a, dir_b;
  node a{test::node_config(dir_a)};
  auto path = write_b_config(dir_b, server(a.port, "kept", "[{ kinds = [1] }]"));
  node b{path};
  auto b_admin = b.admin_port();

  write_b_config(dir_b, server(a.port, "other", "[{ kinds = [1] }]"), {},
                 "[log]\nlevel = \"loud\"\n");
  auto res = admin(b_admin, "POST", "/api/v1/config/reload");
  require_answered(res, b.process);
  CHECK(res.response.status == 400);
  INFO(res.response.body);
  auto error = json::parse(res.response.body).at("error");
  CHECK(error.at("field").as_string() == "log.level");
  CHECK(std::string{error.at("message").as_string()}.find(path)
        != std::string::npos);
  CHECK(server_ids(b_admin) == std::set<std::string>{"kept"});

  // Fixed, the same file applies: the server it names replaces "kept".
  write_b_config(dir_b, server(a.port, "other", "[{ kinds = [1] }]"));
  auto report = reload_ok(b, b_admin);
  CHECK(strings_in(report.at("sync_servers"), "added")
        == std::set<std::string>{"other"});
  CHECK(strings_in(report.at("sync_servers"), "removed")
        == std::set<std::string>{"kept"});
  CHECK(server_ids(b_admin) == std::set<std::string>{"other"});
  stop(b);
  stop(a);
}

TEST_CASE("a reload replaces the built-in policy rules for the next event",
          "[integration][reload]") {
  test::temp_dir dir_a, dir_b;
  auto path = write_b_config(dir_b, {}, {}, "[policy]\ndenied_kinds = [4]\n");
  node b{path};
  auto b_admin = b.admin_port();
  auto keys = nostr::generate_keypair();
  auto refused_first = test::make_note(keys, test::unix_now(), "dm", 4);
  auto refused_then = test::make_note(keys, test::unix_now(), "like", 7);

  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", b.port).empty());
  auto answer_to = [&](const nostr::event& ev) {
    REQUIRE(client.send(event_frame(ev)).empty());
    auto ok = test::receive_until(client, "[\"OK\"");
    REQUIRE(ok);
    return *ok;
  };
  CHECK(answer_to(refused_first).find(",false,\"blocked:") != std::string::npos);

  write_b_config(dir_b, {}, {}, "[policy]\ndenied_kinds = [7]\n");
  auto report = reload_ok(b, b_admin);
  CHECK(strings_in(report, "applied") == std::set<std::string>{"policy"});
  CHECK(report.at("restart_required").as_array().empty());
  CHECK(answer_to(refused_first).find(",true,") != std::string::npos);
  CHECK(answer_to(refused_then).find(",false,\"blocked: kind 7")
        != std::string::npos);
  stop(b);
}

TEST_CASE("a reload that lifts a rule forgets the refusals it made, so a sync "
          "fetches those events again",
          "[integration][reload]") {
  test::temp_dir dir_a, dir_b;
  node a{test::node_config(dir_a)};
  auto keys = nostr::generate_keypair();
  auto note = test::make_note(keys, test::unix_now(), "note", 1);
  auto dm = test::make_note(keys, test::unix_now(), "dm", 4);
  publish(a.port, {note, dm});

  server_options o;
  o.id = "a";
  o.mode = "negentropy";
  o.filters = "[{ kinds = [1, 4] }]";
  auto servers = sync_server_toml(a.port, o);
  auto path = write_b_config(dir_b, servers, {}, "[policy]\ndenied_kinds = [4]\n");
  node b{path};
  auto b_admin = b.admin_port();
  wait_for_ids(b, kind1_all, {hex_id(note)}, true, "B holds the note", &a);
  auto remembered = test::poll_until(
    [&] { return stat_of(b_admin, "a", "rejected") == 1; }, 10s, 50ms);
  if (!remembered)
    FAIL("B did not refuse the dm\n" << sync_reports(b_admin, "a"));
  // Remembered: another catch-up does not even fetch it.
  REQUIRE(admin(b_admin, "POST", "/api/v1/sync/servers/a/sync-now")
            .response.status
          == 200);
  std::string server_state;
  auto skipped = test::poll_until(
    [&] {
      server_state = admin(b_admin, "GET", "/api/v1/sync/servers/a").response.body;
      return server_state.find(R"("neg_need_refused":1)") != std::string::npos;
    },
    10s, 50ms);
  INFO(server_state);
  CHECK(skipped);
  CHECK(count_of(b.port, R"({"kinds":[4]})") == 0);

  write_b_config(dir_b, servers, {}, "[policy]\ndenied_kinds = [7]\n");
  auto report = reload_ok(b, b_admin);
  CHECK(strings_in(report, "applied") == std::set<std::string>{"policy"});
  CHECK(report.at("refusals_forgotten").as_int64() == 1);
  REQUIRE(admin(b_admin, "POST", "/api/v1/sync/servers/a/sync-now")
            .response.status
          == 200);
  wait_for_ids(b, R"({"kinds":[4]})", {hex_id(dm)}, true,
               "B fetched the dm again", &a);
  stop(b);
  stop(a);
}
