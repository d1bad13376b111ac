#include "actors/runtime/control_plane.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/runtime/metrics.hpp"
#include "messages/error.hpp"
#include "messages/nostr/nip98.hpp"
#include "messages/sync.hpp"
#include "messages/type_ids.hpp"
#include "net/simple_client.hpp"
#include "tests/fixtures/threaded_actor_system.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <regex>
#include <sstream>
#include <thread>

using namespace ferry;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

// -- a mock INSPECTOR with the real interface ---------------------------------

struct mock_inspector_state {
  static inline constexpr const char* name = "mock-inspector";
};

actor_info canned_actor(const std::string& name) {
  actor_info x;
  x.name = name;
  x.kind = name;
  x.parent = "node";
  x.mailbox = 3;
  x.restarts = 2;
  x.uptime = 60;
  caf::put(x.status, "events.stored", int64_t{7});
  caf::put(x.status, "path", std::string{"/var/lib/ferry"});
  caf::put(x.status, "enabled", true);
  caf::put(x.status, "ratio", 0.5);
  caf::put(x.status, "interval", caf::timespan{1500ms});
  caf::put(x.status, "peers",
           caf::config_value::list{caf::config_value{int64_t{1}},
                                   caf::config_value{std::string{"b"}}});
  return x;
}

caf::error no_such_actor(const std::string& name) {
  return caf::make_error(ec::invalid_input, "no actor named " + name);
}

/// Knows two actors, "writer" and "hub"; `degraded` picks its health.
inspector_actor::behavior_type
mock_inspector(inspector_actor::stateful_pointer<mock_inspector_state>,
               bool degraded) {
  auto known = [](const std::string& name) {
    return name == "writer" || name == "hub";
  };
  auto outcome = [known](std::string verb, const std::string& name)
    -> caf::result<std::string> {
    if (!known(name))
      return no_such_actor(name);
    return verb + " " + name;
  };
  return {
    [](atom::get, atom::actors) -> std::vector<actor_info> {
      return {canned_actor("writer"), canned_actor("hub")};
    },
    [known](atom::get, const std::string& name) -> caf::result<actor_info> {
      if (!known(name))
        return no_such_actor(name);
      return canned_actor(name);
    },
    [](atom::stats) -> status_map {
      status_map result;
      caf::put(result, "store.events", int64_t{42});
      caf::put(result, "relay.connections", int64_t{3});
      caf::put(result, "store.name", std::string{"not a number"});
      return result;
    },
    [degraded](atom::health) -> health_report {
      if (degraded)
        return {"degraded", {"writer is failed (disk full)"}};
      return {};
    },
    [outcome](atom::restart, const std::string& name) {
      return outcome("restarted", name);
    },
    [outcome](atom::stop, const std::string& name) {
      return outcome("stopped", name);
    },
    [outcome](atom::start, const std::string& name) {
      return outcome("started", name);
    },
    [outcome](atom::fault, const std::string& name) {
      return outcome("faulted", name);
    },
    [](atom::servers) { return std::string{"[]"}; },
    [](atom::server, const std::string&) { return std::string{"{}"}; },
    [](atom::sync_now, const std::string&) { return std::string{"{}"}; },
    [](atom::start, atom::server, const std::string&) {
      return std::string{"{}"};
    },
    [](atom::stop, atom::server, const std::string&) {
      return std::string{"{}"};
    },
    [](atom::repos) { return std::string{R"([{"address":"30617:ab:x"}])"}; },
    [](atom::repo, const std::string& address) -> caf::result<std::string> {
      if (address != "30617:ab:x")
        return caf::make_error(ec::not_found, "no repository " + address);
      return std::string{R"({"address":"30617:ab:x"})"};
    },
    [](atom::relays) { return std::string{"[]"}; },
    [](atom::relay, const std::string&) { return std::string{"{}"}; },
    [](atom::members, const std::string&) { return std::string{"{}"}; },
  };
}

// -- a mock SYNC MANAGER with the real interface ------------------------------

struct mock_sync_manager_state {
  static inline constexpr const char* name = "mock-sync-manager";
};

caf::error no_such_server(const std::string& id) {
  return caf::make_error(ec::not_found, "no sync server named " + id);
}

