// Three real `ferry node` processes in one cluster on loopback, sharing
// twelve sync servers (twelve URLs of one remote ferry relay): each server
// is owned and connected by exactly one live member, as the rendezvous hash
// of its URL over the live names says; a killed member's servers move to the
// others within 10 s and come back when it rejoins with a higher
// incarnation; a node whose key is not allowed is refused with the reason in
// /health.

#include "messages/cluster/rendezvous.hpp"
#include "messages/nostr/hex.hpp"
#include "tests/fixtures/tls_pki.hpp"
#include "tests/integration/sync_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using sync_test::admin;

namespace {

namespace json = boost::json;

constexpr int relay_count = 12;

/// One cluster member: its ports, key and process.
struct member {
  std::string name;
  nostr::keypair keys = nostr::generate_keypair();
  uint16_t relay_port = test::free_port();
  uint16_t admin_port = test::free_port();
  uint16_t cluster_port = test::free_port();
  test::temp_dir dir;
  std::string config;
  std::optional<test::ferry_process> process;

  std::string pubkey() const {
    return nostr::to_hex(keys.pubkey);
  }

  std::string cluster_address() const {
    return "127.0.0.1:" + std::to_string(cluster_port);
  }

  /// Writes the key file and the config: the servers, the seeds and the
  /// allow-list.
  void configure(const std::string& servers,
                 const std::vector<std::string>& seeds,
                 const std::vector<std::string>& allowed,
                 const test::test_pki* tls = nullptr) {
    auto key_file = dir.file("node.key");
    test::write_file(key_file, nostr::to_hex(keys.secret) + "\n");
    auto list = [](const std::vector<std::string>& xs) {
      std::string text;
      for (auto& x : xs)
        text += (text.empty() ? "\"" : ", \"") + x + "\"";
      return "[" + text + "]";
    };
    // Every port is fixed: a restarted member must be found where it was,
    // and members announce their relay and admin URLs.
    config = dir.file("ferry.toml");
    test::write_file(
      config,
      "[relay]\naddress = \"127.0.0.1\"\nport = " + std::to_string(relay_port)
        + "\n[admin]\naddress = \"127.0.0.1\"\nport = "
        + std::to_string(admin_port) + "\ntoken = \"" + sync_test::admin_token
        + "\"\n[console]\nport = 0\n[store]\npath = \"" + dir.file("data")
        + "\"\n[node]\nkey_file = \"" + key_file + "\"\n[cluster]\n"
        + "enabled = true\nname = \"" + name + "\"\nport = "
        + std::to_string(cluster_port) + "\nseeds = " + list(seeds)
        + "\nmembers = " + list(allowed)
        + "\nfailure_timeout_ms = 2000\nheartbeat_ms = 250\n"
        + (tls ? "[cluster.tls]\ncertfile = \"" + tls->peer_cert_file()
                   + "\"\nkeyfile = \"" + tls->peer_key_file()
                   + "\"\ncafile = \"" + tls->ca_file() + "\"\n"
               : std::string{})
        + servers);
  }

  void start() {
    process.emplace(std::vector<std::string>{"node", "--config", config});
    if (!process->wait_for_port())
      FAIL(name << " did not start\n" << test::output_tail(*process));
  }

  /// GET /api/v1/cluster as JSON; null when the node does not answer.
  json::value view() {
    auto res = admin(admin_port, "GET", "/api/v1/cluster");
    if (!res.error.empty() || res.response.status != 200)
      return nullptr;
    return json::parse(res.response.body);
  }

