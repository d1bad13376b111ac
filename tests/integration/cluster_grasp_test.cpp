// GRASP-02 in a cluster: three real `ferry node` processes with `[grasp]`,
// eight repositories announced to them, each listing its own relay (a URL
// path of one remote ferry node). Every member derives the same `repo_sync`
// from the replicated announcements; each GRASP relay is connected on
// exactly one member, its owner by the rendezvous hash of its URL over the
// live names; a killed member's relays are connected by the others within
// 10 s and their events arrive, when it returns exactly the relays the hash
// gives it move back, and SIGTERM hands its relays over before it stops.

#include "tests/integration/cluster_helpers.hpp"
#include "tests/integration/grasp_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using sync_test::admin;

namespace {

namespace json = boost::json;
using namespace cluster_test;

constexpr int repo_count = 8;

/// `[grasp]` of every member: any port on "localhost" is this service (the
/// members' relays differ in port only), the remote relay is on 127.0.0.1;
/// decisions every second.
const std::string grasp_section
  = "[grasp]\nenabled = true\nservice_domain = \"localhost\"\n"
    "batch_window_ms = 100\ntick_seconds = 1\n";

/// The link state (`idle`, `connecting`, `connected`) and the owner a
/// member's GRASP view gives the relay of repository `address`; empty when
/// the member does not list it (yet).
std::pair<std::string, std::string>
grasp_link(member& m, const std::string& address, const std::string& relay) {
  auto res = admin(m.admin_port, "GET", "/api/v1/grasp/repos/" + address);
  if (!res.error.empty() || res.response.status != 200)
    return {};
  auto detail = json::parse(res.response.body);
  for (auto& row : detail.at("relays").as_array())
    if (row.at("url").as_string() == relay && row.as_object().contains("owner"))
      return {std::string{row.at("link").as_string()},
              std::string{row.at("owner").as_string()}};
  return {};
}

/// Waits until every member in `up` sees exactly `up` live and each
/// repository's relay (address → URL) is connected on its owner by the hash
/// over `up` and idle on the others, every member naming that owner.
void require_grasp_split(std::vector<member*> up,
                         const std::map<std::string, std::string>& relays,
                         std::chrono::milliseconds timeout, const char* what) {
  std::vector<std::string> live;
  for (auto* m : up)
    live.push_back(m->name);
  std::sort(live.begin(), live.end());
  std::string problem;
  auto ok = test::poll_until(
    [&] {
      for (auto* m : up)
        if (names_in(m->view()) != live) {
          problem = m->name + " does not see every member live";
          return false;
        }
      for (auto& [address, url] : relays) {
        auto owner = *cluster::rendezvous_owner(url, live);
        for (auto* m : up) {
          auto [link, named] = grasp_link(*m, address, url);
          auto want = m->name == owner ? "connected" : "idle";
          if (link != want || named != owner) {
            problem = url + " is " + (link.empty() ? "unknown" : link)
                      + " on " + m->name + " (owner there: " + named
                      + "), want " + want + " (owner " + owner + ")";
            return false;
          }
        }
      }
      return true;
    },
    timeout, 100ms);
  if (!ok)
    FAIL(what << ": " << problem << "\n" << dump(up));
}

/// The relays a member's log says it released, from offset `from` of its
/// output on.
std::set<std::string> released(member& m, size_t from) {
  std::set<std::string> urls;
  auto out = m.process->output();
  static const std::string marker = "grasp-sync: releasing ";
  for (auto at = out.find(marker, from); at != std::string::npos;
       at = out.find(marker, at + 1)) {
    auto begin = at + marker.size();
    auto end = out.find(": its owner is now", begin);
    urls.insert(out.substr(begin, end - begin));
  }
  return urls;
}

} // namespace