/// Knows one sync server, "a"; validates PUT bodies with the real parser.
/// `degraded` picks its health.
sync_manager_actor::behavior_type
mock_sync_manager(sync_manager_actor::stateful_pointer<mock_sync_manager_state>,
                  bool degraded) {
  auto act = [](std::string verb,
                const std::string& id) -> caf::result<std::string> {
    if (id != "a")
      return no_such_server(id);
    return R"({"id":"a","result":")" + verb + R"("})";
  };
  return {
    [](atom::put, const std::string& id,
       const std::string& body) -> caf::result<std::string> {
      auto def = parse_sync_server(body, id);
      if (!def)
        return def.error();
      return R"({"id":")" + def->id + R"(","created":)"
             + (def->id == "a" ? "false" : "true") + "}";
    },
    [](atom::get, atom::server,
       const std::string& id) -> caf::result<std::string> {
      if (id != "a")
        return no_such_server(id);
      return std::string{R"({"id":"a","running":true,"runtime":{}})"};
    },
    [](atom::get, atom::servers) {
      return std::string{R"([{"id":"a","running":true,"runtime":{}}])"};
    },
    [act](atom::erase, const std::string& id) { return act("deleted", id); },
    [act](atom::start, const std::string& id) { return act("started", id); },
    [act](atom::stop, const std::string& id) { return act("stopped", id); },
    [](atom::sync_now, const std::string& id) -> caf::result<std::string> {
      if (id != "a")
        return no_such_server(id);
      return caf::make_error(ec::invalid_input,
                             "sync server a is not running");
    },
    [](atom::stats, const std::string& id) -> caf::result<std::string> {
      if (id != "a")
        return no_such_server(id);
      return std::string{R"({"id":"a","received":5})"};
    },
    [](atom::stats) {
      return std::string{R"({"servers":1,"totals":{"received":5}})"};
    },
    [degraded](atom::health) {
      return std::string{degraded ? R"({"status":"degraded","degraded":[]})"
                                  : R"({"status":"ok","degraded":[]})"};
    },
    [](atom::get, atom::status) { return status_map{}; },
  };
}

// -- fixture ------------------------------------------------------------------

constexpr const char* token = "s3cret-token";

/// A real (threaded) actor system: the control plane serves real sockets.
struct fixture : test::threaded_actor_system {
  fixture() {
    healthy = sys.spawn(mock_inspector, false);
    slot = std::make_shared<handle_slot<inspector_actor>>(healthy);
    sync = sys.spawn(mock_sync_manager, false);
    sync_slot = std::make_shared<handle_slot<sync_manager_actor>>(sync);
    admin.address = "127.0.0.1";
    admin.port = 0;
    admin.token = token;
    admin.nip98_pubkeys = {nostr::to_hex(admin_keys.pubkey)};
  }

