// The replicated control plane's merge logic: local edits count for the
// member that made them, versions from members merge by the conflict rule,
// every member ends with the same records whatever the order they arrive
// in, and only different contents edited independently are conflicts.

#include "actors/cluster/control_replica.hpp"
#include "messages/error.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace ferry;
using ferry::cluster::control_record;

namespace {

const std::string kind = "sync_server";

std::map<std::string, std::string> defs(
  std::initializer_list<std::pair<const std::string, std::string>> xs) {
  return xs;
}

/// Sends every record of `from` to `to`; returns what changed there.
control_replica::merge_outcome sync(const control_replica& from,
                                    control_replica& to) {
  return to.merge(from.all(), 1000);
}

} // namespace

TEST_CASE("a local edit counts once for this member and a repeat is no edit",
          "[cluster][control_plane]") {
  control_replica a{"node-a"};
  auto changed = a.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].id == "s1");
  CHECK(changed[0].version.clock.get("node-a") == 1);
  CHECK(changed[0].version.digest
        == cluster::content_digest(false, R"({"v":1})"));
  CHECK(a.observe_local(kind, defs({{"s1", R"({"v":1})"}})).empty());
  changed = a.observe_local(kind, defs({{"s1", R"({"v":2})"}}));
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].version.clock.get("node-a") == 2);
  // A definition gone is a deletion: a tombstone that counts as an edit.
  changed = a.observe_local(kind, defs({}));
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].deleted);
  CHECK(changed[0].body.empty());
  CHECK(changed[0].version.clock.get("node-a") == 3);
  CHECK(a.observe_local(kind, defs({})).empty());
}

TEST_CASE("an edit made after seeing another replaces it everywhere",
          "[cluster][control_plane]") {
  control_replica a{"node-a"}, b{"node-b"};
  a.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
  auto out = sync(a, b);
  REQUIRE(out.changed.size() == 1);
  CHECK(out.conflicts.empty());
  CHECK(b.find(kind, "s1")->body == R"({"v":1})");
  // b edits what it saw: that happened after a's version.
  b.observe_local(kind, defs({{"s1", R"({"v":2})"}}));
  out = sync(b, a);
  REQUIRE(out.changed.size() == 1);
  CHECK(out.conflicts.empty());
  CHECK(a.find(kind, "s1")->body == R"({"v":2})");
  // The older version met again changes nothing.
  CHECK(sync(a, b).changed.empty());
  CHECK(a.all() == b.all());
}

TEST_CASE("the same definition read independently is one history, not a "
          "conflict",
          "[cluster][control_plane]") {
  control_replica a{"node-a"}, b{"node-b"};
  a.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
  b.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
  auto out = sync(a, b);
  CHECK(out.conflicts.empty());
  CHECK(out.changed.empty());
  REQUIRE(out.restamped.size() == 1);
  sync(b, a);
  CHECK(a.all() == b.all());
  CHECK(a.find(kind, "s1")->version.clock.get("node-a") == 1);
  CHECK(a.find(kind, "s1")->version.clock.get("node-b") == 1);
  CHECK(a.conflicts().empty());
}

