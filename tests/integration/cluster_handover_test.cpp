// A graceful leave hands the member's relays over before the process ends:
// every relay it ran is connected on another member by the time it has
// exited. The remote relay sits behind a proxy that holds each new
// connection for 1.5 s (a relay slow to answer, as across the internet), so
// a member that stopped right after its goodbye would be gone long before
// the new owners are connected.

#include "tests/fixtures/delay_proxy.hpp"
#include "tests/integration/cluster_helpers.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using namespace ferry::cluster_test;

TEST_CASE("a member stopped with SIGTERM exits only once the others have "
          "connected its relays",
          "[integration][cluster][handover]") {
  test::temp_dir remote_dir;
  sync_test::node remote{test::node_config(remote_dir)};
  test::delay_proxy slow_remote{remote.port, 1500ms};
  remote_paths relays{slow_remote.port(), 6};
  three_members trio{relays.servers};
  auto all = trio.all();
  trio.start();
  require_settled(all, relays.urls, 30s, "three nodes");

  // The member that owns the most relays leaves.
  auto owners = expected_owners(relays.urls, {"node-a", "node-b", "node-c"});
  std::map<std::string, std::set<std::string>> owned;
  for (auto& [id, owner] : owners)
    owned[owner].insert(id);
  member* leaver = all.front();
  for (auto* m : all)
    if (owned[m->name].size() > owned[leaver->name].size())
      leaver = m;
  std::vector<member*> others;
  for (auto* m : all)
    if (m != leaver)
      others.push_back(m);
  REQUIRE_FALSE(owned[leaver->name].empty());

  CHECK(leaver->process->kill(SIGTERM) == 0);
  // Asked only now that the process has ended.
  std::set<std::string> connected;
  for (auto* m : others)
    for (auto& id : m->connected())
      connected.insert(id);
  std::string missing;
  for (auto& id : owned[leaver->name])
    if (connected.count(id) == 0)
      missing += " " + id;
  if (!missing.empty())
    FAIL(leaver->name << " exited before these of its relays were connected "
                         "elsewhere:"
                      << missing << "\n"
                      << dump(all));
  auto handed_over = std::to_string(owned[leaver->name].size())
                     + " relay(s) handed over, 0 not";
  CHECK(test::output_tail(*leaver->process, 200).find(handed_over)
        != std::string::npos);
  require_settled(others, relays.urls, 10s, "after the leave");
  for (auto* m : others)
    CHECK(m->process->kill(SIGTERM) == 0);
}
