// A rolling restart of a three-member cluster, one member at a time with
// SIGTERM (a graceful leave), while events keep arriving at the remote
// relays and at the members themselves: afterwards every store holds every
// event (none lost), and each relay is owned by exactly one member again.

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

TEST_CASE("a rolling restart with SIGTERM while events keep arriving loses "
          "no event",
          "[integration][cluster][rolling]") {
  test::temp_dir remote_dir;
  sync_test::node remote{test::node_config(remote_dir)};
  remote_paths relays{remote.port, 6};
  auto& urls = relays.urls;
  three_members trio{relays.servers};
  auto all = trio.all();
  trio.start();
  require_settled(all, urls, 30s, "three nodes");

  // Each round publishes 10 events to the remote relay (synced by their
  // owners) and 5 to a member (replicated by the others).
  auto at_remote = nostr::generate_keypair();
  auto at_member = nostr::generate_keypair();
  auto now = static_cast<int64_t>(std::time(nullptr));
  std::set<std::string> published;
  int round = 0;
  auto publish_round = [&](member& to, const std::string& tag) {
    auto newest = now - 20 * round++;
    auto remote_events
      = sync_test::make_events(at_remote, 10, newest, 1, tag + " (remote)");
    auto member_events
      = sync_test::make_events(at_member, 5, newest, 1, tag + " (member)");
    sync_test::publish(remote.port, remote_events);
    sync_test::publish(to.relay_port, member_events);
    for (auto* batch : {&remote_events, &member_events})
      for (auto& id : sync_test::id_set(*batch))
        published.insert(id);
  };
  publish_round(trio.a, "all up");
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
    publish_round(*others[0], restarting->name + " down");
    restarting->start();
    require_settled(all, urls, 20s, "after the restart");
    publish_round(*restarting, restarting->name + " back");
  }
  require_all_hold(all, published, 30s, "after the rolling restart");
  for (auto* m : all)
    CHECK(m->process->kill(SIGTERM) == 0);
}
