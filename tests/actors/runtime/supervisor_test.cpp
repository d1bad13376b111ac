#include "actors/runtime/supervisor.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/error.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/fixtures/quiet_log.hpp"

#include <caf/actor_cast.hpp>
#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>

using namespace ferry;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

/// What the tests see of one child's incarnations.
struct probe {
  /// Test-clock time of every start attempt.
  std::vector<caf::actor_clock::time_point> attempts;
  /// Every incarnation that started.
  std::vector<caf::actor> handles;
  /// This many of the next incarnations crash as soon as they run.
  int crash_on_start = 0;
  /// This many of the next start attempts throw.
  int throw_on_start = 0;
};

/// A child that crashes at once or on `fault`, and quits normally on `stop`.
caf::behavior worker(caf::event_based_actor* self, bool crash_now) {
  if (crash_now) {
    self->quit(caf::make_error(ec::injected_fault, "crashed on start"));
    return {};
  }
  return {
    [self](atom::fault) {
      self->quit(caf::make_error(ec::injected_fault, "crashed"));
    },
    [self](atom::stop) { self->quit(); },
  };
}

child_spec watched(std::string name, std::shared_ptr<probe> p) {
  return {std::move(name), "worker",
          [p](caf::local_actor* sup) {
            p->attempts.push_back(sup->clock().now());
            if (p->throw_on_start > 0) {
              --p->throw_on_start;
              throw std::runtime_error("no disk");
            }
            auto crash = p->crash_on_start > 0;
            if (crash)
              --p->crash_on_start;
            return sup->spawn(worker, crash);
          },
          [p](const caf::actor& h) { p->handles.push_back(h); },
          {}};
}

/// Restarts that are easy to count: no jitter, generous limits.
restart_policy exact_policy() {
  restart_policy result;
  result.base = 100ms;
  result.cap = 30s;
  result.jitter = 0.0;
  result.stable_after = 60s;
  result.max_restarts = 100;
  result.window = 60s;
  return result;
}

struct fixture : test::deterministic_actor_system {
  fixture() {
    // nop
  }

  ~fixture() {
    if (aut)
      self->send_exit(aut, caf::exit_reason::user_shutdown);
    run();
  }

  void launch(std::vector<child_spec> specs,
              restart_policy policy = exact_policy()) {
    aut = sys.spawn(supervisor, std::string{"root"}, std::move(specs), policy);
    run();
  }

  /// Sends a request to `dest` and collects its reply or error.
  template <class T, class... Ts>
  caf::expected<T> ask(const supervisor_actor& dest, Ts&&... xs) {
    self->send(dest, std::forward<Ts>(xs)...);
    run();
    caf::expected<T> result = caf::make_error(caf::sec::request_timeout);
    self->receive(
      [&](T& x) { result = std::move(x); },
      [&](caf::error& err) { result = std::move(err); },
      caf::after(0s) >> [] { FAIL("no reply from the supervisor"); });
    return result;
  }

  child_info info(const std::string& name, const supervisor_actor& sup) {
    auto xs = ask<std::vector<child_info>>(sup, atom::get_v, atom::children_v);
    REQUIRE(xs);
    for (auto& x : *xs)
      if (x.name == name)
        return x;
    FAIL("no child named " << name);
    return {};
  }

  child_info info(const std::string& name) {
    return info(name, aut);
  }

  /// Steps the clock 1 ms at a time until `p` sees a new start attempt.
  /// @returns how long that took.
  caf::timespan until_next_attempt(const probe& p,
                                   caf::timespan limit = 60s) {
    auto before = p.attempts.size();
    caf::timespan waited{0};
    while (p.attempts.size() == before) {
      if (waited > limit)
        FAIL("no restart within " << limit.count() << " ns");
      advance(1ms);
      waited += 1ms;
    }
    return waited;
  }

  /// Why `source` went down, from the down_msgs in the test's mailbox.
  caf::error down_reason(const caf::actor_addr& source) {
    for (auto done = false; !done;)
      self->receive(
        [&](caf::down_msg& msg) { downs.emplace_back(std::move(msg)); },
        caf::after(0s) >> [&] { done = true; });
    for (auto& msg : downs)
      if (msg.source == source)
        return msg.reason;
    FAIL("no down_msg from the actor");
    return {};
  }

  std::vector<caf::down_msg> downs;
  // Restart warnings are expected here; keep the test output readable.
  ferry::test::quiet_log quiet;
  supervisor_actor aut;
};

