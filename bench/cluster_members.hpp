#pragma once

// What the cluster benches share: three `ferry node` members on loopback
// (failure_timeout_ms 1000, heartbeat_ms 250), the remote relay whose URL
// paths they sync, and the waits on the cluster's state through the admin
// API.

#include "bench/bench_util.hpp"

#include "net/simple_client.hpp"

#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <thread>

namespace ferry::bench {

namespace json = boost::json;

inline constexpr const char* admin_token = "bench-cluster-token";
inline constexpr auto poll_interval = std::chrono::milliseconds{20};
inline constexpr auto settle_timeout = std::chrono::seconds{60};

/// A loopback port free right now (the member configs need fixed ports:
/// members announce their relay URL).
inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("cannot find a free loopback port");
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline json::value admin_get(uint16_t port, const std::string& target) {
  auto res = net::simple_http_request(
    "127.0.0.1", port, "GET", target,
    {{"Authorization", std::string{"Bearer "} + admin_token}});
  if (!res.error.empty() || res.response.status != 200)
    return nullptr;
  json::error_code ec;
  auto v = json::parse(res.response.body, ec);
  return ec ? json::value{} : v;
}

struct member {
  std::string name;
  uint16_t relay_port = free_port();
  uint16_t admin_port = free_port();
  uint16_t cluster_port = free_port();
  fs::path dir;
  fs::path config;
  std::unique_ptr<node_process> process;

  std::string cluster_address() const {
    return "127.0.0.1:" + std::to_string(cluster_port);
  }

  void configure(const fs::path& root, const std::string& servers,
                 const std::vector<std::string>& seeds) {
    dir = root / name;
    fs::create_directories(dir);
    std::string seed_list;
    for (auto& s : seeds)
      seed_list += (seed_list.empty() ? "\"" : ", \"") + s + "\"";
    config = dir / "ferry.toml";
    write_file(config,
               "[relay]\naddress = \"127.0.0.1\"\nport = "
                 + std::to_string(relay_port) + "\n[admin]\naddress = "
                 "\"127.0.0.1\"\nport = " + std::to_string(admin_port)
                 + "\ntoken = \"" + admin_token + "\"\n[console]\nport = 0\n"
                 + "[store]\npath = " + toml_string((dir / "data").string())
                 + "\n[node]\nkey_file = "
                 + toml_string((dir / "node.key").string())
                 + "\n[log]\nlevel = \"warn\"\n[cluster]\nenabled = true\nname = \""
                 + name + "\"\nport = " + std::to_string(cluster_port)
                 + "\nseeds = [" + seed_list + "]\n"
                 + "failure_timeout_ms = 1000\nheartbeat_ms = 250\n" + servers);
  }

  void start(const std::string& ferry) {
    process = std::make_unique<node_process>(ferry, config, dir, name);
    // The log level is warn: wait for the admin API instead of log lines.
    auto deadline = clock_type::now() + node_startup_timeout;
    while (!net::simple_http_request("127.0.0.1", admin_port, "GET", "/health")
              .error.empty()) {
      if (clock_type::now() > deadline || process->ended())
        throw std::runtime_error(name + " did not start:\n" + process->log_tail());
      std::this_thread::sleep_for(poll_interval);
    }
  }

  json::value view() const {
    return admin_get(admin_port, "/api/v1/cluster");
  }

  /// Ids of the (non-replication) sync servers connected here.
  std::set<std::string> connected() const {
    std::set<std::string> ids;
    auto stats = admin_get(admin_port, "/api/v1/sync/stats");
    if (!stats.is_object())
      return ids;
    for (auto& row : stats.at("per_server").as_array()) {
      std::string id{row.at("id").as_string()};
      if (row.at("connected").as_bool() && id.rfind("cluster.", 0) != 0)
        ids.insert(id);
    }
    return ids;
  }

