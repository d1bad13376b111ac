#include "tests/actors/grasp/grasp_sync_fixture.hpp"

#include "messages/cluster/rendezvous.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace ferry;
using namespace ferry::grasp_sync_test;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

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

TEST_CASE_METHOD(fixture, "in a cluster only the relays this member owns "
                          "are connected, and a relay that moves away is "
                          "released with its record kept",
                 "[grasp][grasp_sync][cluster]") {
  config.cluster_node = "node-a";
  start();
  std::vector<std::string> relays;
  for (auto i = 0; i < 6; ++i)
    relays.push_back("wss://r" + std::to_string(i) + ".example");
  want("a", relays);
  // No live set yet: nothing runs here.
  CHECK(take().empty());

  // Alone in the cluster, it owns everything.
  auto members = [this](std::vector<std::string> live) {
    self->send(aut, atom::members_v, std::move(live));
    run();
  };
  members({"node-a"});
  std::set<std::string> connects;
  for (auto& cmd : take()) {
    CHECK(cmd.verb == "connect");
    connects.insert(cmd.relay);
    connected(cmd.relay);
    eose_all(cmd);
  }
  CHECK(connects == std::set<std::string>(relays.begin(), relays.end()));
  take();

  // node-b joins: the relays the hash gives it are released, the rest
  // stay untouched.
  std::vector<std::string> both{"node-a", "node-b"};
  std::set<std::string> moving;
  for (auto& url : relays)
    if (*cluster::rendezvous_owner(url, both) == "node-b")
      moving.insert(url);
  REQUIRE(!moving.empty());
  REQUIRE(moving.size() < relays.size());
  members(both);
  std::set<std::string> dropped;
  for (auto& cmd : take()) {
    CHECK(cmd.verb == "drop");
    dropped.insert(cmd.relay);
  }
  CHECK(dropped == moving);
  auto detail = boost::json::parse(
    ask<std::string>(atom::get_v, atom::repo_v, address("a")));
  for (auto& row : detail.at("relays").as_array()) {
    std::string url{row.at("url").as_string()};
    auto here = moving.count(url) == 0;
    CHECK(row.at("owner").as_string() == (here ? "node-a" : "node-b"));
    CHECK(row.at("link").as_string() == (here ? "connected" : "idle"));
    // What it confirmed stays, for when the relay comes back.
    CHECK(record(url).repos == std::vector<std::string>{address("a")});
  }
  // The ticks leave the released relays alone.
  pass(2min);
  for (auto& cmd : take())
    CHECK(moving.count(cmd.relay) == 0);

  // node-b dies: its relays come back and catch up from where they left.
  members({"node-a"});
  std::set<std::string> back;
  for (auto& cmd : take()) {
    CHECK(cmd.verb == "connect");
    CHECK_THAT(cmd.filters(), Contains("\"since\""));
    back.insert(cmd.relay);
  }
  CHECK(back == moving);

  // Having left (no live set of its own), it runs nothing.
  members({});
  dropped.clear();
  for (auto& cmd : take())
    if (cmd.verb == "drop")
      dropped.insert(cmd.relay);
  CHECK(dropped == std::set<std::string>(relays.begin(), relays.end()));
}
