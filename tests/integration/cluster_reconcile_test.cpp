// The periodic reconciliation between cluster members on two real `ferry
// node` processes: an event node-b refused when its live tail from node-a
// brought it (a policy rule), and wants once a reload lifted the rule,
// arrives on node-b within the reconciliation interval (here 3 s), without
// the link reconnecting. The live tail alone never brings it back.

#include "tests/integration/cluster_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <set>
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

/// The events `m`'s replication link from `peer` brought and `m`'s policy
/// refused; -1 when it does not answer.
int64_t link_refused(member& m, const member& peer) {
  auto res = admin(m.admin_port, "GET", "/api/v1/sync/stats");
  if (!res.error.empty() || res.response.status != 200)
    return -1;
  auto stats = json::parse(res.response.body);
  for (auto& row : stats.at("per_server").as_array())
    if (row.at("id").as_string() == cluster::replication_server_id(peer.name))
      return row.at("refused").to_number<int64_t>();
  return -1;
}

/// Waits until `m` holds exactly `want` of `filter`'s events.
void require_holds(member& m, const std::string& filter,
                   const std::set<std::string>& want,
                   std::chrono::milliseconds timeout, const char* what) {
  size_t held = 0;
  auto ok = test::poll_until(
    [&] {
      auto ids = sync_test::try_ids(m.relay_port, filter);
      held = ids ? ids->size() : 0;
      return ids && *ids == want;
    },
    timeout, 100ms);
  if (!ok)
    FAIL(what << ": " << m.name << " holds " << held << " of " << want.size()
              << "\n" << cluster_test::dump({&m}));
}

} // namespace

TEST_CASE("a replication link reconciles with its member every "
          "reconcile_interval_ms: an event its live tail brought too early "
          "arrives without a reconnect",
          "[integration][cluster][reconcile]") {
  member a, b;
  a.name = "node-a";
  b.name = "node-b";
  a.cluster_extra = b.cluster_extra = "reconcile_interval_ms = 3000\n";
  std::vector<std::string> allowed{a.pubkey(), b.pubkey()};
  a.configure("", {b.cluster_address()}, allowed);
  // node-b refuses kind 4 for now.
  b.configure("[policy]\ndenied_kinds = [4]\n", {a.cluster_address()},
              allowed);
  a.start();
  b.start();
  REQUIRE(test::poll_until(
    [&] { return a.replicating_from({&b}) && b.replicating_from({&a}); },
    20s, 100ms));

  // The live tail carries an event at once.
  auto author = nostr::generate_keypair();
  auto now = static_cast<int64_t>(std::time(nullptr));
  auto first = sync_test::make_events(author, 1, now, 1, "live");
  sync_test::publish(a.relay_port, first);
  auto want = sync_test::id_set(first);
  auto by_author
    = R"({"authors":[")" + nostr::to_hex(author.pubkey) + R"("]})";
  require_holds(b, by_author, want, 10s, "by the live tail");
  auto connected_at = link_connected_at(b, a);
  REQUIRE(connected_at > 0);

  // Kind 4 reaches node-b live, and its policy refuses it.
  auto refused = sync_test::make_events(author, 3, now - 10, 4, "refused");
  sync_test::publish(a.relay_port, refused);
  for (auto& id : sync_test::id_set(refused))
    want.insert(id);
  require_holds(a, by_author, want, 10s, "stored on node-a");
  REQUIRE(test::poll_until([&] { return link_refused(b, a) >= 3; }, 10s,
                           100ms));
  CHECK(sync_test::ids_of(b.relay_port, R"({"kinds":[4]})").empty());

  // The rule is lifted: only a reconciliation brings the refused events.
  b.configure("", {a.cluster_address()}, allowed);
  b.process->signal(SIGHUP);
  REQUIRE(test::poll_until(
    [&] {
      return b.process->output().find("config-reloader reloaded")
             != std::string::npos;
    },
    10s, 50ms));
  // The interval (3 s) counts from node-b's last round: at most that long.
  require_holds(b, by_author, want, 15s, "by the periodic reconciliation");
  // The same connection brought them: no reconnect repaired it.
  CHECK(link_connected_at(b, a) == connected_at);
  for (auto* m : {&a, &b})
    CHECK(m->process->kill(SIGTERM) == 0);
}
