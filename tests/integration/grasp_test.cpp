#include "tests/integration/grasp_helpers.hpp"
#include "store/event_store.hpp"
#include "store/sync_store.hpp"

#include <sstream>

using namespace ferry;
using namespace ferry::grasp_test;
using namespace std::chrono_literals;

namespace {

std::string grasp_config(const test::temp_dir& dir) {
  test::node_settings s;
  s.admin_extra = std::string{"token = \""} + admin_token + "\"\n";
  // Any port on "localhost" is this service, so the node stays itself
  // across a restart on a new relay port; other relays are on 127.0.0.1
  // (nothing listens on port 1: the node's attempts stay on loopback).
  // One failed attempt at a GRASP relay makes the node degraded.
  s.extra = "[grasp]\nenabled = true\nservice_domain = \"localhost\"\n"
            "batch_window_ms = 100\n"
            "[health]\ngrasp_failing_attempts = 1\n";
  return test::node_config_with(dir, s);
}

/// Whether the node's /metrics show the GRASP relay `url` in sync: lag 0 and
/// an attempt counted ok (the health tracker heard it was caught up).
bool grasp_relay_in_sync(uint16_t admin_port, const std::string& url) {
  auto res = admin_get(admin_port, "/metrics");
  if (!res.error.empty() || res.response.status != 200)
    return false;
  auto server = "server=\"grasp:" + url + "\"";
  bool lag_zero = false;
  bool attempt_ok = false;
  std::istringstream lines{res.response.body};
  for (std::string line; std::getline(lines, line);) {
    if (line.find(server) == std::string::npos)
      continue;
    auto value = std::stod(line.substr(line.rfind(' ') + 1));
    if (line.rfind("ferry_sync_lag_seconds{", 0) == 0)
      lag_zero = value == 0;
    if (line.rfind("ferry_sync_attempts_total{", 0) == 0
        && line.find("result=\"ok\"") != std::string::npos)
      attempt_ok = value >= 1;
  }
  return lag_zero && attempt_ok;
}

} // namespace

