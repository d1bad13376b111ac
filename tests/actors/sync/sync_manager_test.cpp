#include "actors/sync/sync_manager.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/runtime/node.hpp"
#include "messages/cluster/rendezvous.hpp"
#include "messages/error.hpp"
#include "messages/type_ids.hpp"
#include "store/sync_store.hpp"
#include "tests/fixtures/json.hpp"
#include "tests/fixtures/quiet_log.hpp"
#include "tests/store/store_fixture.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <mutex>
#include <set>
#include <thread>

using namespace ferry;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

namespace json = boost::json;

// -- a mock HEALTH TRACKER with the real interface ----------------------------

struct mock_health_state {
  static inline constexpr const char* name = "mock-health-tracker";
};

/// Answers every relay with `canned` (by server id), a long delay so the
/// connections under test never hammer the unreachable port, and a full
/// catch-up; reports are taken and dropped.
health_tracker_actor::behavior_type
mock_health_tracker(health_tracker_actor::stateful_pointer<mock_health_state>,
                    std::vector<relay_health> canned) {
  return {
    [](atom::report, atom::connecting, const std::string&) {},
    [](atom::report, atom::connected, const std::string&) {},
    [](atom::report, atom::catchup, const std::string&) {},
    [](atom::report, atom::caughtup, const std::string&, caf::timespan) {},
    [](atom::report, atom::live, const std::string&) {},
    [](atom::report, atom::failed, const std::string&, error_class,
       const std::string&) {},
    [](atom::report, atom::ratelimit, const std::string&, const std::string&) {
    },
    [](atom::report, atom::stopped, const std::string&) {},
    [](atom::report, atom::disabled, const std::string&, const std::string&) {
    },
    [](atom::get, atom::delay, const std::string&) -> caf::timespan {
      return std::chrono::minutes{10};
    },
    [](atom::get, atom::resume, const std::string&) {
      return resume_mode::full_catchup;
    },
    [canned](atom::get, atom::health,
             const std::string& id) -> caf::result<relay_health> {
      for (auto& x : canned)
        if (x.server == id)
          return x;
      return caf::make_error(ec::invalid_input, "unknown relay " + id);
    },
    [canned](atom::get, atom::health) { return canned; },
    [](atom::get, atom::status) { return status_map{}; },
  };
}

// -- fixture ------------------------------------------------------------------

/// A definition the node accepts; its relay (a closed local port) never
/// answers, so its connection keeps retrying.
std::string definition(const std::string& extra = {}) {
  return R"({"url":"ws://127.0.0.1:9","filters":[{"kinds":[1]}],)"
         R"("tls":{"mode":"disabled"},"relay_info_mode":"disabled")"
         + extra + "}";
}

sync_server parsed(const std::string& id, const std::string& extra = {}) {
  auto result = parse_sync_server(definition(extra), id);
  REQUIRE(result);
  return *result;
}

using test::parse_object;