  ~fixture() {
    for (auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(healthy, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(sync, caf::exit_reason::user_shutdown);
  }

  /// Spawns a control plane on `admin`; @returns its port (0 on failure).
  uint16_t start(config::admin_config cfg) {
    auto aut = sys.spawn(control_plane, std::move(cfg), slot, sync_slot,
                         infra_handles{}, io);
    spawned.push_back(aut);
    int64_t port = 0;
    self->request(aut, 5s, atom::get_v, atom::status_v)
      .receive([&](status_map& st) { port = caf::get_or(st, "port", int64_t{0}); },
               [](caf::error&) {});
    return static_cast<uint16_t>(port);
  }

  uint16_t start() {
    return port = start(admin);
  }

  net::http_result get(const std::string& target,
                       std::map<std::string, std::string> headers = {}) {
    return net::simple_http_request("127.0.0.1", port, "GET", target, headers);
  }

  net::http_result post(const std::string& target,
                        std::map<std::string, std::string> headers = {}) {
    return net::simple_http_request("127.0.0.1", port, "POST", target,
                                    headers);
  }

  net::http_result put(const std::string& target, const std::string& body,
                       std::map<std::string, std::string> headers = {}) {
    headers["Content-Type"] = "application/json";
    return net::simple_http_request("127.0.0.1", port, "PUT", target, headers,
                                    body);
  }

  net::http_result del(const std::string& target,
                       std::map<std::string, std::string> headers = {}) {
    return net::simple_http_request("127.0.0.1", port, "DELETE", target,
                                    headers);
  }

  std::map<std::string, std::string> bearer(const std::string& t = token) {
    return {{"Authorization", "Bearer " + t}};
  }

  std::string url(const std::string& target) {
    return "http://127.0.0.1:" + std::to_string(port) + target;
  }

  static int64_t now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
  }

  std::shared_ptr<net::io_runtime> io = std::make_shared<net::io_runtime>(1);
  inspector_actor healthy;
  handle_slot_ptr<inspector_actor> slot;
  sync_manager_actor sync;
  handle_slot_ptr<sync_manager_actor> sync_slot;
  std::vector<control_plane_actor> spawned;
  nostr::keypair admin_keys = nostr::generate_keypair();
  config::admin_config admin;
  uint16_t port = 0;
};

boost::json::value parse_json(const net::http_result& r) {
  REQUIRE(r.error.empty());
  CHECK(r.response.content_type == "application/json");
  boost::json::error_code ec;
  auto v = boost::json::parse(r.response.body, ec);
  INFO(r.response.body);
  REQUIRE_FALSE(ec);
  return v;
}

/// Checks the error body and returns its message.
std::string error_message(const net::http_result& r, unsigned status) {
  INFO(r.response.body);
  CHECK(r.response.status == status);
  auto v = parse_json(r);
  auto& err = v.at("error");
  CHECK(err.at("code").as_int64() == status);
  return std::string{err.at("message").as_string()};
}

} // namespace

TEST_CASE_METHOD(fixture, "the control plane serves /health",
                 "[control_plane]") {
  REQUIRE(start() != 0);
  SECTION("ok") {
    auto r = get("/health");
    CHECK(r.response.status == 200);
    auto v = parse_json(r);
    CHECK(v == boost::json::parse(R"({"status":"ok","reasons":[]})"));
  }
  SECTION("degraded") {
    auto sick = sys.spawn(mock_inspector, true);
    slot->set(sick);
    auto r = get("/health");
    CHECK(r.response.status == 503);
    auto v = parse_json(r);
    CHECK(v.at("status") == "degraded");
    CHECK(v.at("reasons") == boost::json::array{"writer is failed (disk full)"});
    caf::anon_send_exit(sick, caf::exit_reason::user_shutdown);
  }
  SECTION("without an inspector") {
    slot->set(inspector_actor{});
    auto r = get("/health");
    CHECK(r.response.status == 503);
    CHECK(parse_json(r).at("status") == "degraded");
  }
  SECTION("only with GET") {
    CHECK_THAT(error_message(post("/health"), 405), Contains("GET"));
  }
}

