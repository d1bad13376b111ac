// Hot reload (issue 17): SIGHUP or POST /api/v1/config/reload re-reads
// ferry.toml on a running node. [[sync.server]] tables added, changed or
// removed in the file take effect (a real remote relay's events arrive
// through the added server), log.level applies, a session's limits change
// on connections already open, the built-in policy rules change for the
// next event, every other changed key is named as waiting
// for a restart until the node restarts, and a bad file is refused naming
// its key while the running config stays. [grasp] and [infra]: a new
// management API URL or relay domain pushes every hosted relay again to the
// new API with the new host; a GRASP bootstrap relay added to the file gets
// connected and asked for announcements; the GRASP keys that need a restart
// are named one by one.

#include "tests/integration/management_api_double.hpp"
#include "tests/integration/sync_helpers.hpp"
#include "tests/net/net_fixture.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::sync_test;
using namespace std::chrono_literals;
using test::management_api;

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

/// A credential of the S3 bucket: a reload must never log it.
constexpr const char* bucket_secret = "s3-key-never-logged";

std::string infra_section(const std::string& api_url,
                          const std::string& domain,
                          const std::string& extra = {}) {
  return "[infra]\napi_url = \"" + api_url + "\"\nrelay_domain = \"" + domain
         + "\"\nretry_base_ms = 100\nretry_cap_ms = 200\n" + extra
         + "[infra.blossom]\nbucket = \"media\"\nsecret_key = \""
         + bucket_secret + "\"\n";
}




void create_relay(uint16_t admin_port, const std::string& id) {
  auto res = test::create_hosted_relay(admin_port, sync_test::admin_token, id);
  INFO(res.error << res.response.body);
  REQUIRE(res.response.status == 201);
}

/// Whether every relay of `ids` is synced, as the admin API shows it.
bool all_synced(uint16_t admin_port, const std::set<std::string>& ids) {
  auto res = admin(admin_port, "GET", "/api/v1/relays");
  if (!res.error.empty() || res.response.status != 200)
    return false;
  std::set<std::string> synced;
  auto rows = json::parse(res.response.body);
  for (auto& row : rows.as_array())
    if (row.at("synced").as_bool())
      synced.insert(std::string{row.at("id").as_string()});
  return synced == ids;
}

