#include "actors/sync/health_tracker.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/runtime/metrics.hpp"
#include "messages/error.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/fixtures/quiet_log.hpp"

#include <caf/after.hpp>
#include <caf/settings.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace ferry;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

/// Delays that are easy to count: no jitter, small caps.
health_tracker_config exact_config() {
  health_tracker_config result;
  result.backoff_base = 1s;
  result.backoff_cap = 8s;
  result.slow_base = 60s;
  result.slow_cap = 240s;
  result.rate_limit_base = 60s;
  result.rate_limit_cap = 480s;
  result.jitter = 0.0;
  result.resume_window = 15min;
  result.seed = 1;
  return result;
}

const std::string relay_a = "wss://a.example";
const std::string relay_b = "wss://b.example";

struct fixture : test::deterministic_actor_system {
  fixture() {
    // nop
  }

  ~fixture() {
    if (aut)
      self->send_exit(aut, caf::exit_reason::user_shutdown);
    run();
  }

  void launch(health_tracker_config config = exact_config()) {
    aut = sys.spawn(health_tracker, config);
    run();
  }

  /// Sends a request to the tracker and collects its reply or error.
  template <class T, class... Ts>
  caf::expected<T> ask(Ts&&... xs) {
    return reply_of<T>(aut, "the health tracker", std::forward<Ts>(xs)...);
  }

  template <class... Ts>
  void report(Ts&&... xs) {
    self->send(aut, atom::report_v, std::forward<Ts>(xs)...);
    run();
  }

  /// Reports a failure and returns the delay the tracker then asks for.
  caf::timespan fail(const std::string& id, error_class cls) {
    report(atom::failed_v, id, cls, "boom " + to_string(cls));
    auto delay = ask<caf::timespan>(atom::get_v, atom::delay_v, id);
    REQUIRE(delay);
    return *delay;
  }

  /// Walks `id` through a successful connection.
  void connect(const std::string& id) {
    report(atom::connecting_v, id);
    report(atom::connected_v, id);
  }

  /// Walks `id` through a successful connection and catch-up.
  void sync_up(const std::string& id) {
    connect(id);
    report(atom::catchup_v, id);
    report(atom::caughtup_v, id, caf::timespan{3s});
  }

  resume_mode resume(const std::string& id) {
    auto x = ask<resume_mode>(atom::get_v, atom::resume_v, id);
    REQUIRE(x);
    return *x;
  }

  relay_health health(const std::string& id) {
    auto x = ask<relay_health>(atom::get_v, atom::health_v, id);
    REQUIRE(x);
    return *x;
  }

  // Failure warnings are expected here; keep the test output readable.
  ferry::test::quiet_log quiet;
  health_tracker_actor aut;
};

/// The nested status entry of one server.
caf::settings server_entry(const status_map& st, const std::string& id) {
  auto servers = caf::get<caf::settings>(st, "servers");
  auto i = servers.find(id);
  REQUIRE(i != servers.end());
  return caf::get<caf::settings>(i->second);
}

} // namespace

TEST_CASE_METHOD(fixture, "transient failures double the delay up to the cap",
                 "[health_tracker]") {
  launch();
  CHECK(*ask<caf::timespan>(atom::get_v, atom::delay_v, relay_a) == 0s);
  report(atom::connecting_v, relay_a);
  CHECK(fail(relay_a, error_class::tcp) == 1s);
  CHECK(fail(relay_a, error_class::closed) == 2s);
  CHECK(fail(relay_a, error_class::protocol) == 4s);
  CHECK(fail(relay_a, error_class::auth) == 8s);
  CHECK(fail(relay_a, error_class::tcp) == 8s);
  CHECK(health(relay_a).status == relay_status::backing_off);
  CHECK(health(relay_a).attempts == 5);
  SECTION("the delay counts down on the actor clock") {
    advance(3s);
    CHECK(*ask<caf::timespan>(atom::get_v, atom::delay_v, relay_a) == 5s);
    advance(6s);
    CHECK(*ask<caf::timespan>(atom::get_v, atom::delay_v, relay_a) == 0s);
  }
}

