#include "actors/ingest/plugin_host.hpp"

#include "net/io_runtime.hpp"
#include "tests/fixtures/paths.hpp"
#include "tests/fixtures/threaded_actor_system.hpp"
#include "tests/store/store_fixture.hpp"

#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace ferry;
using namespace std::chrono_literals;
using ferry::store::test::make_event;

namespace {

std::string plugin(const std::string& name) {
  return test::source_dir() + "/tests/plugins/" + name;
}

struct fixture : test::threaded_actor_system {
  net::io_runtime io{1};
  nostr::keypair keys = nostr::generate_keypair();
  plugin_host_actor host;

  void start(const std::string& command,
             policy_action fallback = policy_action::reject,
             std::chrono::milliseconds timeout = 5s) {
    plugin_host_config hcfg;
    hcfg.command = command;
    hcfg.timeout = timeout;
    hcfg.fallback = fallback;
    hcfg.backoff_base = 20ms;
    hcfg.mtime_check = 0ms;
    host = sys.spawn(plugin_host, hcfg, &io.context());
  }

  ~fixture() {
    if (host) {
      self->send_exit(host, caf::exit_reason::user_shutdown);
      self->wait_for(host);
    }
  }

  ingest_item_ptr item(std::string content, std::string source = "client",
                       std::string info = "192.0.2.7") {
    auto x = std::make_shared<ingest_item>();
    x->data = make_event(keys, 1, 1'700'000'000, {}, std::move(content));
    x->source = std::move(source);
    x->source_info = std::move(info);
    return x;
  }

  policy_verdict judge(const ingest_item_ptr& x) {
    policy_verdict result;
    self->request(host, 10s, atom::judge_v, x)
      .receive([&](policy_verdict& v) { result = std::move(v); },
               [](caf::error& err) { FAIL(caf::to_string(err)); });
    return result;
  }

  int64_t counter(const std::string& key) {
    int64_t result = -1;
    self->request(host, 10s, atom::get_v, atom::status_v)
      .receive([&](status_map& m) { result = caf::get_or(m, key, int64_t{-1}); },
               [](caf::error& err) { FAIL(caf::to_string(err)); });
    return result;
  }

  /// Polls `key` until it reaches `at_least` (restarts happen on a timer).
  bool wait_counter(const std::string& key, int64_t at_least) {
    for (int i = 0; i < 500; ++i) {
      if (counter(key) >= at_least)
        return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "plugins in shell and Node accept, reject and "
                          "shadow-reject by their rules",
                 "[policy][plugin]") {
  auto command = GENERATE(std::string{"keyword.sh"}, std::string{"keyword.js"});
  INFO(command);
  start(plugin(command));
  CHECK(judge(item("hello")).action == policy_action::accept);
  auto v = judge(item("buy spam now"));
  CHECK(v.action == policy_action::reject);
  CHECK(v.message == "blocked: no spam here");
  CHECK(judge(item("a shadow of doubt")).action == policy_action::shadow_reject);
  CHECK(counter("requests") == 3);
  CHECK(counter("restarts") == 0);
}

TEST_CASE_METHOD(fixture, "many requests in flight are matched by id",
                 "[policy][plugin]") {
  // keyword.js answers every other request late, so answers come out of
  // order.
  start(plugin("keyword.js"));
  std::vector<ingest_item_ptr> items;
  for (int i = 0; i < 20; ++i)
    items.push_back(item(i % 3 == 0 ? "spam " + std::to_string(i)
                                    : "fine " + std::to_string(i)));
  for (auto& x : items)
    self->send(host, atom::judge_v, x);
  // The answers arrive as responses to our sends: count them by verdict.
  int rejected = 0;
  int accepted = 0;
  for (int i = 0; i < 20; ++i)
    self->receive(
      [&](policy_verdict& v) {
        if (v.action == policy_action::reject)
          ++rejected;
        else if (v.action == policy_action::accept)
          ++accepted;
      },
      caf::after(10s) >> [] { FAIL("an answer is missing"); });
  CHECK(rejected == 7);
  CHECK(accepted == 13);
}

TEST_CASE_METHOD(fixture, "the request carries strfry's fields",
                 "[policy][plugin]") {
  start(plugin("echo_source.js"));
  auto x = item("x");
  x->authed = std::string(64, 'a');
  CHECK(judge(x).message
        == "blocked: new IP4 192.0.2.7 " + std::string(64, 'a') + " number");
  CHECK(judge(item("x", "client", "::1")).message
        == "blocked: new IP6 ::1 - number");
  CHECK(judge(item("x", "sync:s1", "wss://r.example")).message
        == "blocked: new Sync wss://r.example - number");
  CHECK(judge(item("x", "grasp:wss://g.example", "wss://g.example")).message
        == "blocked: new Stream wss://g.example - number");
  CHECK(judge(item("x", "import", "")).message == "blocked: new Import  - number");
}

TEST_CASE_METHOD(fixture, "a plugin that crashes is restarted with backoff, and "
                          "its requests meanwhile get the fallback",
                 "[policy][plugin]") {
  start(plugin("crash.sh"), policy_action::reject);
  // The first request is answered before the plugin exits.
  CHECK(judge(item("one")).action == policy_action::accept);
  REQUIRE(wait_counter("restarts", 1));
  self->request(host, 10s, atom::get_v, atom::status_v)
    .receive(
      [](status_map& m) {
        CHECK(caf::get_or(m, "last_exit", std::string{})
              == "it exited with status 3");
      },
      [](caf::error& err) { FAIL(caf::to_string(err)); });
  // While it restarts, requests get the fallback; once it is back, the
  // plugin answers again.
  bool answered = false;
  for (int i = 0; i < 200 && !answered; ++i) {
    auto v = judge(item("again " + std::to_string(i)));
    if (v.action == policy_action::accept) {
      answered = true;
    } else {
      CHECK(v.message.rfind("error: the write policy plugin could not judge", 0)
            == 0);
      std::this_thread::sleep_for(10ms);
    }
  }
  CHECK(answered);
  CHECK(counter("fallbacks") >= 1);
}

TEST_CASE_METHOD(fixture, "a plugin that hangs times out into the fallback",
                 "[policy][plugin]") {
  SECTION("reject") {
    start(plugin("hang.js"), policy_action::reject, 150ms);
    auto v = judge(item("hello"));
    CHECK(v.action == policy_action::reject);
    CHECK(v.message
          == "error: the write policy plugin could not judge this event "
             "(timeout after 150 ms)");
  }
  SECTION("accept") {
    start(plugin("hang.js"), policy_action::accept, 150ms);
    CHECK(judge(item("hello")).action == policy_action::accept);
  }
  CHECK(counter("timeouts") == 1);
  CHECK(counter("restarts") == 0);
}

TEST_CASE_METHOD(fixture, "a plugin that answers garbage fails: fallback, "
                          "counted, restarted",
                 "[policy][plugin]") {
  start(plugin("garbage.sh"), policy_action::reject);
  auto v = judge(item("hello"));
  CHECK(v.action == policy_action::reject);
  CHECK(v.message.find("it answered garbage: this is not json")
        != std::string::npos);
  CHECK(counter("garbage") == 1);
  CHECK(counter("restarts") >= 1);
}

TEST_CASE_METHOD(fixture, "a command that cannot start retries with backoff",
                 "[policy][plugin]") {
  start(plugin("no-such-plugin"), policy_action::reject);
  REQUIRE(wait_counter("restarts", 2));
  CHECK(judge(item("x")).action == policy_action::reject);
}

TEST_CASE_METHOD(fixture, "a command with spaces runs through the shell",
                 "[policy][plugin]") {
  start("exec " + plugin("keyword.sh"));
  CHECK(judge(item("spam")).action == policy_action::reject);
}

TEST_CASE_METHOD(fixture, "the plugin is reloaded when its file changes",
                 "[policy][plugin]") {
  auto dir = std::filesystem::temp_directory_path()
             / ("ferry-plugin-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / "plugin.sh";
  std::filesystem::copy_file(plugin("keyword.sh"), path,
                             std::filesystem::copy_options::overwrite_existing);
  start(path.string());
  CHECK(judge(item("spam")).action == policy_action::reject);
  // Now it is another plugin; a new mtime makes the host start it again.
  {
    std::ofstream out{path, std::ios::trunc};
    out << "#!/bin/sh\nexec " << plugin("echo_source.js") << "\n";
  }
  std::filesystem::last_write_time(
    path, std::filesystem::last_write_time(path) + 2s);
  CHECK(judge(item("spam")).message.rfind("blocked: new IP4", 0) == 0);
  CHECK(counter("reloads") == 1);
  CHECK(counter("restarts") == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("plugin answers are read strictly", "[policy][plugin]") {
  std::string id;
  policy_verdict v;
  auto hex = std::string(64, 'b');
  CHECK(parse_plugin_answer(R"({"id":")" + hex + R"(","action":"accept"})", id, v));
  CHECK(id == hex);
  CHECK(v.action == policy_action::accept);
  CHECK(parse_plugin_answer(R"({"id":")" + hex
                              + R"(","action":"reject","msg":"pow: need 20 bits"})",
                            id, v));
  CHECK(v.message == "pow: need 20 bits");
  CHECK(parse_plugin_answer(R"({"id":")" + hex + R"(","action":"reject"})", id, v));
  CHECK(v.message == "blocked: rejected by the write policy");
  CHECK_FALSE(parse_plugin_answer("not json", id, v));
  CHECK_FALSE(parse_plugin_answer(R"({"id":"abc","action":"accept"})", id, v));
  CHECK_FALSE(parse_plugin_answer(R"({"id":")" + hex + R"(","action":"maybe"})", id, v));
  CHECK_FALSE(parse_plugin_answer(R"({"id":")" + hex + R"(","action":"reject","msg":5})", id, v));
  CHECK_FALSE(parse_plugin_answer(R"([1,2])", id, v));
}
