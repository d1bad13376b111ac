#include "actors/grasp/grasp_plan.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace ferry;
using namespace ferry::grasp;

namespace {

constexpr int64_t now = 1'700'000'000;
constexpr int64_t minute = 60;

const std::string r1 = "wss://r1.example";
const std::string r2 = "wss://r2.example";
const std::string repo_a = "30617:" + std::string(64, 'a') + ":a";
const std::string repo_b = "30617:" + std::string(64, 'b') + ":b";
const std::string root_1 = std::string(64, '1');
const std::string root_2 = std::string(64, '2');

repo_sync_entry want(const std::string& address,
                     std::vector<std::string> relays,
                     std::vector<std::string> roots = {}) {
  repo_sync_entry x;
  x.address = address;
  x.relays = std::move(relays);
  x.roots = std::move(roots);
  return x;
}

/// A relay fully synced an hour ago and connected until `left` seconds ago.
relay_sync_entry known(const std::string& url, std::vector<std::string> repos,
                       std::vector<std::string> roots, int64_t left) {
  relay_sync_entry x;
  x.url = url;
  x.repos = std::move(repos);
  x.roots = std::move(roots);
  x.last_connected = now - left;
  x.disconnected_at = now - left;
  x.full_sync_at = now - 60 * minute;
  x.reconcile_at = now + 23 * 60 * minute;
  return x;
}

std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (const auto& x : xs)
    out += (out.empty() ? "" : ",") + x.substr(x.size() - 1);
  return out;
}

/// One action in a line, repositories and roots by their last character:
/// `connect wss://r1.example full {ann repos=a roots=1 since=-15m}`.
std::string describe(const relay_action& action) {
  std::ostringstream out;
  out << to_string(action.kind) << " " << action.relay;
  if (action.full)
    out << " full";
  for (const auto& f : action.fetches) {
    out << " {";
    std::string sep;
    if (f.announcements) {
      out << "ann";
      sep = " ";
    }
    if (!f.repos.empty()) {
      out << sep << "repos=" << join(f.repos);
      sep = " ";
    }
    if (!f.roots.empty()) {
      out << sep << "roots=" << join(f.roots);
      sep = " ";
    }
    if (f.since)
      out << sep << "since=-" << (now - *f.since) / minute << "m";
    out << "}";
  }
  return out.str();
}

std::vector<std::string> decide_lines(
  const plan_state& state, const plan_config& config = {},
  const std::function<bool(const std::string&)>& runs_here = {}) {
  std::vector<std::string> lines;
  for (const auto& action : decide(state, now, config, runs_here))
    lines.push_back(describe(action));
  return lines;
}

struct row {
  const char* name;
  plan_state state;
  std::vector<std::string> expected;
};

} // namespace

