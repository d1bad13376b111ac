// The CONTROL PLANE itself and the runtime's routes: /health, /metrics,
// /api/v1/actors, access, binding and stopping.

#include "actors/runtime/control_plane.hpp"

#include "actors/runtime/metrics.hpp"
#include "tests/fixtures/control_plane.hpp"

#include <caf/scoped_actor.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <regex>
#include <sstream>
#include <thread>

using namespace ferry;
using namespace ferry::test;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

TEST_CASE_METHOD(control_plane_fixture,
                 "the control plane serves /health",
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

TEST_CASE_METHOD(control_plane_fixture,
                 "the control plane serves /metrics in the text format",
                 "[control_plane]") {
  metrics::event_ingested(1, "client", "stored");
  metrics::event_ingested(30617, "sync:a", "stored");
  metrics::event_ingested(20001, "peer:\"q\"\\n", "rejected");
  metrics::event_ingested(1617, "client", "stored");
  metrics::event_ingested(4321, "client", "invalid");
  metrics::event_ingested(5123, "client", "stored");
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
        "ferry_store_events", "ferry_store_disk_bytes",
        "ferry_store_compactions_running", "ferry_store_compaction_pending_bytes",
        "ferry_store_block_cache_bytes", "ferry_store_block_cache_pinned_bytes"})
    CHECK_THAT(body, Contains(std::string{"# TYPE "} + name + " "));
  CHECK_THAT(body, Contains(R"(ferry_actor_mailbox{actor="writer"} 3)"));
  CHECK_THAT(body, Contains("ferry_store_events 42"));
  CHECK_THAT(body, Contains(R"(kind="30000-39999")"));
  CHECK_THAT(body, Contains(R"(kind="1")"));
  // Kinds a client invents share a bucket: the series stay bounded.
  CHECK_THAT(body, Contains(R"(kind="1617")"));
  CHECK_THAT(body, Contains(R"(kind="other-0-9999")"));
  CHECK_THAT(body, !Contains(R"(kind="4321")"));
  CHECK_THAT(body, Contains(R"(kind="5000-5999")"));
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

TEST_CASE_METHOD(control_plane_fixture,
                 "the control plane lists and drives actors",
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

TEST_CASE_METHOD(control_plane_fixture,
                 "the API refuses requests without valid auth",
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
    // Behind a TLS-terminating proxy the client signs the https:// URL; any
    // other scheme, or the https URL of another target, is refused.
    auto as_https = [&](const std::string& t) {
      auto u = url(t);
      return "https://" + u.substr(u.find("://") + 3);
    };
    CHECK(get(target, auth(admin_keys, as_https(target), "GET", now()))
            .response.status
          == 200);
    CHECK_THAT(error_message(get(target, auth(admin_keys,
                                              as_https("/api/v1/x"), "GET",
                                              now())),
                             401),
               Contains("u tag"));
    auto ftp = "ftp://" + url(target).substr(url(target).find("://") + 3);
    CHECK_THAT(error_message(get(target, auth(admin_keys, ftp, "GET", now())),
                             401),
               Contains("u tag"));
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

TEST_CASE_METHOD(control_plane_fixture,
                 "health and metrics need auth off loopback",
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

TEST_CASE_METHOD(control_plane_fixture,
                 "the control plane fails when it cannot bind",
                 "[control_plane]") {
  REQUIRE(start() != 0);
  auto cfg = admin;
  cfg.port = port;
  auto second = sys.spawn(control_plane, cfg, admin_nip98{}, slot, sync_slot,
                          infra_handles{}, handle_slot_ptr<federation_actor>{},
                          handle_slot_ptr<config_reloader_actor>{}, io);
  caf::error reason;
  self->monitor(second);
  self->receive([&](caf::down_msg& dm) { reason = dm.reason; });
  REQUIRE(reason);
  CHECK(reason.category() == caf::atom("ferry"));
  CHECK(reason.code() == static_cast<uint8_t>(ec::network_failure));
  CHECK_THAT(render(reason), Contains("admin: "));
}

TEST_CASE_METHOD(control_plane_fixture,
                 "stopping the control plane closes its port",
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