  /// The ids of the sync servers connected here.
  std::set<std::string> connected() {
    std::set<std::string> ids;
    auto res = admin(admin_port, "GET", "/api/v1/sync/stats");
    if (!res.error.empty() || res.response.status != 200)
      return ids;
    auto stats = json::parse(res.response.body);
    for (auto& row : stats.at("per_server").as_array())
      if (row.at("connected").as_bool())
        ids.insert(std::string{row.at("id").as_string()});
    return ids;
  }
};

std::vector<std::string> names_in(const json::value& view) {
  std::vector<std::string> names;
  if (view.is_object())
    for (auto& name : view.at("live").as_array())
      names.emplace_back(name.as_string());
  return names;
}

/// Every server's owner by the hash over `live`.
std::map<std::string, std::string>
expected_owners(const std::vector<std::string>& urls,
                const std::vector<std::string>& live) {
  std::map<std::string, std::string> owners;
  for (int i = 0; i < relay_count; ++i)
    owners["r" + std::to_string(i)] = *cluster::rendezvous_owner(urls[i], live);
  return owners;
}

/// The owners one node's view states.
std::map<std::string, std::string> owners_in(const json::value& view) {
  std::map<std::string, std::string> owners;
  if (view.is_object())
    for (auto& relay : view.at("relays").as_array())
      if (relay.at("owner").is_string())
        owners[std::string{relay.at("id").as_string()}]
          = std::string{relay.at("owner").as_string()};
  return owners;
}

std::string dump(std::vector<member*> members) {
  std::string text;
  for (auto* m : members) {
    text += "--- " + m->name + " ---\n";
    if (m->process && m->process->is_running())
      text += "view: " + json::serialize(m->view()) + "\n";
    if (m->process)
      text += test::output_tail(*m->process, 25);
  }
  return text;
}

/// Waits until every member in `up` sees exactly `up` live, every view gives
/// every server the owner the hash says, and each server is connected on its
/// owner and nowhere else.
void require_settled(std::vector<member*> up, const std::vector<std::string>& urls,
                     std::chrono::milliseconds timeout, const char* what) {
  std::vector<std::string> live;
  for (auto* m : up)
    live.push_back(m->name);
  std::sort(live.begin(), live.end());
  auto want = expected_owners(urls, live);
  std::string problem;
  auto ok = test::poll_until(
    [&] {
      std::map<std::string, int> connected_on;
      for (auto* m : up) {
        auto view = m->view();
        if (names_in(view) != live) {
          problem = m->name + " sees live " + json::serialize(view);
          return false;
        }
        if (owners_in(view) != want) {
          problem = m->name + " states other owners";
          return false;
        }
        for (auto& id : m->connected()) {
          if (want[id] != m->name) {
            problem = id + " is connected on " + m->name + ", owner "
                      + want[id];
            return false;
          }
          ++connected_on[id];
        }
      }
      for (auto& [id, owner] : want)
        if (connected_on[id] != 1) {
          problem = id + " is not connected on its owner " + owner;
          return false;
        }
      return true;
    },
    timeout, 100ms);
  if (!ok)
    FAIL(what << ": " << problem << "\n" << dump(up));
}

uint64_t incarnation_of(member& observer, const std::string& name) {
  auto view = observer.view();
  if (!view.is_object())
    return 0;
  for (auto& m : view.at("members").as_array())
    if (m.at("name").as_string() == name)
      return m.at("incarnation").to_number<uint64_t>();
  return 0;
}

} // namespace

