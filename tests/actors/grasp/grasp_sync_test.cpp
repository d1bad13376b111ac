#include "actors/grasp/grasp_sync.hpp"

#include "actors/relay/hub.hpp"
#include "actors/runtime/logging.hpp"
#include "actors/grasp/self_subscriber.hpp"
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

/// The flushes asked for: relay and serial.
using flush_log = std::vector<std::pair<std::string, uint64_t>>;

struct driver_state {
  std::shared_ptr<command_log> log;
  std::shared_ptr<flush_log> flushes;
  /// Answer flushes at once, as a connection with nothing in flight does.
  std::shared_ptr<bool> answer_flushes;
  static inline constexpr const char* name = "recording-driver";
};

/// Stands for the remote side: records what GRASP SYNC asks of the relays.
/// The tests answer as the relays would (connected, EOSE, lost).
grasp_driver_actor::behavior_type
recording_driver(grasp_driver_actor::stateful_pointer<driver_state> self,
                 std::shared_ptr<command_log> log,
                 std::shared_ptr<flush_log> flushes,
                 std::shared_ptr<bool> answer_flushes) {
  self->state.log = std::move(log);
  self->state.flushes = std::move(flushes);
  self->state.answer_flushes = std::move(answer_flushes);
  return {
    [self](atom::flush, const std::string& relay, uint64_t serial) {
      if (*self->state.answer_flushes)
        self->send(caf::actor_cast<grasp_sync_actor>(self->current_sender()),
                   atom::done_v, relay, serial);
      else
        self->state.flushes->emplace_back(relay, serial);
    },
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
    driver = sys.spawn(recording_driver, commands, flushes, answer_flushes);
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

  /// Starts GRASP SYNC; `rebuilt`: then tells it the rebuild is done, as
  /// the SELF SUBSCRIBER does.
  void start(bool rebuilt = true) {
    aut = sys.spawn(grasp_sync, db.store.get(), driver_slot,
                    handle_slot_ptr<self_subscriber_actor>{}, config);
    run();
    if (rebuilt) {
      self->send(aut, atom::rebuild_v, atom::done_v);
      run();
    }
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
  std::shared_ptr<flush_log> flushes = std::make_shared<flush_log>();
  std::shared_ptr<bool> answer_flushes = std::make_shared<bool>(true);
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
  // Nothing is stored yet: last_connected waits for a flush.
  CHECK(rec.last_connected == 0);
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
  // The settled batch asked for a flush; its answer moved last_connected.
  CHECK(rec.last_connected == start_time);
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
    // Each catch-up REQ comes after its live tail.
    REQUIRE(cmds[0].subs.size() == 4);
    for (size_t i = 0; i < cmds[0].subs.size(); ++i)
      for (const auto& f : cmds[0].subs[i].filters)
        if (i % 2 == 0)
          CHECK_THAT(f, Contains(R"("limit":0)") && !Contains("since"));
        else
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

TEST_CASE_METHOD(fixture, "after a restart, each catch-up has a live tail "
                          "without since, and closes once settled",
                 "[grasp][grasp_sync]") {
  config.batch_timeout = 2min;
  start();
  synced_on_r1();
  pass(1min);
  stop();
  wall += 5 * 60;
  start();
  auto cmds = take();
  REQUIRE(cmds.size() == 1);
  REQUIRE(cmds[0].verb == "connect");
  std::vector<std::string> tails;
  std::vector<std::string> catchups;
  for (const auto& sub : cmds[0].subs) {
    std::string text;
    for (const auto& f : sub.filters)
      text += f;
    if (text.find("since") == std::string::npos) {
      // A back-dated event published from now on gets through.
      CHECK_THAT(text, Contains(R"("limit":0)"));
      tails.push_back(sub.id);
    } else {
      catchups.push_back(sub.id);
    }
  }
  REQUIRE_FALSE(tails.empty());
  CHECK(tails.size() == catchups.size());
  connected(r1);
  SECTION("settled: the catch-ups close, the tails stay") {
    eose_all(cmds[0]);
    auto closing = take();
    REQUIRE(closing.size() == 1);
    CHECK(closing[0].verb == "unsubscribe");
    std::sort(closing[0].closed.begin(), closing[0].closed.end());
    CHECK(closing[0].closed == catchups);
    CHECK(record(r1).repos == std::vector<std::string>{address("a")});
  }
  SECTION("a catch-up that fails un-confirms its items: they are fetched "
          "afresh") {
    for (const auto& id : tails)
      self->send(aut, atom::eose_v, r1, id);
    run();
    pass(2min);
    auto retry = take();
    REQUIRE(retry.size() == 2);
    CHECK(retry[0].verb == "unsubscribe");
    CHECK(retry[1].verb == "subscribe");
    CHECK_THAT(retry[1].filters(), Contains(address("a")));
    CHECK_THAT(retry[1].filters(), !Contains("since"));
    CHECK(record(r1).repos.empty());
  }
}

TEST_CASE_METHOD(fixture, "last_connected moves only over what the "
                          "connection has stored",
                 "[grasp][grasp_sync]") {
  *answer_flushes = false;
  start();
  want("a", {r1});
  auto cmds = take();
  REQUIRE(cmds.size() == 1);
  connected(r1);
  CHECK(record(r1).last_connected == 0);
  eose_all(cmds[0]);
  CHECK(record(r1).repos == std::vector<std::string>{address("a")});
  // The settled batch and the tick ask; nothing answered yet.
  pass(1min);
  REQUIRE(flushes->size() == 2);
  CHECK(record(r1).last_connected == 0);
  auto answer = [&](const std::pair<std::string, uint64_t>& flush) {
    self->send(aut, atom::done_v, flush.first, flush.second);
    run();
  };
  SECTION("answered: it moves to when the flush was asked") {
    answer(flushes->front());
    CHECK(record(r1).last_connected == 0); // superseded by the newer flush
    answer(flushes->back());
    CHECK(record(r1).last_connected == start_time + 60);
  }
  SECTION("lost before the answer: it stays") {
    lost(r1);
    answer(flushes->back());
    auto rec = record(r1);
    CHECK(rec.last_connected == 0);
    CHECK(rec.disconnected_at == start_time + 60);
  }
  SECTION("not while a catch-up is open") {
    answer(flushes->back());
    lost(r1);
    pass(1min);
    auto again = take();
    REQUIRE(again.size() == 1);
    CHECK(again[0].verb == "connect");
    connected(r1);
    pass(1min);
    answer(flushes->back());
    CHECK(record(r1).last_connected == start_time + 60);
    eose_all(again[0]);
    answer(flushes->back());
    CHECK(record(r1).last_connected == start_time + 180);
  }
}

TEST_CASE_METHOD(fixture, "nothing is decided before the self-subscriber's "
                          "rebuild is done",
                 "[grasp][grasp_sync]") {
  start(false);
  want("a", {r1});
  pass(1min);
  CHECK(take().empty());
  self->send(aut, atom::rebuild_v, atom::done_v);
  run();
  auto cmds = take();
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0].verb == "connect");
  CHECK_THAT(cmds[0].filters(), Contains(address("a")));
}

namespace {

/// The node's start-up: GRASP SYNC spawned first, then the SELF SUBSCRIBER
/// over a store whose `repo_sync` lags behind it.
struct startup_fixture : fixture {
  startup_fixture() {
    hub_handle = sys.spawn(hub);
    hub_slot = std::make_shared<handle_slot<hub_actor>>(hub_handle);
    subscriber_config.service.domain = "git.example.com";
    subscriber_config.rebuild_slice = 1;
    // Two repositories, so the rebuild takes several steps.
    for (auto d : {"repo", "other"}) {
      auto ev = store::test::make_event(
        owner, grasp::kind_announcement, start_time - 100,
        {{"d", d}, {"relays", "wss://git.example.com", r1}});
      REQUIRE(db.write(ev).outcome == store::write_outcome::stored);
      if (std::string{d} == "repo")
        announcement = ev.ev;
    }
    repo = "30617:" + nostr::to_hex(owner.pubkey) + ":repo";
    auto issue = store::test::make_event(owner, grasp::kind_issue,
                                         start_time - 50, {{"a", repo}});
    REQUIRE(db.write(issue).outcome == store::write_outcome::stored);
    root = nostr::to_hex(issue.ev.id);
    // As a stop left them: r1 confirmed the repository and its root a
    // minute ago, but repo_sync lacks the root (its window never closed).
    grasp::repo_sync_entry stale;
    stale.address = repo;
    stale.relays = {r1};
    stale.announcement_id = nostr::to_hex(announcement.id);
    stale.announcement_created_at = announcement.created_at;
    REQUIRE_FALSE(store::write_repo_sync(*db.store, {stale}, {}));
    grasp::relay_sync_entry confirmed;
    confirmed.url = r1;
    confirmed.repos = {repo};
    confirmed.roots = {root};
    confirmed.status = grasp::link_status::connected;
    confirmed.last_connected = start_time - 60;
    confirmed.full_sync_at = start_time - 3600;
    confirmed.reconcile_at = start_time + 3600;
    REQUIRE_FALSE(store::put_relay_sync(*db.store, confirmed));
  }

  ~startup_fixture() {
    if (subscriber)
      self->send_exit(subscriber, caf::exit_reason::user_shutdown);
    self->send_exit(hub_handle, caf::exit_reason::user_shutdown);
    run();
  }

  void start_sync() {
    aut = sys.spawn(grasp_sync, db.store.get(), driver_slot, subscriber_slot,
                    config);
    listener_slot->set(caf::actor_cast<grasp_listener_actor>(aut));
  }

  void start_subscriber() {
    subscriber = sys.spawn(self_subscriber, db.store.get(), hub_slot,
                           listener_slot, subscriber_config);
    subscriber_slot->set(subscriber);
  }

  /// True once the self-subscriber's rebuild has written the root.
  bool rebuilt() {
    auto entry = store::get_repo_sync(*db.store, repo);
    REQUIRE(entry);
    return *entry && (*entry)->roots == std::vector<std::string>{root};
  }

  /// Runs one message at a time; no command may reach the driver before
  /// the rebuild is through.
  void run_checked() {
    while (sched.try_run_once())
      if (!commands->empty())
        REQUIRE(rebuilt());
  }

  /// The first command is r1's connect, whose live tails follow the root.
  void check_first_connect() {
    REQUIRE_FALSE(commands->empty());
    const auto& cmd = commands->front();
    CHECK(cmd.verb == "connect");
    std::string tails;
    for (const auto& sub : cmd.subs)
      for (const auto& f : sub.filters)
        if (f.find("since") == std::string::npos)
          tails += f;
    CHECK_THAT(tails, Contains(root));
    CHECK_THAT(tails, Contains(repo));
  }

  hub_actor hub_handle;
  handle_slot_ptr<hub_actor> hub_slot;
  handle_slot_ptr<grasp_listener_actor> listener_slot
    = std::make_shared<handle_slot<grasp_listener_actor>>();
  handle_slot_ptr<self_subscriber_actor> subscriber_slot
    = std::make_shared<handle_slot<self_subscriber_actor>>();
  self_subscriber_config subscriber_config;
  self_subscriber_actor subscriber;
  nostr::keypair owner = nostr::generate_keypair();
  nostr::event announcement;
  std::string repo;
  std::string root;
};

} // namespace

TEST_CASE_METHOD(startup_fixture, "at start-up GRASP SYNC decides nothing "
                                  "before the self-subscriber's rebuild is "
                                  "complete",
                 "[grasp][grasp_sync][startup]") {
  SECTION("node start: GRASP SYNC first, told when the rebuild is done") {
    start_sync();
    start_subscriber();
    run_checked();
    check_first_connect();
  }
  SECTION("a restarted GRASP SYNC asks, during the rebuild") {
    start_subscriber();
    start_sync();
    run_checked();
    check_first_connect();
  }
  SECTION("a restarted GRASP SYNC asks, after the rebuild") {
    start_subscriber();
    run();
    REQUIRE(rebuilt());
    REQUIRE(commands->empty());
    start_sync();
    run();
    check_first_connect();
  }
}
