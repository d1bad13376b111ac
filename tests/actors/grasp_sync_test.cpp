#include "actors/grasp_sync.hpp"

#include "actors/logging.hpp"
#include "messages/error.hpp"
#include "store/repo_sync_store.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/store/store_fixture.hpp"

#include <caf/after.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

using namespace ferry;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

/// One command the relay driver received.
struct command {
  std::string verb;
  std::string relay;
  std::vector<grasp::subscription> subs;
  std::vector<std::string> closed;

  /// Every filter of every subscription, as one text.
  std::string filters() const {
    std::string out;
    for (const auto& sub : subs)
      for (const auto& f : sub.filters)
        out += f + "\n";
    return out;
  }
};

using command_log = std::vector<command>;

struct driver_state {
  std::shared_ptr<command_log> log;
  static inline constexpr const char* name = "recording-driver";
};

/// Stands for the remote side: records what GRASP SYNC asks of the relays.
/// The tests answer as the relays would (connected, EOSE, lost).
grasp_driver_actor::behavior_type
recording_driver(grasp_driver_actor::stateful_pointer<driver_state> self,
                 std::shared_ptr<command_log> log) {
  self->state.log = std::move(log);
  return {
    [self](atom::connect, const std::string& relay,
           const std::vector<grasp::subscription>& subs) {
      self->state.log->push_back({"connect", relay, subs, {}});
    },
    [self](atom::subscribe, const std::string& relay,
           const std::vector<grasp::subscription>& subs) {
      self->state.log->push_back({"subscribe", relay, subs, {}});
    },
    [self](atom::unsubscribe, const std::string& relay,
           const std::vector<std::string>& ids) {
      self->state.log->push_back({"unsubscribe", relay, {}, ids});
    },
    [self](atom::drop, const std::string& relay) {
      self->state.log->push_back({"drop", relay, {}, {}});
    },
  };
}

constexpr int64_t start_time = 1'700'000'000;
const std::string r1 = "wss://r1.example";
const std::string r2 = "wss://r2.example";

std::string address(const std::string& d) {
  return "30617:" + std::string(64, 'a') + ":" + d;
}

struct fixture : test::deterministic_actor_system {
  fixture() {
    saved_level = log::get().level();
    log::get().set_level(spdlog::level::off);
    driver = sys.spawn(recording_driver, commands);
    driver_slot = std::make_shared<handle_slot<grasp_driver_actor>>(driver);
    config.clock = [this] { return wall; };
    config.seed = 42;
  }

  ~fixture() {
    stop();
    self->send_exit(driver, caf::exit_reason::user_shutdown);
    run();
    log::get().set_level(saved_level);
  }

  void start() {
    aut = sys.spawn(grasp_sync, db.store.get(), driver_slot, config);
    run();
  }

  void stop() {
    if (!aut)
      return;
    self->send_exit(aut, caf::exit_reason::user_shutdown);
    run();
    aut = nullptr;
  }

  /// What the self-subscriber does: write repo_sync, then tell.
  void want(const std::string& d, std::vector<std::string> relays,
            std::vector<std::string> roots = {}) {
    grasp::repo_sync_entry entry;
    entry.address = address(d);
    entry.relays = std::move(relays);
    entry.roots = std::move(roots);
    REQUIRE_FALSE(store::write_repo_sync(*db.store, {entry}, {}));
    self->send(aut, atom::changed_v, std::vector<std::string>{entry.address});
    run();
  }

  void unwant(const std::string& d) {
    REQUIRE_FALSE(store::write_repo_sync(*db.store, {}, {address(d)}));
    self->send(aut, atom::changed_v, std::vector<std::string>{address(d)});
    run();
  }

  /// The commands since the last call.
  command_log take() {
    auto result = std::move(*commands);
    commands->clear();
    return result;
  }

  /// The relay answers every subscription of `cmd` with EOSE.
  void eose_all(const command& cmd) {
    for (const auto& sub : cmd.subs)
      self->send(aut, atom::eose_v, cmd.relay, sub.id);
    run();
  }

  void connected(const std::string& relay) {
    self->send(aut, atom::connected_v, relay);
    run();
  }

  void lost(const std::string& relay) {
    self->send(aut, atom::lost_v, relay, std::string{"connection reset"});
    run();
  }

  /// Moves wall time and the actor clock together.
  void pass(caf::timespan dt) {
    wall += std::chrono::duration_cast<std::chrono::seconds>(dt).count();
    advance(dt);
  }

  grasp::relay_sync_entry record(const std::string& relay) {
    auto entry = store::get_relay_sync(*db.store, relay);
    REQUIRE(entry);
    REQUIRE(*entry);
    return **entry;
  }

