#include "actors/grasp/self_subscriber.hpp"

#include "actors/relay/hub.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/error.hpp"
#include "store/repo_sync_store.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/fixtures/quiet_log.hpp"
#include "tests/store/store_fixture.hpp"

#include <caf/after.hpp>

#include <catch2/catch.hpp>

using namespace ferry;
using namespace std::chrono_literals;
using ferry::store::test::make_event;

namespace {

using change_log = std::vector<std::vector<std::string>>;

struct recorder_state {
  std::shared_ptr<change_log> seen;
  std::shared_ptr<size_t> rebuilds;
  static inline constexpr const char* name = "recording-listener";
};

/// Stands for GRASP SYNC: records the changes it is told, and counts the
/// ends of rebuilds.
grasp_listener_actor::behavior_type
recorder(grasp_listener_actor::stateful_pointer<recorder_state> self,
         std::shared_ptr<change_log> seen, std::shared_ptr<size_t> rebuilds) {
  self->state.seen = std::move(seen);
  self->state.rebuilds = std::move(rebuilds);
  return {
    [self](atom::changed, const std::vector<std::string>& addresses) {
      self->state.seen->push_back(addresses);
    },
    [self](atom::rebuild, atom::done) {
      ++*self->state.rebuilds;
    },
  };
}

const std::string service = "wss://git.example.com";
const std::string r1 = "wss://r1.example";
const std::string r2 = "wss://r2.example";

struct fixture : test::deterministic_actor_system {
  fixture() {
    hub_handle = sys.spawn<hub_impl>();
    hub_slot = std::make_shared<handle_slot<hub_actor>>(hub_handle);
    listener = sys.spawn(recorder, seen, rebuilds);
    listener_slot = std::make_shared<handle_slot<grasp_listener_actor>>(listener);
    config.service.domain = "git.example.com";
    run();
  }

  ~fixture() {
    for (auto& a : actors)
      self->send_exit(a, caf::exit_reason::user_shutdown);
    self->send_exit(hub_handle, caf::exit_reason::user_shutdown);
    self->send_exit(listener, caf::exit_reason::user_shutdown);
    run();
  }

  self_subscriber_actor start() {
    auto aut = sys.spawn(self_subscriber, db.store.get(), hub_slot,
                         listener_slot, config);
    actors.push_back(caf::actor_cast<caf::actor>(aut));
    run();
    return aut;
  }

  /// What the writer does: commit, then hand the event to the hub.
  store::incoming_event commit(const nostr::keypair& keys, uint32_t kind,
                               int64_t created_at,
                               std::vector<nostr::tag> tags) {
    auto ev = make_event(keys, kind, created_at, std::move(tags));
    REQUIRE(db.write(ev).outcome == store::write_outcome::stored);
    auto item = std::make_shared<ingest_item>();
    item->data = ev;
    item->source = "client";
    self->send(hub_handle, atom::publish_v, ingest_batch{item});
    run();
    return ev;
  }

  store::incoming_event announce(int64_t created_at,
                                 std::vector<std::string> relays,
                                 const std::string& d = "repo") {
    nostr::tag tag{"relays"};
    tag.insert(tag.end(), relays.begin(), relays.end());
    return commit(owner, grasp::kind_announcement, created_at,
                  {{"d", d}, {"name", d}, tag});
  }

  std::string address(const std::string& d = "repo") const {
    return "30617:" + nostr::to_hex(owner.pubkey) + ":" + d;
  }

  std::optional<grasp::repo_sync_entry> stored(const std::string& addr) {
    auto entry = store::get_repo_sync(*db.store, addr);
    REQUIRE(entry);
    return *entry;
  }

  status_map status(const self_subscriber_actor& aut) {
    self->send(aut, atom::get_v, atom::status_v);
    run();
    status_map result;
    self->receive([&](status_map& x) { result = std::move(x); },
                  caf::after(0s) >> [] { FAIL("no status"); });
    return result;
  }

  store::test::store_fixture db;
  std::shared_ptr<change_log> seen = std::make_shared<change_log>();
  std::shared_ptr<size_t> rebuilds = std::make_shared<size_t>(0);
  hub_actor hub_handle;
  handle_slot_ptr<hub_actor> hub_slot;
  grasp_listener_actor listener;
  handle_slot_ptr<grasp_listener_actor> listener_slot;
  self_subscriber_config config;
  std::vector<caf::actor> actors;
  nostr::keypair owner = nostr::generate_keypair();
  nostr::keypair contributor = nostr::generate_keypair();
  ferry::test::quiet_log quiet;
};

} // namespace

TEST_CASE_METHOD(fixture, "an announcement listing this service is wanted "
                          "once its window closes",
                 "[grasp][self_subscriber]") {
  start();
  announce(1000, {service, r1, r2});
  // Nothing before the batch window closes.
  CHECK(seen->empty());
  CHECK_FALSE(stored(address()));
  advance(5s);
  REQUIRE(seen->size() == 1);
  CHECK(seen->back() == std::vector<std::string>{address()});
  auto entry = stored(address());
  REQUIRE(entry);
  // Our own service is not a relay to sync from.
  CHECK(entry->relays == std::vector<std::string>{r1, r2});
  CHECK(entry->announcement_created_at == 1000);
}