TEST_CASE_METHOD(fixture, "the control plane serves /metrics in the text format",
                 "[control_plane]") {
  metrics::event_ingested(1, "client", "stored");
  metrics::event_ingested(30617, "sync:a", "stored");
  metrics::event_ingested(20001, "peer:\"q\"\\n", "rejected");
  metrics::message_received("REQ");
  metrics::signature_checked(true);
  metrics::writer_batch(100, 0.002);
  REQUIRE(start() != 0);
  auto r = get("/metrics");
  REQUIRE(r.error.empty());
  CHECK(r.response.status == 200);
  CHECK(r.response.content_type == "text/plain; version=0.0.4");
  const auto& body = r.response.body;
  for (auto name :
       {"ferry_client_connections", "ferry_client_messages_total",
        "ferry_events_total", "ferry_signatures_checked_total",
        "ferry_writer_batch_events", "ferry_writer_commit_seconds",
        "ferry_actor_mailbox", "ferry_actor_restarts_total",
        "ferry_store_events", "ferry_relay_connections"})
    CHECK_THAT(body, Contains(std::string{"# TYPE "} + name + " "));
  CHECK_THAT(body, Contains(R"(ferry_actor_mailbox{actor="writer"} 3)"));
  CHECK_THAT(body, Contains("ferry_store_events 42"));
  CHECK_THAT(body, Contains(R"(kind="30000-39999")"));
  CHECK_THAT(body, Contains(R"(kind="1")"));
  CHECK_THAT(body, Contains(R"(ferry_writer_batch_events_bucket{le="128"} )"));
  CHECK_THAT(body, Contains(R"(ferry_writer_commit_seconds_bucket{le="0.00025"} )"));
  CHECK_THAT(body, Contains(R"(source="peer:\"q\"\\n")"));
  // Buckets, then _sum, then _count: the reference clients' order, which
  // simple consumers rely on.
  auto inf = body.find(R"(ferry_writer_commit_seconds_bucket{le="+Inf"} )");
  auto sum = body.find("ferry_writer_commit_seconds_sum ");
  auto count = body.find("ferry_writer_commit_seconds_count ");
  REQUIRE(count != std::string::npos);
  CHECK(inf < sum);
  CHECK(sum < count);
  // Every line is a comment (HELP/TYPE) or a sample, as Prometheus reads them.
  std::regex help{R"(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*)"};
  std::regex type{
    R"(# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))"};
  std::regex sample{R"([a-zA-Z_:][a-zA-Z0-9_:]*)"
                    R"((\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")"
                    R"((,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})?)"
                    R"( ([-+]?[0-9.]+([eE][-+]?[0-9]+)?|[-+]Inf|NaN)( -?[0-9]+)?)"};
  std::istringstream lines{body};
  std::string line;
  size_t samples = 0;
  while (std::getline(lines, line)) {
    if (line.empty())
      continue;
    INFO(line);
    if (line.rfind("# HELP ", 0) == 0)
      CHECK(std::regex_match(line, help));
    else if (line.rfind("# TYPE ", 0) == 0)
      CHECK(std::regex_match(line, type));
    else {
      CHECK(std::regex_match(line, sample));
      ++samples;
    }
  }
  CHECK(samples > 20);
}

TEST_CASE_METHOD(fixture, "the control plane lists and drives actors",
                 "[control_plane]") {
  REQUIRE(start() != 0);
  SECTION("every actor, with its status as typed JSON") {
    auto r = get("/api/v1/actors", bearer());
    CHECK(r.response.status == 200);
    auto v = parse_json(r);
    REQUIRE(v.is_array());
    REQUIRE(v.as_array().size() == 2);
    auto& writer = v.as_array()[0];
    CHECK(writer.at("name") == "writer");
    CHECK(writer.at("state") == "running");
    CHECK(writer.at("mailbox") == 3);
    CHECK(writer.at("restarts") == 2);
    auto& status = writer.at("status");
    CHECK(status.at("events").at("stored") == 7);
    CHECK(status.at("path") == "/var/lib/ferry");
    CHECK(status.at("enabled") == true);
    CHECK(status.at("ratio") == 0.5);
    CHECK(status.at("interval") == "1500ms");
    CHECK(status.at("peers") == boost::json::array{1, "b"});
  }
  SECTION("one actor") {
    auto r = get("/api/v1/actors/hub", bearer());
    CHECK(r.response.status == 200);
    CHECK(parse_json(r).at("name") == "hub");
    CHECK_THAT(error_message(get("/api/v1/actors/nobody", bearer()), 404),
               Contains("nobody"));
  }
  SECTION("restart, stop and start") {
    for (auto action : {"restart", "stop", "start"}) {
      auto r = post(std::string{"/api/v1/actors/writer/"} + action, bearer());
      CHECK(r.response.status == 200);
      auto v = parse_json(r);
      CHECK_THAT(std::string{v.at("result").as_string()}, Contains("writer"));
    }
    CHECK(parse_json(post("/api/v1/actors/writer/stop", bearer())).at("result")
          == "stopped writer");
    error_message(post("/api/v1/actors/nobody/restart", bearer()), 404);
  }
  SECTION("wrong method, unknown path") {
    error_message(post("/api/v1/actors", bearer()), 405);
    error_message(get("/api/v1/actors/writer/restart", bearer()), 405);
    error_message(post("/api/v1/actors/writer", bearer()), 405);
    error_message(post("/api/v1/actors/writer/explode", bearer()), 404);
    error_message(get("/api/v1/nothing", bearer()), 404);
    error_message(get("/nothing", bearer()), 404);
    // Deny by default: a path without a route needs credentials too.
    error_message(get("/nothing"), 401);
  }
  SECTION("without an inspector") {
    slot->set(inspector_actor{});
    error_message(get("/api/v1/actors", bearer()), 503);
  }
}

