// Members that go away while events keep arriving at the remote relays and
// at the members themselves: a rolling restart, one member at a time with
// SIGTERM (a graceful leave), and a member frozen with SIGSTOP (its sockets
// stay open, it answers nothing: a partition as the others see it).
// Afterwards every store holds every event (none lost), and each relay is
// owned by exactly one member again.

#include "tests/integration/cluster_helpers.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using namespace ferry::cluster_test;

namespace {

/// Events that keep arriving: each round publishes 10 events to the remote
/// relay (synced by their owners) and 5 to a member (replicated by the
/// others), each round a little older than the last.
struct traffic {
  uint16_t remote_port;
  nostr::keypair at_remote = nostr::generate_keypair();
  nostr::keypair at_member = nostr::generate_keypair();
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  int rounds = 0;
  std::set<std::string> published;

  explicit traffic(uint16_t port) : remote_port(port) {
    // nop
  }

  void round(member& to, const std::string& tag) {
    auto newest = now - 20 * rounds++;
    auto remote_events
      = sync_test::make_events(at_remote, 10, newest, 1, tag + " (remote)");
    auto member_events
      = sync_test::make_events(at_member, 5, newest, 1, tag + " (member)");
    sync_test::publish(remote_port, remote_events);
    sync_test::publish(to.relay_port, member_events);
    for (auto* batch : {&remote_events, &member_events})
      for (auto& id : sync_test::id_set(*batch))
        published.insert(id);
  }
};

/// A remote relay serving six paths, and three members syncing them, started
/// and settled (each path owned by exactly one member).
struct settled_trio {
  test::temp_dir remote_dir;
  sync_test::node remote{test::node_config(remote_dir)};
  remote_paths relays{remote.port, 6};
  three_members trio{relays.servers};
  std::vector<member*> all = trio.all();

  settled_trio() {
    trio.start();
    require_settled(all, relays.urls, 30s, "three nodes");
  }
};

} // namespace

TEST_CASE("a rolling restart with SIGTERM while events keep arriving loses "
          "no event",
          "[integration][cluster][rolling]") {
  settled_trio cluster;
  auto& remote = cluster.remote;
  auto& urls = cluster.relays.urls;
  auto& trio = cluster.trio;
  auto& all = cluster.all;
  traffic events{remote.port};
  events.round(trio.a, "all up");
  for (auto* restarting : all) {
    std::vector<member*> others;
    for (auto* m : all)
      if (m != restarting)
        others.push_back(m);
    CHECK(restarting->process->kill(SIGTERM) == 0);
    // Its relays moved at once: the others own everything.
    require_settled(others, urls, 10s, "while one member restarts");
    if (state_of_member(others[0]->view(), restarting->name) != "left")
      FAIL(restarting->name << " did not leave gracefully\n"
                            << dump({restarting, others[0], others[1]}));
    events.round(*others[0], restarting->name + " down");
    restarting->start();
    require_settled(all, urls, 20s, "after the restart");
    events.round(*restarting, restarting->name + " back");
  }
  require_all_hold(all, events.published, 30s, "after the rolling restart");
  for (auto* m : all)
    CHECK(m->process->kill(SIGTERM) == 0);
}

TEST_CASE("a frozen member loses its relays although its sockets stay open, "
          "and once thawed the stores converge",
          "[integration][cluster][partition]") {
  settled_trio cluster;
  auto& remote = cluster.remote;
  auto& relays = cluster.relays;
  auto& trio = cluster.trio;
  auto& all = cluster.all;
  traffic events{remote.port};
  events.round(trio.a, "all up");

  // SIGSTOP: node-c's TCP connections stay up, but it sends no heartbeat.
  trio.c.process->signal(SIGSTOP);
  std::vector<member*> others{&trio.a, &trio.b};
  require_settled(others, relays.urls, 10s, "with node-c frozen");
  CHECK(state_of_member(trio.a.view(), "node-c") == "dead");
  events.round(trio.a, "node-c frozen");
  require_all_hold(others, events.published, 15s, "while node-c is frozen");

  // Thawed, node-c has heard nothing for seconds and the others declared it
  // dead: both sides settle on the same live set and owners, and it catches
  // up on what it missed.
  trio.c.process->signal(SIGCONT);
  require_settled(all, relays.urls, 20s, "after node-c thawed");
  events.round(trio.c, "node-c thawed");
  require_all_hold(all, events.published, 20s, "after node-c thawed");
  for (auto* m : all)
    CHECK(m->process->kill(SIGTERM) == 0);
}