TEST_CASE_METHOD(fixture, "an announcement that does not list this service "
                          "is ignored",
                 "[grasp][self_subscriber]") {
  auto aut = start();
  announce(1000, {r1, "wss://git.example.com.evil.example"});
  advance(5s);
  CHECK(seen->empty());
  CHECK_FALSE(stored(address()));
  CHECK(caf::get_or(status(aut), "total.not_ours", int64_t{0}) == 1);
}

TEST_CASE_METHOD(fixture, "a newer announcement updates the relays, one "
                          "dropping this service removes the repository",
                 "[grasp][self_subscriber]") {
  start();
  announce(1000, {service, r1});
  advance(5s);
  announce(2000, {service, r1, r2});
  advance(5s);
  REQUIRE(stored(address()));
  CHECK(stored(address())->relays == std::vector<std::string>{r1, r2});
  announce(3000, {r1, r2});
  advance(5s);
  CHECK_FALSE(stored(address()));
  REQUIRE(seen->size() == 3);
  CHECK(seen->back() == std::vector<std::string>{address()});
}

TEST_CASE_METHOD(fixture, "root events of a wanted repository add root ids",
                 "[grasp][self_subscriber]") {
  start();
  announce(1000, {service, r1});
  advance(5s);
  auto issue = commit(contributor, grasp::kind_issue, 1100,
                      {{"a", address()}, {"subject", "bug"}});
  auto patch = commit(contributor, grasp::kind_patch, 1200,
                      {{"a", address()}, {"t", "root"}});
  // Not a root kind, and a repository we do not sync: no change.
  commit(contributor, 1622, 1300, {{"a", address()}});
  commit(contributor, grasp::kind_issue, 1400,
         {{"a", address("elsewhere")}});
  advance(5s);
  auto entry = stored(address());
  REQUIRE(entry);
  auto expected = std::vector<std::string>{nostr::to_hex(issue.ev.id),
                                           nostr::to_hex(patch.ev.id)};
  std::sort(expected.begin(), expected.end());
  CHECK(entry->roots == expected);
  REQUIRE(seen->size() == 2);
  CHECK(seen->back() == std::vector<std::string>{address()});
}

TEST_CASE_METHOD(fixture, "root events stored before the announcement count "
                          "when it arrives",
                 "[grasp][self_subscriber]") {
  start();
  // Fetched from elsewhere in the same window, before the announcement.
  auto issue = commit(contributor, grasp::kind_issue, 900,
                      {{"a", address()}});
  announce(1000, {service, r1});
  advance(5s);
  auto entry = stored(address());
  REQUIRE(entry);
  CHECK(entry->roots == std::vector<std::string>{nostr::to_hex(issue.ev.id)});
}

TEST_CASE_METHOD(fixture, "start-up rebuilds repo_sync from the stored "
                          "announcements",
                 "[grasp][self_subscriber]") {
  // Committed while the self-subscriber was down: never on its feed.
  auto ours = [&](const std::string& d, int64_t at) {
    auto ev = make_event(owner, grasp::kind_announcement, at,
                         {{"d", d}, {"relays", service, r1}});
    REQUIRE(db.write(ev).outcome == store::write_outcome::stored);
  };
  ours("one", 1000);
  ours("two", 1001);
  ours("three", 1002);
  auto theirs = make_event(owner, grasp::kind_announcement, 1003,
                           {{"d", "four"}, {"relays", r1}});
  REQUIRE(db.write(theirs).outcome == store::write_outcome::stored);
  auto issue = make_event(contributor, grasp::kind_issue, 1100,
                          {{"a", address("two")}});
  REQUIRE(db.write(issue).outcome == store::write_outcome::stored);
  // A repository whose announcement is gone from the store.
  grasp::repo_sync_entry stale;
  stale.address = address("gone");
  stale.relays = {r2};
  REQUIRE_FALSE(store::write_repo_sync(*db.store, {stale}, {}));
  config.rebuild_slice = 1;
  auto aut = start();
  for (auto d : {"one", "two", "three"})
    CHECK(stored(address(d)));
  CHECK_FALSE(stored(address("four")));
  CHECK_FALSE(stored(address("gone")));
  CHECK(stored(address("two"))->roots
        == std::vector<std::string>{nostr::to_hex(issue.ev.id)});
  auto st = status(aut);
  CHECK_FALSE(caf::get_or(st, "rebuilding", true));
  CHECK(caf::get_or(st, "repos", int64_t{0}) == 3);
  // The end of the rebuild is told once.
  CHECK(*rebuilds == 1);
  std::set<std::string> told;
  for (const auto& change : *seen)
    told.insert(change.begin(), change.end());
  CHECK(told
        == std::set<std::string>{address("one"), address("two"),
                                 address("three"), address("gone")});
}

