// bench_cluster: three `ferry node` members on loopback (failure_timeout_ms
// 1000, heartbeat_ms 250) sharing twelve sync servers of one remote relay.
//
// 1. Replication lag: 1,000 events published one at a time to member A,
//    each timed from A's OK to its arrival on a live subscription at member
//    B; p50 / p99 (goal p99 <= 100 ms).
// 2. Failover: the member owning the most relays is killed with SIGKILL;
//    the time until the two others report every relay connected on its new
//    owner (goal <= 2 s with failure_timeout_ms = 1000).
// 3. Rejoin catch-up: while it is down, N events (`--events`, default
//    20,000) are published to A; it is restarted and timed until it holds
//    as many events as A. Compared with `ferry import` of the same events
//    into an empty store (goal <= 2x that time).
// Each member's RSS is printed after the run. Figures are printed, never
// asserted.

#include "bench/bench_util.hpp"

#include "net/simple_client.hpp"

#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <thread>

namespace ferry::bench {
namespace {

namespace json = boost::json;

constexpr const char* admin_token = "bench-cluster-token";
constexpr int relay_count = 12;
constexpr size_t lag_events = 1000;
constexpr auto poll_interval = std::chrono::milliseconds{20};
constexpr auto settle_timeout = std::chrono::seconds{60};

/// A loopback port free right now (the member configs need fixed ports:
/// members announce their relay URL).
uint16_t free_port() {
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

json::value admin_get(uint16_t port, const std::string& target) {
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

/// Waits until each of `up` sees exactly them live and every relay is
/// connected on exactly one of them; the seconds it took.
double wait_settled(const std::vector<member*>& up) {
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
void wait_replicating(const std::vector<member*>& up) {
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

void require_ok(net::simple_ws_client& client, size_t n) {
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

double percentile(std::vector<double> xs, double p) {
  std::sort(xs.begin(), xs.end());
  auto i = static_cast<size_t>(p * static_cast<double>(xs.size() - 1) + 0.5);
  return xs[std::min(i, xs.size() - 1)];
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  auto catchup_events = opts.events == 100000 ? size_t{20000} : opts.events;
  temp_dir root{"ferry-bench-cluster"};

  // The remote relay: one plain node, twelve URL paths of it.
  write_file(root.path() / "remote.toml",
             "[relay]\naddress = \"127.0.0.1\"\nport = 0\n[admin]\nport = 0\n"
             "[console]\nport = 0\n[store]\npath = "
               + toml_string((root.path() / "remote-data").string()) + "\n");
  node_process remote{opts.ferry, root.path() / "remote.toml", root.path(), "remote"};
  auto remote_port = remote.wait_for_relay_port();
  if (!remote_port)
    throw std::runtime_error("the remote relay did not start:\n" + remote.log_tail());
  std::string servers;
  for (int i = 0; i < relay_count; ++i)
    servers += "[[sync.server]]\nid = \"r" + std::to_string(i) + "\"\nurl = "
               "\"ws://127.0.0.1:" + std::to_string(*remote_port) + "/r"
               + std::to_string(i) + "\"\nfilters = [{ kinds = [1] }]\n"
               "relay_info_mode = \"disabled\"\n";

  member a, b, c;
  a.name = "node-a";
  b.name = "node-b";
  c.name = "node-c";
  a.configure(root.path(), servers, {b.cluster_address(), c.cluster_address()});
  b.configure(root.path(), servers, {a.cluster_address()});
  c.configure(root.path(), servers, {a.cluster_address()});
  for (auto* m : {&a, &b, &c})
    m->start(opts.ferry);
  auto formed = wait_settled({&a, &b, &c});
  std::printf("cluster formed and settled in %.2f s (3 members, %d relays)\n",
              formed, relay_count);
  wait_replicating({&a, &b, &c});

  // 1. Replication lag A -> B.
  net::simple_ws_client subscriber, publisher;
  if (!subscriber.connect("127.0.0.1", b.relay_port).empty()
      || !publisher.connect("127.0.0.1", a.relay_port).empty())
    throw std::runtime_error("cannot connect to the members");
  subscriber.send(R"(["REQ","live",{"kinds":[1],"limit":0}])");
  for (;;) {
    auto frame = subscriber.receive(std::chrono::seconds{10});
    if (!frame)
      throw std::runtime_error("no EOSE from node-b");
    if (frame->rfind("[\"EOSE\"", 0) == 0)
      break;
  }
  event_generator gen{100, 1500};
  // Kind-1 events only, so B's subscription sees each of them (a generator
  // repeats itself from one call to the next: take them from one call).
  std::vector<nostr::event> lag_batch;
  for (auto& ev : gen.events(3 * lag_events, 2))
    if (ev.kind == 1 && lag_batch.size() < lag_events)
      lag_batch.push_back(ev);
  if (lag_batch.size() < lag_events)
    throw std::runtime_error("the generator made too few kind-1 events");
  std::vector<double> lags_ms;
  for (auto& ev : lag_batch) {
    auto id = nostr::to_hex(ev.id);
    publisher.send("[\"EVENT\"," + nostr::to_json(ev) + "]");
    require_ok(publisher, 1);
    auto ok_at = clock_type::now();
    for (;;) {
      auto frame = subscriber.receive(std::chrono::seconds{5});
      if (!frame)
        throw std::runtime_error(
          "event " + id + " never reached node-b; its view: "
          + json::serialize(b.view()) + "\nnode-b log:\n" + b.process->log_tail());
      if (frame->find(id) != std::string::npos)
        break;
    }
    lags_ms.push_back(std::chrono::duration<double, std::milli>(
                        clock_type::now() - ok_at)
                        .count());
  }
  auto p50 = percentile(lags_ms, 0.50);
  auto p99 = percentile(lags_ms, 0.99);
  std::printf("replication lag A -> B over %zu events: p50 %.2f ms, p99 %.2f ms\n",
              lags_ms.size(), p50, p99);
  char measured[128];
  std::snprintf(measured, sizeof measured, "p50 %.1f ms, p99 %.1f ms", p50, p99);
  std::printf("goal-row|14 replication lag: event on A served by B, p99 <= 100 ms|%s|%s\n",
              measured, p99 <= 100 ? "met" : "NOT met");

  // 2. Failover after kill -9 of the busiest owner.
  std::map<std::string, int> owned;
  auto view = a.view();
  for (auto& relay : view.at("relays").as_array())
    ++owned[std::string{relay.at("owner").as_string()}];
  member* victim = &a;
  for (auto* m : {&b, &c})
    if (owned[m->name] > owned[victim->name])
      victim = m;
  std::vector<member*> survivors;
  for (auto* m : {&a, &b, &c})
    if (m != victim)
      survivors.push_back(m);
  auto pid = victim->process->find_pid();
  if (pid <= 0)
    throw std::runtime_error("cannot find " + victim->name + "'s pid");
  ::kill(pid, SIGKILL);
  auto failover = wait_settled(survivors);
  victim->process.reset();
  std::printf("failover: kill -9 of %s (owner of %d relays) -> every relay "
              "connected by a survivor in %.2f s\n",
              victim->name.c_str(), owned[victim->name], failover);
  std::snprintf(measured, sizeof measured, "%.2f s", failover);
  std::printf("goal-row|14 failover: kill -9 -> orphaned relays connected, <= 2 s "
              "(failure_timeout_ms 1000)|%s|%s\n",
              measured, failover <= 2.0 ? "met" : "NOT met");

  // 3. Rejoin catch-up of N events published while the victim is down.
  auto publish_to = survivors[0];
  // Other authors: none of these is among the events published above.
  auto batch = event_generator{100, 1500}.events(catchup_events, 2);
  std::string jsonl;
  for (auto& ev : batch) {
    nostr::append_json(jsonl, ev);
    jsonl += '\n';
  }
  write_file(root.path() / "catchup.jsonl", jsonl);
  net::simple_ws_client bulk;
  if (!bulk.connect("127.0.0.1", publish_to->relay_port).empty())
    throw std::runtime_error("cannot connect to " + publish_to->name);
  auto publish_start = clock_type::now();
  constexpr size_t window = 200;
  for (size_t i = 0; i < batch.size(); i += window) {
    auto end = std::min(batch.size(), i + window);
    for (size_t j = i; j < end; ++j)
      bulk.send("[\"EVENT\"," + nostr::to_json(batch[j]) + "]");
    require_ok(bulk, end - i);
  }
  std::printf("published %zu events to %s in %.2f s while %s was down\n",
              batch.size(), publish_to->name.c_str(), seconds_since(publish_start),
              victim->name.c_str());
  auto want = publish_to->count();
  auto rejoin_start = clock_type::now();
  victim->start(opts.ferry);
  while (victim->count() < want) {
    if (clock_type::now() - rejoin_start > std::chrono::seconds{600})
      throw std::runtime_error(victim->name + " did not catch up within 600 s");
    std::this_thread::sleep_for(poll_interval);
  }
  auto rejoin = seconds_since(rejoin_start);
  // The same events into an empty store with `ferry import`.
  auto scratch = root.path() / "scratch";
  fs::create_directories(scratch);
  write_file(scratch / "ferry.toml",
             "[store]\npath = " + toml_string((scratch / "data").string()) + "\n");
  auto import = run_import(opts.ferry, root.path() / "catchup.jsonl",
                           scratch / "ferry.toml", scratch);
  auto ratio = rejoin / import.seconds;
  std::printf("rejoin: %s held all %lld events again %.2f s after its start; "
              "ferry import of them: %.2f s (%.2fx)\n",
              victim->name.c_str(), static_cast<long long>(want), rejoin,
              import.seconds, ratio);
  std::snprintf(measured, sizeof measured, "%.2fx import (%zu events)", ratio,
                batch.size());
  std::printf("goal-row|14 rejoin catch-up <= 2x its own import time|%s|%s\n",
              measured, ratio <= 2.0 ? "met" : "NOT met");
  for (auto* m : {&a, &b, &c})
    if (m->process)
      std::printf("%s RSS %ld KiB (peak %ld KiB)\n", m->name.c_str(),
                  m->process->rss_kib(), m->process->peak_rss_kib());
  for (auto* m : {&a, &b, &c})
    if (m->process)
      m->process->stop();
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_cluster", ferry::bench::run, argc, argv);
}
