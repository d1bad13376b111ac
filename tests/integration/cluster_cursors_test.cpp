// Replicated sync cursors on two real `ferry node` members: a relay whose
// owner dies moves to the other member, which resumes from the dead owner's
// cursor (minus the overlap window) when its replication link has confirmed
// that cursor for its own store, and from its own otherwise, so a move
// re-fetches little and loses nothing.

#include "tests/integration/cluster_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

namespace json = boost::json;
using namespace cluster_test;

constexpr size_t history_size = 300;

/// A URL (a path of the relay on `port`) that the hash gives `owner` among
/// `live`.
std::string url_owned_by(uint16_t port, const std::string& owner,
                         const std::vector<std::string>& live) {
  for (int i = 0;; ++i) {
    auto url = "ws://127.0.0.1:" + std::to_string(port) + "/moving"
               + std::to_string(i);
    if (cluster::rendezvous_owner(url, live) == owner)
      return url;
  }
}

/// Puts `line` into the `[relay]` table of `m`'s config.
void add_relay_setting(member& m, const std::string& line) {
  std::ifstream in{m.config};
  std::stringstream text;
  text << in.rdbuf();
  auto config = text.str();
  auto at = config.find("[admin]");
  REQUIRE(at != std::string::npos);
  config.insert(at, line + "\n");
  test::write_file(m.config, config);
}

/// `viewer`'s row for `member`'s cursor claim of `server` in its cluster
/// view; null when it holds none.
json::value claim_in(member& viewer, const std::string& server,
                     const std::string& member_name) {
  auto view = viewer.view();
  if (!view.is_object() || !view.as_object().if_contains("cursors"))
    return nullptr;
  for (auto& row : view.at("cursors").as_array())
    if (row.at("server").as_string() == server
        && row.at("member").as_string() == member_name)
      return row;
  return nullptr;
}

/// A remote relay holding an old history and one recent event, one sync
/// server `moving` on it that the hash gives node-a while node-b is up, and
/// the two members configured for it (not started).
struct moving_relay {
  test::temp_dir remote_dir;
  sync_test::node remote{test::node_config(remote_dir)};
  nostr::keypair author = nostr::generate_keypair();
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::set<std::string> published;
  member a, b;

  moving_relay() {
    // Two hours old, one per second: far below any overlap window of the
    // recent event's cursor.
    auto history = sync_test::make_events(author, history_size, now - 7200, 1,
                                          "history");
    history.push_back(test::make_note(author, now - 10, "recent", 1));
    sync_test::publish(remote.port, history);
    published = sync_test::id_set(history);
    a.name = "node-a";
    b.name = "node-b";
    sync_test::server_options o;
    o.id = "moving";
    o.url = url_owned_by(remote.port, a.name, {a.name, b.name});
    o.relay_info_mode = "disabled";
    auto servers = sync_test::sync_server_toml(remote.port, o);
    std::vector<std::string> allowed{a.pubkey(), b.pubkey()};
    a.configure(servers, {b.cluster_address()}, allowed);
    b.configure(servers, {a.cluster_address()}, allowed);
  }

  /// Starts node-a alone, waits until it synced the whole relay, then
  /// starts node-b (which finds node-a up, so never runs `moving` itself).
  void start_a_then_b() {
    a.start();
    require_all_hold({&a}, published, 30s, "node-a synced the relay");
    b.start();
    require_live({&a, &b}, 20s, "two members");
  }

  /// Kills node-a, publishes a few events to the relay meanwhile, and waits
  /// until node-b holds everything the relay has.
  void fail_over() {
    a.process->kill(SIGKILL);
    auto fresh = sync_test::make_events(author, 5, now, 1, "while moving");
    sync_test::publish(remote.port, fresh);
    for (auto& id : sync_test::id_set(fresh))
      published.insert(id);
    require_all_hold({&b}, published, 30s, "node-b after the move");
  }
};

} // namespace

TEST_CASE("a relay that moves resumes from its dead owner's cursor, once the "
          "replication link confirmed it, and re-fetches little",
          "[integration][cluster][cursors]") {
  moving_relay r;
  r.start_a_then_b();
  // node-b replicated the relay's events from node-a and holds node-a's
  // cursor claim, confirmed by a reconciliation of its link from node-a
  // that started after the claim arrived; it took it as its own.
  require_all_hold({&r.b}, r.published, 30s, "replicated to node-b");
  json::value claim;
  auto confirmed = test::poll_until(
    [&] {
      claim = claim_in(r.b, "moving", "node-a");
      return claim.is_object() && claim.at("confirmed").as_bool()
             && claim.at("current").as_bool()
             && sync_test::stat_of(r.b.admin_port, "moving", "cursor")
                  >= r.now - 10;
    },
    20s, 100ms);
  INFO(json::serialize(claim) << "\n" << dump({&r.a, &r.b}));
  REQUIRE(confirmed);
  CHECK(claim.at("cursor").as_int64() >= r.now - 10);

  r.fail_over();
  // It resumed from the recent event minus the overlap window: the history
  // came from node-a by replication, not again from the relay.
  auto received = sync_test::stat_of(r.b.admin_port, "moving", "received");
  INFO(dump({&r.b}));
  CHECK(received >= 0);
  CHECK(received < 50);
  WARN("node-b fetched " << received << " events from the relay after the "
                         << "move; it holds " << history_size + 6);
  CHECK(r.b.process->kill(SIGTERM) == 0);
}

TEST_CASE("a cursor claim the replication link did not confirm is not "
          "trusted: the new owner syncs from its own cursor and loses "
          "nothing",
          "[integration][cluster][cursors]") {
  moving_relay r;
  // node-a announces a relay URL where nothing listens: node-b's link from
  // it never connects, as when node-a is killed between storing events and
  // sending them, while its claims arrive over the cluster link.
  add_relay_setting(r.a, "public_url = \"ws://127.0.0.1:"
                           + std::to_string(test::free_port()) + "\"");
  r.start_a_then_b();
  json::value claim;
  auto heard = test::poll_until(
    [&] {
      claim = claim_in(r.b, "moving", "node-a");
      return claim.is_object() && claim.at("cursor").as_int64() >= r.now - 10;
    },
    20s, 100ms);
  INFO(json::serialize(claim) << "\n" << dump({&r.a, &r.b}));
  REQUIRE(heard);
  CHECK_FALSE(claim.at("confirmed").as_bool());
  // node-b holds none of the relay's events, and no cursor for it.
  CHECK(r.b.kind1_ids().empty());
  CHECK(sync_test::stat_of(r.b.admin_port, "moving", "cursor") == 0);

  // Trusting the claim would resume two hours after the history, which
  // node-b never got: it must fetch it all from the relay.
  r.fail_over();
  auto received = sync_test::stat_of(r.b.admin_port, "moving", "received");
  CHECK(received >= static_cast<int64_t>(history_size));
  CHECK(r.b.process->kill(SIGTERM) == 0);
}
