// What a reload applies, decided from the running config and the file's new
// contents: log.level, live limits, policy rules, [[sync.server]] tables and
// the live [grasp] and [infra] keys apply, every other changed section or key
// is named as waiting for a restart.

#include "actors/runtime/config_reloader.hpp"
#include "messages/error.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"

#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using namespace ferry;

namespace {

config::config load(const std::string& toml) {
  auto cfg = config::load_string(toml, "ferry.toml");
  if (!cfg)
    FAIL(render(cfg.error()));
  return *cfg;
}

std::string server(const std::string& id, const std::string& url,
                   const std::string& filters = "[{ kinds = [1] }]") {
  return "[[sync.server]]\nid = \"" + id + "\"\nurl = \"" + url
         + "\"\nfilters = " + filters + "\n";
}

std::vector<std::string> ids(const std::vector<sync_server>& servers) {
  std::vector<std::string> out;
  for (auto& def : servers)
    out.push_back(def.id);
  return out;
}

using strings = std::vector<std::string>;

} // namespace

TEST_CASE("an unchanged file plans nothing", "[config_reload]") {
  auto text = "[log]\nlevel = \"info\"\n" + server("a", "ws://127.0.0.1:1");
  auto plan = plan_reload(load(text), load(text), true);
  CHECK(plan.applied.empty());
  CHECK(plan.restart_required.empty());
  CHECK(plan.servers_added.empty());
  CHECK(plan.servers_changed.empty());
  CHECK(plan.servers_removed.empty());
}

TEST_CASE("a new log level applies without a restart", "[config_reload]") {
  auto plan = plan_reload(load("[log]\nlevel = \"info\"\n"),
                          load("[log]\nlevel = \"debug\"\n"), true);
  CHECK(plan.applied == strings{"log.level"});
  CHECK(plan.restart_required.empty());
}

TEST_CASE("sync servers added, changed and removed in the file are planned "
          "as such, and untouched ones are left alone",
          "[config_reload]") {
  auto before = load(server("kept", "ws://127.0.0.1:1")
                     + server("edited", "ws://127.0.0.1:2")
                     + server("dropped", "ws://127.0.0.1:3"));
  auto after = load(server("kept", "ws://127.0.0.1:1")
                    + server("edited", "ws://127.0.0.1:2",
                             "[{ kinds = [1, 7] }]")
                    + server("new", "ws://127.0.0.1:4"));
  auto plan = plan_reload(before, after, true);
  CHECK(plan.applied == strings{"sync.server"});
  CHECK(ids(plan.servers_added) == strings{"new"});
  CHECK(ids(plan.servers_changed) == strings{"edited"});
  CHECK(plan.servers_removed == strings{"dropped"});
  CHECK(plan.restart_required.empty());
}

TEST_CASE("a changed section that reloads only with a restart is named",
          "[config_reload]") {
  auto plan = plan_reload(
    load("[relay]\nport = 7447\n[relay.limits]\nmax_frame_bytes = 1000\n"),
    load("[relay]\nport = 7500\n[relay.limits]\nmax_frame_bytes = 2000\n"
         "[store]\nblock_cache_mb = 64\n"
         "[policy]\nmax_content_bytes = 1000\n"),
    false);
  CHECK(plan.applied.empty());
  CHECK(plan.restart_required
        == strings{"relay.limits.max_frame_bytes", "relay", "store", "policy"});
}

TEST_CASE("the relay limits a session applies take effect at once, the "
          "connection-level ones at the next start",
          "[config_reload]") {
  auto before = load("[relay.limits]\nmax_subscriptions = 20\n"
                     "max_future_seconds = 60\nmax_outbound_bytes = 100000\n");
  auto after = load("[relay.limits]\nmax_subscriptions = 2\n"
                    "max_future_seconds = 30\nmax_outbound_bytes = 200000\n");
  auto plan = plan_reload(before, after, true);
  CHECK(plan.applied
        == strings{"relay.limits.max_subscriptions",
                   "relay.limits.max_future_seconds"});
  CHECK(plan.restart_required
        == strings{"relay.limits.max_outbound_bytes"});
  auto live = with_live_limits(before.relay.limits, after.relay.limits);
  CHECK(live.max_subscriptions == 2);
  CHECK(live.max_future_seconds == 30);
  CHECK(live.max_outbound_bytes == 100000);
}

TEST_CASE("new built-in policy rules apply when the node runs a policy step, "
          "a new plugin waits for a restart",
          "[config_reload]") {
  auto before = load("[policy]\ndenied_kinds = [4]\n"
                     "[policy.plugin]\ncommand = \"/bin/true\"\n");
  auto after = load("[policy]\ndenied_kinds = [7]\n"
                    "[policy.plugin]\ncommand = \"/bin/false\"\n");
  auto plan = plan_reload(before, after, true);
  CHECK(plan.applied == strings{"policy"});
  CHECK(plan.restart_required == strings{"policy.plugin"});
  auto live = with_live_rules(before.policy, after.policy);
  CHECK(live.denied_kinds == std::vector<int64_t>{7});
  CHECK(live.plugin.command == "/bin/true");

  // Started without rules or plugin, the node has no step to put rules in.
  auto none = plan_reload(load(""), load("[policy]\ndenied_kinds = [7]\n"),
                          false);
  CHECK(none.applied.empty());
  CHECK(none.restart_required == strings{"policy"});
}