/// A real (threaded) actor system: the connections run real sockets. The
/// store and the I/O threads are declared first so they outlive every actor
/// (the system waits for all of them as it goes).
struct fixture {
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    add_message_types(cfg);
    return cfg;
  }

  fixture() : sys(init(cfg)), self(sys) {
    config::ingest_config ingest;
    ingest.verifiers = 1;
    pipeline = spawn_ingest_pipeline(sys, *db.store, ingest);
    deps.keys = nostr::generate_keypair();
    deps.io = io;
    deps.store = db.store.get();
    for (auto& v : pipeline.verifiers)
      deps.verifiers.push_back(
        std::make_shared<handle_slot<verifier_actor>>(v));
    deps.writer = std::make_shared<handle_slot<writer_actor>>(pipeline.writer);
    set_health({});
  }

  ~fixture() {
    stop_manager();
    stop_and_wait(sys, {caf::actor_cast<caf::actor>(health),
                        caf::actor_cast<caf::actor>(pipeline.writer)});
    for (auto& v : pipeline.verifiers)
      caf::anon_send_exit(v, caf::exit_reason::user_shutdown);
  }

  void set_health(std::vector<relay_health> canned) {
    if (health)
      caf::anon_send_exit(health, caf::exit_reason::user_shutdown);
    health = sys.spawn(mock_health_tracker, std::move(canned));
    deps.health = std::make_shared<handle_slot<health_tracker_actor>>(health);
  }

  /// Spawns a manager; @returns the error it quit with at start, if any.
  caf::error start_manager(std::vector<sync_server> from_config = {}) {
    mgr = sys.spawn(sync_manager, std::move(from_config), deps);
    self->monitor(mgr);
    auto running = false;
    self->request(mgr, 5s, atom::get_v, atom::status_v)
      .receive([&](status_map&) { running = true; }, [](caf::error&) {});
    if (running) {
      self->demonitor(mgr.address());
      return {};
    }
    // A manager that refuses its config quits before it answers anything.
    caf::error failure;
    self->receive([&](caf::down_msg& msg) { failure = msg.reason; });
    mgr = sync_manager_actor{};
    return failure;
  }

  /// Stops the manager and waits until it is gone.
  void stop_manager() {
    if (!mgr)
      return;
    stop_and_wait(sys, {caf::actor_cast<caf::actor>(mgr)});
    mgr = sync_manager_actor{};
  }

  template <class... Ts>
  caf::expected<std::string> ask(Ts... xs) {
    caf::expected<std::string> result{std::string{}};
    self->request(mgr, 10s, xs...)
      .receive([&](std::string& text) { result = std::move(text); },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  template <class... Ts>
  json::object ask_ok(Ts... xs) {
    auto result = ask(xs...);
    INFO((result ? std::string{} : render(result.error())));
    REQUIRE(result);
    return parse_object(*result);
  }

  caf::actor_system_config cfg;
  store::test::store_fixture db;
  std::shared_ptr<net::io_runtime> io = std::make_shared<net::io_runtime>(1);
  caf::actor_system sys;
  caf::scoped_actor self;
  ingest_pipeline pipeline;
  health_tracker_actor health;
  relay_connection_deps deps;
  sync_manager_actor mgr;
  ferry::test::quiet_log quiet;
};

bool is_error(const caf::expected<std::string>& x, ec code) {
  return !x && x.error() == code;
}

} // namespace