TEST_CASE("concurrent edits are detected on both sides and settled alike, "
          "whatever the order of arrival",
          "[cluster][control_plane]") {
  // Three members see the same base; two of them edit it during a
  // partition (one of them deletes it in the second round).
  for (bool delete_on_b : {false, true}) {
    control_replica a{"node-a"}, b{"node-b"}, c{"node-c"};
    a.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
    sync(a, b);
    sync(a, c);
    a.observe_local(kind, defs({{"s1", R"({"v":"a"})"}}));
    b.observe_local(kind, delete_on_b ? defs({})
                                      : defs({{"s1", R"({"v":"b"})"}}));
    // The partition heals: a and b exchange what they held, c hears b
    // first, then a.
    auto held_by_a = a.all();
    auto held_by_b = b.all();
    auto on_a = a.merge(held_by_b, 1000);
    auto on_b = b.merge(held_by_a, 1000);
    c.merge(held_by_b, 1000);
    auto on_c = c.merge(held_by_a, 1000);
    REQUIRE(on_a.conflicts.size() == 1);
    REQUIRE(on_b.conflicts.size() == 1);
    REQUIRE(on_c.conflicts.size() == 1);
    // Every member keeps the same version and names the same loser.
    CHECK(a.all() == b.all());
    CHECK(b.all() == c.all());
    CHECK(on_a.conflicts[0].kept == on_b.conflicts[0].kept);
    CHECK(on_a.conflicts[0].dropped == on_b.conflicts[0].dropped);
    CHECK(on_c.conflicts[0].kept == on_a.conflicts[0].kept);
    auto kept = *a.find(kind, "s1");
    CHECK(kept.version.clock.get("node-a") == 2);
    CHECK(kept.version.clock.get("node-b") == 1);
    // The kept content is one of the two edits, never the base.
    auto bodies = std::vector<std::string>{R"({"v":"a"})",
                                           delete_on_b ? "" : R"({"v":"b"})"};
    CHECK(std::find(bodies.begin(), bodies.end(), kept.body) != bodies.end());
    // Reported once: the merged version met again is no new conflict.
    CHECK(sync(a, b).conflicts.empty());
    CHECK(sync(c, a).conflicts.empty());
    CHECK(a.conflicts().size() == 1);
    // And an edit after the settlement wins cleanly.
    b.observe_local(kind, defs({{"s1", R"({"v":"after"})"}}));
    auto later = sync(b, a);
    CHECK(later.conflicts.empty());
    CHECK(a.find(kind, "s1")->body == R"({"v":"after"})");
  }
}

TEST_CASE("records survive a round trip through their JSON form",
          "[cluster][control_plane]") {
  control_replica a{"node-a"}, b{"node-b"};
  a.observe_local(kind, defs({{"s1", R"({"v":1})"}, {"s2", R"({"v":2})"}}));
  sync(a, b);
  b.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
  auto records = b.all();
  auto text = cluster::to_json(records);
  auto back = cluster::parse_control_records(text);
  REQUIRE(back);
  CHECK(*back == records);
  // A digest that does not match the content is refused.
  auto tampered = text;
  auto pos = tampered.find(R"({\"v\":1})");
  REQUIRE(pos != std::string::npos);
  tampered.replace(pos, 9, R"({\"v\":7})");
  auto refused = cluster::parse_control_records(tampered);
  REQUIRE_FALSE(refused);
  CHECK(ferry::render(refused.error()).find("digest") != std::string::npos);
  CHECK_FALSE(cluster::parse_control_records("{}"));
  CHECK_FALSE(cluster::parse_control_records(R"([{"kind":"x"}])"));
}

TEST_CASE("a control message carries the records and the members its sender "
          "has forgotten, and a bare records array is a message with none",
          "[cluster][control_plane]") {
  control_replica a{"node-a"};
  a.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
  cluster::control_message message{a.all(), {"node-b", "node-x"}};
  auto back = cluster::parse_control_message(cluster::to_json(message));
  REQUIRE(back);
  CHECK(back->records == message.records);
  CHECK(back->forgotten == message.forgotten);
  auto bare = cluster::parse_control_message(cluster::to_json(a.all()));
  REQUIRE(bare);
  CHECK(bare->records == message.records);
  CHECK(bare->forgotten.empty());
  auto text = cluster::to_json(cluster::control_message{a.all(), {}});
  CHECK(cluster::parse_control_message(text));
  for (auto bad : {R"({"records":[]})", R"({"records":[],"forgotten":[""]})",
                   R"({"records":[],"forgotten":"node-b"})",
                   R"({"forgotten":[]})", "7"}) {
    INFO(bad);
    auto refused = cluster::parse_control_message(bad);
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == ec::invalid_input);
  }
  auto refused = cluster::parse_control_message(R"({"records":[],"forgotten":[3]})");
  REQUIRE_FALSE(refused);
  CHECK(ferry::render(refused.error()).find("forgotten") != std::string::npos);
}