  template <class T, class... Ts>
  T ask(Ts... xs) {
    self->send(aut, xs...);
    run();
    T result;
    self->receive([&](T& x) { result = std::move(x); },
                  [&](caf::error& err) { FAIL(render(err)); },
                  caf::after(0s) >> [] { FAIL("no answer"); });
    return result;
  }

  /// Wants repository "a" on r1 and lets r1 confirm it fully.
  void synced_on_r1() {
    want("a", {r1});
    auto cmds = take();
    REQUIRE(cmds.size() == 1);
    connected(r1);
    eose_all(cmds[0]);
    REQUIRE(record(r1).repos == std::vector<std::string>{address("a")});
    take();
  }

  store::test::store_fixture db;
  std::shared_ptr<command_log> commands = std::make_shared<command_log>();
  grasp_driver_actor driver;
  handle_slot_ptr<grasp_driver_actor> driver_slot;
  grasp_sync_config config;
  grasp_sync_actor aut;
  int64_t wall = start_time;
  spdlog::level::level_enum saved_level;
};

} // namespace

TEST_CASE_METHOD(fixture, "a wanted repository's relay is connected with "
                          "its filters and confirmed by EOSE",
                 "[grasp][grasp_sync]") {
  start();
  want("a", {r1});
  auto cmds = take();
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0].verb == "connect");
  CHECK(cmds[0].relay == r1);
  // Layer 1 alone, then layer 2 for the repository.
  REQUIRE(cmds[0].subs.size() == 2);
  CHECK(cmds[0].subs[0].filters
        == std::vector<std::string>{R"({"kinds":[30617,30618]})"});
  CHECK_THAT(cmds[0].subs[1].filters.at(1),
             Contains(R"("#a":[")" + address("a")));
  connected(r1);
  auto rec = record(r1);
  CHECK(rec.status == grasp::link_status::connected);
  CHECK(rec.last_connected == start_time);
  CHECK(rec.repos.empty());
  // Confirmed only when every subscription of the batch had EOSE.
  self->send(aut, atom::eose_v, r1, cmds[0].subs[0].id);
  run();
  CHECK(record(r1).repos.empty());
  self->send(aut, atom::eose_v, r1, cmds[0].subs[1].id);
  run();
  rec = record(r1);
  CHECK(rec.repos == std::vector<std::string>{address("a")});
  CHECK(rec.full_sync_at == start_time);
  CHECK(rec.reconcile_at >= start_time + 23 * 3600);
  CHECK(rec.reconcile_at <= start_time + 25 * 3600);
  CHECK(take().empty());
}

TEST_CASE_METHOD(fixture, "new repositories and root events add filters on "
                          "the live connection",
                 "[grasp][grasp_sync]") {
  start();
  synced_on_r1();
  auto root = std::string(64, 'e');
  want("b", {r1});
  want("a", {r1}, {root});
  auto cmds = take();
  REQUIRE(cmds.size() == 2);
  CHECK(cmds[0].verb == "subscribe");
  CHECK_THAT(cmds[0].filters(), Contains(address("b")));
  CHECK_THAT(cmds[0].filters(), !Contains(address("a")));
  CHECK_THAT(cmds[0].filters(), !Contains("30618"));
  CHECK(cmds[1].verb == "subscribe");
  CHECK_THAT(cmds[1].filters(), Contains(R"("#e":[")" + root));
  CHECK_THAT(cmds[1].filters(), Contains(R"("#E":[")" + root));
  CHECK_THAT(cmds[1].filters(), !Contains("#a"));
  eose_all(cmds[0]);
  eose_all(cmds[1]);
  auto rec = record(r1);
  CHECK(rec.repos == std::vector<std::string>{address("a"), address("b")});
  CHECK(rec.roots == std::vector<std::string>{root});
  // A tick with everything confirmed asks for nothing.
  pass(60s);
  CHECK(take().empty());
}

TEST_CASE_METHOD(fixture, "a relay nobody wants is dropped, a bootstrap relay "
                          "never",
                 "[grasp][grasp_sync]") {
  config.bootstrap_relays = {r2};
  start();
  auto boot = take();
  REQUIRE(boot.size() == 1);
  CHECK(boot[0].verb == "connect");
  CHECK(boot[0].relay == r2);
  CHECK(boot[0].filters() == "{\"kinds\":[30617,30618]}\n");
  CHECK(record(r2).is_bootstrap);
  connected(r2);
  eose_all(boot[0]);
  synced_on_r1();
  want("a", {r2});
  auto cmds = take();
  REQUIRE(cmds.size() == 2);
  CHECK(cmds[0].verb == "drop");
  CHECK(cmds[0].relay == r1);
  CHECK(record(r1).status == grasp::link_status::disconnected);
  CHECK(record(r1).disconnected_at == start_time);
  CHECK(cmds[1].verb == "subscribe");
  CHECK(cmds[1].relay == r2);
  eose_all(cmds[1]);
  unwant("a");
  CHECK(take().empty());
  // Unwanted for longer than the 15-minute rule: r1's record is forgotten.
  pass(16min);
  auto forgotten = store::get_relay_sync(*db.store, r1);
  REQUIRE(forgotten);
  CHECK_FALSE(*forgotten);
  CHECK(take().empty());
}

TEST_CASE_METHOD(fixture, "a relay back within 15 minutes catches up, later "
                          "it syncs fully",
                 "[grasp][grasp_sync]") {
  start();
  synced_on_r1();
  pass(1min); // the tick keeps last_connected current
  auto seen_at = wall;
  CHECK(record(r1).last_connected == seen_at);
  lost(r1);
  CHECK(record(r1).status == grasp::link_status::disconnected);
  SECTION("within 15 minutes: since last_connected minus the overlap") {
    pass(10min);
    auto cmds = take();
    REQUIRE(cmds.size() == 1);
    CHECK(cmds[0].verb == "connect");
    auto since = R"("since":)" + std::to_string(seen_at - 300);
    for (const auto& sub : cmds[0].subs)
      for (const auto& f : sub.filters)
        CHECK_THAT(f, Contains(since));
    CHECK(record(r1).repos == std::vector<std::string>{address("a")});
  }
  SECTION("after 15 minutes: confirmed state cleared, no since") {
    pass(16min);
    auto cmds = take();
    REQUIRE(cmds.size() == 1);
    CHECK(cmds[0].verb == "connect");
    CHECK_THAT(cmds[0].filters(), !Contains("since"));
    CHECK_THAT(cmds[0].filters(), Contains(address("a")));
    CHECK(record(r1).repos.empty());
    CHECK(record(r1).full_sync_at == 0);
  }
}

TEST_CASE_METHOD(fixture, "relay_sync survives a restart of the node",
                 "[grasp][grasp_sync]") {
  start();
  synced_on_r1();
  pass(1min);
  auto seen_at = wall;
  // The node stops without closing the connection.
  stop();
  SECTION("back within 15 minutes: no full re-sync") {
    wall += 5 * 60;
    start();
    auto cmds = take();
    REQUIRE(cmds.size() == 1);
    CHECK(cmds[0].verb == "connect");
    CHECK_THAT(cmds[0].filters(),
               Contains(R"("since":)" + std::to_string(seen_at - 300)));
    CHECK(record(r1).repos == std::vector<std::string>{address("a")});
    CHECK(record(r1).disconnected_at == seen_at);
  }
  SECTION("after a 15+ minute outage: full sync") {
    wall += 20 * 60;
    start();
    auto cmds = take();
    REQUIRE(cmds.size() == 1);
    CHECK_THAT(cmds[0].filters(), !Contains("since"));
    CHECK(record(r1).repos.empty());
  }
}

TEST_CASE_METHOD(fixture, "the daily reconciliation resyncs a live relay "
                          "fully",
                 "[grasp][grasp_sync]") {
  start();
  synced_on_r1();
  auto due = record(r1).reconcile_at;
  wall = due - 30;
  pass(1min);
  auto cmds = take();
  REQUIRE(cmds.size() == 2);
  CHECK(cmds[0].verb == "unsubscribe");
  CHECK(cmds[0].closed.size() == 2);
  CHECK(cmds[1].verb == "subscribe");
  CHECK_THAT(cmds[1].filters(), Contains("30618"));
  CHECK_THAT(cmds[1].filters(), !Contains("since"));
  CHECK(record(r1).repos.empty());
  eose_all(cmds[1]);
  auto rec = record(r1);
  CHECK(rec.repos == std::vector<std::string>{address("a")});
  CHECK(rec.reconcile_at > due);
}

TEST_CASE_METHOD(fixture, "live subscriptions consolidate beyond "
                          "max_filters_per_relay",
                 "[grasp][grasp_sync]") {
  config.plan.max_filters_per_relay = 5;
  start();
  synced_on_r1(); // layer 1 (1 filter) + a (2 filters)
  want("b", {r1});
  auto b = take();
  REQUIRE(b.size() == 1);
  eose_all(b[0]); // 5 filters: at the limit
  want("c", {r1});
  auto cmds = take();
  REQUIRE(cmds.size() == 3);
  CHECK(cmds[0].verb == "subscribe");
  REQUIRE(cmds[0].subs.size() == 1);
  CHECK_THAT(cmds[0].subs[0].id, Contains("-live"));
  CHECK_THAT(cmds[0].filters(), Contains(address("a")));
  CHECK_THAT(cmds[0].filters(), Contains(address("b")));
  CHECK(cmds[1].verb == "unsubscribe");
  CHECK(cmds[1].closed.size() == 2);
  CHECK(cmds[2].verb == "subscribe");
  CHECK_THAT(cmds[2].filters(), Contains(address("c")));
  auto status = ask<status_map>(atom::get_v, atom::status_v);
  CHECK(caf::get_or(status, "total.consolidations", int64_t{0}) == 1);
}

TEST_CASE_METHOD(fixture, "failed batches confirm nothing and are retried",
                 "[grasp][grasp_sync]") {
  config.batch_timeout = 2min;
  start();
  want("a", {r1});
  auto first = take();
  REQUIRE(first.size() == 1);
  connected(r1);
  SECTION("timed out on a live connection: closed, asked again") {
    pass(2min);
    auto cmds = take();
    REQUIRE(cmds.size() == 2);
    CHECK(cmds[0].verb == "unsubscribe");
    CHECK(cmds[0].closed.size() == 2);
    CHECK(cmds[1].verb == "subscribe");
    CHECK_THAT(cmds[1].filters(), Contains(address("a")));
    CHECK_THAT(cmds[1].filters(), Contains("30618"));
    CHECK(record(r1).repos.empty());
  }
  SECTION("lost: reconnected on the next tick") {
    lost(r1);
    CHECK(take().empty());
    CHECK(record(r1).repos.empty());
    pass(1min);
    auto cmds = take();
    REQUIRE(cmds.size() == 1);
    CHECK(cmds[0].verb == "connect");
  }
  SECTION("CLOSED by the relay: not confirmed") {
    self->send(aut, atom::closed_v, r1, first[0].subs[1].id,
               std::string{"blocked: no"});
    self->send(aut, atom::eose_v, r1, first[0].subs[0].id);
    run();
    auto rec = record(r1);
    CHECK(rec.repos.empty());
    CHECK(rec.full_sync_at == start_time);
  }
}

TEST_CASE_METHOD(fixture, "repos and repo describe what is wanted, "
                          "confirmed and pending",
                 "[grasp][grasp_sync]") {
  start();
  synced_on_r1();
  want("a", {r1, r2});
  auto cmds = take();
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0].relay == r2);
  auto all = boost::json::parse(ask<std::string>(atom::get_v, atom::repos_v));
  REQUIRE(all.as_array().size() == 1);
  auto& row = all.as_array()[0].as_object();
  auto text = [](const boost::json::value& x) {
    return boost::json::serialize(x);
  };
  CHECK(text(row.at("address")) == "\"" + address("a") + "\"");
  CHECK(row.at("relays").as_array().size() == 2);
  CHECK(text(row.at("confirmed_on")) == "[\"" + r1 + "\"]");
  CHECK(text(row.at("pending_on")) == "[\"" + r2 + "\"]");
  auto one = boost::json::parse(
    ask<std::string>(atom::get_v, atom::repo_v, address("a")));
  auto& relays = one.at("relays").as_array();
  REQUIRE(relays.size() == 2);
  CHECK(text(relays[0].at("url")) == "\"" + r1 + "\"");
  CHECK(text(relays[0].at("link")) == "\"connected\"");
  CHECK(text(relays[0].at("confirmed")) == "true");
  CHECK(text(relays[1].at("link")) == "\"connecting\"");
  CHECK(text(relays[1].at("pending")) == "true");
  self->send(aut, atom::get_v, atom::repo_v, address("nope"));
  run();
  self->receive([](std::string&) { FAIL("an unknown repository answered"); },
                [&](caf::error& err) {
                  CHECK_THAT(render(err), Contains(address("nope")));
                },
                caf::after(0s) >> [] { FAIL("no answer"); });
}

TEST_CASE_METHOD(fixture, "without a driver the indexes are kept and "
                          "nothing starts",
                 "[grasp][grasp_sync]") {
  driver_slot->set(grasp_driver_actor{});
  start();
  want("a", {r1});
  CHECK(take().empty());
  auto status = ask<status_map>(atom::get_v, atom::status_v);
  CHECK_FALSE(caf::get_or(status, "driver", true));
  CHECK(caf::get_or(status, "repos", int64_t{0}) == 1);
}