TEST_CASE("GRASP keys apply live except enabled, service_domain and "
          "batch_timeout_seconds, which are named one by one",
          "[config_reload]") {
  auto before = load("[grasp]\nenabled = true\nservice_domain = \"a.test\"\n"
                     "bootstrap_relays = [\"wss://one.test\"]\n"
                     "group_size = 100\ntick_seconds = 60\n");
  auto after = load("[grasp]\nenabled = true\nservice_domain = \"b.test\"\n"
                    "bootstrap_relays = [\"wss://one.test\", "
                    "\"wss://two.test\"]\n"
                    "group_size = 20\ntick_seconds = 5\n"
                    "batch_timeout_seconds = 30\n");
  auto plan = plan_reload(before, after, true);
  CHECK(plan.applied
        == strings{"grasp.bootstrap_relays", "grasp.tick_seconds",
                   "grasp.group_size"});
  CHECK(plan.restart_required
        == strings{"grasp.service_domain", "grasp.batch_timeout_seconds"});
  auto live = with_live_grasp(before.grasp, after.grasp);
  CHECK(live.bootstrap_relays.size() == 2);
  CHECK(live.group_size == 20);
  CHECK(live.tick == std::chrono::seconds{5});
  CHECK(live.service_domain == "a.test");
  CHECK(live.batch_timeout == before.grasp.batch_timeout);

  auto off = plan_reload(before, load("[grasp]\nenabled = false\n"
                                      "service_domain = \"a.test\"\n"
                                      "bootstrap_relays = [\"wss://one.test\"]\n"
                                      "group_size = 100\ntick_seconds = 60\n"),
                         true);
  CHECK(off.applied.empty());
  CHECK(off.restart_required == strings{"grasp.enabled"});
}

TEST_CASE("every infra key applies live, and only those a pushed relay shows "
          "push every hosted relay again",
          "[config_reload]") {
  auto base = std::string{"[infra]\napi_url = \"https://api.test\"\n"
                          "relay_domain = \"relays.test\"\n"};
  auto before = load(base);
  auto timing = plan_reload(before,
                            load(base + "request_timeout_ms = 100\n"
                                        "max_attempts = 2\n"),
                            true);
  CHECK(timing.applied
        == strings{"infra.request_timeout_ms", "infra.max_attempts"});
  CHECK(timing.restart_required.empty());
  CHECK_FALSE(timing.repush_hosted_relays);
  CHECK_FALSE(timing.infra_turned_on);

  auto moved = plan_reload(before,
                           load("[infra]\napi_url = \"https://other.test\"\n"
                                "relay_domain = \"relays.test\"\n"
                                "[infra.livekit]\nserver_url = \"wss://lk\"\n"),
                           true);
  CHECK(moved.applied
        == strings{"infra.api_url", "infra.livekit.server_url"});
  CHECK(moved.repush_hosted_relays);
  CHECK_FALSE(moved.infra_turned_on);

  auto on = plan_reload(load(""), before, true);
  CHECK(on.applied == strings{"infra.api_url", "infra.relay_domain"});
  CHECK(on.repush_hosted_relays);
  CHECK(on.infra_turned_on);
  auto off = plan_reload(before, load(base + "enabled = false\n"), true);
  CHECK(off.applied == strings{"infra.enabled"});
  CHECK_FALSE(off.repush_hosted_relays);
  CHECK_FALSE(off.infra_turned_on);
}

TEST_CASE("a reload answers before its callers give up when the relay "
          "registry does not answer",
          "[config_reload]") {
  // Takes the reloader's request and never answers it.
  std::vector<caf::response_promise> held;
  test::deterministic_actor_system f;
  auto path = std::filesystem::temp_directory_path()
              / ("ferry-reload-" + std::to_string(std::random_device{}())
                 + ".toml");
  // A key every pushed relay shows: the registry is asked to mark them all.
  std::ofstream{path} << "[infra]\nrelay_domain = \"relays.example\"\n";
  auto running = std::make_shared<config::config>();
  running->source = path.string();
  config_reloader_deps deps;
  deps.running = running;
  deps.infra = std::make_shared<live_value<config::infra_config>>(
    running->infra);
  // The unused argument: CAF 0.17 dereferences a null argument tuple for a
  // function actor spawned without one (UBSan stops the sanitized suite).
  auto silent = f.sys.spawn(
    [&held](caf::event_based_actor* self, int) {
      return caf::behavior{
        [self, &held](atom::reload) {
          held.push_back(self->make_response_promise());
        },
      };
    },
    0);
  deps.relay_registry = std::make_shared<handle_slot<relay_registry_actor>>(
    caf::actor_cast<relay_registry_actor>(silent));
  auto aut = f.sys.spawn(config_reloader, deps);
  // However the test ends: the actor system waits for both before it goes.
  struct stop_on_exit {
    std::vector<caf::actor> actors;
    ~stop_on_exit() {
      for (auto& x : actors)
        caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
    }
  } stop{{caf::actor_cast<caf::actor>(aut), silent}};
  f.self->send(aut, atom::reload_v);
  f.run();
  REQUIRE(held.size() == 1);
  f.advance(config_reload_timeout - std::chrono::seconds{1});
  std::string report;
  f.self->receive([&](std::string& x) { report = std::move(x); },
                  [](caf::error& err) { FAIL(render(err)); },
                  caf::after(std::chrono::seconds{0}) >> [] {
                    FAIL("no report before the callers' timeout");
                  });
  auto v = boost::json::parse(report);
  CHECK(v.at("applied") == boost::json::array{"infra.relay_domain"});
  CHECK(std::string{v.at("hosted_relays_error").as_string()}.find(
          "did not answer")
        != std::string::npos);
  std::filesystem::remove(path);
}