TEST_CASE("a node with grasp enabled indexes the repositories announced to "
          "it and keeps them across a restart",
          "[integration][grasp]") {
  test::temp_dir dir;
  auto cfg = grasp_config(dir);
  auto owner = nostr::generate_keypair();
  auto ours = "30617:" + nostr::to_hex(owner.pubkey) + ":ferry";
  auto theirs = "30617:" + nostr::to_hex(owner.pubkey) + ":elsewhere";
  {
    test::ferry_process node{{"node", "--config", cfg}};
    auto relay_port = node.wait_for_port();
    REQUIRE(relay_port);
    auto admin_port = test::wait_for_admin_port(node);
    REQUIRE(admin_port);
    auto self_url = "ws://localhost:" + std::to_string(*relay_port);
    publish(*relay_port,
            signed_event(owner, grasp::kind_announcement,
                         {{"d", "ferry"},
                          {"relays", self_url, "ws://127.0.0.1:1"}}));
    publish(*relay_port, signed_event(owner, grasp::kind_announcement,
                                      {{"d", "elsewhere"},
                                       {"relays", "ws://127.0.0.1:1"}}));
    REQUIRE(test::poll_until([&] { return repos(*admin_port).count(ours); }));
    auto listed = repos(*admin_port);
    CHECK(listed.count(theirs) == 0);
    CHECK(boost::json::serialize(listed[ours].at("relays"))
          == R"(["ws://127.0.0.1:1"])");
    auto issue = signed_event(owner, grasp::kind_issue, {{"a", ours}});
    publish(*relay_port, issue);
    REQUIRE(test::poll_until(
      [&] { return repos(*admin_port)[ours].at("roots").as_int64() == 1; }));
    auto one = admin_get(*admin_port, "/api/v1/grasp/repos/" + ours);
    REQUIRE(one.response.status == 200);
    auto detail = boost::json::parse(one.response.body);
    CHECK(detail.at("roots").as_array().at(0).as_string()
          == nostr::to_hex(issue.id));
    auto missing = admin_get(*admin_port, "/api/v1/grasp/repos/" + theirs);
    CHECK(missing.response.status == 404);
    // The repository's other relay refuses every connection: /health names it.
    auto names_dead_relay = [&] {
      auto health = admin_get(*admin_port, "/health");
      return health.response.status == 503
             && health.response.body.find(
                  "GRASP relay ws://127.0.0.1:1 fails: ")
                  != std::string::npos;
    };
    if (!test::poll_until(names_dead_relay, 20s))
      FAIL("/health does not name the failing GRASP relay\n"
           << admin_get(*admin_port, "/health").response.body << "\n"
           << test::output_tail(node));
    CHECK(node.kill(SIGTERM) == 0);
  }
  test::ferry_process node{{"node", "--config", cfg}};
  REQUIRE(node.wait_for_port());
  auto admin_port = test::wait_for_admin_port(node);
  REQUIRE(admin_port);
  // Logged once every subsystem has started: before that GRASP sync may
  // not answer yet.
  REQUIRE(test::wait_for_identity(node));
  auto listed = repos(*admin_port);
  REQUIRE(listed.count(ours) == 1);
  CHECK(listed[ours].at("roots").as_int64() == 1);
}


TEST_CASE("a grasp node fetches its repositories' events from the relays "
          "their announcements list, and follows them live",
          "[integration][grasp]") {
  test::temp_dir dir_s;
  remote_relays remotes;
  auto r1_port = remotes.port1;
  auto r2_port = remotes.port2;
  const auto& r1_url = remotes.url1;
  const auto& r2_url = remotes.url2;
  // A GRASP relay behind by more than a second makes the node degraded.
  test::ferry_process s{
    {"node", "--config",
     grasp_node_config(dir_s, test::free_port(),
                       "\n[health]\ngrasp_max_lag_seconds = 1\n")}};
  auto s_port = s.wait_for_port();
  REQUIRE(s_port);
  auto s_admin = test::wait_for_admin_port(s);
  REQUIRE(s_admin);
  auto s_url = "ws://127.0.0.1:" + std::to_string(*s_port);
  auto logs = [&] { return "--- S ---\n" + test::output_tail(s) + remotes.logs(); };

  auto owner = nostr::generate_keypair();
  auto contributor = nostr::generate_keypair();
  auto repo = "30617:" + nostr::to_hex(owner.pubkey) + ":ferry";
  auto patch = signed_event(contributor, grasp::kind_patch, {{"a", repo}});
  auto issue = signed_event(contributor, grasp::kind_issue, {{"a", repo}});
  auto unrelated = signed_event(contributor, grasp::kind_issue,
                                {{"a", "30617:" + nostr::to_hex(owner.pubkey)
                                         + ":other"}});
  publish(r1_port, patch);
  publish(r1_port, issue);
  publish(r1_port, unrelated);
  auto r2_issue = signed_event(owner, grasp::kind_issue, {{"a", repo}});
  publish(r2_port, r2_issue);

  // Announced on S, listing S and R1: S fetches R1's events of the repo.
  auto announcement = signed_event(owner, grasp::kind_announcement,
                                   {{"d", "ferry"}, {"relays", s_url, r1_url}});
  publish(*s_port, announcement);
  if (!test::poll_until([&] { return holds(*s_port, patch) && holds(*s_port, issue); },
                        20s))
    FAIL("S did not fetch the repository's events from R1\n" << logs());
  CHECK_FALSE(holds(*s_port, unrelated));
  CHECK_FALSE(holds(*s_port, r2_issue));

  // The announcement now adds R2: S connects to it and fetches its events.
  auto updated = signed_event(owner, grasp::kind_announcement,
                              {{"d", "ferry"}, {"relays", s_url, r1_url, r2_url}});
  updated.created_at = announcement.created_at + 1;
  nostr::sign_event(updated, owner);
  publish(*s_port, updated);
  if (!test::poll_until([&] { return holds(*s_port, r2_issue); }, 20s))
    FAIL("S did not fetch the repository's events from R2\n" << logs());

  // Once S follows the issue's replies on R2, a reply published there
  // later reaches S live.
  auto following = [&] {
    auto res = admin_get(*s_admin, "/api/v1/grasp/repos/" + repo);
    if (!res.error.empty() || res.response.status != 200)
      return false;
    auto detail = boost::json::parse(res.response.body).as_object();
    for (auto& relay : detail.at("relays").as_array()) {
      auto& row = relay.as_object();
      if (row.at("url").as_string() == r2_url)
        return row.at("roots_confirmed").as_int64() >= 3;
    }
    return false;
  };
  if (!test::poll_until(following, 20s))
    FAIL("S never confirmed the root events on R2\n"
         << admin_get(*s_admin, "/api/v1/grasp/repos/" + repo).response.body
         << "\n" << logs());
  auto reply = signed_event(owner, 1, {{"e", nostr::to_hex(issue.id)}});
  publish(r2_port, reply);
  if (!test::poll_until([&] { return holds(*s_port, reply); }, 10s))
    FAIL("the reply on R2 did not reach S live\n" << logs());
  // Both relays answered every REQ and S stored what they sent: each is in
  // sync (lag 0, an attempt counted ok), and /health, which allows GRASP
  // relays one second of lag, is ok.
  auto healthy = [&] {
    auto health = admin_get(*s_admin, "/health");
    return grasp_relay_in_sync(*s_admin, r1_url)
           && grasp_relay_in_sync(*s_admin, r2_url)
           && health.error.empty() && health.response.status == 200;
  };
  if (!test::poll_until(healthy, 10s))
    FAIL("S does not report its GRASP relays in sync\n"
         << admin_get(*s_admin, "/health").response.body << "\n"
         << admin_get(*s_admin, "/metrics").response.body << logs());
  CHECK(s.kill(SIGTERM) == 0);
  CHECK(remotes.r1.kill(SIGTERM) == 0);
  CHECK(remotes.r2.kill(SIGTERM) == 0);
}

TEST_CASE("after a restart, a grasp node follows live what its relays "
          "receive: a back-dated patch, and a comment on a root known only "
          "from the second relay",
          "[integration][grasp]") {
  test::temp_dir dir_s;
  remote_relays remotes;
  auto r1_port = remotes.port1;
  const auto& r1_url = remotes.url1;
  const auto& r2_url = remotes.url2;
  auto s_cfg = grasp_node_config(dir_s, test::free_port());
  std::optional<test::ferry_process> s;
  s.emplace(std::vector<std::string>{"node", "--config", s_cfg});
  auto s_port = s->wait_for_port();
  REQUIRE(s_port);
  auto s_admin = test::wait_for_admin_port(*s);
  REQUIRE(s_admin);
  auto s_url = "ws://127.0.0.1:" + std::to_string(*s_port);
  auto logs = [&] { return "--- S ---\n" + test::output_tail(*s) + remotes.logs(); };
  auto owner = nostr::generate_keypair();
  auto contributor = nostr::generate_keypair();
  auto repo = "30617:" + nostr::to_hex(owner.pubkey) + ":ferry";
  auto root = signed_event(contributor, grasp::kind_issue, {{"a", repo}});
  publish(remotes.port2, root);
  publish(*s_port,
          signed_event(owner, grasp::kind_announcement,
                       {{"d", "ferry"}, {"relays", s_url, r1_url, r2_url}}));
  // Every relay settled: connected, confirmed, nothing pending, the root
  // followed.
  auto settled = [&] {
    for (const auto& url : {r1_url, r2_url}) {
      auto row = repo_relay(*s_admin, repo, url);
      if (row.empty() || row.at("link").as_string() != "connected"
          || !row.at("confirmed").as_bool() || row.at("pending").as_bool()
          || row.at("roots_confirmed").as_int64() != 1)
        return false;
    }
    return true;
  };
  if (!test::poll_until(settled, 20s))
    FAIL("S never followed the root on both relays\n" << logs());
  REQUIRE(s->kill(SIGTERM) == 0);
  s.emplace(std::vector<std::string>{"node", "--config", s_cfg});
  REQUIRE(s->wait_for_port() == s_port);
  s_admin = test::wait_for_admin_port(*s);
  REQUIRE(s_admin);
  if (!test::poll_until(settled, 20s))
    FAIL("S did not catch up with both relays after the restart\n" << logs());
  // Published after the catch-up: only the live subscriptions carry them.
  auto backdated = signed_event(contributor, grasp::kind_patch, {{"a", repo}},
                                10 * 60);
  auto comment = signed_event(owner, 1111,
                              {{"E", nostr::to_hex(root.id)}, {"K", "1621"}});
  publish(r1_port, backdated);
  publish(r1_port, comment);
  if (!test::poll_until([&] { return holds(*s_port, comment); }, 10s))
    FAIL("the comment on R1 did not reach S live\n" << logs());
  if (!test::poll_until([&] { return holds(*s_port, backdated); }, 10s))
    FAIL("the back-dated patch on R1 did not reach S live\n" << logs());
  CHECK(s->kill(SIGTERM) == 0);
  CHECK(remotes.r1.kill(SIGTERM) == 0);
  CHECK(remotes.r2.kill(SIGTERM) == 0);
}

namespace {

/// The cursor of S's deletion follower on `relay`, read beside the running
/// node (0: none yet).
int64_t deletion_cursor(const test::temp_dir& dir, const std::string& relay) {
  store::store_options opts;
  opts.path = dir.file("data");
  opts.beside_running_node = true;
  auto db = store::event_store::open(opts);
  if (!db)
    return 0;
  auto cursor = store::get_sync_cursor(**db, "grasp:" + relay);
  return cursor && *cursor ? (*cursor)->created_at : 0;
}

} // namespace

TEST_CASE("a grasp node follows the deletions of what it fetched: a reply "
          "deleted while it runs, and one deleted while it was down",
          "[integration][grasp]") {
  test::temp_dir dir_s;
  remote_relays remotes;
  auto r1_port = remotes.port1;
  const auto& r1_url = remotes.url1;
  auto s_cfg = grasp_node_config(dir_s, test::free_port());
  std::optional<test::ferry_process> s;
  s.emplace(std::vector<std::string>{"node", "--config", s_cfg});
  auto s_port = s->wait_for_port();
  REQUIRE(s_port);
  auto s_url = "ws://127.0.0.1:" + std::to_string(*s_port);
  auto logs = [&] { return "--- S ---\n" + test::output_tail(*s) + remotes.logs(); };
  auto owner = nostr::generate_keypair();
  auto contributor = nostr::generate_keypair();
  auto commenter = nostr::generate_keypair();
  auto repo = "30617:" + nostr::to_hex(owner.pubkey) + ":ferry";
  auto root = signed_event(contributor, grasp::kind_issue, {{"a", repo}});
  auto root_id = nostr::to_hex(root.id);
  auto first = signed_event(commenter, 1111, {{"E", root_id}, {"K", "1621"}});
  auto second = signed_event(commenter, 1111,
                             {{"E", root_id}, {"K", "1621"}, {"t", "second"}});
  for (const auto& ev : {root, first, second})
    publish(r1_port, ev);
  publish(*s_port, signed_event(owner, grasp::kind_announcement,
                                {{"d", "ferry"}, {"relays", s_url, r1_url}}));
  if (!test::poll_until([&] { return holds(*s_port, first) && holds(*s_port, second); },
                        20s))
    FAIL("S did not fetch the comments from R1\n" << logs());

  // The deletion names only the comment: no REQ of GRASP's (repositories,
  // roots, announcements) matches it.
  publish(r1_port, signed_event(commenter, 5,
                                {{"e", nostr::to_hex(first.id)}, {"k", "1111"}}));
  if (!test::poll_until([&] { return !holds(*s_port, first); }, 20s))
    FAIL("the deletion on R1 did not reach S\n" << logs());
  CHECK(holds(*s_port, second));
  CHECK(holds(*s_port, root));
  // Everything the follower asked for is in: its cursor moves, so the next
  // connection asks only for what is newer.
  if (!test::poll_until([&] { return deletion_cursor(dir_s, r1_url) > 0; }, 20s))
    FAIL("the deletion follower's cursor did not move\n" << logs());
  CHECK(deletion_cursor(dir_s, r1_url) <= test::unix_now());

  REQUIRE(s->kill(SIGTERM) == 0);
  publish(r1_port, signed_event(commenter, 5,
                                {{"e", nostr::to_hex(second.id)}, {"k", "1111"}}));
  s.emplace(std::vector<std::string>{"node", "--config", s_cfg});
  REQUIRE(s->wait_for_port() == s_port);
  if (!test::poll_until([&] { return !holds(*s_port, second); }, 20s))
    FAIL("the deletion published while S was down did not reach S\n" << logs());
  CHECK(holds(*s_port, root));
  CHECK(s->kill(SIGTERM) == 0);
  CHECK(remotes.r1.kill(SIGTERM) == 0);
  CHECK(remotes.r2.kill(SIGTERM) == 0);
}