TEST_CASE("three GRASP members split the relays their repositories want, "
          "fail over within 10 s and take back only what the hash gives",
          "[integration][cluster][grasp]") {
  // The remote relays: URL paths /g0 ... of one ferry node.
  test::temp_dir remote_dir;
  sync_test::node remote{test::node_config(remote_dir)};
  three_members trio{grasp_section};
  member& a = trio.a;
  trio.start_joined();

  // Repository i lists the service and relay /gi; its announcement goes to
  // node-a alone and reaches the others by replication.
  auto maintainer = nostr::generate_keypair();
  std::map<std::string, std::string> relays;
  std::vector<std::string> addresses;
  for (int i = 0; i < repo_count; ++i) {
    auto d = "repo" + std::to_string(i);
    auto url = "ws://127.0.0.1:" + std::to_string(remote.port) + "/g"
               + std::to_string(i);
    auto address = "30617:" + nostr::to_hex(maintainer.pubkey) + ":" + d;
    grasp_test::publish(
      a.relay_port,
      grasp_test::signed_event(
        maintainer, grasp::kind_announcement,
        {{"d", d},
         {"relays", "ws://localhost:" + std::to_string(a.relay_port), url}}));
    relays[address] = url;
    addresses.push_back(address);
  }
  // Every member derives the same repo_sync from the replicated events.
  std::set<std::string> announced(addresses.begin(), addresses.end());
  auto all_listed = test::poll_until(
    [&] {
      for (auto* m : trio.all()) {
        auto res = admin(m->admin_port, "GET", "/api/v1/grasp/repos");
        if (res.response.status != 200)
          return false;
        std::set<std::string> listed;
        auto repos = json::parse(res.response.body);
        for (auto& repo : repos.as_array())
          listed.emplace(repo.at("address").as_string());
        if (listed != announced)
          return false;
      }
      return true;
    },
    20s, 100ms);
  if (!all_listed)
    FAIL("the members do not all list the repositories\n" << dump(trio.all()));
  require_grasp_split(trio.all(), relays, 20s, "three members");

  // An issue published at the remote relay reaches every member: through
  // the one member connected to that repository's relay, then replication.
  auto issue_for = [&](const std::string& address, const char* text) {
    auto ev = grasp_test::signed_event(maintainer, grasp::kind_issue,
                                       {{"a", address}, {"subject", text}});
    grasp_test::publish(remote.port, ev);
    return ev;
  };
  auto require_everywhere = [&](std::vector<member*> holders,
                                const std::vector<nostr::event>& events,
                                const char* what) {
    auto arrived = test::poll_until(
      [&] {
        for (auto* m : holders)
          for (auto& ev : events)
            if (!grasp_test::holds(m->relay_port, ev))
              return false;
        return true;
      },
      15s, 100ms);
    if (!arrived)
      FAIL(what << ": not every issue reached every member\n"
                << dump(holders));
  };
  std::vector<nostr::event> issues;
  for (auto& address : addresses)
    issues.push_back(issue_for(address, "all up"));
  require_everywhere(trio.all(), issues, "all up");

  // The member owning the most GRASP relays dies without a goodbye.
  auto roles = busiest_member(trio, relays);
  REQUIRE(roles.owned > 0);
  member* victim = roles.victim;
  auto& survivors = roles.survivors;
  auto killed_at = std::chrono::steady_clock::now();
  victim->process->kill(SIGKILL);
  require_grasp_split(survivors, relays, 10s, "after kill -9");
  auto failover = std::chrono::steady_clock::now() - killed_at;
  WARN("GRASP failover took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(failover)
            .count()
       << " ms for " << roles.owned << " relay(s)");
  // What the victim's relays receive now arrives through their new owners.
  std::vector<nostr::event> while_down;
  for (auto& address : addresses)
    while_down.push_back(issue_for(address, "one down"));
  require_everywhere(survivors, while_down, "one down");

  // It returns: the survivors release exactly the relays the hash gives
  // back to it, and keep the rest connected.
  std::map<member*, size_t> log_mark;
  for (auto* m : survivors)
    log_mark[m] = m->process->output().size();
  victim->start();
  require_grasp_split(trio.all(), relays, 20s, "after the rejoin");
  std::vector<std::string> three{"node-a", "node-b", "node-c"};
  std::vector<std::string> two{survivors[0]->name, survivors[1]->name};
  std::sort(two.begin(), two.end());
  for (auto* m : survivors) {
    std::set<std::string> moved_back;
    for (auto& [address, url] : relays)
      if (*cluster::rendezvous_owner(url, two) == m->name
          && *cluster::rendezvous_owner(url, three) == victim->name)
        moved_back.insert(url);
    CHECK(released(*m, log_mark[m]) == moved_back);
  }
  issues.insert(issues.end(), while_down.begin(), while_down.end());
  for (auto& address : addresses)
    issues.push_back(issue_for(address, "back up"));
  require_everywhere(trio.all(), issues, "after the rejoin");

  // SIGTERM is a graceful leave: the member waits until the others report
  // each of its GRASP relays connected (named `grasp:URL`) before it stops.
  std::set<std::string> handed;
  for (auto& [address, url] : relays)
    if (*cluster::rendezvous_owner(url, three) == victim->name)
      handed.insert("grasp:" + url);
  CHECK(victim->process->kill(SIGTERM) == 0);
  auto out = victim->process->output();
  static const std::string marker = "node left the cluster: ";
  auto at = out.find(marker);
  REQUIRE(at != std::string::npos);
  auto begin = at + marker.size();
  auto outcome = json::parse(out.substr(begin, out.find('\n', begin) - begin));
  std::set<std::string> reported;
  for (auto& id : outcome.at("handed_over").as_array())
    reported.emplace(id.as_string());
  CHECK(reported == handed);
  CHECK(outcome.at("not_handed_over").as_array().empty());
  require_grasp_split(survivors, relays, 10s, "after the leave");
  for (auto* m : survivors)
    CHECK(m->process->kill(SIGTERM) == 0);
}
