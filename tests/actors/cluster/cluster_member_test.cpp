// The CLUSTER MEMBER's dialling rule: of two members that know each other's
// names, the higher name leaves the dialling to the lower one for a connect
// timeout (CAF keeps one connection per pair of nodes, and two dialled at
// once tear each other down).

#include "actors/cluster/cluster_member.hpp"

#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/fixtures/quiet_log.hpp"

#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/test_multiplexer.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

/// A deterministic system with a middleman on CAF's test multiplexer: a
/// dial reaches no network and fails at once.
struct member_fixture {
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    test::deterministic_actor_system::init(cfg);
    cfg.load<caf::io::middleman>();
    cfg.set("middleman.network-backend", caf::atom("testing"));
    cfg.set("middleman.manual-multiplexing", true);
    cfg.set("middleman.attach-utility-actors", true);
    return cfg;
  }

  member_fixture()
    : sys(init(cfg)),
      self(sys, true),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
      mpx(dynamic_cast<caf::io::network::test_multiplexer&>(
        sys.middleman().backend())) {
    // nop
  }

  ~member_fixture() {
    self->send_exit(member, caf::exit_reason::user_shutdown);
    run();
  }

  void run() {
    while (sched.run() + (mpx.try_exec_runnable() ? 1 : 0) > 0)
      ;
  }

  void advance(caf::timespan dt) {
    sched.advance_time(dt);
    run();
  }

  void spawn(std::string me, std::string peer) {
    auto identity = std::make_shared<cluster_identity>();
    identity->self.name = std::move(me);
    member = sys.spawn(cluster_member, std::string{"10.9.9.9:7450"}, config,
                       identity, handle_slot_ptr<membership_actor>{},
                       handle_slot_ptr<cluster_manager_actor>{},
                       cluster_gate_actor{}, std::move(peer));
    run();
  }

  status_map status() {
    self->send(member, atom::get_v, atom::status_v);
    run();
    status_map result;
    self->receive([&](status_map& x) { result = std::move(x); },
                  caf::after(0s) >> [] { FAIL("the member did not answer"); });
    return result;
  }

  std::string link() {
    return caf::get_or(status(), "link", std::string{"?"});
  }

  int64_t attempts() {
    return caf::get_or(status(), "attempts", int64_t{-1});
  }

  test::quiet_log quiet;
  cluster_member_config config;
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::scheduler::test_coordinator& sched;
  caf::io::network::test_multiplexer& mpx;
  cluster_member_actor member;
};

} // namespace

TEST_CASE_METHOD(member_fixture,
                 "a member with the higher name waits a connect timeout for "
                 "the peer to dial, also when gossip says the peer is up",
                 "[cluster][member]") {
  spawn("node-c", "node-b");
  CHECK(link() == "waiting");
  CHECK(attempts() == 0);
  // The manager's "dial now", sent whenever gossip has the peer alive.
  self->send(member, atom::connect_v, dial_now);
  run();
  CHECK(link() == "waiting");
  CHECK(attempts() == 0);
  advance(config.connect_timeout - 1ms);
  CHECK(attempts() == 0);
  // Nobody came: it dials itself (and fails: the address leads nowhere).
  advance(1ms);
  CHECK(attempts() == 1);
  CHECK(link() == "waiting");
}

TEST_CASE_METHOD(member_fixture,
                 "a member with the lower name dials at once",
                 "[cluster][member]") {
  spawn("node-b", "node-c");
  CHECK(attempts() == 1);
}

// Two members that dial each other at once end up with neither connection
// (CAF tears both down). The join under way over the lost one must fail
// when its gate goes down, and dial again after the backoff, instead of
// leaving the peer without a link until the hello's timeout; meanwhile the
// membership counted the peer dead and moved its relays.
TEST_CASE_METHOD(member_fixture,
                 "a join whose connection goes down midway fails at once, "
                 "not at its timeout",
                 "[cluster][member]") {
  spawn("node-b", "node-c");
  REQUIRE(link() == "waiting"); // its own dial failed: no network here
  // The peer dialled us and handed over its gate; our hello is lost with
  // the connection it went over (no answer, no error: a request to a remote
  // actor, unlike a local one, is not bounced when its receiver goes).
  // The unused int: CAF 0.17 binds a reference to a null argument tuple for
  // an actor function that takes none, which UBSan aborts on.
  auto nowhere = sys.spawn([](caf::event_based_actor* sink, int) -> caf::behavior {
    sink->set_default_handler(caf::skip);
    return {[](int) {}};
  }, 0);
  auto silent = sys.spawn(
    [nowhere](caf::event_based_actor* gate, int) -> caf::behavior {
      return {[=](atom::hello, std::string& challenge) {
        return gate->delegate(nowhere, atom::hello_v, std::move(challenge));
      }};
    },
    0);
  self->send(member, atom::join_v, caf::actor_cast<cluster_gate_actor>(silent));
  run();
  REQUIRE(link() == "dialing");
  self->send_exit(silent, caf::exit_reason::kill);
  run();
  CHECK(link() == "waiting");
  CHECK_THAT(caf::get_or(status(), "last_error", std::string{}),
             Catch::Matchers::Contains("the connection went down while joining"));
  const auto before = attempts();
  // It dials again after the backoff, not after a connect timeout.
  advance(config.backoff_cap);
  CHECK(attempts() > before);
  self->send_exit(nowhere, caf::exit_reason::kill);
}

// Backoff with jitter: a failed dial is retried no sooner than the backoff
// and no later than half of it again, so two members that failed together
// do not dial each other at the same moment again.
TEST_CASE_METHOD(member_fixture,
                 "a failed dial is retried after the backoff and at most half "
                 "of it again",
                 "[cluster][member]") {
  spawn("node-b", "node-c");
  REQUIRE(attempts() == 1); // failed: no network here
  advance(config.backoff - 1ms);
  CHECK(attempts() == 1);
  advance(config.backoff / 2 + 1ms);
  CHECK(attempts() == 2);
}
