#include "actors/sync/pending_batches.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/error.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/fixtures/quiet_log.hpp"

#include <caf/after.hpp>
#include <caf/settings.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

/// One notification the listener got.
struct settled {
  bool confirmed;
  batch_info batch;
};

struct mock_listener_state {
  std::shared_ptr<std::vector<settled>> seen;
  static inline constexpr const char* name = "mock-listener";
};

/// A listener with the real interface that records every settled batch.
batch_listener_actor::behavior_type
mock_listener(batch_listener_actor::stateful_pointer<mock_listener_state> self,
              std::shared_ptr<std::vector<settled>> seen) {
  self->state.seen = std::move(seen);
  return {
    [self](atom::confirmed, batch_info& b) {
      self->state.seen->push_back({true, std::move(b)});
    },
    [self](atom::failed, batch_info& b) {
      self->state.seen->push_back({false, std::move(b)});
    },
  };
}

const std::string relay_a = "wss://a.example";
const std::string relay_b = "wss://b.example";

using strings = std::vector<std::string>;

std::vector<sub_outcome> outcomes(const batch_info& b) {
  std::vector<sub_outcome> result;
  for (const auto& s : b.subscriptions)
    result.push_back(s.outcome);
  return result;
}

struct fixture : test::deterministic_actor_system {
  fixture() {
    listener = sys.spawn(mock_listener, seen);
    pending_batches_config config;
    config.timeout = 30s;
    aut = sys.spawn(pending_batches, config, listener);
    run();
  }

  ~fixture() {
    self->send_exit(aut, caf::exit_reason::user_shutdown);
    self->send_exit(listener, caf::exit_reason::user_shutdown);
    run();
  }

  /// Sends a request to the actor and collects its reply or error.
  template <class T, class... Ts>
  caf::expected<T> ask(Ts&&... xs) {
    return reply_of<T>(aut, "pending batches", std::forward<Ts>(xs)...);
  }

  uint64_t open(const std::string& relay, strings subs,
                std::string payload = "repos") {
    auto id = ask<uint64_t>(atom::open_v, relay, std::move(subs),
                            std::move(payload));
    REQUIRE(id);
    return *id;
  }

  void eose(const std::string& relay, const std::string& sub) {
    self->send(aut, atom::eose_v, relay, sub);
    run();
  }

  void closed(const std::string& relay, const std::string& sub,
              const std::string& reason) {
    self->send(aut, atom::closed_v, relay, sub, reason);
    run();
  }

  void lost(const std::string& relay) {
    self->send(aut, atom::lost_v, relay);
    run();
  }

  std::vector<batch_info> pending(const std::string& relay) {
    auto xs = ask<std::vector<batch_info>>(atom::get_v, atom::pending_v, relay);
    REQUIRE(xs);
    return *xs;
  }

  // Failed batches log warnings; keep the test output readable.
  ferry::test::quiet_log quiet;
  std::shared_ptr<std::vector<settled>> seen
    = std::make_shared<std::vector<settled>>();
  batch_listener_actor listener;
  pending_batches_actor aut;
};

} // namespace

TEST_CASE_METHOD(fixture, "confirmed only after every subscription's EOSE",
                 "[pending_batches]") {
  auto id = open(relay_a, {"s1", "s2", "s3"}, "30617:abc:repo");
  eose(relay_a, "s2");
  eose(relay_a, "s1");
  CHECK(seen->empty());
  auto open_now = pending(relay_a);
  REQUIRE(open_now.size() == 1);
  CHECK(open_now[0].id == id);
  CHECK(outcomes(open_now[0])
        == std::vector<sub_outcome>{sub_outcome::eose, sub_outcome::eose,
                                    sub_outcome::pending});
  advance(2s);
  eose(relay_a, "s3");
  REQUIRE(seen->size() == 1);
  const auto& x = (*seen)[0];
  CHECK(x.confirmed);
  CHECK(x.batch.id == id);
  CHECK(x.batch.relay == relay_a);
  CHECK(x.batch.payload == "30617:abc:repo");
  CHECK(x.batch.opened_at > 0);
  CHECK(x.batch.elapsed == 2s);
  CHECK(outcomes(x.batch) == std::vector<sub_outcome>(3, sub_outcome::eose));
  CHECK(pending(relay_a).empty());
  SECTION("a repeated EOSE changes nothing") {
    eose(relay_a, "s3");
    CHECK(seen->size() == 1);
  }
  SECTION("the confirmed batch's timer does not fail it later") {
    advance(1min);
    CHECK(seen->size() == 1);
  }
}