TEST_CASE("the decision is wanted minus pending minus confirmed, per relay",
          "[grasp][plan]") {
  using lines = std::vector<std::string>;
  auto bootstrap = [](relay_sync_entry x) {
    x.is_bootstrap = true;
    return x;
  };
  auto reconcile_due = [](relay_sync_entry x) {
    x.reconcile_at = now - 1;
    return x;
  };
  auto never_full = [](relay_sync_entry x) {
    x.full_sync_at = 0;
    return x;
  };
  item_set pending_b;
  pending_b.repos = {repo_b};
  item_set pending_ann;
  pending_ann.announcements = true;
  const row rows[] = {
    {"nothing wanted, nothing known", {}, {}},
    {"a new relay is connected and synced fully",
     {{{repo_a, want(repo_a, {r1}, {root_1})}}, {}, {}, {}},
     lines{"connect wss://r1.example full {ann repos=a roots=1}"}},
    {"a connecting relay waits",
     {{{repo_a, want(repo_a, {r1})}}, {}, {},
      {{r1, link_state::connecting}}},
     {}},
    {"a connected relay gets only what is missing",
     {{{repo_a, want(repo_a, {r1}, {root_1, root_2})},
       {repo_b, want(repo_b, {r1})}},
      {{r1, known(r1, {repo_a}, {root_1}, 0)}},
      {},
      {{r1, link_state::connected}}},
     lines{"add wss://r1.example {repos=b roots=2}"}},
    {"what is in flight is not asked for twice",
     {{{repo_a, want(repo_a, {r1})}, {repo_b, want(repo_b, {r1})}},
      {{r1, known(r1, {repo_a}, {}, 0)}},
      {{r1, pending_b}},
      {{r1, link_state::connected}}},
     {}},
    {"everything confirmed: nothing to do",
     {{{repo_a, want(repo_a, {r1}, {root_1})}},
      {{r1, known(r1, {repo_a}, {root_1}, 0)}},
      {},
      {{r1, link_state::connected}}},
     {}},
    {"a connected relay never fully synced gets its announcements again",
     {{{repo_a, want(repo_a, {r1})}},
      {{r1, never_full(known(r1, {repo_a}, {}, 0))}},
      {},
      {{r1, link_state::connected}}},
     lines{"add wss://r1.example {ann}"}},
    {"... unless they are in flight",
     {{{repo_a, want(repo_a, {r1})}},
      {{r1, never_full(known(r1, {repo_a}, {}, 0))}},
      {{r1, pending_ann}},
      {{r1, link_state::connected}}},
     {}},
    {"back within 15 minutes: catch up from last_connected minus the "
     "overlap, fetch the rest fully",
     {{{repo_a, want(repo_a, {r1}, {root_1})}, {repo_b, want(repo_b, {r1})}},
      {{r1, known(r1, {repo_a}, {root_1}, 10 * minute)}},
      {},
      {}},
     lines{"connect wss://r1.example {ann repos=a roots=1 since=-15m} "
           "{repos=b}"}},
    {"back after more than 15 minutes: full resync",
     {{{repo_a, want(repo_a, {r1})}},
      {{r1, known(r1, {repo_a}, {}, 16 * minute)}},
      {},
      {}},
     lines{"connect wss://r1.example full {ann repos=a}"}},
    {"never fully synced: full resync on connect",
     {{{repo_a, want(repo_a, {r1})}},
      {{r1, never_full(known(r1, {repo_a}, {}, minute))}},
      {},
      {}},
     lines{"connect wss://r1.example full {ann repos=a}"}},
    {"reconciliation due at connect: full resync",
     {{{repo_a, want(repo_a, {r1})}},
      {{r1, reconcile_due(known(r1, {repo_a}, {}, minute))}},
      {},
      {}},
     lines{"connect wss://r1.example full {ann repos=a}"}},
    {"reconciliation due on a live relay with nothing in flight",
     {{{repo_a, want(repo_a, {r1}, {root_1})}},
      {{r1, reconcile_due(known(r1, {repo_a}, {root_1}, 0))}},
      {},
      {{r1, link_state::connected}}},
     lines{"add wss://r1.example full {ann repos=a roots=1}"}},
    {"reconciliation waits for batches in flight",
     {{{repo_a, want(repo_a, {r1})}, {repo_b, want(repo_b, {r1})}},
      {{r1, reconcile_due(known(r1, {repo_a}, {}, 0))}},
      {{r1, pending_b}},
      {{r1, link_state::connected}}},
     {}},
    {"a relay nobody wants is dropped",
     {{}, {{r1, known(r1, {repo_a}, {}, 0)}}, {},
      {{r1, link_state::connected}}},
     lines{"drop wss://r1.example"}},
    {"... also while connecting",
     {{}, {}, {}, {{r1, link_state::connecting}}},
     lines{"drop wss://r1.example"}},
    {"a bootstrap relay is never dropped",
     {{}, {{r1, bootstrap(known(r1, {}, {}, 0))}}, {},
      {{r1, link_state::connected}}},
     {}},
    {"a bootstrap relay is connected for its announcements",
     {{}, {{r1, bootstrap(known(r1, {}, {}, 5 * minute))}}, {}, {}},
     lines{"connect wss://r1.example {ann since=-10m}"}},
    {"an unwanted relay away briefly is kept, then forgotten",
     {{},
      {{r1, known(r1, {repo_a}, {}, 5 * minute)},
       {r2, known(r2, {repo_a}, {}, 20 * minute)}},
      {},
      {}},
     lines{"forget wss://r2.example"}},
    {"each relay on its own, in order",
     {{{repo_a, want(repo_a, {r2, r1})}},
      {{r2, known(r2, {repo_a}, {}, 0)}},
      {},
      {{r2, link_state::connected}}},
     lines{"connect wss://r1.example full {ann repos=a}"}},
  };
  for (const auto& x : rows) {
    INFO(x.name);
    CHECK(decide_lines(x.state) == x.expected);
  }
}

TEST_CASE("the 15-minute rule and the overlap follow the config",
          "[grasp][plan]") {
  plan_config config;
  config.resync_after = std::chrono::minutes{30};
  config.overlap = std::chrono::minutes{1};
  plan_state state{{{repo_a, want(repo_a, {r1})}},
                   {{r1, known(r1, {repo_a}, {}, 20 * minute)}},
                   {},
                   {}};
  CHECK(decide_lines(state, config)
        == std::vector<std::string>{
          "connect wss://r1.example {ann repos=a since=-21m}"});
  // A relay that was never connected has no time to catch up from.
  state.relays[r1].last_connected = 0;
  state.relays[r1].disconnected_at = 0;
  CHECK(decide_lines(state, config)
        == std::vector<std::string>{
          "connect wss://r1.example full {ann repos=a}"});
}

