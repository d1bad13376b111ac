#include "actors/cluster/membership.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/cluster/rendezvous.hpp"
#include "messages/error.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/fixtures/quiet_log.hpp"

#include <caf/after.hpp>
#include <caf/settings.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using cluster::member_state;
using Catch::Matchers::Contains;

namespace {

const std::string key_a(64, 'a');
const std::string key_b(64, 'b');
const std::string key_c(64, 'c');
const std::string key_d(64, 'd');

cluster::member_heartbeat announce(const std::string& name,
                                   const std::string& pubkey,
                                   uint64_t incarnation) {
  cluster::member_heartbeat result;
  result.name = name;
  result.pubkey = pubkey;
  result.incarnation = incarnation;
  result.relay_url = "ws://" + name + ".example:7447";
  result.admin_url = "http://" + name + ".example:7448";
  return result;
}

membership_config node_a_config() {
  membership_config result;
  result.self = announce("node-a", key_a, 1);
  result.heartbeat = 1s;
  result.failure_timeout = 5s;
  return result;
}

using live_sets = std::vector<std::vector<std::string>>;

/// A listener that writes down every live set it is told.
membership_listener_actor::behavior_type
recorder(membership_listener_actor::pointer, live_sets* seen) {
  return {
    [seen](atom::members, std::vector<std::string>& live) {
      seen->push_back(std::move(live));
    },
  };
}

std::vector<std::string> relay_urls(size_t n) {
  std::vector<std::string> result;
  for (size_t i = 0; i < n; ++i)
    result.push_back("wss://relay" + std::to_string(i) + ".example.com");
  return result;
}

struct fixture : test::deterministic_actor_system {
  fixture() {
    // nop
  }

  ~fixture() {
    if (aut)
      self->send_exit(aut, caf::exit_reason::user_shutdown);
    if (listener)
      self->send_exit(listener, caf::exit_reason::user_shutdown);
    run();
  }

  void launch(membership_config config = node_a_config()) {
    aut = sys.spawn(membership, config);
    run();
    listener = sys.spawn(recorder, &seen);
    self->send(aut, atom::subscribe_v, listener);
    run();
  }

  template <class T, class... Ts>
  caf::expected<T> ask(Ts&&... xs) {
    self->send(aut, std::forward<Ts>(xs)...);
    run();
    caf::expected<T> result = caf::make_error(caf::sec::request_timeout);
    self->receive([&](T& x) { result = std::move(x); },
                  [&](caf::error& err) { result = std::move(err); },
                  caf::after(0s) >>
                    [] { FAIL("no reply from the membership"); });
    return result;
  }

  caf::expected<member_state> beat(const std::string& name,
                                   const std::string& pubkey,
                                   uint64_t incarnation) {
    return ask<member_state>(atom::heartbeat_v,
                             announce(name, pubkey, incarnation));
  }

  cluster::cluster_view view() {
    auto x = ask<cluster::cluster_view>(atom::get_v, atom::members_v);
    REQUIRE(x);
    return *x;
  }

  cluster::member_info member(const std::string& name) {
    for (auto& x : view().members)
      if (x.name == name)
        return x;
    FAIL("no member " << name);
    return {};
  }

  member_state state_of(const std::string& name) {
    return member(name).state;
  }

  std::string owner(const std::string& key) {
    auto x = ask<std::string>(atom::get_v, atom::owner_v, key);
    REQUIRE(x);
    return *x;
  }

  /// Lets `dt` pass in heartbeat-interval steps, each member in `beating`
  /// heartbeating (incarnation 1) before every step.
  void pass(caf::timespan dt,
            const std::map<std::string, std::string>& beating = {}) {
    for (auto t = caf::timespan{0}; t < dt; t += 1s) {
      for (const auto& [name, key] : beating)
        REQUIRE(beat(name, key, 1));
      advance(1s);
    }
  }

  // Joins, deaths and refusals are logged; keep the test output readable.
  ferry::test::quiet_log quiet;
  membership_actor aut;
  membership_listener_actor listener;
  live_sets seen;
};

using names = std::vector<std::string>;

} // namespace