TEST_CASE_METHOD(fixture, "a CLOSED subscription is done, but failed",
                 "[pending_batches]") {
  open(relay_a, {"s1", "s2"});
  closed(relay_a, "s1", "error: too many subscriptions");
  CHECK(seen->empty());
  eose(relay_a, "s2");
  REQUIRE(seen->size() == 1);
  const auto& x = (*seen)[0];
  CHECK(x.confirmed);
  CHECK(outcomes(x.batch)
        == std::vector<sub_outcome>{sub_outcome::closed, sub_outcome::eose});
  CHECK(x.batch.subscriptions[0].reason == "error: too many subscriptions");
  CHECK(x.batch.subscriptions[1].reason.empty());
}

TEST_CASE_METHOD(fixture, "losing a relay fails its open batches",
                 "[pending_batches]") {
  auto first = open(relay_a, {"a1", "a2"});
  auto second = open(relay_a, {"a3"});
  open(relay_b, {"b1"});
  eose(relay_a, "a1");
  lost(relay_a);
  REQUIRE(seen->size() == 2);
  CHECK(!(*seen)[0].confirmed);
  CHECK((*seen)[0].batch.id == first);
  CHECK(outcomes((*seen)[0].batch)
        == std::vector<sub_outcome>{sub_outcome::eose, sub_outcome::lost});
  CHECK((*seen)[0].batch.subscriptions[1].reason == "connection lost");
  CHECK(!(*seen)[1].confirmed);
  CHECK((*seen)[1].batch.id == second);
  CHECK(pending(relay_a).empty());
  CHECK(pending(relay_b).size() == 1);
  // A late EOSE for a failed batch is ignored, and the ids are free again.
  eose(relay_a, "a2");
  CHECK(seen->size() == 2);
  open(relay_a, {"a1", "a2"});
  CHECK(pending(relay_a).size() == 1);
}

TEST_CASE_METHOD(fixture, "a batch not confirmed in time fails",
                 "[pending_batches]") {
  auto id = open(relay_a, {"s1", "s2"});
  eose(relay_a, "s1");
  advance(29s);
  CHECK(seen->empty());
  advance(1s);
  REQUIRE(seen->size() == 1);
  const auto& x = (*seen)[0];
  CHECK(!x.confirmed);
  CHECK(x.batch.id == id);
  CHECK(x.batch.elapsed == 30s);
  CHECK(outcomes(x.batch)
        == std::vector<sub_outcome>{sub_outcome::eose, sub_outcome::timed_out});
  CHECK(pending(relay_a).empty());
  eose(relay_a, "s2");
  CHECK(seen->size() == 1);
}

TEST_CASE_METHOD(fixture, "relays are independent", "[pending_batches]") {
  auto on_a = open(relay_a, {"s"});
  auto on_b = open(relay_b, {"s"});
  CHECK(on_a != on_b);
  eose(relay_b, "s");
  REQUIRE(seen->size() == 1);
  CHECK((*seen)[0].batch.id == on_b);
  CHECK(pending(relay_a).size() == 1);
  lost(relay_b);
  CHECK(seen->size() == 1);
  eose(relay_a, "s");
  REQUIRE(seen->size() == 2);
  CHECK((*seen)[1].confirmed);
  CHECK((*seen)[1].batch.id == on_a);
}

TEST_CASE_METHOD(fixture, "bad batches are refused", "[pending_batches]") {
  open(relay_a, {"s1"});
  auto refused = [&](const std::string& relay, strings subs) {
    auto id = ask<uint64_t>(atom::open_v, relay, std::move(subs),
                            std::string{});
    REQUIRE(!id);
    CHECK(id.error() == ec::invalid_input);
  };
  refused(relay_a, {});
  refused("", {"x"});
  refused(relay_a, {"x", "x"});
  refused(relay_a, {"x", "s1"});
  CHECK(pending(relay_a).size() == 1);
  CHECK(pending(relay_a)[0].subscriptions.size() == 1);
}

TEST_CASE_METHOD(fixture, "open batches are listed per relay and in status",
                 "[pending_batches]") {
  open(relay_a, {"s1", "s2"}, "first");
  advance(5s);
  open(relay_b, {"s1"}, "second");
  open(relay_a, {"s3"}, "third");
  eose(relay_a, "s2");
  eose(relay_b, "nobody");
  auto all = ask<std::vector<batch_info>>(atom::get_v, atom::pending_v);
  REQUIRE(all);
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].payload == "first");
  CHECK((*all)[0].elapsed == 5s);
  CHECK((*all)[1].payload == "second");
  CHECK((*all)[2].payload == "third");
  auto on_a = pending(relay_a);
  REQUIRE(on_a.size() == 2);
  CHECK(on_a[1].payload == "third");
  auto st = ask<status_map>(atom::get_v, atom::status_v);
  REQUIRE(st);
  CHECK(caf::get<int64_t>(*st, "open.batches") == 3);
  CHECK(caf::get<int64_t>(*st, "open.subscriptions") == 3);
  CHECK(caf::get<int64_t>(*st, "total.opened") == 3);
  CHECK(caf::get<int64_t>(*st, "total.unmatched") == 1);
  CHECK(caf::get<caf::timespan>(*st, "timeout") == 30s);
  CHECK(caf::holds_alternative<int64_t>(*st, "mailbox"));
  auto relays = caf::get<caf::settings>(*st, "relays");
  auto i = relays.find(relay_a);
  REQUIRE(i != relays.end());
  auto a = caf::get<caf::settings>(i->second);
  CHECK(caf::get<int64_t>(a, "batches") == 2);
  CHECK(caf::get<int64_t>(a, "waiting") == 2);
}

