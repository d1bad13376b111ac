#include "messages/grasp.hpp"
#include "tests/fixtures/node_process.hpp"

#include <boost/json.hpp>

#include <set>

#include <catch2/catch.hpp>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

constexpr const char* admin_token = "grasp-test-token";

std::string grasp_config(const test::temp_dir& dir) {
  test::node_settings s;
  s.admin_extra = std::string{"token = \""} + admin_token + "\"\n";
  // Any port on "localhost" is this service, so the node stays itself
  // across a restart on a new relay port; other relays are on 127.0.0.1
  // (nothing listens on port 1: the node's attempts stay on loopback).
  s.extra = "[grasp]\nenabled = true\nservice_domain = \"localhost\"\n"
            "batch_window_ms = 100\n";
  return test::node_config_with(dir, s);
}

net::http_result admin_get(uint16_t port, const std::string& target) {
  return net::simple_http_request(
    "127.0.0.1", port, "GET", target,
    {{"Authorization", std::string{"Bearer "} + admin_token}});
}

/// Publishes `ev` and requires OK true.
void publish(uint16_t relay_port, const nostr::event& ev) {
  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", relay_port).empty());
  REQUIRE(client.send("[\"EVENT\"," + nostr::to_json(ev) + "]").empty());
  auto ok = test::receive_until(client, "[\"OK\"");
  REQUIRE(ok);
  REQUIRE(ok->find(",true,") != std::string::npos);
}

nostr::event signed_event(const nostr::keypair& keys, uint32_t kind,
                          std::vector<nostr::tag> tags) {
  nostr::event ev;
  ev.kind = kind;
  ev.created_at = test::unix_now();
  ev.tags = std::move(tags);
  nostr::sign_event(ev, keys);
  return ev;
}

/// The repositories `GET /api/v1/grasp/repos` lists, by address.
std::map<std::string, boost::json::object> repos(uint16_t admin_port) {
  std::map<std::string, boost::json::object> result;
  auto res = admin_get(admin_port, "/api/v1/grasp/repos");
  if (!res.error.empty() || res.response.status != 200)
    return result;
  auto parsed = boost::json::parse(res.response.body);
  for (auto& x : parsed.as_array())
    result.emplace(std::string{x.at("address").as_string()}, x.as_object());
  return result;
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
    CHECK(node.kill(SIGTERM) == 0);
  }
  test::ferry_process node{{"node", "--config", cfg}};
  REQUIRE(node.wait_for_port());
  auto admin_port = test::wait_for_admin_port(node);
  REQUIRE(admin_port);
  auto listed = repos(*admin_port);
  REQUIRE(listed.count(ours) == 1);
  CHECK(listed[ours].at("roots").as_int64() == 1);
}

namespace {

/// The ids a REQ for `filter` yields on a relay; empty when it cannot ask.
std::set<std::string> stored_ids(uint16_t port, const std::string& filter) {
  std::set<std::string> ids;
  net::simple_ws_client client;
  if (!client.connect("127.0.0.1", port).empty()
      || !client.send("[\"REQ\",\"q\"," + filter + "]").empty())
    return ids;
  std::vector<std::string> frames;
  if (!test::receive_until(client, "[\"EOSE\"", &frames))
    return ids;
  for (auto& frame : frames)
    if (auto at = frame.find("\"id\":\""); frame.rfind("[\"EVENT\"", 0) == 0
                                           && at != std::string::npos)
      ids.insert(frame.substr(at + 6, 64));
  return ids;
}

bool holds(uint16_t port, const nostr::event& ev) {
  return stored_ids(port, "{\"ids\":[\"" + nostr::to_hex(ev.id) + "\"]}").size()
         == 1;
}

} // namespace

TEST_CASE("a grasp node fetches its repositories' events from the relays "
          "their announcements list, and follows them live",
          "[integration][grasp]") {
  test::temp_dir dir_s, dir_r1, dir_r2;
  test::ferry_process r1{{"node", "--config", test::node_config(dir_r1)}};
  test::ferry_process r2{{"node", "--config", test::node_config(dir_r2)}};
  auto r1_port = r1.wait_for_port();
  auto r2_port = r2.wait_for_port();
  REQUIRE(r1_port);
  REQUIRE(r2_port);
  auto r1_url = "ws://127.0.0.1:" + std::to_string(*r1_port);
  auto r2_url = "ws://127.0.0.1:" + std::to_string(*r2_port);

  test::node_settings settings;
  settings.relay_port = test::free_port();
  settings.admin_extra = std::string{"token = \""} + admin_token + "\"\n";
  settings.extra = "[grasp]\nenabled = true\nservice_domain = \"127.0.0.1:"
                   + std::to_string(settings.relay_port)
                   + "\"\nbatch_window_ms = 100\ntick_seconds = 1\n";
  test::ferry_process s{{"node", "--config", test::node_config_with(dir_s, settings)}};
  auto s_port = s.wait_for_port();
  REQUIRE(s_port);
  auto s_admin = test::wait_for_admin_port(s);
  REQUIRE(s_admin);
  auto s_url = "ws://127.0.0.1:" + std::to_string(*s_port);
  auto logs = [&] {
    return "--- S ---\n" + test::output_tail(s) + "--- R1 ---\n"
           + test::output_tail(r1) + "--- R2 ---\n" + test::output_tail(r2);
  };

  auto owner = nostr::generate_keypair();
  auto contributor = nostr::generate_keypair();
  auto repo = "30617:" + nostr::to_hex(owner.pubkey) + ":ferry";
  auto patch = signed_event(contributor, grasp::kind_patch, {{"a", repo}});
  auto issue = signed_event(contributor, grasp::kind_issue, {{"a", repo}});
  auto unrelated = signed_event(contributor, grasp::kind_issue,
                                {{"a", "30617:" + nostr::to_hex(owner.pubkey)
                                         + ":other"}});
  publish(*r1_port, patch);
  publish(*r1_port, issue);
  publish(*r1_port, unrelated);
  auto r2_issue = signed_event(owner, grasp::kind_issue, {{"a", repo}});
  publish(*r2_port, r2_issue);

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
  publish(*r2_port, reply);
  if (!test::poll_until([&] { return holds(*s_port, reply); }, 10s))
    FAIL("the reply on R2 did not reach S live\n" << logs());
  CHECK(s.kill(SIGTERM) == 0);
  CHECK(r1.kill(SIGTERM) == 0);
  CHECK(r2.kill(SIGTERM) == 0);
}