TEST_CASE_METHOD(fixture, "jitter keeps every delay within its bounds",
                 "[health_tracker]") {
  auto config = exact_config();
  config.jitter = 0.25;
  config.seed = 42;
  launch(config);
  caf::timespan nominal = 1s;
  auto jittered = 0;
  for (int i = 0; i < 12; ++i) {
    auto delay = fail(relay_a, error_class::tcp);
    CHECK(delay >= nominal * 0.75);
    CHECK(delay <= nominal * 1.25);
    if (delay != nominal)
      ++jittered;
    nominal = std::min<caf::timespan>(nominal * 2, config.backoff_cap);
  }
  CHECK(jittered > 0);
}

TEST_CASE("the same seed draws the same jitter", "[health_tracker]") {
  auto config = exact_config();
  config.jitter = 0.5;
  config.seed = 7;
  health_tracker_state x;
  health_tracker_state y;
  x.configure(config);
  y.configure(config);
  caf::actor_clock::time_point now{};
  for (int i = 0; i < 5; ++i) {
    auto dx = x.failed("r", error_class::tcp, "reset", now);
    auto dy = y.failed("r", error_class::tcp, "reset", now);
    REQUIRE(dx);
    REQUIRE(dy);
    CHECK(*dx == *dy);
  }
}

TEST_CASE_METHOD(fixture, "dns, tls and pin failures wait in the slow lane",
                 "[health_tracker]") {
  launch();
  auto cls = GENERATE(error_class::dns, error_class::tls, error_class::pin);
  CAPTURE(to_string(cls));
  CHECK(fail(relay_a, cls) == 60s);
  CHECK(fail(relay_a, cls) == 120s);
  CHECK(fail(relay_a, cls) == 240s);
  CHECK(fail(relay_a, cls) == 240s);
  // The fast lane keeps its own exponent.
  CHECK(fail(relay_a, error_class::tcp) == 1s);
  CHECK(fail(relay_a, error_class::tcp) == 2s);
  CHECK(health(relay_a).attempts == 6);
  CHECK(health(relay_a).last_error_class == error_class::tcp);
}

TEST_CASE_METHOD(fixture, "consecutive rate limits double the cooldown",
                 "[health_tracker]") {
  launch();
  connect(relay_a);
  report(atom::ratelimit_v, relay_a, std::string{"rate-limited: slow down"});
  CHECK(*ask<caf::timespan>(atom::get_v, atom::delay_v, relay_a) == 60s);
  auto x = health(relay_a);
  CHECK(x.status == relay_status::backing_off);
  CHECK(x.last_error_class == error_class::rate_limited);
  CHECK(x.last_error == "rate-limited: slow down");
  // Both ways of reporting a rate limit share one cooldown.
  CHECK(fail(relay_a, error_class::rate_limited) == 120s);
  report(atom::ratelimit_v, relay_a, std::string{"rate-limited: again"});
  CHECK(*ask<caf::timespan>(atom::get_v, atom::delay_v, relay_a) == 240s);
  CHECK(fail(relay_a, error_class::rate_limited) == 480s);
  CHECK(fail(relay_a, error_class::rate_limited) == 480s);
  SECTION("a success ends the streak") {
    connect(relay_a);
    report(atom::live_v, relay_a);
    CHECK(fail(relay_a, error_class::rate_limited) == 60s);
  }
}

