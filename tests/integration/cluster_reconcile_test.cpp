// The periodic reconciliation between cluster members on two real `ferry
// node` processes: an event that reaches node-a's store while node-b's live
// tail from node-a is silently gone (node-a's hub restarted under the open
// subscription: the session stays up, its live part does not) arrives on
// node-b within the reconciliation interval (here 3 s), without the link
// reconnecting.

#include "tests/integration/cluster_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using cluster_test::member;
using sync_test::admin;

namespace {

namespace json = boost::json;

/// When `m`'s replication link from `peer` last connected (unix seconds);
/// 0 when it does not answer.
int64_t link_connected_at(member& m, const member& peer) {
  auto res = admin(m.admin_port, "GET",
                   "/api/v1/sync/servers/"
                     + cluster::replication_server_id(peer.name));
  if (!res.error.empty() || res.response.status != 200)
    return 0;
  auto row = json::parse(res.response.body);
  return row.at("runtime").at("last_connected").to_number<int64_t>();
}

} // namespace

TEST_CASE("a replication link reconciles with its member every "
          "reconcile_interval_ms: an event its live tail missed arrives "
          "without a reconnect",
          "[integration][cluster][reconcile]") {
  cluster_test::linked_pair pair{"reconcile_interval_ms = 3000\n"};
  member& a = pair.a;
  member& b = pair.b;

  // The live tail carries an event at once.
  auto author = nostr::generate_keypair();
  auto now = static_cast<int64_t>(std::time(nullptr));
  auto first = sync_test::make_events(author, 1, now, 1, "live");
  sync_test::publish(a.relay_port, first);
  auto want = sync_test::id_set(first);
  cluster_test::require_all_hold({&b}, want, 10s, "by the live tail");
  auto connected_at = link_connected_at(b, a);
  REQUIRE(connected_at > 0);

  // node-a's hub restarts: node-b's session there stays open, but its live
  // subscription went with the old hub, so the tail brings nothing more.
  auto restart = admin(a.admin_port, "POST", "/api/v1/actors/hub/restart");
  REQUIRE(restart.response.status == 200);
  auto missed = sync_test::make_events(author, 3, now - 10, 1, "missed");
  sync_test::publish(a.relay_port, missed);
  for (auto& id : sync_test::id_set(missed))
    want.insert(id);
  cluster_test::require_all_hold({&a}, want, 10s, "stored on node-a");
  // The interval (3 s) counts from node-b's last round: at most that long.
  cluster_test::require_all_hold({&b}, want, 15s,
                                 "by the periodic reconciliation");
  // The same connection brought them: no reconnect repaired it.
  CHECK(link_connected_at(b, a) == connected_at);
  // And the live tail is back: the reconciliation subscribed it anew.
  auto later = sync_test::make_events(author, 1, now + 1, 1, "live again");
  sync_test::publish(a.relay_port, later);
  for (auto& id : sync_test::id_set(later))
    want.insert(id);
  cluster_test::require_all_hold({&b}, want, 10s, "by the live tail again");
  for (auto* m : {&a, &b})
    CHECK(m->process->kill(SIGTERM) == 0);
}
