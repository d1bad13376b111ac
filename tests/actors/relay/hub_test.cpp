#include "actors/relay/hub.hpp"

#include "messages/nostr/keys.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"

#include <caf/after.hpp>

#include <catch2/catch.hpp>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

/// What a mock session saw from the hub.
struct delivery {
  nostr::bytes32 id;
  std::vector<std::string> subscriptions;
};

struct mock_session_state {
  std::shared_ptr<std::vector<delivery>> seen;
  static inline constexpr const char* name = "mock-session";
};

/// A session with the real interface that only records live deliveries.
client_session_actor::behavior_type
mock_session(client_session_actor::stateful_pointer<mock_session_state> self,
             std::shared_ptr<std::vector<delivery>> seen) {
  self->state.seen = std::move(seen);
  return {
    [](atom::frame, const std::string&) {},
    [](atom::oversize, uint64_t) {},
    [self](atom::closed, const std::string&) { self->quit(); },
    [self](atom::publish, const ingest_item_ptr& item,
           const std::vector<std::string>& subs) {
      self->state.seen->push_back({item->data.ev.id, subs});
    },
    [](atom::eose, const std::string&, uint64_t) {},
    [](atom::count, const std::string&, uint64_t, uint64_t) {},
    [](atom::neg, const neg_job_ptr&) {},
    [](atom::tick) {},
  };
}

filter_set_ptr filters(std::initializer_list<const char*> json) {
  auto fs = std::make_shared<std::vector<nostr::filter>>();
  for (auto text : json) {
    nostr::filter f;
    REQUIRE(nostr::parse_filter(std::string_view{text}, f).empty());
    fs->push_back(std::move(f));
  }
  return fs;
}

ingest_item_ptr item(uint32_t kind) {
  static auto keys = nostr::generate_keypair();
  auto x = std::make_shared<ingest_item>();
  x->data.ev.kind = kind;
  x->data.ev.created_at = 1700000000;
  x->data.ev.content = "k" + std::to_string(kind);
  nostr::sign_event(x->data.ev, keys);
  x->data.json = nostr::to_json(x->data.ev);
  return x;
}

struct fixture : test::deterministic_actor_system {
  fixture() {
    aut = sys.spawn<hub_impl>();
    session = sys.spawn(mock_session, seen);
    run();
  }

  ~fixture() {
    self->send_exit(aut, caf::exit_reason::user_shutdown);
    self->send_exit(session, caf::exit_reason::user_shutdown);
  }

  uint64_t subscription_count() {
    self->send(aut, atom::get_v, atom::count_v);
    run();
    uint64_t n = 0;
    self->receive([&](uint64_t x) { n = x; },
                  caf::after(0s) >> [] { FAIL("no reply from the hub"); });
    return n;
  }

  std::shared_ptr<std::vector<delivery>> seen
    = std::make_shared<std::vector<delivery>>();
  hub_actor aut;
  client_session_actor session;
};

} // namespace

TEST_CASE_METHOD(fixture, "the hub names every matching subscription once per "
                          "event",
                 "[hub]") {
  self->send(aut, atom::subscribe_v, session, std::string{"notes"},
             filters({R"({"kinds":[1]})"}));
  self->send(aut, atom::subscribe_v, session, std::string{"all"},
             filters({R"({"kinds":[7]})", R"({"kinds":[1]})"}));
  self->send(aut, atom::subscribe_v, session, std::string{"reactions"},
             filters({R"({"kinds":[7]})"}));
  run();
  CHECK(subscription_count() == 3);
  auto note = item(1);
  self->send(aut, atom::publish_v, ingest_batch{note});
  self->send(aut, atom::publish_v, ingest_batch{item(30023)});
  run();
  REQUIRE(seen->size() == 1);
  CHECK((*seen)[0].id == note->data.ev.id);
  CHECK((*seen)[0].subscriptions == std::vector<std::string>{"all", "notes"});
}

TEST_CASE_METHOD(fixture, "a commit's events reach their subscriptions in "
                          "commit order, from one message",
                 "[hub]") {
  self->send(aut, atom::subscribe_v, session, std::string{"notes"},
             filters({R"({"kinds":[1]})"}));
  self->send(aut, atom::subscribe_v, session, std::string{"reactions"},
             filters({R"({"kinds":[7]})"}));
  run();
  auto first = item(1);
  auto reaction = item(7);
  auto unmatched = item(30023);
  auto second = item(1);
  second->data.ev.content = "another note";
  nostr::sign_event(second->data.ev, nostr::generate_keypair());
  self->send(aut, atom::publish_v, ingest_batch{first, reaction, unmatched, second});
  run();
  REQUIRE(seen->size() == 3);
  CHECK((*seen)[0].id == first->data.ev.id);
  CHECK((*seen)[0].subscriptions == std::vector<std::string>{"notes"});
  CHECK((*seen)[1].id == reaction->data.ev.id);
  CHECK((*seen)[1].subscriptions == std::vector<std::string>{"reactions"});
  CHECK((*seen)[2].id == second->data.ev.id);
  CHECK((*seen)[2].subscriptions == std::vector<std::string>{"notes"});
}