TEST_CASE_METHOD(fixture, "catching up or going live resets the attempts",
                 "[health_tracker]") {
  launch();
  report(atom::connecting_v, relay_a);
  fail(relay_a, error_class::tcp);
  fail(relay_a, error_class::tls);
  fail(relay_a, error_class::tcp);
  CHECK(health(relay_a).attempts == 3);
  SECTION("after a catch-up") {
    connect(relay_a);
    CHECK(health(relay_a).status == relay_status::connecting);
    report(atom::catchup_v, relay_a);
    CHECK(health(relay_a).status == relay_status::syncing);
    // Connecting is not success yet: a failure before the catch-up ends
    // still counts.
    CHECK(health(relay_a).attempts == 3);
    report(atom::caughtup_v, relay_a, caf::timespan{42s});
    auto x = health(relay_a);
    CHECK(x.status == relay_status::live);
    CHECK(x.attempts == 0);
    CHECK(x.last_catchup == 42s);
  }
  SECTION("after going live") {
    connect(relay_a);
    report(atom::live_v, relay_a);
    CHECK(health(relay_a).attempts == 0);
  }
  // The last error stays visible, and both lanes start from their base.
  CHECK(health(relay_a).last_error_class == error_class::tcp);
  CHECK(fail(relay_a, error_class::tcp) == 1s);
  CHECK(fail(relay_a, error_class::tls) == 60s);
}

TEST_CASE_METHOD(fixture, "short outages resume, long ones catch up again",
                 "[health_tracker]") {
  launch();
  CHECK(resume(relay_a) == resume_mode::full_catchup);
  sync_up(relay_a);
  CHECK(resume(relay_a) == resume_mode::resume);
  fail(relay_a, error_class::closed);
  SECTION("14 minutes away") {
    advance(14min);
    CHECK(resume(relay_a) == resume_mode::resume);
    CHECK(health(relay_a).resume == resume_mode::resume);
  }
  SECTION("16 minutes away") {
    advance(16min);
    CHECK(resume(relay_a) == resume_mode::full_catchup);
  }
  SECTION("failing again does not restart the clock") {
    advance(10min);
    report(atom::connecting_v, relay_a);
    fail(relay_a, error_class::tcp);
    advance(6min);
    CHECK(resume(relay_a) == resume_mode::full_catchup);
  }
  SECTION("a stop counts as an outage too") {
    connect(relay_a);
    report(atom::live_v, relay_a);
    report(atom::stopped_v, relay_a);
    CHECK(health(relay_a).status == relay_status::stopped);
    advance(14min);
    CHECK(resume(relay_a) == resume_mode::resume);
    advance(2min);
    CHECK(resume(relay_a) == resume_mode::full_catchup);
  }
  SECTION("an unfinished catch-up must run again") {
    connect(relay_a);
    report(atom::catchup_v, relay_a);
    fail(relay_a, error_class::closed);
    advance(1min);
    CHECK(resume(relay_a) == resume_mode::full_catchup);
  }
}

TEST_CASE_METHOD(fixture, "a relay that never synced catches up in full",
                 "[health_tracker]") {
  launch();
  connect(relay_a);
  fail(relay_a, error_class::auth);
  advance(1min);
  CHECK(resume(relay_a) == resume_mode::full_catchup);
}