TEST_CASE_METHOD(fixture, "a node sees itself and members join by heartbeat",
                 "[membership]") {
  launch();
  REQUIRE(seen == live_sets{names{"node-a"}});
  auto me = member("node-a");
  CHECK(me.state == member_state::alive);
  CHECK(me.pubkey == key_a);
  CHECK(view().self == "node-a");
  CHECK(beat("node-b", key_b, 1) == member_state::alive);
  auto b = member("node-b");
  CHECK(b.pubkey == key_b);
  CHECK(b.incarnation == 1);
  CHECK(b.relay_url == "ws://node-b.example:7447");
  CHECK(b.admin_url == "http://node-b.example:7448");
  CHECK(b.last_heartbeat > 0);
  CHECK(seen.back() == names{"node-a", "node-b"});
  // Further heartbeats change nothing the listeners care about.
  auto told = seen.size();
  pass(3s, {{"node-b", key_b}});
  CHECK(seen.size() == told);
  auto st = ask<status_map>(atom::get_v, atom::status_v);
  REQUIRE(st);
  CHECK(caf::get<int64_t>(*st, "members.total") == 2);
  CHECK(caf::get<int64_t>(*st, "members.alive") == 2);
  CHECK(caf::get<std::string>(*st, "self") == "node-a");
  CHECK(caf::holds_alternative<int64_t>(*st, "mailbox"));
}

TEST_CASE_METHOD(fixture,
                 "a silent member turns suspect, then dead within the "
                 "failure timeout",
                 "[membership]") {
  launch();
  REQUIRE(beat("node-b", key_b, 1));
  // Its socket may still be open: only heartbeats count.
  pass(2s);
  CHECK(state_of("node-b") == member_state::alive);
  pass(1s);
  CHECK(state_of("node-b") == member_state::suspect);
  CHECK(member("node-b").silent_for == 3s);
  // A suspect member keeps its relays.
  CHECK(seen.back() == names{"node-a", "node-b"});
  pass(1s);
  CHECK(state_of("node-b") == member_state::suspect);
  pass(1s);
  CHECK(state_of("node-b") == member_state::dead);
  CHECK(seen.back() == names{"node-a"});
}

TEST_CASE_METHOD(fixture, "a member that keeps heartbeating stays alive",
                 "[membership]") {
  launch();
  pass(20s, {{"node-b", key_b}});
  CHECK(state_of("node-b") == member_state::alive);
  CHECK(seen.back() == names{"node-a", "node-b"});
}

TEST_CASE_METHOD(fixture,
                 "a dead member rejoins with a higher incarnation, and an "
                 "older one is ignored",
                 "[membership]") {
  launch();
  REQUIRE(beat("node-b", key_b, 1));
  pass(5s);
  REQUIRE(state_of("node-b") == member_state::dead);
  auto restarted = announce("node-b", key_b, 2);
  restarted.relay_url = "ws://node-b.example:9447";
  auto reply = ask<member_state>(atom::heartbeat_v, restarted);
  CHECK(reply == member_state::alive);
  auto b = member("node-b");
  CHECK(b.incarnation == 2);
  CHECK(b.relay_url == "ws://node-b.example:9447");
  CHECK(seen.back() == names{"node-a", "node-b"});
  // A heartbeat of the old process, still in flight, changes nothing.
  CHECK(beat("node-b", key_b, 1) == member_state::alive);
  CHECK(member("node-b").incarnation == 2);
  CHECK(member("node-b").relay_url == "ws://node-b.example:9447");
  // Nor does it revive the new incarnation once that is dead.
  pass(5s);
  REQUIRE(state_of("node-b") == member_state::dead);
  CHECK(beat("node-b", key_b, 1) == member_state::dead);
  CHECK(state_of("node-b") == member_state::dead);
  CHECK(seen.back() == names{"node-a"});
}

TEST_CASE_METHOD(fixture,
                 "a dead member heard again in its incarnation is back",
                 "[membership]") {
  launch();
  REQUIRE(beat("node-b", key_b, 1));
  pass(5s);
  REQUIRE(state_of("node-b") == member_state::dead);
  CHECK(beat("node-b", key_b, 1) == member_state::alive);
  CHECK(seen.back() == names{"node-a", "node-b"});
}

TEST_CASE_METHOD(fixture, "a known name with another pubkey is refused",
                 "[membership]") {
  launch();
  REQUIRE(beat("node-b", key_b, 1));
  auto reply = beat("node-b", key_c, 2);
  REQUIRE_FALSE(reply);
  CHECK(reply.error() == ec::conflict);
  auto b = member("node-b");
  CHECK(b.pubkey == key_b);
  CHECK(b.incarnation == 1);
  auto refused = view().refused;
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].name == "node-b");
  CHECK(refused[0].pubkey == key_c);
  CHECK_THAT(refused[0].reason, Contains("known with pubkey " + key_b));
  CHECK(refused[0].times == 1);
  // It keeps trying: one entry, counted.
  CHECK_FALSE(beat("node-b", key_c, 3));
  refused = view().refused;
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].times == 2);
  // Nobody may take this node's own name either.
  auto impostor = beat("node-a", key_d, 9);
  REQUIRE_FALSE(impostor);
  CHECK(impostor.error() == ec::conflict);
  CHECK(member("node-a").pubkey == key_a);
  CHECK(view().refused.size() == 2);
  auto st = ask<status_map>(atom::get_v, atom::status_v);
  REQUIRE(st);
  CHECK(caf::get<caf::config_value::list>(*st, "refused").size() == 2);
  CHECK(seen.back() == names{"node-a", "node-b"});
}