TEST_CASE_METHOD(fixture, "the control plane serves the sync server API",
                 "[control_plane]") {
  REQUIRE(start() != 0);
  const std::string good_body
    = R"({"url":"wss://relay.example","filters":[{"kinds":[1]}]})";
  SECTION("PUT creates (201) or replaces (200)") {
    auto created = put("/api/v1/sync/servers/b", good_body, bearer());
    CHECK(created.response.status == 201);
    CHECK(parse_json(created).at("created") == true);
    auto replaced = put("/api/v1/sync/servers/a", good_body, bearer());
    CHECK(replaced.response.status == 200);
    CHECK(parse_json(replaced).at("created") == false);
  }
  SECTION("PUT with a bad field answers 400 naming it") {
    auto r = put("/api/v1/sync/servers/b",
                 R"({"url":"wss://relay.example","filters":[{"kinds":["x"]}]})",
                 bearer());
    CHECK(r.response.status == 400);
    auto err = parse_json(r).at("error");
    CHECK(err.at("code") == 400);
    CHECK(err.at("field") == "filters[0].kinds");
    CHECK_THAT(std::string{err.at("message").as_string()},
               Contains("filters[0].kinds: "));
    auto bad_url = parse_json(
      put("/api/v1/sync/servers/b", R"({"url":"http://x","filters":[{}]})",
          bearer()));
    CHECK(bad_url.at("error").at("field") == "url");
  }
  SECTION("GET one, GET all, DELETE") {
    auto one = get("/api/v1/sync/servers/a", bearer());
    CHECK(one.response.status == 200);
    CHECK(parse_json(one).at("running") == true);
    CHECK_THAT(error_message(get("/api/v1/sync/servers/zz", bearer()), 404),
               Contains("zz"));
    auto all = get("/api/v1/sync/servers", bearer());
    CHECK(all.response.status == 200);
    CHECK(parse_json(all).as_array().size() == 1);
    auto gone = del("/api/v1/sync/servers/a", bearer());
    CHECK(gone.response.status == 200);
    CHECK(parse_json(gone).at("result") == "deleted");
    error_message(del("/api/v1/sync/servers/zz", bearer()), 404);
  }
  SECTION("start, stop and sync-now") {
    CHECK(parse_json(post("/api/v1/sync/servers/a/start", bearer()))
            .at("result")
          == "started");
    CHECK(parse_json(post("/api/v1/sync/servers/a/stop", bearer()))
            .at("result")
          == "stopped");
    // The manager's refusal of a stopped server is a 400 without a field.
    auto r = post("/api/v1/sync/servers/a/sync-now", bearer());
    CHECK(error_message(r, 400) == "sync server a is not running");
    CHECK_FALSE(parse_json(r).at("error").as_object().contains("field"));
    error_message(post("/api/v1/sync/servers/zz/start", bearer()), 404);
    error_message(post("/api/v1/sync/servers/zz/sync-now", bearer()), 404);
  }
  SECTION("stats and health") {
    auto one = get("/api/v1/sync/servers/a/stats", bearer());
    CHECK(one.response.status == 200);
    CHECK(parse_json(one).at("received") == 5);
    error_message(get("/api/v1/sync/servers/zz/stats", bearer()), 404);
    auto all = get("/api/v1/sync/stats", bearer());
    CHECK(all.response.status == 200);
    CHECK(parse_json(all).at("servers") == 1);
    auto ok = get("/api/v1/sync/health", bearer());
    CHECK(ok.response.status == 200);
    CHECK(parse_json(ok).at("status") == "ok");
    auto sick = sys.spawn(mock_sync_manager, true);
    sync_slot->set(sick);
    auto degraded = get("/api/v1/sync/health", bearer());
    CHECK(degraded.response.status == 503);
    CHECK(parse_json(degraded).at("status") == "degraded");
    caf::anon_send_exit(sick, caf::exit_reason::user_shutdown);
  }
  SECTION("wrong method, unknown path, no auth, no manager") {
    error_message(post("/api/v1/sync/servers", bearer()), 405);
    error_message(post("/api/v1/sync/servers/a", bearer()), 405);
    error_message(get("/api/v1/sync/servers/a/start", bearer()), 405);
    error_message(post("/api/v1/sync/servers/a/stats", bearer()), 405);
    error_message(put("/api/v1/sync/stats", "{}", bearer()), 405);
    error_message(post("/api/v1/sync/servers/a/explode", bearer()), 404);
    error_message(get("/api/v1/sync/nothing", bearer()), 404);
    error_message(get("/api/v1/sync/servers"), 401);
    error_message(put("/api/v1/sync/servers/a", good_body), 401);
    sync_slot->set(sync_manager_actor{});
    error_message(get("/api/v1/sync/servers", bearer()), 503);
  }
}