TEST_CASE_METHOD(fixture, "asked whether the rebuild is complete, it "
                          "answers once it is",
                 "[grasp][self_subscriber]") {
  for (auto d : {"one", "two", "three"}) {
    auto ev = make_event(owner, grasp::kind_announcement, 1000,
                         {{"d", d}, {"relays", service, r1}});
    REQUIRE(db.write(ev).outcome == store::write_outcome::stored);
  }
  config.rebuild_slice = 1;
  auto aut = sys.spawn(self_subscriber, db.store.get(), hub_slot,
                       listener_slot, config);
  actors.push_back(caf::actor_cast<caf::actor>(aut));
  // Asked before its first rebuild step: the answer waits for the last.
  self->send(aut, atom::get_v, atom::rebuild_v);
  sched.run_once();
  sched.run_once();
  self->receive([&](bool) { FAIL("answered during the rebuild"); },
                caf::after(0s) >> [] {});
  run();
  bool answered = false;
  self->receive([&](bool done) { answered = done; },
                caf::after(0s) >> [] { FAIL("no answer after the rebuild"); });
  CHECK(answered);
  CHECK_FALSE(caf::get_or(status(aut), "rebuilding", true));
  // Asked later: at once.
  self->send(aut, atom::get_v, atom::rebuild_v);
  run();
  self->receive([&](bool done) { CHECK(done); },
                caf::after(0s) >> [] { FAIL("no answer"); });
}

TEST_CASE_METHOD(fixture, "a full window closes early",
                 "[grasp][self_subscriber]") {
  config.max_batch = 2;
  start();
  announce(1000, {service, r1}, "a");
  CHECK(seen->empty());
  announce(1000, {service, r1}, "b");
  REQUIRE(seen->size() == 1);
  CHECK(seen->back().size() == 2);
}

TEST_CASE_METHOD(fixture, "the self-subscriber quits when the hub goes down",
                 "[grasp][self_subscriber]") {
  auto aut = start();
  self->monitor(aut);
  self->send_exit(hub_handle, caf::exit_reason::user_shutdown);
  run();
  auto went_down = false;
  self->receive([&](const caf::down_msg& msg) { went_down = msg.reason != caf::none; },
                caf::after(0s) >> [] {});
  CHECK(went_down);
}

TEST_CASE_METHOD(fixture, "the self-subscriber waits for a hub that starts "
                          "after it, then follows its feed",
                 "[grasp][self_subscriber]") {
  // Subsystems start concurrently: GRASP may come up before the relay's hub.
  hub_slot->set(hub_actor{});
  auto aut = start();
  for (auto waited = 0ms; waited < 1s; waited += 10ms)
    advance(10ms);
  CHECK(caf::get_or(status(aut), "rebuilding", false));
  hub_slot->set(hub_handle);
  advance(10ms);
  CHECK_FALSE(caf::get_or(status(aut), "rebuilding", true));
  announce(1000, {service, r1});
  advance(5s);
  REQUIRE(seen->size() == 1);
  CHECK(seen->back() == std::vector<std::string>{address()});
}

TEST_CASE_METHOD(fixture, "without a hub the self-subscriber gives up after "
                          "a while",
                 "[grasp][self_subscriber]") {
  hub_slot->set(hub_actor{});
  auto aut = start();
  self->monitor(aut);
  // It looks every 10 ms, for five seconds.
  for (auto waited = 0ms; waited < 4900ms; waited += 10ms)
    advance(10ms);
  std::string reason;
  self->receive([&](const caf::down_msg& msg) { reason = render(msg.reason); },
                caf::after(0s) >> [] {});
  CHECK(reason.empty());
  for (auto waited = 0ms; waited < 200ms; waited += 10ms)
    advance(10ms);
  self->receive([&](const caf::down_msg& msg) { reason = render(msg.reason); },
                caf::after(0s) >> [] {});
  CHECK_THAT(reason, Catch::Contains("the hub is not running"));
}

TEST_CASE_METHOD(fixture, "a deleted announcement removes the repository, a "
                          "stranger's deletion does not",
                 "[grasp][self_subscriber]") {
  start();
  auto announcement = announce(1000, {service, r1});
  announce(1000, {service, r2}, "other");
  advance(5s);
  REQUIRE(stored(address()));
  REQUIRE(stored(address("other")));
  auto stranger = nostr::generate_keypair();
  commit(stranger, 5, 1100, {{"a", address()}});
  advance(5s);
  CHECK(stored(address()));
  SECTION("by address") {
    commit(owner, 5, 1100, {{"a", address()}});
    advance(5s);
    CHECK_FALSE(stored(address()));
    CHECK(stored(address("other")));
    CHECK(seen->back() == std::vector<std::string>{address()});
  }
  SECTION("by id") {
    commit(owner, 5, 1100, {{"e", nostr::to_hex(announcement.ev.id)}});
    advance(5s);
    CHECK_FALSE(stored(address()));
    CHECK(stored(address("other")));
  }
}