TEST_CASE("each kind is its own set of records: the same id in two kinds is "
          "two records, and a kind's local definitions touch no other kind",
          "[cluster][control_plane]") {
  const std::string hosted = "hosted_relay";
  control_replica a{"node-a"}, b{"node-b"};
  REQUIRE(a.observe_local(kind, defs({{"shop", R"({"url":"x"})"}})).size()
          == 1);
  REQUIRE(a.observe_local(hosted, defs({{"shop", R"({"subdomain":"s"})"}}))
            .size()
          == 1);
  // No sync server named shop any more: only that record is a tombstone.
  auto changed = a.observe_local(kind, defs({}));
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].kind == kind);
  CHECK(changed[0].deleted);
  REQUIRE(a.find(hosted, "shop"));
  CHECK_FALSE(a.find(hosted, "shop")->deleted);
  // The hosted relays' definitions leave the sync servers alone.
  CHECK(a.observe_local(hosted, defs({{"shop", R"({"subdomain":"s"})"}}))
          .empty());

  // b gets both kinds; an edit of the hosted relay on b replaces a's.
  auto merged = sync(a, b);
  CHECK(merged.changed.size() == 2);
  CHECK(merged.conflicts.empty());
  REQUIRE(b.find(kind, "shop"));
  CHECK(b.find(kind, "shop")->deleted);
  changed = b.observe_local(hosted, defs({{"shop", R"({"subdomain":"t"})"}}));
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].version.clock.get("node-a") == 1);
  CHECK(changed[0].version.clock.get("node-b") == 1);
  merged = sync(b, a);
  REQUIRE(merged.changed.size() == 1);
  CHECK(merged.changed[0].kind == hosted);
  CHECK(merged.conflicts.empty());
  CHECK(a.find(hosted, "shop")->body == R"({"subdomain":"t"})");
  CHECK(a.all() == b.all());
}

TEST_CASE("a forgotten member is folded out of every vector, and members "
          "that fold at different times still agree without a conflict",
          "[cluster][control_plane]") {
  control_replica a{"node-a"}, b{"node-b"}, x{"node-x"};
  x.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
  x.observe_local(kind, defs({{"s1", R"({"v":2})"}}));
  sync(x, a);
  sync(x, b);
  a.observe_local(kind, defs({{"s1", R"({"v":3})"}}));
  sync(a, b);
  REQUIRE(b.find(kind, "s1")->version.clock.get("node-x") == 2);
  // node-x is gone; node-a forgets it first.
  auto restamped = a.forget({"node-x"});
  REQUIRE(restamped.size() == 1);
  auto& clock = a.find(kind, "s1")->version.clock;
  CHECK(clock.get("node-x") == 0);
  CHECK(clock.retired() == 2);
  CHECK(clock.get("node-a") == 1);
  CHECK(clock.total() == 3);
  CHECK(a.forget({"node-x"}).empty());
  // node-b has not forgotten it yet: the folded and the unfolded vector
  // are one history, both ways.
  auto out = sync(a, b);
  CHECK(out.conflicts.empty());
  CHECK(out.changed.empty());
  out = sync(b, a);
  CHECK(out.conflicts.empty());
  CHECK(out.changed.empty());
  CHECK(b.find(kind, "s1")->version.clock.get("node-x") == 0);
  // An edit on node-b now happened after node-a's version.
  b.observe_local(kind, defs({{"s1", R"({"v":4})"}}));
  out = sync(b, a);
  CHECK(out.conflicts.empty());
  REQUIRE(out.changed.size() == 1);
  CHECK(a.find(kind, "s1")->body == R"({"v":4})");
  // A copy still naming node-x, met again, is folded on arrival: stale.
  out = sync(x, a);
  CHECK(out.conflicts.empty());
  CHECK(out.changed.empty());
  CHECK(a.find(kind, "s1")->body == R"({"v":4})");
  b.forget({"node-x"});
  CHECK(a.all() == b.all());
  for (auto& r : a.all())
    CHECK(r.version.clock.counters().count("node-x") == 0);
}