TEST_CASE_METHOD(fixture, "the control plane serves the GRASP repository API",
                 "[control_plane]") {
  REQUIRE(start() != 0);
  auto all = get("/api/v1/grasp/repos", bearer());
  CHECK(all.response.status == 200);
  CHECK(parse_json(all).as_array().at(0).as_object().at("address")
        == "30617:ab:x");
  // The address travels percent-encoded or as it is.
  for (auto path : {"/api/v1/grasp/repos/30617:ab:x",
                    "/api/v1/grasp/repos/30617%3Aab%3Ax"}) {
    auto one = get(path, bearer());
    CHECK(one.response.status == 200);
    CHECK(parse_json(one).at("address") == "30617:ab:x");
  }
  CHECK_THAT(error_message(get("/api/v1/grasp/repos/30617:cd:y", bearer()),
                           404),
             Contains("30617:cd:y"));
  error_message(post("/api/v1/grasp/repos", bearer()), 405);
  error_message(get("/api/v1/grasp/relays", bearer()), 404);
  error_message(get("/api/v1/grasp/repos/a/b", bearer()), 404);
  error_message(get("/api/v1/grasp/repos"), 401);
  slot->set(inspector_actor{});
  error_message(get("/api/v1/grasp/repos", bearer()), 503);
}

TEST_CASE("sync errors map to HTTP statuses", "[control_plane]") {
  CHECK(sync_status_for(caf::make_error(ec::not_found, "x")) == 404);
  CHECK(sync_status_for(caf::make_error(ec::invalid_input, "x")) == 400);
  CHECK(sync_status_for(caf::make_error(ec::storage_failure, "x")) == 500);
  CHECK(sync_status_for(caf::make_error(caf::sec::request_timeout)) == 504);
  CHECK(sync_status_for(caf::make_error(caf::sec::request_receiver_down))
        == 503);
  CHECK(field_of("filters[1].kinds: must be a list") == "filters[1].kinds");
  CHECK(field_of("sync server a is not running").empty());
  CHECK(field_of("no colon").empty());
}

