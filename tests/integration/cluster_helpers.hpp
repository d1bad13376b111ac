#pragma once

// Cluster members as real `ferry node` processes on loopback, and what the
// multi-node tests wait for: the live set, relay owners, replicated events.

#include "messages/cluster/rendezvous.hpp"
#include "messages/cluster/replication.hpp"
#include "messages/nostr/hex.hpp"
#include "tests/fixtures/tls_pki.hpp"
#include "tests/integration/sync_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry::cluster_test {

namespace json = boost::json;
using namespace std::chrono_literals;
using sync_test::admin;

// -- reaching a member at an address other than 127.0.0.1 -------------------
// sync_test's helpers, for members in network namespaces.

/// sync_test::admin, at `host`.
inline net::http_result admin_at(const std::string& host, uint16_t port,
                                 const std::string& method,
                                 const std::string& target,
                                 const std::string& body = {}) {
  std::map<std::string, std::string> headers{
    {"Authorization", std::string{"Bearer "} + sync_test::admin_token}};
  if (!body.empty())
    headers.emplace("Content-Type", "application/json");
  return net::simple_http_request(host, port, method, target, headers, body);
}

/// sync_test::publish, at `host`.
inline void publish_at(const std::string& host, uint16_t port,
                       const std::vector<nostr::event>& events) {
  net::simple_ws_client client;
  REQUIRE(client.connect(host, port).empty());
  for (auto& ev : events)
    REQUIRE(client.send(sync_test::event_frame(ev)).empty());
  for (size_t i = 0; i < events.size(); ++i) {
    auto ok = test::receive_until(client, "[\"OK\"");
    REQUIRE(ok);
    INFO(*ok);
    REQUIRE(ok->find(",true,") != std::string::npos);
  }
}

/// One cluster member: its ports, key and process.
struct member {
  std::string name;
  nostr::keypair keys = nostr::generate_keypair();
  uint16_t relay_port = test::free_port();
  uint16_t admin_port = test::free_port();
  uint16_t cluster_port = test::free_port();
  test::temp_dir dir;
  std::string config;
  /// Lines for [cluster] beyond what `configure` writes.
  std::string cluster_extra;
  /// Where its relay, admin API and cluster port listen (off loopback, the
  /// cluster port needs TLS: pass `configure` a PKI).
  std::string host = "127.0.0.1";
  /// The command `ferry` runs under, e.g. {"ip", "netns", "exec", NS}.
  std::vector<std::string> wrapper;
  std::optional<test::ferry_process> process;

  std::string pubkey() const {
    return nostr::to_hex(keys.pubkey);
  }