/// The text a runtime_error carries, e.g. the supervisor's reason to give up.
std::string context_text(const caf::error& err) {
  const auto& ctx = err.context();
  for (size_t i = 0; i < ctx.size(); ++i)
    if (ctx.match_element<std::string>(i))
      return ctx.get_as<std::string>(i);
  return {};
}

} // namespace

TEST_CASE_METHOD(fixture, "children are listed in spec order",
                 "[supervisor]") {
  auto a = std::make_shared<probe>();
  auto b = std::make_shared<probe>();
  launch({watched("writer", a), watched("hub", b)});
  auto xs = ask<std::vector<child_info>>(aut, atom::get_v, atom::children_v);
  REQUIRE(xs);
  REQUIRE(xs->size() == 2);
  CHECK((*xs)[0].name == "writer");
  CHECK((*xs)[1].name == "hub");
  for (auto& x : *xs) {
    CHECK(x.kind == "worker");
    CHECK(x.parent == "root");
    CHECK(x.state == child_state::running);
    CHECK(x.restarts == 0);
    CHECK(x.last_error.empty());
    CHECK(x.started_at > 0);
  }
  CHECK((*xs)[0].handle == a->handles.at(0));
  CHECK((*xs)[1].handle == b->handles.at(0));
}

TEST_CASE_METHOD(fixture, "a crashed child restarts after the base delay",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  launch({watched("writer", p)});
  self->send(p->handles.at(0), atom::fault_v);
  run();
  auto x = info("writer");
  CHECK(x.state == child_state::restarting);
  CHECK_FALSE(x.handle);
  CHECK(x.last_error == "crashed");
  CHECK(x.last_error_at > 0);
  advance(99ms);
  CHECK(p->handles.size() == 1);
  advance(1ms);
  REQUIRE(p->handles.size() == 2);
  x = info("writer");
  CHECK(x.state == child_state::running);
  CHECK(x.restarts == 1);
  CHECK(x.handle == p->handles[1]);
}

TEST_CASE_METHOD(fixture, "restart delays double up to the cap",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  p->crash_on_start = 6;
  auto policy = exact_policy();
  policy.cap = 500ms;
  launch({watched("writer", p)}, policy);
  CHECK(until_next_attempt(*p) == 100ms);
  CHECK(until_next_attempt(*p) == 200ms);
  CHECK(until_next_attempt(*p) == 400ms);
  CHECK(until_next_attempt(*p) == 500ms);
  CHECK(until_next_attempt(*p) == 500ms);
  CHECK(until_next_attempt(*p) == 500ms);
  auto x = info("writer");
  CHECK(x.state == child_state::running);
  CHECK(x.restarts == 6);
}

TEST_CASE_METHOD(fixture, "jittered delays stay within the jitter bounds",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  p->crash_on_start = 30;
  auto policy = exact_policy();
  policy.cap = policy.base; // every delay is base +- 20%
  policy.jitter = 0.2;
  launch({watched("writer", p)}, policy);
  for (int i = 0; i < 30; ++i) {
    auto waited = until_next_attempt(*p);
    CHECK(waited >= 80ms);
    CHECK(waited <= 120ms);
  }
}

TEST_CASE_METHOD(fixture, "the delay resets after the child stayed up",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  auto policy = exact_policy();
  policy.stable_after = 1s;
  launch({watched("writer", p)}, policy);
  auto crash = [&] {
    self->send(p->handles.back(), atom::fault_v);
    run();
    return until_next_attempt(*p);
  };
  SECTION("after stable_after without a crash") {
    CHECK(crash() == 100ms);
    CHECK(crash() == 200ms);
    CHECK(crash() == 400ms);
    advance(1s);
    CHECK(crash() == 100ms);
  }
  SECTION("not by the timer of an earlier incarnation") {
    advance(900ms);
    CHECK(crash() == 100ms);
    // The first incarnation's timer fired just now; the second one has been
    // up for no time at all.
    CHECK(crash() == 200ms);
  }
}