TEST_CASE_METHOD(fixture, "status shows every relay with its details",
                 "[health_tracker]") {
  launch();
  sync_up(relay_a);
  connect(relay_b);
  report(atom::failed_v, relay_b, error_class::protocol,
         std::string{"bad frame"});
  advance(250ms);
  auto st = ask<status_map>(atom::get_v, atom::status_v);
  REQUIRE(st);
  CHECK(caf::get<int64_t>(*st, "relays.total") == 2);
  CHECK(caf::get<int64_t>(*st, "relays.live") == 1);
  CHECK(caf::get<int64_t>(*st, "relays.backing_off") == 1);
  CHECK(caf::get<int64_t>(*st, "relays.dead") == 0);
  CHECK(caf::holds_alternative<int64_t>(*st, "mailbox"));
  auto a = server_entry(*st, relay_a);
  CHECK(caf::get<std::string>(a, "status") == "live");
  CHECK(caf::get<int64_t>(a, "attempts") == 0);
  CHECK(caf::get<int64_t>(a, "connected_since") > 0);
  CHECK(caf::get<caf::timespan>(a, "last_catchup") == 3s);
  CHECK(caf::get<std::string>(a, "resume") == "resume");
  auto b = server_entry(*st, relay_b);
  CHECK(caf::get<std::string>(b, "status") == "backing_off");
  CHECK(caf::get<int64_t>(b, "attempts") == 1);
  CHECK(caf::get<std::string>(b, "last_error_class") == "protocol");
  CHECK(caf::get<std::string>(b, "last_error") == "bad frame");
  CHECK(caf::get<int64_t>(b, "last_error_at") > 0);
  CHECK(caf::get<caf::timespan>(b, "next_attempt_in") == 750ms);
  CHECK(caf::get<int64_t>(b, "connected_since") == 0);
  CHECK(caf::get<int64_t>(b, "disconnected_at") > 0);
  CHECK(caf::get<std::string>(b, "resume") == "full_catchup");
  CHECK(caf::get<int64_t>(b, "connects") == 1);
  CHECK(caf::get<int64_t>(b, "failures") == 1);
}

TEST_CASE_METHOD(fixture, "one relay or all of them as values",
                 "[health_tracker]") {
  launch();
  sync_up(relay_b);
  report(atom::connecting_v, relay_a);
  auto a = health(relay_a);
  CHECK(a.server == relay_a);
  CHECK(a.status == relay_status::connecting);
  CHECK(a.connected_since == 0);
  auto b = health(relay_b);
  CHECK(b.status == relay_status::live);
  CHECK(b.connected_since > 0);
  CHECK(b.connects == 1);
  auto all = ask<std::vector<relay_health>>(atom::get_v, atom::health_v);
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].server == relay_a);
  CHECK((*all)[1].server == relay_b);
  auto unknown = ask<relay_health>(atom::get_v, atom::health_v,
                                   std::string{"wss://nobody.example"});
  REQUIRE(!unknown);
  CHECK(unknown.error() == ec::invalid_input);
}

TEST_CASE_METHOD(fixture, "too many failures make a relay dead",
                 "[health_tracker]") {
  auto config = exact_config();
  config.max_attempts = 3;
  launch(config);
  report(atom::connecting_v, relay_a);
  fail(relay_a, error_class::tcp);
  fail(relay_a, error_class::tcp);
  report(atom::failed_v, relay_a, error_class::tcp, std::string{"reset"});
  auto delay = ask<caf::timespan>(atom::get_v, atom::delay_v, relay_a);
  REQUIRE(!delay);
  CHECK(delay.error() == ec::relay_unreachable);
  auto x = health(relay_a);
  CHECK(x.status == relay_status::dead);
  CHECK_THAT(x.dead_reason, Contains("3 failed attempts"));
  report(atom::connecting_v, relay_a);
  CHECK(*ask<caf::timespan>(atom::get_v, atom::delay_v, relay_a) == 0s);
  CHECK(health(relay_a).attempts == 0);
  CHECK(fail(relay_a, error_class::tcp) == 1s);
}

TEST_CASE_METHOD(fixture, "a disabled relay stays dead", "[health_tracker]") {
  launch();
  sync_up(relay_a);
  report(atom::disabled_v, relay_a, std::string{"removed by operator"});
  auto x = health(relay_a);
  CHECK(x.status == relay_status::dead);
  CHECK(x.dead_reason == "disabled: removed by operator");
  CHECK(x.connected_since == 0);
  // Reports from the connection that was under way change nothing.
  report(atom::failed_v, relay_a, error_class::closed, std::string{"late"});
  report(atom::connected_v, relay_a);
  report(atom::live_v, relay_a);
  CHECK(health(relay_a).status == relay_status::dead);
  CHECK(!ask<caf::timespan>(atom::get_v, atom::delay_v, relay_a));
}