  std::string cluster_address() const {
    return host + ":" + std::to_string(cluster_port);
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
      "[relay]\naddress = \"" + host + "\"\nport = " + std::to_string(relay_port)
        + "\n[admin]\naddress = \"" + host + "\"\nport = "
        + std::to_string(admin_port) + "\ntoken = \"" + sync_test::admin_token
        + "\"\n[console]\nport = 0\n[store]\npath = \"" + dir.file("data")
        + "\"\n[node]\nkey_file = \"" + key_file + "\"\n[cluster]\n"
        + "enabled = true\nname = \"" + name + "\"\naddress = \"" + host
        + "\"\nport = "
        + std::to_string(cluster_port) + "\nseeds = " + list(seeds)
        + "\nmembers = " + list(allowed)
        + "\nfailure_timeout_ms = 2000\nheartbeat_ms = 250\n" + cluster_extra
        + (tls ? "[cluster.tls]\ncertfile = \"" + tls->peer_cert_file()
                   + "\"\nkeyfile = \"" + tls->peer_key_file()
                   + "\"\ncafile = \"" + tls->ca_file() + "\"\n"
               : std::string{})
        + servers);
  }

  void start() {
    if (wrapper.empty()) {
      process.emplace(std::vector<std::string>{"node", "--config", config});
    } else {
      std::vector<std::string> args{wrapper.begin() + 1, wrapper.end()};
      for (auto arg : {test::ferry_binary(), std::string{"node"},
                       std::string{"--config"}, config})
        args.push_back(arg);
      process.emplace(args, std::string{}, wrapper.front());
    }
    if (!process->wait_for_port())
      FAIL(name << " did not start\n" << test::output_tail(*process));
  }

  /// GET /api/v1/cluster as JSON; null when the node does not answer.
  json::value view() {
    auto res = admin_at(host, admin_port, "GET", "/api/v1/cluster");
    if (!res.error.empty() || res.response.status != 200)
      return nullptr;
    return json::parse(res.response.body);
  }

  /// The ids of the sync servers connected here, replication links left
  /// out.
  std::set<std::string> connected() {
    std::set<std::string> ids;
    auto res = admin_at(host, admin_port, "GET", "/api/v1/sync/stats");
    if (!res.error.empty() || res.response.status != 200)
      return ids;
    auto stats = json::parse(res.response.body);
    for (auto& row : stats.at("per_server").as_array()) {
      std::string id{row.at("id").as_string()};
      if (row.at("connected").as_bool() && !cluster::replicated_member(id))
        ids.insert(id);
    }
    return ids;
  }

  /// Whether this node's replication link from each of `peers` is
  /// connected with its catch-up complete, as the cluster view says.
  bool replicating_from(const std::vector<const member*>& peers) {
    auto v = view();
    if (!v.is_object())
      return false;
    for (auto* peer : peers) {
      bool ok = false;
      for (auto& m : v.at("members").as_array()) {
        if (m.at("name").as_string() != peer->name)
          continue;
        auto& link = m.at("replication");
        ok = link.is_object() && link.at("connected").as_bool()
             && link.at("catchup_complete").as_bool()
             && link.at("lag_seconds") == json::value(0);
      }
      if (!ok)
        return false;
    }
    return true;
  }

  /// The ids of every kind-1 event held here.
  std::set<std::string> kind1_ids() const {
    auto ids = sync_test::try_ids(relay_port, sync_test::kind1_all, host);
    REQUIRE(ids);
    return *ids;
  }
};



inline std::vector<std::string> names_in(const json::value& view) {
  std::vector<std::string> names;
  if (view.is_object())
    for (auto& name : view.at("live").as_array())
      names.emplace_back(name.as_string());
  return names;
}

/// Every server's owner (id → URL given) by the hash over `live`.
inline std::map<std::string, std::string>
expected_owners(const std::map<std::string, std::string>& servers,
                const std::vector<std::string>& live) {
  std::map<std::string, std::string> owners;
  for (auto& [id, url] : servers)
    owners[id] = *cluster::rendezvous_owner(url, live);
  return owners;
}

/// The owners one node's view states for its sync servers (`relays`) or its
/// hosted relays (`hosted_relays`).
inline std::map<std::string, std::string>
owners_in(const json::value& view, const char* list = "relays") {
  std::map<std::string, std::string> owners;
  if (view.is_object())
    for (auto& relay : view.at(list).as_array())
      if (relay.at("owner").is_string())
        owners[std::string{relay.at("id").as_string()}]
          = std::string{relay.at("owner").as_string()};
  return owners;
}