TEST_CASE("a forgotten member that comes back and edits at once made an edit "
          "that happened after, as long as its counter stays folded",
          "[cluster][control_plane]") {
  control_replica a{"node-a"}, x{"node-x"};
  x.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
  sync(x, a);
  // node-x was away for the forget period: node-a folds it.
  a.forget({"node-x"});
  REQUIRE(a.find(kind, "s1")->version.clock.retired() == 1);
  // It returns with its own store and edits before it heard from anyone:
  // node-a keeps folding it (the membership keeps it among the forgotten),
  // so the edit is one more of the retired history, not a concurrent one.
  x.observe_local(kind, defs({{"s1", R"({"v":2})"}}));
  auto out = sync(x, a);
  CHECK(out.conflicts.empty());
  REQUIRE(out.changed.size() == 1);
  CHECK(a.find(kind, "s1")->body == R"({"v":2})");
  CHECK(a.find(kind, "s1")->version.clock.retired() == 2);
  // node-x takes node-a's folded copy as its own history.
  out = sync(a, x);
  CHECK(out.conflicts.empty());
  CHECK(out.changed.empty());
  // Folding it no longer would have made the same edit a conflict.
  control_replica unfolding{"node-a"};
  control_replica y{"node-x"};
  y.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
  sync(y, unfolding);
  unfolding.forget({"node-x"});
  unfolding.forget({});
  y.observe_local(kind, defs({{"s1", R"({"v":2})"}}));
  CHECK(sync(y, unfolding).conflicts.size() == 1);
}

TEST_CASE("a forgotten member that edits before it hears from anyone folds "
          "itself once a peer names it forgotten, with no conflict on either side",
          "[cluster][control_plane]") {
  // node-x edits, node-a sees it, then node-x is away for the forget period
  // and node-a folds it.
  auto away = [] {
    control_replica a{"node-a"}, x{"node-x"};
    x.observe_local(kind, defs({{"s1", R"({"v":1})"}}));
    sync(x, a);
    a.forget({"node-x"});
    // node-x returns with its store and edits before any exchange.
    x.observe_local(kind, defs({{"s1", R"({"v":2})"}}));
    return std::make_pair(std::move(a), std::move(x));
  };
  {
    // What node-x did before peers named its forgetting: its {node-x: 2}
    // against node-a's {retired: 1} is concurrent.
    auto [a, x] = away();
    CHECK(sync(a, x).conflicts.size() == 1);
  }
  auto [a, x] = away();
  // node-a's control message names node-x forgotten: node-x folds itself.
  x.forget({"node-x"});
  REQUIRE(x.find(kind, "s1")->version.clock.retired() == 2);
  auto out = sync(a, x);
  CHECK(out.conflicts.empty());
  CHECK(x.find(kind, "s1")->body == R"({"v":2})");
  out = sync(x, a);
  CHECK(out.conflicts.empty());
  CHECK(a.find(kind, "s1")->body == R"({"v":2})");
  CHECK(a.find(kind, "s1")->version == x.find(kind, "s1")->version);
  // Its later edits stay folded too: node-a saw the third version, node-x
  // made a fourth before hearing back; the fourth follows the third.
  x.observe_local(kind, defs({{"s1", R"({"v":3})"}}));
  CHECK(x.find(kind, "s1")->version.clock.get("node-x") == 0);
  CHECK(x.find(kind, "s1")->version.clock.retired() == 3);
  sync(x, a);
  x.observe_local(kind, defs({{"s1", R"({"v":4})"}}));
  out = sync(a, x);
  CHECK(out.conflicts.empty());
  CHECK(x.find(kind, "s1")->body == R"({"v":4})");
  out = sync(x, a);
  CHECK(out.conflicts.empty());
  CHECK(a.find(kind, "s1")->body == R"({"v":4})");
}