TEST_CASE_METHOD(fixture, "put validates the definition and names the field",
                 "[sync_manager]") {
  REQUIRE_FALSE(start_manager());
  auto bad_url = ask(atom::put_v, std::string{"a"},
                     std::string{R"({"url":"http://x","filters":[{}]})"});
  REQUIRE(is_error(bad_url, ec::invalid_input));
  CHECK_THAT(render(bad_url.error()), StartsWith("url: "));
  auto bad_kinds = ask(atom::put_v, std::string{"a"},
                       std::string{R"({"url":"wss://r.example",)"
                                   R"("filters":[{"kinds":["x"]}]})"});
  REQUIRE(is_error(bad_kinds, ec::invalid_input));
  CHECK_THAT(render(bad_kinds.error()), StartsWith("filters[0].kinds: "));
  auto wrong_id = ask(atom::put_v, std::string{"a"},
                      definition(R"(,"id":"b")"));
  REQUIRE(is_error(wrong_id, ec::invalid_input));
  CHECK_THAT(render(wrong_id.error()), StartsWith("id: "));
  auto not_json = ask(atom::put_v, std::string{"a"}, std::string{"{"});
  CHECK(is_error(not_json, ec::invalid_input));
  // Nothing of that was stored.
  auto listed = store::list_sync_servers(*db.store);
  REQUIRE(listed);
  CHECK(listed->empty());
}

TEST_CASE_METHOD(fixture, "put creates, replaces and reports created",
                 "[sync_manager]") {
  REQUIRE_FALSE(start_manager());
  auto first = ask_ok(atom::put_v, std::string{"a"}, definition());
  CHECK(first.at("created").as_bool());
  CHECK(first.at("id").as_string() == "a");
  CHECK(first.at("url").as_string() == "ws://127.0.0.1:9");
  auto again = ask_ok(atom::put_v, std::string{"a"},
                      definition(R"(,"overlap_window_seconds":60)"));
  CHECK_FALSE(again.at("created").as_bool());
  auto stored = store::get_sync_server(*db.store, "a");
  REQUIRE(stored);
  REQUIRE(*stored);
  CHECK((*stored)->overlap_window_seconds == 60);
  auto listed = ask(atom::get_v, atom::servers_v);
  REQUIRE(listed);
  auto servers = json::parse(*listed).as_array();
  REQUIRE(servers.size() == 1);
  CHECK(servers[0].at("id").as_string() == "a");
  CHECK(servers[0].at("runtime").is_object());
}

TEST_CASE_METHOD(fixture, "definitions survive a restart of the manager",
                 "[sync_manager]") {
  // The config seeds "seed"; the API then changes it and adds "api".
  REQUIRE_FALSE(start_manager({parsed("seed")}));
  ask_ok(atom::put_v, std::string{"seed"},
         definition(R"(,"enabled":false,"overlap_window_seconds":7)"));
  ask_ok(atom::put_v, std::string{"api"}, definition());
  stop_manager();
  // Same config again: the stored definition wins for "seed", and a new
  // config server is added.
  REQUIRE_FALSE(start_manager({parsed("seed"), parsed("fresh")}));
  auto seed = ask_ok(atom::get_v, atom::server_v, std::string{"seed"});
  CHECK_FALSE(seed.at("enabled").as_bool());
  CHECK(seed.at("overlap_window_seconds").as_int64() == 7);
  CHECK_FALSE(seed.at("running").as_bool());
  auto api = ask_ok(atom::get_v, atom::server_v, std::string{"api"});
  CHECK(api.at("enabled").as_bool());
  CHECK(api.at("running").as_bool());
  auto listed = json::parse(*ask(atom::get_v, atom::servers_v)).as_array();
  REQUIRE(listed.size() == 3);
  CHECK(listed[0].at("id").as_string() == "api");
  CHECK(listed[1].at("id").as_string() == "fresh");
  CHECK(listed[2].at("id").as_string() == "seed");
}

TEST_CASE_METHOD(fixture, "erase deletes a definition for good",
                 "[sync_manager]") {
  REQUIRE_FALSE(start_manager());
  ask_ok(atom::put_v, std::string{"a"}, definition());
  auto erased = ask_ok(atom::erase_v, std::string{"a"});
  CHECK(erased.at("result").as_string() == "deleted");
  CHECK(is_error(ask(atom::get_v, atom::server_v, std::string{"a"}),
                 ec::not_found));
  CHECK(is_error(ask(atom::erase_v, std::string{"a"}), ec::not_found));
  stop_manager();
  REQUIRE_FALSE(start_manager());
  CHECK(is_error(ask(atom::get_v, atom::server_v, std::string{"a"}),
                 ec::not_found));
}

TEST_CASE_METHOD(fixture, "start and stop drive the connection",
                 "[sync_manager]") {
  REQUIRE_FALSE(start_manager());
  ask_ok(atom::put_v, std::string{"a"}, definition());
  auto a = ask_ok(atom::get_v, atom::server_v, std::string{"a"});
  CHECK(a.at("running").as_bool());
  // A running server's runtime is its connection's status.
  CHECK(a.at("runtime").as_object().contains("connected"));
  CHECK(ask_ok(atom::sync_now_v, std::string{"a"}).at("result").as_string()
        == "sync requested");
  CHECK(ask_ok(atom::start_v, std::string{"a"}).at("result").as_string()
        == "already running");
  SECTION("stop records the disconnect and keeps the definition enabled") {
    CHECK(ask_ok(atom::stop_v, std::string{"a"}).at("result").as_string()
          == "stopped");
    CHECK(ask_ok(atom::stop_v, std::string{"a"}).at("result").as_string()
          == "already stopped");
    a = ask_ok(atom::get_v, atom::server_v, std::string{"a"});
    CHECK_FALSE(a.at("running").as_bool());
    CHECK(a.at("enabled").as_bool());
    CHECK(a.at("runtime").at("disconnected_at").as_int64() > 0);
    CHECK(is_error(ask(atom::sync_now_v, std::string{"a"}), ec::invalid_input));
    CHECK(ask_ok(atom::start_v, std::string{"a"}).at("result").as_string()
          == "started");
    CHECK(ask_ok(atom::get_v, atom::server_v, std::string{"a"})
            .at("running")
            .as_bool());
  }
  SECTION("a disabled server stops; start enables it again, persisted") {
    ask_ok(atom::put_v, std::string{"a"}, definition(R"(,"enabled":false)"));
    CHECK_FALSE(ask_ok(atom::get_v, atom::server_v, std::string{"a"})
                  .at("running")
                  .as_bool());
    CHECK(ask_ok(atom::start_v, std::string{"a"}).at("result").as_string()
          == "started");
    auto stored = store::get_sync_server(*db.store, "a");
    REQUIRE(stored);
    REQUIRE(*stored);
    CHECK((*stored)->enabled);
  }
  SECTION("unknown ids are not found") {
    for (auto* id : {"zz"}) {
      CHECK(is_error(ask(atom::start_v, std::string{id}), ec::not_found));
      CHECK(is_error(ask(atom::stop_v, std::string{id}), ec::not_found));
      CHECK(is_error(ask(atom::sync_now_v, std::string{id}), ec::not_found));
      CHECK(is_error(ask(atom::stats_v, std::string{id}), ec::not_found));
    }
  }
}

TEST_CASE_METHOD(fixture, "stats and health have their JSON shape",
                 "[sync_manager]") {
  relay_health failing;
  failing.server = "b";
  failing.status = relay_status::backing_off;
  failing.attempts = 3;
  failing.last_error_class = error_class::tcp;
  failing.last_error = "connection refused";
  set_health({failing});
  REQUIRE_FALSE(start_manager());
  ask_ok(atom::put_v, std::string{"a"}, definition(R"(,"enabled":false)"));
  ask_ok(atom::put_v, std::string{"b"}, definition());
  auto one = ask_ok(atom::stats_v, std::string{"b"});
  for (auto key : {"id", "enabled", "running", "received", "accepted",
                   "duplicate", "rejected", "filtered", "bytes_received",
                   "cursor", "connected", "catchup_complete", "last_error"})
    CHECK(one.contains(key));
  CHECK(one.at("running").as_bool());
  auto all = ask_ok(atom::stats_v);
  CHECK(all.at("servers").as_int64() == 2);
  CHECK(all.at("running").as_int64() == 1);
  CHECK(all.at("totals").as_object().contains("received"));
  REQUIRE(all.at("per_server").as_array().size() == 2);
  auto health_report = ask_ok(atom::health_v);
  CHECK(health_report.at("status").as_string() == "degraded");
  // Only the enabled server counts.
  CHECK(health_report.at("servers").as_int64() == 1);
  auto& degraded = health_report.at("degraded").as_array();
  REQUIRE(degraded.size() == 1);
  CHECK(degraded[0].at("id").as_string() == "b");
  CHECK(degraded[0].at("health").as_string() == "backing_off");
  auto reasons = json::serialize(degraded[0].at("reasons"));
  CHECK_THAT(reasons, Contains("backing_off"));
  CHECK_THAT(reasons, Contains("connection refused"));
  // Without enabled servers the sync is healthy.
  ask_ok(atom::erase_v, std::string{"b"});
  auto healthy = ask_ok(atom::health_v);
  CHECK(healthy.at("status").as_string() == "ok");
  CHECK(healthy.at("degraded").as_array().empty());
}

TEST_CASE_METHOD(fixture, "the manager answers its status", "[sync_manager]") {
  REQUIRE_FALSE(start_manager({parsed("a")}));
  status_map status;
  self->request(mgr, 5s, atom::get_v, atom::status_v)
    .receive([&](status_map& x) { status = std::move(x); },
             [](caf::error& err) { FAIL(render(err)); });
  CHECK(caf::get_or(status, "servers", int64_t{0}) == 1);
  CHECK(caf::get_or(status, "running", int64_t{0}) == 1);
  CHECK(caf::get_or(status, "restarts", int64_t{-1}) == 0);
}

TEST_CASE_METHOD(fixture,
                 "in a cluster the manager runs only the servers this node "
                 "owns among the live members",
                 "[sync_manager][cluster]") {
  std::vector<sync_server> servers;
  for (int i = 0; i < 8; ++i) {
    auto def = parse_sync_server(
      R"({"url":"ws://127.0.0.1:9/r)" + std::to_string(i)
        + R"(","filters":[{"kinds":[1]}],"tls":{"mode":"disabled"},)"
          R"("relay_info_mode":"disabled"})",
      "s" + std::to_string(i));
    REQUIRE(def);
    servers.push_back(*def);
  }
  mgr = sys.spawn(clustered_sync_manager, servers, deps,
                  std::string{"node-a"});
  auto running_here = [&] {
    std::set<std::string> ids;
    auto rows = ask(atom::get_v, atom::servers_v);
    REQUIRE(rows);
    auto parsed = json::parse(*rows);
    for (auto& row : parsed.as_array())
      if (row.at("running").as_bool())
        ids.insert(std::string{row.at("id").as_string()});
    return ids;
  };
  auto owned_by = [&](const std::vector<std::string>& live,
                      const std::string& name) {
    std::set<std::string> ids;
    for (auto& def : servers)
      if (cluster::rendezvous_owner(def.url, live) == name)
        ids.insert(def.id);
    return ids;
  };
  // Until the cluster settles, nothing runs: another member may own it all.
  CHECK(running_here().empty());
  self->send(mgr, atom::members_v, std::vector<std::string>{"node-a"});
  CHECK(running_here().size() == servers.size());
  std::vector<std::string> three{"node-a", "node-b", "node-c"};
  self->send(mgr, atom::members_v, three);
  auto mine = owned_by(three, "node-a");
  // Eight URLs over three members: node-a owns some and not all (the hash
  // is fixed, so this holds for these URLs on every machine).
  REQUIRE_FALSE(mine.empty());
  REQUIRE(mine.size() < servers.size());
  CHECK(running_here() == mine);
  std::string elsewhere;
  for (auto& def : servers)
    if (mine.count(def.id) == 0)
      elsewhere = def.id;
  auto started = ask_ok(atom::start_v, elsewhere);
  CHECK_THAT(std::string{started.at("result").as_string()},
             Contains("owned by node-"));
  CHECK(running_here() == mine);
  // node-c dies: its servers spread over the two left, ours stay ours.
  std::vector<std::string> two{"node-a", "node-b"};
  self->send(mgr, atom::members_v, two);
  auto now_mine = owned_by(two, "node-a");
  for (auto& id : mine)
    CHECK(now_mine.count(id) == 1);
  CHECK(running_here() == now_mine);
  auto status = [&] {
    status_map result;
    self->request(mgr, 5s, atom::get_v, atom::status_v)
      .receive([&](status_map& x) { result = std::move(x); },
               [](caf::error& err) { FAIL(render(err)); });
    return result;
  }();
  CHECK(caf::get<int64_t>(status, "cluster.owned")
        == static_cast<int64_t>(now_mine.size()));
  CHECK(caf::get<std::string>(status, "cluster.node") == "node-a");
}