TEST_CASE("in a cluster only the relays that run here are connected, and one "
          "that moved away is released and its record kept",
          "[grasp][plan]") {
  using lines = std::vector<std::string>;
  auto only_r1 = [](const std::string& url) { return url == r1; };
  // Wanted on both; r2 runs on another member.
  plan_state state{{{repo_a, want(repo_a, {r1, r2})}}, {}, {}, {}};
  CHECK(decide_lines(state)
        == lines{"connect wss://r1.example full {ann repos=a}",
                 "connect wss://r2.example full {ann repos=a}"});
  CHECK(decide_lines(state, {}, only_r1)
        == lines{"connect wss://r1.example full {ann repos=a}"});

  // r2 connected (or connecting) here, then moved: released, not dropped.
  for (auto link : {link_state::connected, link_state::connecting}) {
    state.links = {{r1, link_state::connected}, {r2, link}};
    state.relays = {{r1, known(r1, {repo_a}, {}, 0)},
                    {r2, known(r2, {repo_a}, {}, 0)}};
    CHECK(decide_lines(state, {}, only_r1)
          == lines{"release wss://r2.example"});
  }
  // Away long since, its record is not forgotten: it is still wanted.
  state.links = {{r1, link_state::connected}};
  state.relays[r2] = known(r2, {repo_a}, {}, 60 * minute);
  CHECK(decide_lines(state, {}, only_r1).empty());

  // A bootstrap relay is split the same way.
  relay_sync_entry boot = known(r2, {}, {}, 0);
  boot.is_bootstrap = true;
  plan_state bootstrap{{}, {{r2, boot}}, {}, {{r2, link_state::connected}}};
  CHECK(decide_lines(bootstrap, {}, only_r1)
        == lines{"release wss://r2.example"});

  // A relay nobody wants is dropped wherever it runs.
  plan_state unwanted{{}, {{r2, known(r2, {}, {}, 0)}}, {},
                      {{r2, link_state::connected}}};
  CHECK(decide_lines(unwanted, {}, only_r1)
        == lines{"drop wss://r2.example"});
}

TEST_CASE("repositories invert to relays", "[grasp][plan]") {
  auto targets = wanted_by_relay({{repo_a, want(repo_a, {r1, r2}, {root_1})},
                                  {repo_b, want(repo_b, {r1}, {root_2})}});
  REQUIRE(targets.size() == 2);
  CHECK(targets[r1].repos == std::set<std::string>{repo_a, repo_b});
  CHECK(targets[r1].roots == std::set<std::string>{root_1, root_2});
  CHECK(targets[r2].repos == std::set<std::string>{repo_a});
  CHECK(targets[r2].roots == std::set<std::string>{root_1});
}

TEST_CASE("reconciliation falls in the configured range", "[grasp][plan]") {
  plan_config config;
  auto min = now + 23 * 3600;
  auto max = now + 25 * 3600;
  CHECK(next_reconcile_at(now, 0, config) == min);
  CHECK(next_reconcile_at(now, 2 * 3600, config) == max);
  CHECK(next_reconcile_at(now, 2 * 3600 + 1, config) == min);
  for (uint64_t r : {uint64_t{12345}, uint64_t{987654321987},
                     ~uint64_t{0}}) {
    auto at = next_reconcile_at(now, r, config);
    CHECK(at >= min);
    CHECK(at <= max);
  }
  config.reconcile_max = config.reconcile_min;
  CHECK(next_reconcile_at(now, 77, config) == min);
}

namespace {

std::vector<std::string> many(const std::string& prefix, size_t n) {
  std::vector<std::string> result;
  for (size_t i = 0; i < n; ++i) {
    auto text = std::to_string(i);
    result.push_back(prefix + std::string(6 - text.size(), '0') + text);
  }
  return result;
}

} // namespace

