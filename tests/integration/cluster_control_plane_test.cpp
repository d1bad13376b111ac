// The replicated control plane on three real `ferry node` processes: a sync
// server an operator defines, changes or deletes through one member's admin
// API reaches every member within seconds and runs on exactly one of them;
// the same server edited on two members at once is a conflict every member
// settles the same way, reported in the view and /health by the members
// that met both edits.

#include "tests/integration/cluster_helpers.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using cluster_test::server_definition_on;
using cluster_test::member;
using cluster_test::server_body;
using sync_test::admin;

namespace {

namespace json = boost::json;

/// Waits until every member in `members` holds `want` for `id` (null: none).
void require_definition(std::vector<member*> members, const std::string& id,
                        const json::value& want, std::chrono::milliseconds timeout,
                        const char* what) {
  cluster_test::require_held(members, id, want, server_definition_on, timeout, what);
}

size_t conflicts_in(member& m) {
  return cluster_test::conflicts_on(m).size();
}

} // namespace

TEST_CASE("a sync server defined, changed or deleted on one member reaches "
          "every member and runs on exactly one",
          "[integration][cluster][control_plane]") {
  test::temp_dir remote_dir;
  sync_test::node remote{test::node_config(remote_dir)};
  auto url = sync_test::relay_url(remote.port) + "/shared";
  cluster_test::three_members trio;
  trio.start_joined();
  member& a = trio.a;
  member& b = trio.b;
  member& c = trio.c;

  auto put = admin(a.admin_port, "PUT", "/api/v1/sync/servers/shared",
                   server_body(url, 1));
  REQUIRE(put.response.status == 201);
  auto defined = server_definition_on(a, "shared");
  REQUIRE(defined.is_object());
  require_definition({&b, &c}, "shared", defined, 10s, "replicated");
  cluster_test::require_settled({&a, &b, &c}, {{"shared", url}}, 10s,
                                "the new server has one owner");

  // What the owner syncs reaches every member.
  auto author = nostr::generate_keypair();
  auto now = static_cast<int64_t>(std::time(nullptr));
  auto events = sync_test::make_events(author, 5, now, 1, "via the owner");
  sync_test::publish(remote.port, events);
  cluster_test::require_all_hold({&a, &b, &c}, sync_test::id_set(events), 15s,
                                 "synced by the owner, replicated");

  // A change on another member replaces it everywhere.
  auto change = admin(b.admin_port, "PUT", "/api/v1/sync/servers/shared",
                      server_body(url, 7));
  REQUIRE(change.response.status == 200);
  auto changed = server_definition_on(b, "shared");
  CHECK(changed != defined);
  require_definition({&a, &c}, "shared", changed, 10s, "change replicated");

  // A restarted member keeps the current version and the history.
  CHECK(c.process->kill(SIGTERM) == 0);
  c.start();
  cluster_test::require_live({&a, &b, &c}, 20s, "after c restarted");
  require_definition({&a, &b, &c}, "shared", changed, 10s,
                     "after c restarted");

  // A deletion on a third member removes it everywhere, for good.
  auto erase = admin(c.admin_port, "DELETE", "/api/v1/sync/servers/shared");
  REQUIRE(erase.response.status == 200);
  require_definition({&a, &b, &c}, "shared", nullptr, 10s,
                     "deletion replicated");
  for (auto* m : {&a, &b, &c})
    CHECK(conflicts_in(*m) == 0);
  for (auto* m : {&a, &b, &c})
    CHECK(m->process->kill(SIGTERM) == 0);
}

TEST_CASE("the same sync server edited on two members at once is one "
          "conflict on every member, settled the same way everywhere",
          "[integration][cluster][control_plane]") {
  cluster_test::three_members trio;
  trio.start_joined();
  member& a = trio.a;
  member& b = trio.b;
  member& c = trio.c;
  auto url = std::string{"ws://127.0.0.1:9/nowhere"};
  REQUIRE(admin(a.admin_port, "PUT", "/api/v1/sync/servers/contested",
                server_body(url, 1))
            .response.status
          == 201);
  require_definition({&b, &c}, "contested", server_definition_on(a, "contested"),
                     10s, "the base replicated");

  // Two operators edit it on two members within a few milliseconds: each
  // member counts its own edit before it hears of the other's.
  REQUIRE(admin(a.admin_port, "PUT", "/api/v1/sync/servers/contested",
                server_body(url, 10))
            .response.status
          == 200);
  REQUIRE(admin(b.admin_port, "PUT", "/api/v1/sync/servers/contested",
                server_body(url, 20))
            .response.status
          == 200);
  auto settled = test::poll_until(
    [&] {
      auto on_a = server_definition_on(a, "contested");
      return on_a == server_definition_on(b, "contested")
             && on_a == server_definition_on(c, "contested")
             && conflicts_in(a) == 1 && conflicts_in(b) == 1;
    },
    15s, 100ms);
  if (!settled)
    FAIL("not settled alike\n" << cluster_test::dump({&a, &b, &c}));
  // Every member names the same kept and dropped versions.
  auto conflict_of = [](member& m) {
    return m.view().at("conflicts").as_array().at(0).as_object();
  };
  // node-c reports it too when the two edits reached it before the settled
  // version did; one that got the settled version first holds both
  // histories and has nothing to report.
  CHECK(conflicts_in(c) <= 1);
  auto on_a = conflict_of(a);
  for (auto* m : {&b, &c}) {
    if (conflicts_in(*m) == 0)
      continue;
    auto other = conflict_of(*m);
    CHECK(other.at("kept") == on_a.at("kept"));
    CHECK(other.at("dropped") == on_a.at("dropped"));
  }
  auto kept_kind = server_definition_on(a, "contested")
                     .at("filters").as_array().at(0).at("kinds").at(0);
  CHECK((kept_kind == json::value(10) || kept_kind == json::value(20)));
  // And /health names it.
  auto health = admin(b.admin_port, "GET", "/health");
  CHECK(health.response.body.find("concurrent edits of sync_server contested")
        != std::string::npos);
  for (auto* m : {&a, &b, &c})
    CHECK(m->process->kill(SIGTERM) == 0);
}