TEST_CASE_METHOD(fixture, "too many restarts within the window escalate",
                 "[supervisor]") {
  auto flaky = std::make_shared<probe>();
  flaky->crash_on_start = 100;
  auto steady = std::make_shared<probe>();
  auto policy = exact_policy();
  policy.max_restarts = 2;
  policy.window = 10s;
  launch({watched("steady", steady), watched("flaky", flaky)}, policy);
  self->monitor(aut);
  self->monitor(steady->handles.at(0));
  advance(100ms);
  advance(200ms);
  CHECK(flaky->attempts.size() == 3);
  auto sibling = down_reason(steady->handles[0].address());
  CHECK(sibling == caf::exit_reason::user_shutdown);
  auto reason = down_reason(aut.address());
  CHECK(reason == caf::sec::runtime_error);
  CHECK(context_text(reason)
        == "root gave up on flaky after 2 restarts in 10s");
  advance(1min);
  CHECK(flaky->attempts.size() == 3);
  CHECK(steady->handles.size() == 1);
}

TEST_CASE_METHOD(fixture, "restarts older than the window do not count",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  auto policy = exact_policy();
  policy.max_restarts = 1;
  policy.window = 1s;
  launch({watched("writer", p)}, policy);
  self->monitor(aut);
  self->send(p->handles.at(0), atom::fault_v);
  run();
  advance(100ms);
  REQUIRE(p->handles.size() == 2);
  advance(2s);
  self->send(p->handles[1], atom::fault_v);
  run();
  advance(200ms);
  REQUIRE(p->handles.size() == 3);
  CHECK(info("writer").restarts == 2);
  self->send(p->handles[2], atom::fault_v);
  run();
  CHECK(down_reason(aut.address()) == caf::sec::runtime_error);
}

TEST_CASE_METHOD(fixture, "a deliberate stop is never restarted",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  launch({watched("writer", p)});
  SECTION("user_shutdown") {
    self->send_exit(p->handles.at(0), caf::exit_reason::user_shutdown);
  }
  SECTION("a normal exit") {
    self->send(p->handles.at(0), atom::stop_v);
  }
  run();
  advance(1min);
  CHECK(p->handles.size() == 1);
  auto x = info("writer");
  CHECK(x.state == child_state::stopped);
  CHECK(x.restarts == 0);
  CHECK(x.last_error.empty());
  CHECK_FALSE(x.handle);
}

TEST_CASE_METHOD(fixture, "an operator restart is immediate and counted",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  launch({watched("writer", p)});
  self->monitor(p->handles.at(0));
  CHECK(ask<bool>(aut, atom::restart_v, std::string{"writer"}) == true);
  CHECK(down_reason(p->handles[0].address())
        == caf::exit_reason::user_shutdown);
  REQUIRE(p->handles.size() == 2);
  auto x = info("writer");
  CHECK(x.state == child_state::running);
  CHECK(x.restarts == 1);
  CHECK(x.last_error.empty());
  CHECK(x.handle == p->handles[1]);
  auto st = ask<status_map>(aut, atom::get_v, atom::status_v);
  REQUIRE(st);
  CHECK(caf::get_or(*st, "restarts", int64_t{-1}) == 1);
  CHECK(caf::get_or(*st, "children", int64_t{-1}) == 1);
  CHECK(caf::get_or(*st, "running", int64_t{-1}) == 1);
  CHECK(caf::get_or(*st, "mailbox", int64_t{-1}) == 0);
}

TEST_CASE_METHOD(fixture, "a stopped child stays down until started",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  launch({watched("writer", p)});
  self->monitor(p->handles.at(0));
  CHECK(ask<bool>(aut, atom::stop_v, std::string{"writer"}) == true);
  CHECK(down_reason(p->handles[0].address())
        == caf::exit_reason::user_shutdown);
  advance(1min);
  CHECK(p->handles.size() == 1);
  CHECK(info("writer").state == child_state::stopped);
  CHECK(ask<bool>(aut, atom::stop_v, std::string{"writer"}) == false);
  CHECK(ask<bool>(aut, atom::start_v, std::string{"writer"}) == true);
  REQUIRE(p->handles.size() == 2);
  auto x = info("writer");
  CHECK(x.state == child_state::running);
  CHECK(x.restarts == 0);
  CHECK(x.handle == p->handles[1]);
  CHECK(ask<bool>(aut, atom::start_v, std::string{"writer"}) == false);
}

