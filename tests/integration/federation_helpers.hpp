#pragma once

// Two or three real `ferry node` processes with [federation] sections, for
// the federation tests.

#include "messages/nostr/hex.hpp"
#include "messages/nostr/nip42.hpp"
#include "messages/nostr/nip98.hpp"
#include "tests/integration/sync_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fed_test {

using namespace ferry;
namespace json = boost::json;
using sync_test::logs;

/// One node with fixed ports (a peer must find it again after a restart),
/// its key file and a [federation] section.
struct fed_node {
  std::string label;
  nostr::keypair keys = nostr::generate_keypair();
  uint16_t relay_port = test::free_port();
  uint16_t admin_port = test::free_port();
  test::temp_dir dir;
  std::string config;
  std::optional<test::ferry_process> process;
  /// The Authorization header of the last `signed_call`.
  std::string last_authorization;
  /// More lines for the [relay] table (e.g. "auth_required = true\n").
  std::string relay_extra;

  explicit fed_node(std::string name) : label(std::move(name)) {
    // nop
  }

  std::string pubkey() const {
    return nostr::to_hex(keys.pubkey);
  }

  std::string relay_url() const {
    return "ws://127.0.0.1:" + std::to_string(relay_port);
  }

  std::string admin_url() const {
    return "http://127.0.0.1:" + std::to_string(admin_port);
  }

  /// A [[federation.peer]] table for `other`.
  std::string peer_table(const fed_node& other,
                         const std::string& extra = {}) const {
    return "[[federation.peer]]\nname = \"" + other.label + "\"\nendpoint = \""
           + other.relay_url() + "\"\nadmin_url = \"" + other.admin_url()
           + "\"\nfilters = [{ kinds = [1] }]\n" + extra;
  }

  void configure(const std::string& federation) {
    auto key_file = dir.file("node.key");
    test::write_file(key_file, nostr::to_hex(keys.secret) + "\n");
    config = dir.file("ferry.toml");
    test::write_file(
      config, "[relay]\naddress = \"127.0.0.1\"\nport = "
                + std::to_string(relay_port) + "\n" + relay_extra
                + "[admin]\naddress = \"127.0.0.1\"\nport = "
                + std::to_string(admin_port) + "\ntoken = \""
                + sync_test::admin_token
                + "\"\n[console]\nport = 0\n[store]\npath = \""
                + dir.file("data") + "\"\n[node]\nkey_file = \"" + key_file
                + "\"\n" + federation);
  }

  void start() {
    process.emplace(std::vector<std::string>{"node", "--config", config});
    if (!process->wait_for_port())
      FAIL(label << " did not start\n" << test::output_tail(*process));
    REQUIRE(test::wait_for_admin_port(*process));
    // Logged once every subsystem has started: before that the admin API
    // may already answer, with 503 for a federation manager still starting.
    REQUIRE(test::wait_for_identity(*process));
  }

  void stop() {
    process->kill(SIGTERM);
    process->wait();
    process.reset();
  }

  net::http_result call(const std::string& method, const std::string& target,
                        const std::string& body = {}) {
    return sync_test::admin(admin_port, method, target, body);
  }

  /// A call as another node would make it: NIP-98 signed by `as`.
  net::http_result signed_call(const nostr::keypair& as,
                               const std::string& method,
                               const std::string& target,
                               const std::string& body = {}) {
    last_authorization = nostr::make_http_auth(as, admin_url() + target,
                                               method, body, test::unix_now());
    std::map<std::string, std::string> headers{
      {"Authorization", last_authorization}};
    if (!body.empty())
      headers.emplace("Content-Type", "application/json");
    return net::simple_http_request("127.0.0.1", admin_port, method, target,
                                    headers, body);
  }

  /// GET /api/v1/federation/peers/NAME; null when not 200.
  json::value peer(const std::string& name) {
    auto res = call("GET", "/api/v1/federation/peers/" + name);
    if (!res.error.empty() || res.response.status != 200)
      return nullptr;
    return json::parse(res.response.body);
  }

  std::string peer_status(const std::string& name) {
    auto v = peer(name);
    return v.is_object() ? std::string{v.at("status").as_string()}
                         : std::string{"(none)"};
  }

  size_t peer_count() {
    auto res = call("GET", "/api/v1/federation/peers");
    REQUIRE(res.response.status == 200);
    return json::parse(res.response.body).at("peers").as_array().size();
  }

  /// The stats of the sync server of peer `name`; null when unknown.
  json::value sync_stats(const std::string& name) {
    auto res = call("GET", "/api/v1/sync/servers/federation." + name
                             + "/stats");
    if (!res.error.empty() || res.response.status != 200)
      return nullptr;
    return json::parse(res.response.body);
  }

  /// `ferry console --node <its console gate> ARGS...`: the exit status
  /// and what it printed (stdout and stderr together).
  std::pair<int, std::string> console(std::vector<std::string> args) {
    auto port = test::wait_for_output(*process,
                                      "console-gate listening on "
                                      "127\\.0\\.0\\.1:([0-9]+)");
    REQUIRE(port);
    args.insert(args.begin(), {"console", "--node", "127.0.0.1:" + *port});
    test::ferry_process run{std::move(args), "/dev/null"};
    auto status = run.wait();
    return {status, run.output()};
  }

  bool exchanging(const std::string& name) {
    auto stats = sync_stats(name);
    return stats.is_object() && stats.at("connected").as_bool();
  }
};

/// A relay connection authenticated (NIP-42) as `keys`.
inline void authenticate(net::simple_ws_client& ws, uint16_t port,
                  const nostr::keypair& keys) {
  REQUIRE(ws.connect("127.0.0.1", port).empty());
  auto challenge_frame = test::receive_until(ws, "[\"AUTH\"");
  REQUIRE(challenge_frame);
  auto challenge = json::parse(*challenge_frame).at(1).as_string();
  auto auth = nostr::make_auth_event(
    keys, "ws://127.0.0.1:" + std::to_string(port),
    std::string{challenge}, test::unix_now());
  REQUIRE(ws.send("[\"AUTH\"," + nostr::to_json(auth) + "]").empty());
  auto ok = test::receive_until(ws, "[\"OK\"");
  REQUIRE(ok);
  REQUIRE(ok->find(",true,") != std::string::npos);
}

inline std::string both(fed_node& a, fed_node& b) {
  return logs(a.process ? &*a.process : nullptr,
              b.process ? &*b.process : nullptr);
}

inline json::value body_of(const net::http_result& res) {
  return json::parse(res.response.body);
}

inline std::string error_field(const net::http_result& res) {
  auto v = body_of(res);
  auto field = v.at("error").as_object().if_contains("field");
  return field ? std::string{field->as_string()} : std::string{};
}

inline std::string fed_section(const std::string& incoming,
                        const std::string& extra = {}) {
  return "[federation]\nenabled = true\ninterval_seconds = 1\nincoming = \""
         + incoming + "\"\n" + extra;
}

} // namespace fed_test