TEST_CASE_METHOD(fixture, "the allow-list refuses other keys", "[membership]") {
  auto config = node_a_config();
  config.allowed_pubkeys = {key_a, key_b};
  launch(config);
  CHECK(beat("node-b", key_b, 1) == member_state::alive);
  auto stranger = beat("node-c", key_c, 1);
  REQUIRE_FALSE(stranger);
  CHECK(stranger.error() == ec::invalid_input);
  auto refused = view().refused;
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].name == "node-c");
  CHECK_THAT(refused[0].reason, Contains("not among the cluster members"));
  CHECK(view().members.size() == 2);
  CHECK(seen.back() == names{"node-a", "node-b"});
}

TEST_CASE_METHOD(fixture, "malformed heartbeats are refused", "[membership]") {
  launch();
  CHECK(beat("", key_b, 1).error() == ec::invalid_input);
  CHECK(beat("node-b", "B" + key_b.substr(1), 1).error() == ec::invalid_input);
  CHECK(beat("node-b", key_b.substr(2), 1).error() == ec::invalid_input);
  CHECK(view().members.size() == 1);
  CHECK(view().refused.size() == 3);
}

TEST_CASE_METHOD(fixture, "a graceful leave moves the member out at once",
                 "[membership]") {
  launch();
  REQUIRE(beat("node-b", key_b, 1));
  self->send(aut, atom::leave_v, std::string{"node-b"}, uint64_t{1});
  run();
  CHECK(state_of("node-b") == member_state::left);
  CHECK(seen.back() == names{"node-a"});
  // Its last heartbeats, sent before it left, do not bring it back.
  CHECK(beat("node-b", key_b, 1) == member_state::left);
  CHECK(state_of("node-b") == member_state::left);
  // Silence does not turn a member that left into a dead one.
  pass(10s);
  CHECK(state_of("node-b") == member_state::left);
  // Restarted, it comes back with a higher incarnation.
  CHECK(beat("node-b", key_b, 2) == member_state::alive);
  CHECK(seen.back() == names{"node-a", "node-b"});
  // A leave from the old incarnation is ignored.
  self->send(aut, atom::leave_v, std::string{"node-b"}, uint64_t{1});
  run();
  CHECK(state_of("node-b") == member_state::alive);
  // Leaves naming this node or a stranger change nothing.
  self->send(aut, atom::leave_v, std::string{"node-a"}, uint64_t{5});
  self->send(aut, atom::leave_v, std::string{"node-x"}, uint64_t{5});
  run();
  CHECK(state_of("node-a") == member_state::alive);
  CHECK(view().members.size() == 2);
}

TEST_CASE_METHOD(fixture,
                 "a member dead or left for the forget period is forgotten "
                 "until it heartbeats again",
                 "[membership]") {
  auto config = node_a_config();
  config.forget_after = 20s;
  launch(config);
  REQUIRE(beat("node-b", key_b, 1));
  REQUIRE(beat("node-c", key_c, 1));
  self->send(aut, atom::leave_v, std::string{"node-c"}, uint64_t{1});
  run();
  auto told = seen.size();
  // node-b dies after 5 s of silence; both are forgotten 20 s after their
  // last heartbeat, not before.
  pass(19s);
  CHECK(state_of("node-b") == member_state::dead);
  CHECK(state_of("node-c") == member_state::left);
  pass(1s);
  CHECK(state_of("node-b") == member_state::forgotten);
  CHECK(state_of("node-c") == member_state::forgotten);
  // Neither owned relays any more: the live set did not change again.
  CHECK(seen.size() == told + 1);
  CHECK(seen.back() == names{"node-a"});
  // A late goodbye keeps node-b forgotten; a heartbeat brings it back.
  self->send(aut, atom::leave_v, std::string{"node-b"}, uint64_t{1});
  run();
  CHECK(state_of("node-b") == member_state::forgotten);
  CHECK(beat("node-b", key_b, 1) == member_state::alive);
  CHECK(seen.back() == names{"node-a", "node-b"});
  auto st = ask<status_map>(atom::get_v, atom::status_v);
  REQUIRE(st);
  CHECK(caf::get<int64_t>(*st, "members.forgotten") == 1);
}

