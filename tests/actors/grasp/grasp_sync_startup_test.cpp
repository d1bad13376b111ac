// GRASP SYNC at the node's start-up, against a real SELF SUBSCRIBER and hub.

#include "tests/actors/grasp/grasp_sync_fixture.hpp"

#include <catch2/catch.hpp>

using namespace ferry;
using namespace ferry::grasp_sync_test;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

/// The node's start-up: GRASP SYNC spawned first, then the SELF SUBSCRIBER
/// over a store whose `repo_sync` lags behind it.
struct startup_fixture : fixture {
  startup_fixture() {
    hub_handle = sys.spawn<hub_impl>();
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