  int64_t count() const {
    net::simple_ws_client client;
    if (!client.connect("127.0.0.1", relay_port).empty()
        || !client.send(R"(["COUNT","c",{}])").empty())
      return -1;
    for (int i = 0; i < 20; ++i) {
      auto frame = client.receive(std::chrono::milliseconds{500});
      if (!frame)
        continue;
      auto pos = frame->find("\"count\":");
      if (frame->rfind("[\"COUNT\"", 0) == 0 && pos != std::string::npos)
        return std::strtoll(frame->c_str() + pos + 8, nullptr, 10);
    }
    return -1;
  }
};

/// Waits until each of `up` sees exactly them live and every one of
/// `relay_count` relays is connected on exactly one of them; the seconds it
/// took.
inline double wait_settled(const std::vector<member*>& up,
                           size_t relay_count) {
  auto start = clock_type::now();
  for (;;) {
    bool ok = true;
    std::map<std::string, int> connected_on;
    for (auto* m : up) {
      auto v = m->view();
      if (!v.is_object() || v.at("live").as_array().size() != up.size()) {
        ok = false;
        break;
      }
      for (auto& id : m->connected())
        ++connected_on[id];
    }
    if (ok && connected_on.size() == relay_count
        && std::all_of(connected_on.begin(), connected_on.end(),
                       [](auto& x) { return x.second == 1; }))
      return seconds_since(start);
    if (clock_type::now() - start > settle_timeout)
      throw std::runtime_error("the cluster did not settle within 60 s");
    std::this_thread::sleep_for(poll_interval);
  }
}

/// Waits until each of `up` replicates from each other one with its
/// catch-up done (lag 0 in its cluster view).
inline void wait_replicating(const std::vector<member*>& up) {
  auto start = clock_type::now();
  for (;;) {
    size_t in_sync = 0;
    for (auto* m : up) {
      auto v = m->view();
      if (!v.is_object())
        continue;
      for (auto& row : v.at("members").as_array()) {
        auto link = row.as_object().if_contains("replication");
        if (link && link->is_object()
            && link->as_object().at("lag_seconds") == json::value(0))
          ++in_sync;
      }
    }
    if (in_sync == up.size() * (up.size() - 1))
      return;
    if (clock_type::now() - start > settle_timeout)
      throw std::runtime_error("the replication links did not come up "
                               "within 60 s");
    std::this_thread::sleep_for(poll_interval);
  }
}

inline void require_ok(net::simple_ws_client& client, size_t n) {
  for (size_t got = 0; got < n;) {
    auto frame = client.receive(std::chrono::seconds{10});
    if (!frame)
      throw std::runtime_error("no OK from the member within 10 s");
    if (frame->rfind("[\"OK\"", 0) != 0)
      continue;
    if (frame->find(",true,") == std::string::npos)
      throw std::runtime_error("event refused: " + *frame);
    ++got;
  }
}

/// How many relays each member owns, as `observer`'s view states.
inline std::map<std::string, int> ownership(const member& observer) {
  std::map<std::string, int> owned;
  auto view = observer.view();
  if (!view.is_object())
    throw std::runtime_error(observer.name + " did not answer its view");
  for (auto& relay : view.at("relays").as_array())
    if (relay.at("owner").is_string())
      ++owned[std::string{relay.at("owner").as_string()}];
  return owned;
}

struct failover_run {
  member* victim = nullptr;
  std::vector<member*> survivors;
  double seconds = 0;
};

/// Kills (SIGKILL) the member of `up` that owns the most relays by `owned`
/// and waits until the others have every one of `relay_count` relays
/// connected.
inline failover_run kill_busiest(const std::vector<member*>& up,
                                 std::map<std::string, int>& owned,
                                 size_t relay_count) {
  failover_run result;
  result.victim = up.front();
  for (auto* m : up)
    if (owned[m->name] > owned[result.victim->name])
      result.victim = m;
  for (auto* m : up)
    if (m != result.victim)
      result.survivors.push_back(m);
  auto pid = result.victim->process->find_pid();
  if (pid <= 0)
    throw std::runtime_error("cannot find " + result.victim->name + "'s pid");
  ::kill(pid, SIGKILL);
  result.seconds = wait_settled(result.survivors, relay_count);
  result.victim->process.reset();
  std::printf("failover: kill -9 of %s (owner of %d relays) -> every relay "
              "connected by a survivor in %.2f s\n",
              result.victim->name.c_str(), owned[result.victim->name],
              result.seconds);
  return result;
}

/// A plain ferry node as the remote relay, and `count` sync servers r0, r1,
/// ... on its URL paths /r0, /r1, ... (each a relay to the members). Each
/// syncs `filters[i]` (a TOML inline table); without filters, kind 1.
struct remote_relay {
  std::unique_ptr<node_process> process;
  uint16_t port = 0;
  /// The members' `[[sync.server]]` tables.
  std::string servers;

  remote_relay(const std::string& ferry, const fs::path& root, size_t count,
               const std::vector<std::string>& filters = {}) {
    write_file(root / "remote.toml",
               "[relay]\naddress = \"127.0.0.1\"\nport = 0\n[admin]\nport = 0\n"
               "[console]\nport = 0\n[store]\npath = "
                 + toml_string((root / "remote-data").string()) + "\n");
    process = std::make_unique<node_process>(ferry, root / "remote.toml", root,
                                             "remote");
    auto relay_port = process->wait_for_relay_port();
    if (!relay_port)
      throw std::runtime_error("the remote relay did not start:\n"
                               + process->log_tail());
    port = *relay_port;
    for (size_t i = 0; i < count; ++i)
      servers += "[[sync.server]]\nid = \"r" + std::to_string(i)
                 + "\"\nurl = \"ws://127.0.0.1:" + std::to_string(port) + "/r"
                 + std::to_string(i) + "\"\nfilters = ["
                 + (filters.empty() ? std::string{"{ kinds = [1] }"}
                                    : filters.at(i))
                 + "]\nrelay_info_mode = \"disabled\"\n";
  }
};

/// node-a, node-b and node-c syncing `servers`; node-a dials the other two,
/// they dial node-a.
struct trio {
  member a, b, c;

  trio(const fs::path& root, const std::string& servers) {
    a.name = "node-a";
    b.name = "node-b";
    c.name = "node-c";
    a.configure(root, servers, {b.cluster_address(), c.cluster_address()});
    b.configure(root, servers, {a.cluster_address()});
    c.configure(root, servers, {a.cluster_address()});
  }

  std::vector<member*> all() {
    return {&a, &b, &c};
  }

  void start(const std::string& ferry) {
    for (auto* m : all())
      m->start(ferry);
  }
};

} // namespace ferry::bench