TEST_CASE_METHOD(fixture,
                 "a lost connection makes a member suspect until it "
                 "heartbeats again",
                 "[membership]") {
  launch();
  REQUIRE(beat("node-b", key_b, 1));
  auto told = seen.size();
  self->send(aut, atom::closed_v, std::string{"node-b"});
  run();
  CHECK(state_of("node-b") == member_state::suspect);
  CHECK(seen.size() == told);
  CHECK(beat("node-b", key_b, 1) == member_state::alive);
  // Without heartbeats, it dies on the usual timeout.
  self->send(aut, atom::closed_v, std::string{"node-b"});
  run();
  pass(4s);
  CHECK(state_of("node-b") == member_state::suspect);
  pass(1s);
  CHECK(state_of("node-b") == member_state::dead);
  CHECK(seen.back() == names{"node-a"});
}

TEST_CASE_METHOD(fixture, "ownership moves only for the dead member's relays",
                 "[membership]") {
  launch();
  std::map<std::string, std::string> beating{{"node-b", key_b},
                                             {"node-c", key_c}};
  pass(1s, beating);
  auto urls = relay_urls(300);
  std::map<std::string, std::string> before;
  for (const auto& url : urls) {
    before[url] = owner(url);
    CHECK(before[url]
          == cluster::rendezvous_owner(url, {"node-a", "node-b", "node-c"}));
  }
  // node-c stalls; node-b keeps heartbeating.
  beating.erase("node-c");
  pass(5s, beating);
  REQUIRE(state_of("node-c") == member_state::dead);
  size_t moved = 0;
  for (const auto& url : urls) {
    auto now = owner(url);
    if (before[url] == "node-c") {
      ++moved;
      CHECK(now != "node-c");
      CHECK(now == cluster::rendezvous_owner(url, {"node-a", "node-b"}));
    } else {
      CHECK(now == before[url]);
    }
  }
  CHECK(moved > 50);
}

TEST_CASE_METHOD(fixture, "an unsubscribed or gone listener is told nothing",
                 "[membership]") {
  launch();
  live_sets other_seen;
  auto other = sys.spawn(recorder, &other_seen);
  self->send(aut, atom::subscribe_v, other);
  run();
  REQUIRE(other_seen.size() == 1);
  self->send(aut, atom::unsubscribe_v, listener);
  self->send_exit(other, caf::exit_reason::user_shutdown);
  run();
  auto told = seen.size();
  REQUIRE(beat("node-b", key_b, 1));
  CHECK(seen.size() == told);
  CHECK(other_seen.size() == 1);
  auto st = ask<status_map>(atom::get_v, atom::status_v);
  REQUIRE(st);
  CHECK(caf::get<caf::config_value::list>(*st, "live").size() == 2);
  CHECK(caf::get<int64_t>(*st, "listeners") == 0);
}

TEST_CASE("membership configurations are validated", "[membership]") {
  CHECK_FALSE(validate(node_a_config()));
  auto config = node_a_config();
  config.self.name.clear();
  CHECK(validate(config) == ec::invalid_configuration);
  config = node_a_config();
  config.self.pubkey = "npub1";
  CHECK(validate(config) == ec::invalid_configuration);
  config = node_a_config();
  config.failure_timeout = config.heartbeat;
  CHECK(validate(config) == ec::invalid_configuration);
  config = node_a_config();
  config.forget_after = config.failure_timeout;
  CHECK(validate(config) == ec::invalid_configuration);
  config = node_a_config();
  config.allowed_pubkeys = {key_b};
  CHECK(validate(config) == ec::invalid_configuration);
  config.allowed_pubkeys = {key_a, "zz"};
  CHECK(validate(config) == ec::invalid_configuration);
  config.allowed_pubkeys = {key_a, key_b};
  CHECK_FALSE(validate(config));
}

TEST_CASE_METHOD(fixture, "a membership with an invalid configuration quits",
                 "[membership]") {
  auto config = node_a_config();
  config.failure_timeout = 500ms;
  auto doomed = self->spawn<caf::monitored>(membership, config);
  run();
  caf::error reason;
  self->receive([&](const caf::down_msg& dm) { reason = dm.reason; },
                caf::after(0s) >> [] { FAIL("the membership did not quit"); });
  CHECK(reason == ec::invalid_configuration);
}
