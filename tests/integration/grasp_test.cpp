#include "messages/grasp.hpp"
#include "tests/fixtures/node_process.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

constexpr const char* admin_token = "grasp-test-token";

std::string grasp_config(const test::temp_dir& dir) {
  test::node_settings s;
  s.admin_extra = std::string{"token = \""} + admin_token + "\"\n";
  // Any port on loopback is this service, so the node stays itself across
  // a restart on a new relay port.
  s.extra = "[grasp]\nenabled = true\nservice_domain = \"127.0.0.1\"\n"
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
    auto self_url = "ws://127.0.0.1:" + std::to_string(*relay_port);
    publish(*relay_port,
            signed_event(owner, grasp::kind_announcement,
                         {{"d", "ferry"},
                          {"relays", self_url, "wss://r1.example"}}));
    publish(*relay_port, signed_event(owner, grasp::kind_announcement,
                                      {{"d", "elsewhere"},
                                       {"relays", "wss://r1.example"}}));
    REQUIRE(test::poll_until([&] { return repos(*admin_port).count(ours); }));
    auto listed = repos(*admin_port);
    CHECK(listed.count(theirs) == 0);
    CHECK(boost::json::serialize(listed[ours].at("relays"))
          == R"(["wss://r1.example"])");
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