TEST_CASE("three nodes split twelve relays, fail over within 10 s and take "
          "them back on rejoin, and a stranger is refused",
          "[integration][cluster]") {
  // The remote relay: one ferry node, twelve URLs (paths) of it.
  test::temp_dir remote_dir;
  sync_test::node remote{test::node_config(remote_dir)};
  std::vector<std::string> urls;
  std::string servers;
  for (int i = 0; i < relay_count; ++i) {
    urls.push_back("ws://127.0.0.1:" + std::to_string(remote.port) + "/r"
                   + std::to_string(i));
    sync_test::server_options o;
    o.id = "r" + std::to_string(i);
    o.url = urls.back();
    o.relay_info_mode = "disabled";
    servers += sync_test::sync_server_toml(remote.port, o);
  }
  member a, b, c;
  a.name = "node-a";
  b.name = "node-b";
  c.name = "node-c";
  std::vector<std::string> allowed{a.pubkey(), b.pubkey(), c.pubkey()};
  a.configure(servers, {b.cluster_address(), c.cluster_address()}, allowed);
  b.configure(servers, {a.cluster_address()}, allowed);
  c.configure(servers, {a.cluster_address()}, allowed);
  a.start();
  b.start();
  c.start();
  require_settled({&a, &b, &c}, urls, 30s, "three nodes");

  // The member owning the most servers dies without a goodbye.
  auto owners = expected_owners(urls, {"node-a", "node-b", "node-c"});
  std::map<std::string, int> owned;
  for (auto& [id, owner] : owners)
    ++owned[owner];
  member* victim = &a;
  for (auto* m : {&b, &c})
    if (owned[m->name] > owned[victim->name])
      victim = m;
  REQUIRE(owned[victim->name] > 0);
  std::vector<member*> survivors;
  for (auto* m : {&a, &b, &c})
    if (m != victim)
      survivors.push_back(m);
  auto before = incarnation_of(*survivors[0], victim->name);
  REQUIRE(before > 0);
  auto killed_at = std::chrono::steady_clock::now();
  victim->process->kill(SIGKILL);
  require_settled(survivors, urls, 10s, "after kill -9");
  auto failover = std::chrono::steady_clock::now() - killed_at;
  CHECK(failover <= 10s);
  WARN("failover took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(failover)
            .count()
       << " ms");

  // It comes back higher and takes back what the hash gives it.
  victim->start();
  require_settled({&a, &b, &c}, urls, 20s, "after the rejoin");
  for (auto* m : survivors)
    CHECK(incarnation_of(*m, victim->name) > before);

  // A node whose key is not among the members is refused, with the reason
  // in /health of the node it dialled.
  member stranger;
  stranger.name = "stranger";
  // It believes anyone may join (an empty allow-list) and syncs nothing.
  stranger.configure("", {a.cluster_address()}, {});
  stranger.start();
  std::string health;
  auto refused = test::poll_until(
    [&] {
      auto res = admin(a.admin_port, "GET", "/health");
      health = res.response.body;
      return res.response.status == 503
             && health.find("cluster: refused stranger (pubkey "
                            + stranger.pubkey()
                            + "): pubkey is not among the cluster members")
                  != std::string::npos;
    },
    10s);
  CHECK(refused);
  INFO(health);
  // The stranger never counts: the three still own everything.
  require_settled({&a, &b, &c}, urls, 5s, "with the stranger refused");
  for (auto* m : {&stranger, &a, &b, &c})
    m->process->kill(SIGTERM);
}

TEST_CASE("members join over mutual TLS on the cluster port, and a node whose "
          "certificate another CA signed cannot join",
          "[integration][cluster][tls]") {
  test::test_pki pki;
  test::test_pki other_pki;
  member a, b, stranger;
  a.name = "node-a";
  b.name = "node-b";
  stranger.name = "stranger";
  a.configure("", {b.cluster_address()}, {}, &pki);
  b.configure("", {a.cluster_address()}, {}, &pki);
  // Any key may join: only its certificate keeps it out.
  stranger.configure("", {a.cluster_address()}, {}, &other_pki);
  a.start();
  b.start();
  std::vector<std::string> both{"node-a", "node-b"};
  auto joined = test::poll_until(
    [&] { return names_in(a.view()) == both && names_in(b.view()) == both; },
    20s, 100ms);
  if (!joined)
    FAIL("a and b did not join over TLS\n" << dump({&a, &b}));
  CHECK(test::output_tail(*a.process, 200).find("(TLS)") != std::string::npos);

  stranger.start();
  // Its dial of a fails in the TLS handshake, and it never counts.
  auto dial_failed = test::poll_until(
    [&] {
      return stranger.process->output().find("cannot connect")
             != std::string::npos;
    },
    10s, 100ms);
  CHECK(dial_failed);
  CHECK(names_in(stranger.view()) == std::vector<std::string>{"stranger"});
  CHECK(names_in(a.view()) == both);
  CHECK(names_in(b.view()) == both);
  for (auto* m : {&stranger, &a, &b})
    CHECK(m->process->kill(SIGTERM) == 0);
}