TEST_CASE_METHOD(fixture, "the API refuses requests without valid auth",
                 "[control_plane]") {
  REQUIRE(start() != 0);
  const std::string target = "/api/v1/actors";
  SECTION("no or wrong bearer token") {
    auto r = get(target);
    CHECK(error_message(r, 401) == "authorization required");
    CHECK(r.response.headers.count("www-authenticate") == 1);
    CHECK(error_message(get(target, bearer("s3cret-tokeN")), 401)
          == "wrong bearer token");
    CHECK(error_message(get(target, bearer("")), 401) == "wrong bearer token");
    error_message(get(target, {{"Authorization", "Basic YTpi"}}), 401);
    // Unknown API paths are not revealed without auth either.
    error_message(get("/api/v2/secret"), 401);
  }
  SECTION("NIP-98 made by make_http_auth") {
    auto auth = [&](const nostr::keypair& keys, const std::string& u,
                    const std::string& method, int64_t at) {
      return std::map<std::string, std::string>{
        {"Authorization", nostr::make_http_auth(keys, u, method, "", at)}};
    };
    auto good = auth(admin_keys, url(target), "GET", now());
    CHECK(get(target, good).response.status == 200);
    auto restart = auth(admin_keys, url(target + "/writer/restart"), "POST",
                        now());
    CHECK(post(target + "/writer/restart", restart).response.status == 200);

    CHECK_THAT(error_message(get(target, auth(admin_keys, url("/api/v1/x"),
                                              "GET", now())),
                             401),
               Contains("u tag"));
    CHECK_THAT(
      error_message(get(target, auth(admin_keys, url(target), "POST", now())),
                    401),
      Contains("method tag"));
    CHECK_THAT(error_message(get(target, auth(admin_keys, url(target), "GET",
                                              now() - 120)),
                             401),
               Contains("created_at"));
    CHECK(error_message(get(target, auth(nostr::generate_keypair(), url(target),
                                         "GET", now())),
                        401)
          == "NIP-98: pubkey is not allowed");
    // The URL is rebuilt from the Host header the client sent.
    auto other_host = good;
    other_host["Host"] = "admin.example:443";
    CHECK_THAT(error_message(get(target, other_host), 401), Contains("u tag"));
  }
  SECTION("without a configured token, bearer is refused") {
    auto cfg = admin;
    cfg.token.clear();
    port = start(cfg);
    REQUIRE(port != 0);
    CHECK(error_message(get(target, bearer("")), 401)
          == "bearer tokens are not accepted here");
  }
}

TEST_CASE_METHOD(fixture, "health and metrics need auth off loopback",
                 "[control_plane]") {
  auto cfg = admin;
  cfg.address = "0.0.0.0";
  port = start(cfg);
  REQUIRE(port != 0);
  error_message(get("/health"), 401);
  error_message(get("/metrics"), 401);
  CHECK(get("/health", bearer()).response.status == 200);
  CHECK(get("/metrics", bearer()).response.status == 200);
  cfg.public_health = true;
  port = start(cfg);
  REQUIRE(port != 0);
  CHECK(get("/health").response.status == 200);
  CHECK(get("/metrics").response.status == 200);
  error_message(get("/api/v1/actors"), 401);
}

TEST_CASE_METHOD(fixture, "the control plane fails when it cannot bind",
                 "[control_plane]") {
  REQUIRE(start() != 0);
  auto cfg = admin;
  cfg.port = port;
  auto second = sys.spawn(control_plane, cfg, slot, sync_slot, infra_handles{}, io);
  caf::error reason;
  self->monitor(second);
  self->receive([&](caf::down_msg& dm) { reason = dm.reason; });
  REQUIRE(reason);
  CHECK(reason.category() == caf::atom("ferry"));
  CHECK(reason.code() == static_cast<uint8_t>(ec::network_failure));
  CHECK_THAT(render(reason), Contains("admin: "));
}

TEST_CASE_METHOD(fixture, "stopping the control plane closes its port",
                 "[control_plane]") {
  REQUIRE(start() != 0);
  CHECK(get("/health").response.status == 200);
  auto aut = spawned.back();
  self->monitor(aut);
  caf::anon_send_exit(aut, caf::exit_reason::user_shutdown);
  self->receive([](caf::down_msg&) {});
  // The listener closes on its I/O thread, shortly after the actor is gone.
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (get("/health").error.empty()
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  CHECK_FALSE(get("/health").error.empty());
}

TEST_CASE("status values become JSON of their own type", "[control_plane]") {
  status_map st;
  caf::put(st, "a.b", int64_t{-1});
  caf::put(st, "atom", caf::atom("tick"));
  caf::put(st, "list", caf::config_value::list{});
  auto v = admin_json(st);
  CHECK(v == boost::json::parse(R"({"a":{"b":-1},"atom":"tick","list":[]})"));
}

TEST_CASE("loopback addresses are recognised", "[control_plane]") {
  CHECK(is_loopback_address("127.0.0.1"));
  CHECK(is_loopback_address("127.1.2.3"));
  CHECK(is_loopback_address("::1"));
  CHECK_FALSE(is_loopback_address("0.0.0.0"));
  CHECK_FALSE(is_loopback_address("::"));
  CHECK_FALSE(is_loopback_address("10.0.0.1"));
  CHECK_FALSE(is_loopback_address("localhost"));
}