TEST_CASE_METHOD(fixture, "sync metrics follow the reports",
                 "[health_tracker]") {
  launch();
  const std::string id = "metrics-probe";
  connect(id);
  auto text = metrics::serialize();
  CHECK_THAT(text,
             Contains("ferry_sync_connected{server=\"metrics-probe\"} 1"));
  report(atom::catchup_v, id);
  report(atom::caughtup_v, id, caf::timespan{1500ms});
  report(atom::live_v, id);
  report(atom::failed_v, id, error_class::tls, std::string{"expired"});
  text = metrics::serialize();
  CHECK_THAT(text,
             Contains("ferry_sync_connected{server=\"metrics-probe\"} 0"));
  CHECK_THAT(text, Contains("ferry_sync_catchup_seconds{server=\"metrics-"
                            "probe\"} 1.5"));
  // One "ok" per connection, however many success reports it makes.
  CHECK_THAT(text, Contains("ferry_sync_attempts_total{result=\"ok\","
                            "server=\"metrics-probe\"} 1"));
  CHECK_THAT(text, Contains("ferry_sync_attempts_total{result=\"tls\","
                            "server=\"metrics-probe\"} 1"));
}

TEST_CASE("a backoff cap below its base is rejected", "[health_tracker]") {
  test::deterministic_actor_system f;
  auto config = exact_config();
  config.slow_cap = 1s;
  auto aut = f.sys.spawn(health_tracker, config);
  f.self->monitor(aut);
  f.run();
  f.self->receive(
    [&](caf::down_msg& msg) {
      CHECK(msg.reason == caf::make_error(ec::invalid_configuration));
    },
    caf::after(0s) >> [] { FAIL("tracker did not quit"); });
}

TEST_CASE("the node is degraded only by sync servers that fail for good",
          "[health_tracker]") {
  auto relay = [](std::string server, relay_status status, uint32_t attempts,
                  error_class cls, std::string error = {},
                  std::string dead_reason = {}) {
    relay_health r;
    r.server = std::move(server);
    r.status = status;
    r.attempts = attempts;
    r.last_error_class = cls;
    r.last_error = std::move(error);
    r.dead_reason = std::move(dead_reason);
    return r;
  };
  std::vector<relay_health> relays{
    relay("live", relay_status::live, 0, error_class::none),
    relay("catching-up", relay_status::syncing, 0, error_class::none),
    relay("blip", relay_status::backing_off, 1, error_class::tcp, "reset"),
    relay("down-a-while", relay_status::backing_off,
          failing_attempts_for_health - 1, error_class::dns, "no such host"),
    relay("down-long", relay_status::backing_off, failing_attempts_for_health,
          error_class::dns, "no such host"),
    relay("pinned", relay_status::backing_off, 1, error_class::pin,
          "pin_mismatch: abc"),
    relay("untrusted", relay_status::backing_off, 1, error_class::tls,
          "certificate verify failed"),
    relay("refused", relay_status::backing_off, 1, error_class::auth,
          "auth-required: no"),
    relay("given-up", relay_status::dead, 9, error_class::tcp, "refused",
          "gave up after 9 failed attempts"),
    relay("paused", relay_status::stopped, 0, error_class::none),
  };
  auto reasons = sync_health_reasons(relays);
  std::vector<std::string> expected{
    "sync server down-long fails: dns: no such host (5 attempt(s) in a row)",
    "sync server pinned fails: pin: pin_mismatch: abc (1 attempt(s) in a row)",
    "sync server untrusted fails: tls: certificate verify failed (1 "
    "attempt(s) in a row)",
    "sync server refused fails: auth: auth-required: no (1 attempt(s) in a "
    "row)",
    "sync server given-up gave up (gave up after 9 failed attempts); last "
    "error tcp: refused",
  };
  CHECK(reasons == expected);
}