TEST_CASE_METHOD(fixture,
                 "on_stopped hears once of every incarnation that ends, before "
                 "the next one starts",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  auto spec = watched("verifier", p);
  std::vector<std::string> heard;
  auto on_started = spec.on_started;
  spec.on_started = [&heard, on_started](const caf::actor& h) {
    heard.emplace_back("started");
    on_started(h);
  };
  spec.on_stopped = [&heard] { heard.emplace_back("stopped"); };
  launch({spec});
  CHECK(heard == std::vector<std::string>{"started"});
  // A crash: heard at once, while the restart waits out its backoff.
  self->send(p->handles.at(0), atom::fault_v);
  run();
  CHECK(heard == std::vector<std::string>{"started", "stopped"});
  advance(100ms);
  REQUIRE(p->handles.size() == 2);
  // An operator restart, then a stop; a second stop finds nothing to end.
  CHECK(ask<bool>(aut, atom::restart_v, std::string{"verifier"}) == true);
  CHECK(ask<bool>(aut, atom::stop_v, std::string{"verifier"}) == true);
  CHECK(ask<bool>(aut, atom::stop_v, std::string{"verifier"}) == false);
  CHECK(heard
        == std::vector<std::string>{"started", "stopped", "started", "stopped",
                                    "started", "stopped"});
  // The supervisor ending stops the running incarnation: heard too.
  CHECK(ask<bool>(aut, atom::start_v, std::string{"verifier"}) == true);
  self->send_exit(aut, caf::exit_reason::user_shutdown);
  run();
  CHECK(heard.size() == 8);
  CHECK(heard.back() == "stopped");
}

TEST_CASE_METHOD(fixture, "a start cancels a pending restart",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  launch({watched("writer", p)});
  self->send(p->handles.at(0), atom::fault_v);
  run();
  CHECK(ask<bool>(aut, atom::start_v, std::string{"writer"}) == true);
  REQUIRE(p->handles.size() == 2);
  advance(1s);
  CHECK(p->handles.size() == 2);
  CHECK(info("writer").restarts == 0);
}

TEST_CASE_METHOD(fixture, "an injected fault goes through the backoff",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  launch({watched("writer", p)});
  CHECK(ask<bool>(aut, atom::fault_v, std::string{"writer"}) == true);
  auto x = info("writer");
  CHECK(x.state == child_state::restarting);
  CHECK(x.last_error == "fault injected by operator");
  CHECK(ask<bool>(aut, atom::fault_v, std::string{"writer"}) == false);
  advance(99ms);
  CHECK(p->handles.size() == 1);
  advance(1ms);
  CHECK(p->handles.size() == 2);
  CHECK(info("writer").restarts == 1);
}

TEST_CASE_METHOD(fixture, "an unknown child name is an error",
                 "[supervisor]") {
  launch({watched("writer", std::make_shared<probe>())});
  auto name = std::string{"nope"};
  for (auto reply : {ask<bool>(aut, atom::restart_v, name),
                     ask<bool>(aut, atom::stop_v, name),
                     ask<bool>(aut, atom::start_v, name),
                     ask<bool>(aut, atom::fault_v, name)}) {
    REQUIRE_FALSE(reply);
    CHECK(reply.error() == ec::invalid_input);
    CHECK(render(reply.error()) == "no actor named nope");
  }
}

TEST_CASE_METHOD(fixture, "a start function that throws is a failure",
                 "[supervisor]") {
  auto p = std::make_shared<probe>();
  p->throw_on_start = 1;
  launch({watched("writer", p)});
  CHECK(p->handles.empty());
  auto x = info("writer");
  CHECK(x.state == child_state::restarting);
  CHECK(x.last_error == "writer did not start: no disk");
  advance(100ms);
  REQUIRE(p->handles.size() == 1);
  CHECK(info("writer").state == child_state::running);
}

TEST_CASE_METHOD(fixture, "children stop when the supervisor is told to exit",
                 "[supervisor]") {
  auto a = std::make_shared<probe>();
  auto b = std::make_shared<probe>();
  launch({watched("writer", a), watched("hub", b)});
  self->monitor(a->handles.at(0));
  self->monitor(b->handles.at(0));
  self->monitor(aut);
  auto drill = caf::make_error(ec::injected_fault, "drill");
  self->send_exit(aut, drill);
  run();
  CHECK(down_reason(a->handles[0].address())
        == caf::exit_reason::user_shutdown);
  CHECK(down_reason(b->handles[0].address())
        == caf::exit_reason::user_shutdown);
  CHECK(down_reason(aut.address()) == drill);
  advance(1min);
  CHECK(a->handles.size() == 1);
  CHECK(b->handles.size() == 1);
}