TEST_CASE("the batch state works without an actor", "[pending_batches]") {
  pending_batches_state st;
  caf::actor_clock::time_point t0{};
  auto id = st.open("r", {"x", "y"}, "p", t0);
  REQUIRE(id);
  CHECK(!st.eose("r", "x", t0));
  CHECK(!st.closed("r", "y-other", "nope", t0));
  CHECK(st.unmatched == 1);
  auto done = st.closed("r", "y", "blocked", t0 + 1s);
  REQUIRE(done);
  CHECK(done->id == *id);
  CHECK(done->elapsed == 1s);
  CHECK(st.confirmed == 1);
  CHECK(st.batches.empty());
  CHECK(st.by_subscription.empty());
  CHECK(!st.expire(*id, t0 + 1min));
}

TEST_CASE("a non-positive batch timeout is rejected", "[pending_batches]") {
  test::deterministic_actor_system f;
  auto seen = std::make_shared<std::vector<settled>>();
  auto listener = f.sys.spawn(mock_listener, seen);
  pending_batches_config config;
  config.timeout = 0s;
  auto aut = f.sys.spawn(pending_batches, config, listener);
  f.self->monitor(aut);
  f.run();
  f.self->receive(
    [&](caf::down_msg& msg) {
      CHECK(msg.reason == caf::make_error(ec::invalid_configuration));
    },
    caf::after(0s) >> [] { FAIL("pending batches did not quit"); });
  f.self->send_exit(listener, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture, "a batch opened with its own listener tells only "
                          "that listener",
                 "[pending_batches]") {
  auto own_seen = std::make_shared<std::vector<settled>>();
  auto own = sys.spawn(mock_listener, own_seen);
  auto first = ask<uint64_t>(atom::open_v, own, relay_a, strings{"x"},
                             std::string{"catchup:1"});
  REQUIRE(first);
  auto second = ask<uint64_t>(atom::open_v, own, relay_a, strings{"y"},
                              std::string{"catchup:1"});
  REQUIRE(second);
  auto shared = open(relay_a, {"z"});
  eose(relay_a, "x");
  REQUIRE(own_seen->size() == 1);
  CHECK(own_seen->front().confirmed);
  CHECK(own_seen->front().batch.id == *first);
  CHECK(own_seen->front().batch.payload == "catchup:1");
  lost(relay_a);
  REQUIRE(own_seen->size() == 2);
  CHECK_FALSE((*own_seen)[1].confirmed);
  CHECK((*own_seen)[1].batch.id == *second);
  // The default listener hears only of the batch opened without one.
  REQUIRE(seen->size() == 1);
  CHECK(seen->front().batch.id == shared);
  self->send_exit(own, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture, "a batch whose own listener stops fails and frees "
                          "its subscription ids",
                 "[pending_batches]") {
  // A relay connection tracks its catch-up with itself as the listener;
  // when the sync manager stops it (its relay moved to another member), the
  // next connection to that relay on this node opens the same ids again.
  auto own_seen = std::make_shared<std::vector<settled>>();
  auto own = sys.spawn(mock_listener, own_seen);
  REQUIRE(ask<uint64_t>(atom::open_v, own, relay_a, strings{"ferry-live"},
                        std::string{"catchup:1"}));
  REQUIRE(ask<uint64_t>(atom::open_v, own, relay_b, strings{"ferry-live"},
                        std::string{"catchup:1"}));
  auto shared = open(relay_a, {"other"});
  // While it runs, the ids are taken.
  CHECK_FALSE(ask<uint64_t>(atom::open_v, listener, relay_a,
                            strings{"ferry-live"}, std::string{"catchup:2"}));
  self->send_exit(own, caf::exit_reason::user_shutdown);
  run();
  auto left = pending(relay_a);
  REQUIRE(left.size() == 1);
  CHECK(left.front().id == shared);
  CHECK(pending(relay_b).empty());
  // Nobody else hears of the failed batches; the counters do.
  CHECK(seen->empty());
  auto status = ask<status_map>(atom::get_v, atom::status_v);
  REQUIRE(status);
  CHECK(caf::get_or(*status, "total.lost", int64_t{0}) == 2);
  auto next = sys.spawn(mock_listener, own_seen);
  CHECK(ask<uint64_t>(atom::open_v, next, relay_a, strings{"ferry-live"},
                      std::string{"catchup:2"}));
  self->send_exit(next, caf::exit_reason::user_shutdown);
  run();
}