TEST_CASE("a forgotten member leaves every member's view, and when it returns "
          "its first edit replaces the version it made before, no conflict",
          "[integration][cluster][control_plane]") {
  // Forgotten 3 s after the last heartbeat (dead after 2 s).
  cluster_test::three_members trio{"", "forget_after_ms = 3000\n"};
  trio.start_joined();
  member& a = trio.a;
  member& b = trio.b;
  member& c = trio.c;
  auto url = std::string{"ws://127.0.0.1:9/nowhere"};
  // node-b's edit: its counter is in the version every member holds.
  REQUIRE(admin(b.admin_port, "PUT", "/api/v1/sync/servers/kept",
                server_body(url, 1))
            .response.status
          == 201);
  require_definition({&a, &c}, "kept", server_definition_on(b, "kept"), 10s,
                     "node-b's version replicated");

  // node-b dies and is forgotten: it leaves the view on both others.
  b.process->kill(SIGKILL);
  auto listed = [](member& m) {
    std::vector<std::string> names;
    auto view = m.view();
    if (view.is_object())
      for (auto& x : view.at("members").as_array())
        names.emplace_back(x.at("name").as_string());
    return names;
  };
  auto forgotten = test::poll_until(
    [&] {
      return listed(a) == std::vector<std::string>{"node-a", "node-c"}
             && listed(c) == std::vector<std::string>{"node-a", "node-c"};
    },
    15s, 100ms);
  if (!forgotten)
    FAIL("node-b was not forgotten\n" << cluster_test::dump({&a, &c}));

  // It comes back with its store and edits the server at once.
  b.start();
  cluster_test::require_live({&a, &b, &c}, 20s, "node-b back");
  REQUIRE(admin(b.admin_port, "PUT", "/api/v1/sync/servers/kept",
                server_body(url, 7))
            .response.status
          == 200);
  auto edited = server_definition_on(b, "kept");
  // The others still fold its counter: its edit follows the version they
  // folded, one history.
  require_definition({&a, &c}, "kept", edited, 10s, "its edit replicated");
  for (auto* m : {&a, &b, &c}) {
    INFO(m->name << ": " << json::serialize(cluster_test::conflicts_on(*m)));
    CHECK(conflicts_in(*m) == 0);
    CHECK(cluster_test::state_of_member(m->view(), "node-b") == "alive");
  }
  for (auto* m : {&a, &b, &c})
    CHECK(m->process->kill(SIGTERM) == 0);
}

TEST_CASE("a member restarted after another was forgotten drops that "
          "member's replication link too",
          "[integration][cluster][control_plane]") {
  // Forgotten 3 s after the last heartbeat (dead after 2 s).
  cluster_test::three_members trio{"", "forget_after_ms = 3000\n"};
  trio.start_joined();
  member& a = trio.a;
  member& b = trio.b;
  member& c = trio.c;
  auto replication_ids = [](member& m) {
    std::vector<std::string> ids;
    auto res = admin(m.admin_port, "GET", "/api/v1/sync/servers");
    if (!res.error.empty() || res.response.status != 200)
      return std::vector<std::string>{"(no answer)"};
    auto rows = json::parse(res.response.body);
    for (auto& row : rows.as_array()) {
      std::string id{row.at("id").as_string()};
      if (cluster::replicated_member(id))
        ids.push_back(id);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  REQUIRE(test::poll_until(
    [&] {
      return replication_ids(c)
             == std::vector<std::string>{"cluster.node-a", "cluster.node-b"};
    },
    10s, 100ms));

  // node-c stops; meanwhile node-b dies and node-a forgets it.
  REQUIRE(c.process->kill(SIGTERM) == 0);
  b.process->kill(SIGKILL);
  REQUIRE(test::poll_until(
    [&] {
      auto ids = replication_ids(a);
      return cluster_test::state_of_member(a.view(), "node-b").empty()
             && std::find(ids.begin(), ids.end(), "cluster.node-b")
                  == ids.end();
    },
    15s, 100ms));

  // node-c comes back: no one lists node-b, so its link goes too.
  c.start();
  cluster_test::require_live({&a, &c}, 20s, "node-c back");
  auto dropped = test::poll_until(
    [&] {
      return replication_ids(c) == std::vector<std::string>{"cluster.node-a"};
    },
    15s, 100ms);
  if (!dropped)
    FAIL("node-c keeps the link of the forgotten node-b\n"
         << cluster_test::dump({&a, &c}));
  for (auto* m : {&a, &c})
    CHECK(m->process->kill(SIGTERM) == 0);
}
