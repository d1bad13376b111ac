#pragma once

// Helpers of the GRASP-02 tests (grasp_test.cpp, grasp_crash_test.cpp):
// publishing to and querying nodes over plain ws://, and the admin API's
// GRASP views. Every wait is bounded.

#include "messages/grasp.hpp"
#include "tests/fixtures/node_process.hpp"

#include <boost/json.hpp>

#include <map>
#include <set>

#include <catch2/catch.hpp>

namespace ferry::grasp_test {

inline constexpr const char* admin_token = "grasp-test-token";

inline net::http_result admin_get(uint16_t port, const std::string& target) {
  return net::simple_http_request(
    "127.0.0.1", port, "GET", target,
    {{"Authorization", std::string{"Bearer "} + admin_token}});
}

/// Publishes `ev` and requires OK true.
inline void publish(uint16_t relay_port, const nostr::event& ev) {
  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", relay_port).empty());
  REQUIRE(client.send("[\"EVENT\"," + nostr::to_json(ev) + "]").empty());
  auto ok = test::receive_until(client, "[\"OK\"");
  REQUIRE(ok);
  REQUIRE(ok->find(",true,") != std::string::npos);
}

/// An event of `kind` created `age` seconds ago.
inline nostr::event signed_event(const nostr::keypair& keys, uint32_t kind,
                                 std::vector<nostr::tag> tags,
                                 int64_t age = 0) {
  nostr::event ev;
  ev.kind = kind;
  ev.created_at = test::unix_now() - age;
  ev.tags = std::move(tags);
  nostr::sign_event(ev, keys);
  return ev;
}

/// The repositories `GET /api/v1/grasp/repos` lists, by address.
inline std::map<std::string, boost::json::object> repos(uint16_t admin_port) {
  std::map<std::string, boost::json::object> result;
  auto res = admin_get(admin_port, "/api/v1/grasp/repos");
  if (!res.error.empty() || res.response.status != 200)
    return result;
  auto parsed = boost::json::parse(res.response.body);
  for (auto& x : parsed.as_array())
    result.emplace(std::string{x.at("address").as_string()}, x.as_object());
  return result;
}

/// `GET /api/v1/grasp/repos/ADDRESS`'s row for `relay`; empty when there is
/// none (yet).
inline boost::json::object repo_relay(uint16_t admin_port,
                                      const std::string& address,
                                      const std::string& relay) {
  auto res = admin_get(admin_port, "/api/v1/grasp/repos/" + address);
  if (!res.error.empty() || res.response.status != 200)
    return {};
  auto detail = boost::json::parse(res.response.body).as_object();
  for (auto& row : detail.at("relays").as_array())
    if (row.at("url").as_string() == relay)
      return row.as_object();
  return {};
}

/// The ids a REQ for `filters` (a JSON filter, or several separated by
/// commas) yields on a relay; nullopt when it cannot ask.
inline std::optional<std::set<std::string>> stored_ids(uint16_t port,
                                                       const std::string& filters) {
  net::simple_ws_client client;
  if (!client.connect("127.0.0.1", port).empty()
      || !client.send("[\"REQ\",\"q\"," + filters + "]").empty())
    return std::nullopt;
  std::vector<std::string> frames;
  if (!test::receive_until(client, "[\"EOSE\"", &frames))
    return std::nullopt;
  std::set<std::string> ids;
  for (auto& frame : frames)
    if (auto at = frame.find("\"id\":\""); frame.rfind("[\"EVENT\"", 0) == 0
                                           && at != std::string::npos)
      ids.insert(frame.substr(at + 6, 64));
  return ids;
}

/// Two plain nodes standing for a repository's remote relays.
struct remote_relays {
  test::temp_dir dir1;
  test::temp_dir dir2;
  test::ferry_process r1{{"node", "--config", test::node_config(dir1)}};
  test::ferry_process r2{{"node", "--config", test::node_config(dir2)}};
  uint16_t port1 = 0;
  uint16_t port2 = 0;
  std::string url1;
  std::string url2;

  remote_relays() {
    auto p1 = r1.wait_for_port();
    auto p2 = r2.wait_for_port();
    REQUIRE(p1);
    REQUIRE(p2);
    port1 = *p1;
    port2 = *p2;
    url1 = "ws://127.0.0.1:" + std::to_string(port1);
    url2 = "ws://127.0.0.1:" + std::to_string(port2);
  }

  std::string logs() {
    return "--- R1 ---\n" + test::output_tail(r1) + "--- R2 ---\n"
           + test::output_tail(r2);
  }
};

/// The config of a GRASP node on `relay_port`, fixed so that the node keeps
/// its URL across restarts: it is the service `127.0.0.1:relay_port`, it
/// decides every second, and `grasp_extra` adds [grasp] keys.
inline std::string grasp_node_config(const test::temp_dir& dir,
                                     uint16_t relay_port,
                                     const std::string& grasp_extra = {}) {
  test::node_settings settings;
  settings.relay_port = relay_port;
  settings.admin_extra = std::string{"token = \""} + admin_token + "\"\n";
  settings.extra = "[grasp]\nenabled = true\nservice_domain = \"127.0.0.1:"
                   + std::to_string(relay_port)
                   + "\"\nbatch_window_ms = 100\ntick_seconds = 1\n"
                   + grasp_extra;
  return test::node_config_with(dir, settings);
}

inline bool holds(uint16_t port, const nostr::event& ev) {
  auto ids = stored_ids(port, "{\"ids\":[\"" + nostr::to_hex(ev.id) + "\"]}");
  return ids && ids->size() == 1;
}

} // namespace ferry::grasp_test
