// Three real `ferry node` processes in one cluster on loopback, sharing
// twelve sync servers (twelve URLs of one remote ferry relay): each server
// is owned and connected by exactly one live member, as the rendezvous hash
// of its URL over the live names says; a killed member's servers move to the
// others within 10 s and come back when it rejoins with a higher
// incarnation; a node whose key is not allowed is refused with the reason in
// /health. Every event a client publishes to one member reaches the others
// (replication over NIP-77 and a live tail, never echoed back), a member that
// was killed catches up when it returns, and SIGTERM or cluster-leave hands
// a member's relays over at once. A deletion or an expiry takes effect on
// every member alike.

#include "tests/integration/cluster_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using sync_test::admin;

namespace {

namespace json = boost::json;
using namespace cluster_test;

constexpr int relay_count = 12;

} // namespace

TEST_CASE("three nodes split twelve relays, fail over within 10 s and take "
          "them back on rejoin, and a stranger is refused",
          "[integration][cluster]") {
  // The remote relay: one ferry node, twelve URLs (paths) of it.
  test::temp_dir remote_dir;
  sync_test::node remote{test::node_config(remote_dir)};
  remote_paths relays{remote.port, relay_count};
  auto& urls = relays.urls;
  three_members trio{relays.servers};
  member& a = trio.a;
  member& b = trio.b;
  member& c = trio.c;
  trio.start();
  require_settled({&a, &b, &c}, urls, 30s, "three nodes");

  // What a client publishes to one member reaches the other two.
  auto author = nostr::generate_keypair();
  auto now = static_cast<int64_t>(std::time(nullptr));
  auto first = sync_test::make_events(author, 10, now, 1, "all up");
  sync_test::publish(a.relay_port, first);
  auto published = sync_test::id_set(first);
  require_all_hold({&a, &b, &c}, published, 15s, "replicated from node-a");

  // The member owning the most servers dies without a goodbye.
  auto roles = busiest_member(trio, urls);
  REQUIRE(roles.owned > 0);
  member* victim = roles.victim;
  auto& survivors = roles.survivors;
  auto before = incarnation_of(*survivors[0], victim->name);
  REQUIRE(before > 0);
  auto killed_at = std::chrono::steady_clock::now();
  victim->process->kill(SIGKILL);
  require_settled(survivors, urls, 10s, "after kill -9");
  auto failover = std::chrono::steady_clock::now() - killed_at;
  CHECK(failover <= 10s);
  WARN("failover took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(failover)
            .count()
       << " ms");

  // The survivors keep replicating between themselves.
  auto second = sync_test::make_events(author, 10, now - 100, 1, "one down");
  sync_test::publish(survivors[0]->relay_port, second);
  for (auto& id : sync_test::id_set(second))
    published.insert(id);
  require_all_hold(survivors, published, 15s, "replicated with one down");

  // It comes back higher and takes back what the hash gives it.
  victim->start();
  require_settled({&a, &b, &c}, urls, 20s, "after the rejoin");
  for (auto* m : survivors)
    CHECK(incarnation_of(*m, victim->name) > before);
  // It caught up from its peers (NIP-77): the three stores are identical.
  require_all_hold({&a, &b, &c}, published, 20s, "after the rejoin");

  // A node whose key is not among the members is refused, with the reason
  // in /health of the node it dialled.
  member stranger;
  stranger.name = "stranger";
  // It believes anyone may join (an empty allow-list) and syncs nothing.
  stranger.configure("", {a.cluster_address()}, {});
  stranger.start();
  std::string health;
  auto refused = test::poll_until(
    [&] {
      auto res = admin(a.admin_port, "GET", "/health");
      health = res.response.body;
      return res.response.status == 503
             && health.find("cluster: refused stranger (pubkey "
                            + stranger.pubkey()
                            + "): pubkey is not among the cluster members")
                  != std::string::npos;
    },
    10s);
  CHECK(refused);
  INFO(health);
  // The stranger never counts: the three still own everything.
  require_settled({&a, &b, &c}, urls, 5s, "with the stranger refused");
  CHECK(stranger.process->kill(SIGTERM) == 0);

  // SIGTERM is a graceful leave: the others see node-c `left` (not dead
  // after failure_timeout) and take its relays.
  CHECK(c.process->kill(SIGTERM) == 0);
  CHECK(test::output_tail(*c.process, 200).find("node left the cluster")
        != std::string::npos);
  require_settled({&a, &b}, urls, 10s, "after node-c left");
  CHECK(state_of_member(a.view(), "node-c") == "left");
  CHECK(state_of_member(b.view(), "node-c") == "left");
  for (auto* m : {&a, &b})
    CHECK(m->process->kill(SIGTERM) == 0);
}

TEST_CASE("members join over mutual TLS on the cluster port, and a node whose "
          "certificate another CA signed cannot join",
          "[integration][cluster][tls]") {
  test::test_pki pki;
  test::test_pki other_pki;
  member a, b, stranger;
  a.name = "node-a";
  b.name = "node-b";
  stranger.name = "stranger";
  a.configure("", {b.cluster_address()}, {}, &pki);
  b.configure("", {a.cluster_address()}, {}, &pki);
  // Any key may join: only its certificate keeps it out.
  stranger.configure("", {a.cluster_address()}, {}, &other_pki);
  a.start();
  b.start();
  std::vector<std::string> both{"node-a", "node-b"};
  auto joined = test::poll_until(
    [&] { return names_in(a.view()) == both && names_in(b.view()) == both; },
    20s, 100ms);
  if (!joined)
    FAIL("a and b did not join over TLS\n" << dump({&a, &b}));
  CHECK(test::output_tail(*a.process, 200).find("(TLS)") != std::string::npos);

  stranger.start();
  // Its dial of a fails in the TLS handshake, and it never counts. That
  // takes milliseconds alone; the wait allows for a handshake that hangs
  // until the dial's timeout on a loaded machine, and its retry.
  auto dial_failed = test::poll_until(
    [&] {
      return stranger.process->output().find("cannot connect")
             != std::string::npos;
    },
    30s, 100ms);
  if (!dial_failed)
    FAIL("the stranger's dial of node-a never failed\n"
         << dump({&stranger, &a}));
  CHECK(names_in(stranger.view()) == std::vector<std::string>{"stranger"});
  CHECK(names_in(a.view()) == both);
  CHECK(names_in(b.view()) == both);
  for (auto* m : {&stranger, &a, &b})
    CHECK(m->process->kill(SIGTERM) == 0);
}