TEST_CASE_METHOD(fixture, "a replaced subscription uses its new filters",
                 "[hub]") {
  self->send(aut, atom::subscribe_v, session, std::string{"s"},
             filters({R"({"kinds":[1]})"}));
  self->send(aut, atom::subscribe_v, session, std::string{"s"},
             filters({R"({"kinds":[7]})"}));
  run();
  CHECK(subscription_count() == 1);
  self->send(aut, atom::publish_v, ingest_batch{item(1)});
  run();
  CHECK(seen->empty());
  self->send(aut, atom::publish_v, ingest_batch{item(7)});
  run();
  CHECK(seen->size() == 1);
}

TEST_CASE_METHOD(fixture, "closed subscriptions and dead sessions get nothing",
                 "[hub]") {
  self->send(aut, atom::subscribe_v, session, std::string{"a"},
             filters({R"({"kinds":[1]})"}));
  self->send(aut, atom::subscribe_v, session, std::string{"b"},
             filters({R"({"kinds":[1]})"}));
  self->send(aut, atom::unsubscribe_v, session, std::string{"a"});
  run();
  CHECK(subscription_count() == 1);
  self->send(aut, atom::publish_v, ingest_batch{item(1)});
  run();
  REQUIRE(seen->size() == 1);
  CHECK((*seen)[0].subscriptions == std::vector<std::string>{"b"});
  SECTION("the session goes down") {
    self->send(session, atom::closed_v, std::string{"bye"});
    run();
    CHECK(subscription_count() == 0);
  }
  SECTION("the session closes all its subscriptions") {
    self->send(aut, atom::unsubscribe_v, session);
    run();
    CHECK(subscription_count() == 0);
    self->send(aut, atom::publish_v, ingest_batch{item(1)});
    run();
    CHECK(seen->size() == 1);
  }
}

namespace {

struct mock_feed_state {
  std::shared_ptr<std::vector<nostr::bytes32>> seen;
  static inline constexpr const char* name = "mock-feed";
};

/// A feed listener that records what the hub hands it.
feed_listener_actor::behavior_type
mock_feed(feed_listener_actor::stateful_pointer<mock_feed_state> self,
          std::shared_ptr<std::vector<nostr::bytes32>> seen) {
  self->state.seen = std::move(seen);
  return {
    [self](atom::feed, const ingest_item_ptr& item) {
      self->state.seen->push_back(item->data.ev.id);
    },
  };
}

} // namespace

TEST_CASE_METHOD(fixture, "a feed listener gets matching events until it "
                          "leaves or goes down",
                 "[hub]") {
  auto fed = std::make_shared<std::vector<nostr::bytes32>>();
  auto listener = sys.spawn(mock_feed, fed);
  self->send(aut, atom::subscribe_v, atom::feed_v, listener,
             filters({R"({"kinds":[1]})"}));
  run();
  auto note = item(1);
  self->send(aut, atom::publish_v, ingest_batch{note});
  self->send(aut, atom::publish_v, ingest_batch{item(7)});
  run();
  REQUIRE(fed->size() == 1);
  CHECK((*fed)[0] == note->data.ev.id);
  // The feed is not a REQ subscription and sessions do not see it.
  CHECK(subscription_count() == 0);
  CHECK(seen->empty());
  SECTION("new filters replace the old ones") {
    self->send(aut, atom::subscribe_v, atom::feed_v, listener,
               filters({R"({"kinds":[7]})"}));
    self->send(aut, atom::publish_v, ingest_batch{item(1)});
    self->send(aut, atom::publish_v, ingest_batch{item(7)});
    run();
    CHECK(fed->size() == 2);
  }
  SECTION("unsubscribed") {
    self->send(aut, atom::unsubscribe_v, atom::feed_v, listener);
    self->send(aut, atom::publish_v, ingest_batch{item(1)});
    run();
    CHECK(fed->size() == 1);
  }
  SECTION("down") {
    self->send_exit(listener, caf::exit_reason::user_shutdown);
    run();
    self->send(aut, atom::publish_v, ingest_batch{item(1)});
    run();
    CHECK(fed->size() == 1);
  }
  self->send_exit(listener, caf::exit_reason::user_shutdown);
}