/// Waits until every relay of `ids` is synced, `api` having got each with
/// the host `ID.domain`.
void require_pushed(management_api& api, node& n,
                    const std::set<std::string>& ids,
                    const std::string& domain) {
  std::map<std::string, std::string> want;
  for (auto& id : ids)
    want[api.prefix() + "/relay/" + id] = id + "." + domain;
  auto admin_port = n.admin_port();
  auto pushed = test::poll_until(
    [&] { return api.hosts() == want && all_synced(admin_port, ids); }, 10s,
    50ms);
  if (!pushed)
    FAIL("the relays were not pushed to " << api.url() << " as *." << domain
                                          << "\n"
                                          << test::output_tail(n.process));
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

TEST_CASE("a reload with a new infra api_url and relay_domain pushes every "
          "hosted relay again to the new API with the new host",
          "[integration][reload]") {
  management_api old_api{"/old"};
  management_api new_api{"/new"};
  test::temp_dir dir;
  auto path = write_b_config(dir, infra_section(old_api.url(), "old.test"));
  node n{path};
  auto admin_port = n.admin_port();
  for (auto* id : {"club", "band", "team"})
    create_relay(admin_port, id);
  std::set<std::string> ids{"club", "band", "team"};
  require_pushed(old_api, n, ids, "old.test");
  CHECK(new_api.pushes().empty());
  auto old_pushes = old_api.pushes().size();

  write_b_config(dir, infra_section(new_api.url(), "new.test",
                                    "request_timeout_ms = 4000\n"));
  n.process.signal(SIGHUP);
  require_pushed(new_api, n, ids, "new.test");
  // Synced before, so each is updated there (PATCH), once.
  for (auto& p : new_api.pushes())
    CHECK(p.method == "PATCH");
  CHECK(new_api.pushes().size() == 3);
  CHECK(old_api.pushes().size() == old_pushes);
  auto activity = admin(admin_port, "GET", "/api/v1/relays/club/activity");
  CHECK(activity.response.body.find("\"reconfigure_relay\"")
        != std::string::npos);

  // Applied: the same file again changes nothing and pushes nothing.
  auto report = reload_ok(n, admin_port);
  CHECK(report.at("applied").as_array().empty());
  CHECK(report.at("restart_required").as_array().empty());
  CHECK(report.at("hosted_relays_repushed").as_int64() == 0);
  // A key that does not change what relays show applies without a push.
  write_b_config(dir, infra_section(new_api.url(), "new.test",
                                    "request_timeout_ms = 3000\n"));
  report = reload_ok(n, admin_port);
  CHECK(strings_in(report, "applied")
        == std::set<std::string>{"infra.request_timeout_ms"});
  CHECK(report.at("hosted_relays_repushed").as_int64() == 0);
  CHECK(all_synced(admin_port, ids));
  CHECK(new_api.pushes().size() == 3);
  // The process log never shows the bucket's credentials.
  CHECK(n.process.output().find(bucket_secret) == std::string::npos);
  stop(n);
}

TEST_CASE("a GRASP bootstrap relay added by a reload is connected, and the "
          "GRASP keys that need a restart are named one by one",
          "[integration][reload]") {
  net::test::server_fixture relay;
  relay.start();
  REQUIRE(relay.start_error().empty());
  test::temp_dir dir;
  auto grasp = [](const std::string& domain, const std::string& extra) {
    return "[grasp]\nenabled = true\nservice_domain = \"" + domain + "\"\n"
           + extra;
  };
  auto path = write_b_config(dir, grasp("git.test", ""));
  node n{path};
  auto admin_port = n.admin_port();
  CHECK(relay.opened() == 0);

  auto url = "ws://127.0.0.1:" + std::to_string(relay.port());
  write_b_config(dir, grasp("other.test", "bootstrap_relays = [\"" + url
                                            + "\"]\ngroup_size = 50\n"
                                              "batch_timeout_seconds = 60\n"));
  auto report = reload_ok(n, admin_port);
  CHECK(strings_in(report, "applied")
        == std::set<std::string>{"grasp.bootstrap_relays", "grasp.group_size"});
  CHECK(strings_in(report, "restart_required")
        == std::set<std::string>{"grasp.service_domain",
                                 "grasp.batch_timeout_seconds"});
  auto asked = test::poll_until(
    [&] {
      for (auto& frame : relay.frames())
        if (frame.rfind("[\"REQ\"", 0) == 0)
          return true;
      return false;
    },
    10s, 50ms);
  if (!asked)
    FAIL("the new bootstrap relay got no REQ (" << relay.opened()
                                                << " connections)\n"
                                                << test::output_tail(n.process));
  CHECK(relay.opened() >= 1);
  stop(n);
}

TEST_CASE("a reload with a bad [grasp] or [infra] value is refused naming "
          "file, key and expectation, and the running config stays",
          "[integration][reload]") {
  management_api api{""};
  test::temp_dir dir;
  auto grasp = std::string{"[grasp]\nenabled = true\n"
                           "service_domain = \"git.test\"\n"};
  auto good = infra_section(api.url(), "relays.test") + grasp;
  auto path = write_b_config(dir, good);
  node n{path};
  auto admin_port = n.admin_port();

  struct bad_case {
    std::string extra;
    std::string field;
  };
  for (auto& bad :
       {bad_case{infra_section("ftp://127.0.0.1/x", "relays.test") + grasp,
                 "infra.api_url"},
        bad_case{good + "group_size = 0\n", "grasp.group_size"}}) {
    write_b_config(dir, bad.extra);
    auto res = admin(admin_port, "POST", "/api/v1/config/reload");
    require_answered(res, n.process);
    INFO(res.response.body);
    CHECK(res.response.status == 400);
    auto error = json::parse(res.response.body).at("error");
    CHECK(error.at("field").as_string() == bad.field);
    auto message = std::string{error.at("message").as_string()};
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find("expected") != std::string::npos);
  }
  // Still the old API: a new relay is pushed there, with the old domain.
  create_relay(admin_port, "club");
  auto pushed = test::poll_until([&] { return api.hosts().size() == 1; }, 10s,
                                 50ms);
  REQUIRE(pushed);
  CHECK(api.hosts().at("/relay/club") == "club.relays.test");
  // Fixed, the file applies nothing new.
  write_b_config(dir, good);
  auto report = reload_ok(n, admin_port);
  CHECK(report.at("applied").as_array().empty());
  stop(n);
}