TEST_CASE("members replicate what clients publish, back-dated events too, "
          "and never send an event back to the member it came from",
          "[integration][cluster][replication]") {
  linked_pair pair;
  auto& a = pair.a;
  auto& b = pair.b;

  auto author = nostr::generate_keypair();
  auto now = static_cast<int64_t>(std::time(nullptr));
  auto fresh = sync_test::make_events(author, 20, now, 1, "fresh");
  sync_test::publish(a.relay_port, fresh);
  // A month old: the live tail carries back-dated events too (a member's
  // catch-up of a remote relay stores such events at any time).
  auto old = sync_test::make_events(author, 15, now - 30 * 86400, 1, "old");
  sync_test::publish(b.relay_port, old);
  auto published = sync_test::id_set(fresh);
  for (auto& id : sync_test::id_set(old))
    published.insert(id);
  require_all_hold({&a, &b}, published, 15s, "replicated both ways");

  // Each event crossed once: neither link brought back what its own side
  // had sent (without the echo rule node-a would receive its 20 again).
  auto counted = test::poll_until(
    [&] {
      return sync_test::stat_of(b.admin_port, "cluster.node-a", "accepted")
               == 20
             && sync_test::stat_of(a.admin_port, "cluster.node-b", "accepted")
                  == 15;
    },
    5s, 100ms);
  CHECK(counted);
  CHECK(sync_test::stat_of(b.admin_port, "cluster.node-a", "received") == 20);
  CHECK(sync_test::stat_of(a.admin_port, "cluster.node-b", "received") == 15);
  CHECK(sync_test::stat_of(b.admin_port, "cluster.node-a", "duplicate") == 0);
  CHECK(sync_test::stat_of(a.admin_port, "cluster.node-b", "duplicate") == 0);

  // The links are the cluster manager's: the admin API may not define or
  // delete one.
  auto put = admin(a.admin_port, "PUT", "/api/v1/sync/servers/cluster.node-c",
                   R"({"url":"ws://127.0.0.1:1","filters":[{}]})");
  CHECK(put.response.status == 400);
  CHECK(put.response.body.find(R"("field":"id")") != std::string::npos);
  auto erase
    = admin(a.admin_port, "DELETE", "/api/v1/sync/servers/cluster.node-b");
  CHECK(erase.response.status == 400);
  CHECK(a.replicating_from({&b}));

  // `cluster-leave` through the admin API: node-a takes the goodbye, sees
  // node-b `left` and stops replicating from it; node-b keeps serving.
  auto leave = admin(b.admin_port, "POST", "/api/v1/cluster/leave");
  CHECK(leave.response.status == 200);
  INFO(leave.response.body);
  CHECK(leave.response.body.find(R"("acknowledged":["node-a"])")
        != std::string::npos);
  CHECK(state_of_member(a.view(), "node-b") == "left");
  auto disabled = test::poll_until(
    [&] {
      return sync_test::stat_flag(a.admin_port, "cluster.node-b", "enabled")
               == false
             && !sync_test::stat_flag(a.admin_port, "cluster.node-b",
                                      "connected");
    },
    5s, 100ms);
  CHECK(disabled);
  CHECK(sync_test::ids_of(b.relay_port, sync_test::kind1_all) == published);
  for (auto* m : {&a, &b})
    CHECK(m->process->kill(SIGTERM) == 0);
}

TEST_CASE("a deletion and an expiry published on one member take effect on "
          "every member",
          "[integration][cluster][replication]") {
  linked_pair pair;
  auto& a = pair.a;
  auto& b = pair.b;
  auto author = nostr::generate_keypair();
  auto now = test::unix_now();
  auto notes = sync_test::make_events(author, 4, now, 1, "kept");
  // NIP-40: every member stops serving it at the same moment, whichever
  // member it arrived at.
  nostr::event expiring;
  expiring.created_at = now;
  expiring.kind = 1;
  expiring.tags = {{"expiration", std::to_string(now + 5)}};
  expiring.content = "expires in five seconds";
  nostr::sign_event(expiring, author);
  auto published = sync_test::id_set(notes);
  published.insert(sync_test::hex_id(expiring));
  notes.push_back(expiring);
  sync_test::publish(a.relay_port, notes);
  require_all_hold({&a, &b}, published, 4s, "before the expiry");

  // NIP-09 at node-b: the deletion replicates like any event, and node-a
  // applies it to the event it holds.
  auto deletion = sync_test::deletion_of(author, notes[0]);
  sync_test::publish(b.relay_port, {deletion});
  published.erase(sync_test::hex_id(notes[0]));
  published.erase(sync_test::hex_id(expiring));
  require_all_hold({&a, &b}, published, 15s,
                   "after the deletion and the expiry");
  CHECK(sync_test::ids_of(a.relay_port, R"({"kinds":[5]})")
        == std::set<std::string>{sync_test::hex_id(deletion)});
  for (auto* m : {&a, &b})
    CHECK(m->process->kill(SIGTERM) == 0);
}