TEST_CASE_METHOD(fixture,
                 "the parent restarts a nested supervisor that gave up",
                 "[supervisor]") {
  auto relay = std::make_shared<probe>();
  relay->crash_on_start = 2;
  auto nested_policy = exact_policy();
  nested_policy.max_restarts = 1;
  auto parent_policy = exact_policy();
  parent_policy.base = 1s;
  std::vector<supervisor_actor> nested;
  child_spec sync{"sync", "supervisor",
                  [=](caf::local_actor* sup) {
                    return caf::actor_cast<caf::actor>(
                      sup->spawn(supervisor, std::string{"sync"},
                                 std::vector<child_spec>{
                                   watched("relay", relay)},
                                 nested_policy));
                  },
                  [&](const caf::actor& h) {
                    nested.push_back(caf::actor_cast<supervisor_actor>(h));
                  },
                  {}};
  launch({sync}, parent_policy);
  REQUIRE(nested.size() == 1);
  advance(100ms);
  CHECK(relay->attempts.size() == 2);
  auto x = info("sync");
  CHECK(x.kind == "supervisor");
  CHECK(x.state == child_state::restarting);
  CHECK_THAT(x.last_error,
             Contains("sync gave up on relay after 1 restart in 60s"));
  advance(999ms);
  CHECK(nested.size() == 1);
  advance(1ms);
  REQUIRE(nested.size() == 2);
  x = info("sync");
  CHECK(x.state == child_state::running);
  CHECK(x.restarts == 1);
  CHECK(relay->attempts.size() == 3);
  auto y = info("relay", nested[1]);
  CHECK(y.state == child_state::running);
  CHECK(y.parent == "sync");
  CHECK(y.restarts == 0);
}

namespace {

/// A child that notes its name in `order` when it starts.
child_spec noted(std::string name,
                 std::shared_ptr<std::vector<std::string>> order,
                 bool throws = false) {
  return {name, "worker", [=](caf::local_actor* sup) {
            if (throws)
              throw std::runtime_error("no disk");
            order->push_back(name);
            return sup->spawn(worker, false);
          },
          {},
          {}};
}

/// A nested supervisor named `name` over `children`.
child_spec nested_supervisor(std::string name, std::vector<child_spec> children,
                             restart_policy policy = exact_policy()) {
  return supervisor_spec(std::move(name), std::move(children), policy);
}

} // namespace

TEST_CASE_METHOD(fixture,
                 "a sibling starts only after the whole subtree before it",
                 "[supervisor]") {
  // Spawned supervisors start their children when they first run; without
  // waiting, "hub" (one level down in its subtree) would start before
  // "writer" (two levels down in the subtree before it).
  auto order = std::make_shared<std::vector<std::string>>();
  launch({nested_supervisor(
            "ingest", {nested_supervisor("writers", {noted("writer", order)})}),
          nested_supervisor("relay", {noted("hub", order)}),
          noted("control-plane", order)});
  CHECK(*order == std::vector<std::string>{"writer", "hub", "control-plane"});
  CHECK(info("ingest").state == child_state::running);
  CHECK(info("relay").state == child_state::running);
}

TEST_CASE_METHOD(fixture,
                 "a subtree that gives up at start does not hold back the rest",
                 "[supervisor]") {
  auto order = std::make_shared<std::vector<std::string>>();
  auto give_up_at_once = exact_policy();
  give_up_at_once.max_restarts = 0;
  auto parent_policy = exact_policy();
  parent_policy.base = 1s;
  launch({nested_supervisor("sync", {noted("relay", order, true)},
                            give_up_at_once),
          noted("control-plane", order)},
         parent_policy);
  CHECK(*order == std::vector<std::string>{"control-plane"});
  auto sync = info("sync");
  CHECK(sync.state == child_state::restarting);
  CHECK_THAT(sync.last_error, Contains("sync gave up on relay"));
  CHECK(info("control-plane").state == child_state::running);
}

TEST_CASE_METHOD(fixture, "a bad policy or duplicate names are rejected",
                 "[supervisor]") {
  auto policy = exact_policy();
  std::vector<child_spec> specs;
  specs.push_back(watched("writer", std::make_shared<probe>()));
  SECTION("a cap below the base") {
    policy.cap = 10ms;
  }
  SECTION("jitter of 1 or more") {
    policy.jitter = 1.0;
  }
  SECTION("two children with one name") {
    specs.push_back(watched("writer", std::make_shared<probe>()));
  }
  launch(specs, policy);
  self->monitor(aut);
  run();
  CHECK(down_reason(aut.address()) == ec::invalid_configuration);
}