TEST_CASE("filters come in three layers and groups of at most 100",
          "[grasp][plan]") {
  plan_config config;
  fetch f;
  f.announcements = true;
  f.repos = many("30617:x:", 250);
  f.roots = many("e", 100);
  f.since = now;
  auto filters = build_filters(f, config);
  // 1 announcement filter, 3 repository groups × (A, a), 1 root group × (E, e).
  REQUIRE(filters.size() == 1 + 6 + 2);
  CHECK(nostr::to_json(filters[0])
        == R"({"kinds":[30617,30618],"since":1700000000})");
  std::vector<size_t> sizes;
  std::string letters;
  for (size_t i = 1; i < filters.size(); ++i) {
    REQUIRE(filters[i].tags.size() == 1);
    CHECK(filters[i].since == now);
    CHECK_FALSE(filters[i].kinds);
    letters += filters[i].tags[0].letter;
    sizes.push_back(filters[i].tags[0].values.size());
  }
  CHECK(letters == "AaAaAaEe");
  CHECK(sizes == std::vector<size_t>{100, 100, 100, 100, 50, 50, 100, 100});
  auto items = items_of(filters);
  CHECK(items.announcements);
  CHECK(items.repos.size() == 250);
  CHECK(items.roots.size() == 100);
  SECTION("without announcements or since") {
    fetch plain;
    plain.repos = {repo_a};
    auto two = build_filters(plain, config);
    REQUIRE(two.size() == 2);
    CHECK(nostr::to_json(two[1]) == R"({"#a":[")" + repo_a + R"("]})");
    CHECK_FALSE(items_of(two).announcements);
  }
  SECTION("REQs carry at most max_filters_per_subscription") {
    config.max_filters_per_subscription = 4;
    auto reqs = split_filters(filters, config);
    REQUIRE(reqs.size() == 3);
    CHECK(reqs[0].size() == 4);
    CHECK(reqs[1].size() == 4);
    CHECK(reqs[2].size() == 1);
  }
}

namespace {

live_subscription live(std::string id, sub_layer layer,
                       std::vector<std::string> repos, bool settled) {
  fetch f;
  f.announcements = layer == sub_layer::announcements;
  f.repos = std::move(repos);
  live_subscription sub;
  sub.id = std::move(id);
  sub.layer = layer;
  sub.filters = build_filters(f, plan_config{});
  sub.settled = settled;
  return sub;
}

} // namespace

TEST_CASE("live subscriptions consolidate beyond the filter limit",
          "[grasp][plan]") {
  plan_config config;
  // ann: 1 filter; s1, s2 and s3: 2 filters each.
  std::vector<live_subscription> subs{
    live("ann", sub_layer::announcements, {}, true),
    live("s1", sub_layer::tagged, {repo_a}, true),
    live("s2", sub_layer::tagged, {repo_b}, true),
    live("s3", sub_layer::tagged, {"30617:x:c"}, false),
  };
  SECTION("within the limit nothing changes") {
    config.max_filters_per_relay = 9;
    CHECK_FALSE(consolidate(subs, 2, config));
  }
  SECTION("settled groups merge; layer 1 and batches in flight stay") {
    config.max_filters_per_relay = 7;
    auto plan = consolidate(subs, 2, config);
    REQUIRE(plan);
    CHECK(plan->close == std::vector<std::string>{"s1", "s2"});
    CHECK_FALSE(plan->broad);
    REQUIRE(plan->open.size() == 2);
    CHECK(plan->open[1].tags[0].values
          == std::vector<std::string>{repo_a, repo_b});
    // Live only, and no since: a back-dated arrival gets through.
    for (const auto& f : plan->open) {
      CHECK_FALSE(f.since);
      CHECK(f.limit == std::optional<uint64_t>{0});
    }
  }
  SECTION("when merging is not enough, one broad filter takes over") {
    config.max_filters_per_relay = 6;
    auto plan = consolidate(subs, 2, config);
    REQUIRE(plan);
    CHECK(plan->close == std::vector<std::string>{"s1", "s2"});
    CHECK(plan->broad);
    REQUIRE(plan->open.size() == 1);
    CHECK(*plan->open[0].kinds == broad_kinds);
    CHECK(plan->open[0].tags.empty());
    CHECK_FALSE(plan->open[0].since);
    CHECK(plan->open[0].limit == std::optional<uint64_t>{0});
  }
  SECTION("under a broad filter, settled groups just close") {
    subs.push_back(live("wide", sub_layer::broad, {}, true));
    subs.back().filters = {nostr::filter{}};
    config.max_filters_per_relay = 7;
    auto plan = consolidate(subs, 2, config);
    REQUIRE(plan);
    CHECK(plan->close == std::vector<std::string>{"s1", "s2"});
    CHECK(plan->open.empty());
  }
  SECTION("catch-up subscriptions neither count nor merge: they close "
          "once settled") {
    auto catchup = live("c1", sub_layer::tagged, {repo_a, repo_b}, true);
    catchup.role = sub_role::catchup;
    subs.push_back(catchup);
    config.max_filters_per_relay = 9;
    CHECK_FALSE(consolidate(subs, 2, config));
    config.max_filters_per_relay = 7;
    auto plan = consolidate(subs, 2, config);
    REQUIRE(plan);
    CHECK(plan->close == std::vector<std::string>{"s1", "s2"});
  }
  SECTION("nothing settled: nothing to merge") {
    for (auto& sub : subs)
      sub.settled = sub.layer == sub_layer::announcements;
    config.max_filters_per_relay = 3;
    CHECK_FALSE(consolidate(subs, 2, config));
  }
}