inline std::string dump(std::vector<member*> members) {
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

/// Waits until `held(member, id)` is `want` (null: none) on every member in
/// `members`: a replicated definition reached them all.
template <class Held>
void require_held(std::vector<member*> members, const std::string& id,
                  const json::value& want, Held held,
                  std::chrono::milliseconds timeout, const char* what) {
  std::string problem;
  auto ok = test::poll_until(
    [&] {
      for (auto* m : members) {
        auto x = held(*m, id);
        if (x != want) {
          problem = m->name + " holds " + json::serialize(x);
          return false;
        }
      }
      return true;
    },
    timeout, 100ms);
  if (!ok)
    FAIL(what << ": " << id << ": " << problem << ", want "
              << json::serialize(want) << "\n"
              << dump(members));
}

/// Waits until every member in `holders` holds exactly `want` among its
/// kind-1 events.
inline void require_all_hold(std::vector<member*> holders,
                      const std::set<std::string>& want,
                      std::chrono::milliseconds timeout, const char* what) {
  std::string problem;
  auto ok = test::poll_until(
    [&] {
      for (auto* m : holders) {
        auto held = sync_test::try_ids(m->relay_port, sync_test::kind1_all, m->host);
        if (!held || *held != want) {
          problem = m->name + " holds "
                    + (held ? std::to_string(held->size()) : "?") + " of "
                    + std::to_string(want.size());
          return false;
        }
      }
      return true;
    },
    timeout, 100ms);
  if (!ok)
    FAIL(what << ": " << problem << "\n" << dump(holders));
}

/// Waits until every member in `up` sees exactly `up` live, every view gives
/// every server of `servers` the owner the hash says, and each of them is
/// connected on its owner and nowhere else.
inline void require_settled(std::vector<member*> up,
                            const std::map<std::string, std::string>& servers,
                            std::chrono::milliseconds timeout,
                            const char* what) {
  std::vector<std::string> live;
  for (auto* m : up)
    live.push_back(m->name);
  std::sort(live.begin(), live.end());
  auto want = expected_owners(servers, live);
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
        // Servers outside `servers` (one a test adds that never connects)
        // are not this check's business.
        auto stated = owners_in(view);
        for (auto it = stated.begin(); it != stated.end();)
          it = want.count(it->first) ? std::next(it) : stated.erase(it);
        if (stated != want) {
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

/// The state `view` gives member `name`; empty when it lists none.
inline std::string state_of_member(const json::value& view, const std::string& name) {
  if (view.is_object())
    for (auto& m : view.at("members").as_array())
      if (m.at("name").as_string() == name)
        return std::string{m.at("state").as_string()};
  return {};
}

inline uint64_t incarnation_of(member& observer, const std::string& name) {
  auto view = observer.view();
  if (!view.is_object())
    return 0;
  for (auto& m : view.at("members").as_array())
    if (m.at("name").as_string() == name)
      return m.at("incarnation").to_number<uint64_t>();
  return 0;
}

/// `count` sync servers r0, r1, ... on paths /r0, /r1, ... of the relay on
/// `host`:`port`: their URLs by id, and their `[[sync.server]]` tables.
struct remote_paths {
  std::map<std::string, std::string> urls;
  std::string servers;

  remote_paths(uint16_t port, int count,
               const std::string& host = "127.0.0.1") {
    for (int i = 0; i < count; ++i) {
      sync_test::server_options o;
      o.id = "r" + std::to_string(i);
      o.url = "ws://" + host + ":" + std::to_string(port) + "/r"
              + std::to_string(i);
      o.relay_info_mode = "disabled";
      urls[o.id] = o.url;
      servers += sync_test::sync_server_toml(port, o);
    }
  }
};

/// Waits until every member in `up` sees exactly `up` live.
inline void require_live(std::vector<member*> up,
                         std::chrono::milliseconds timeout, const char* what) {
  std::vector<std::string> live;
  for (auto* m : up)
    live.push_back(m->name);
  std::sort(live.begin(), live.end());
  auto ok = test::poll_until(
    [&] {
      for (auto* m : up)
        if (names_in(m->view()) != live)
          return false;
      return true;
    },
    timeout, 100ms);
  if (!ok)
    FAIL(what << ": the members do not all see each other\n" << dump(up));
}

/// node-a and node-b, allowing each other, started with both replication
/// links up.
struct linked_pair {
  member a, b;

  /// `cluster_extra`: lines for both members' [cluster] sections.
  explicit linked_pair(const std::string& cluster_extra = "") {
    a.name = "node-a";
    b.name = "node-b";
    a.cluster_extra = b.cluster_extra = cluster_extra;
    std::vector<std::string> allowed{a.pubkey(), b.pubkey()};
    a.configure("", {b.cluster_address()}, allowed);
    b.configure("", {a.cluster_address()}, allowed);
    a.start();
    b.start();
    auto linked = test::poll_until(
      [&] { return a.replicating_from({&b}) && b.replicating_from({&a}); },
      20s, 100ms);
    if (!linked)
      FAIL("the replication links did not come up\n" << dump({&a, &b}));
  }
};

/// A sync server's definition as the admin API takes it: `url`, notes of
/// `kind`, no NIP-11 check, no TLS.
inline std::string server_body(const std::string& url, int kind) {
  return R"({"url":")" + url + R"(","filters":[{"kinds":[)"
         + std::to_string(kind) + R"(]}],"relay_info_mode":"disabled",)"
         + R"("tls":{"mode":"disabled"}})";
}

/// The definition `m` holds for sync server `id` as JSON, runtime fields
/// left out; null when none.
inline json::value server_definition_on(member& m, const std::string& id) {
  auto res = admin_at(m.host, m.admin_port, "GET", "/api/v1/sync/servers/" + id);
  if (!res.error.empty() || res.response.status != 200)
    return nullptr;
  auto row = json::parse(res.response.body).as_object();
  for (auto key : {"running", "restarts", "last_exit", "runtime"})
    row.erase(key);
  return row;
}

/// The conflicts `m`'s view lists; empty when it does not answer.
inline json::array conflicts_on(member& m) {
  auto view = m.view();
  return view.is_object() ? view.at("conflicts").as_array() : json::array{};
}

/// Three members, node-a, node-b and node-c, each allowing the others;
/// node-a dials the other two and they dial node-a (gossip does the rest).
/// `servers` is every member's `[[sync.server]]` list.
struct three_members {
  member a, b, c;

  /// `cluster_extra`: lines for every member's [cluster] section.
  explicit three_members(const std::string& servers = "",
                         const std::string& cluster_extra = "") {
    a.name = "node-a";
    b.name = "node-b";
    c.name = "node-c";
    for (auto* m : all())
      m->cluster_extra = cluster_extra;
    std::vector<std::string> allowed{a.pubkey(), b.pubkey(), c.pubkey()};
    a.configure(servers, {b.cluster_address(), c.cluster_address()}, allowed);
    b.configure(servers, {a.cluster_address()}, allowed);
    c.configure(servers, {a.cluster_address()}, allowed);
  }

  std::vector<member*> all() {
    return {&a, &b, &c};
  }

  void start() {
    for (auto* m : all())
      m->start();
  }

  /// Starts the three and waits until each sees all three live.
  void start_joined() {
    start();
    require_live(all(), 20s, "three members");
  }
};

/// The member of three that owns the most of `urls` (any key → URL) by the
/// hash over all three, and the two others: whom a failover test kills.
struct failover_roles {
  member* victim = nullptr;
  std::vector<member*> survivors;
  /// How many of `urls` the victim owns.
  int owned = 0;
};

inline failover_roles
busiest_member(three_members& trio,
               const std::map<std::string, std::string>& urls) {
  std::map<std::string, int> owned;
  for (auto& [key, url] : urls)
    ++owned[*cluster::rendezvous_owner(url, {"node-a", "node-b", "node-c"})];
  failover_roles roles;
  roles.victim = &trio.a;
  for (auto* m : {&trio.b, &trio.c})
    if (owned[m->name] > owned[roles.victim->name])
      roles.victim = m;
  for (auto* m : trio.all())
    if (m != roles.victim)
      roles.survivors.push_back(m);
  roles.owned = owned[roles.victim->name];
  return roles;
}

} // namespace ferry::cluster_test
