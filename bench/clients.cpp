// bench_clients: the memory a node takes for many clients (the guide:
// "memory bounded under any number of clients").
//
// 0. Crowd: 10,000 WebSocket clients (`max_connections`' default) connect
//    and stay idle; the node's RSS before and after, per connection.
// 1. Idle: 1,000 WebSocket clients connect and stay; the node's RSS before
//    and after, per connection.
// 2. One large message each: every one of those clients sends one 300 KB
//    EVENT and waits for its OK. The signatures are broken, so the node
//    reads, parses and checks each and stores none: what stays is the
//    connections', not the store's. A connection keeps no buffer of its
//    message's size afterwards, so the node's RSS grows by far less than
//    1,000 such buffers (300 MB).
// 3. Flood: 40 clients send 256 EVENTs of 64 KB each at once (the
//    `max_inflight_messages` every connection may have at the node: 640 MB
//    together) before they read an OK, to a node with the default inbound
//    budget (`max_inbound_total_mb = 32`) and to one without it. Each
//    node's peak RSS, and how long until every OK.
// Everything runs on loopback; the clients share the 2 cores with the node.
// Lines starting with "goal-row|" feed the goal table bench/run.sh prints.

#include "bench/bench_util.hpp"
#include "bench/idle_clients.hpp"

#include "net/simple_client.hpp"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace ferry::bench {
namespace {

/// `relay.limits.max_connections`' default: the most a node takes.
constexpr size_t crowd_clients = 10000;
constexpr size_t idle_clients = 1000;
constexpr size_t large_event_bytes = 300 * 1000;
constexpr size_t flood_clients = 40;
constexpr size_t flood_events_per_client = 256;
constexpr size_t flood_event_bytes = 64 * 1000;
/// RSS the 1,000 one-message clients may add, per client, for the goal row:
/// what an idle connection takes plus a little, far below one message.
constexpr double goal_kib_per_client = 64;
/// RSS each idle connection of the crowd may add, for the goal row: its
/// session, socket buffers and actor, with no message ever held.
constexpr double goal_kib_per_idle_client = 16;
/// Peak RSS of the flooded node with the default budget, for the goal row:
/// its store's write buffers (4 x 64 MiB) and caches, and a few times the
/// budget (a message is held as its frame, its parsed event and its
/// stored form).
constexpr double goal_flood_peak_mib = 512;

std::string node_config(const fs::path& data, const std::string& limits) {
  return "[relay]\naddress = \"127.0.0.1\"\nport = 0\n\n[relay.limits]\n" + limits
         + "\n[admin]\naddress = \"127.0.0.1\"\nport = 0\n\n[console]\nport = 0\n\n"
           "[store]\npath = "
         + toml_string(data.string()) + "\n\n[log]\nlevel = \"info\"\n";
}

std::string event_frame(const nostr::event& ev) {
  return "[\"EVENT\"," + nostr::to_json(ev) + "]";
}

/// Waits for the OK of one EVENT; false if none came.
bool await_ok(net::simple_ws_client& client) {
  while (auto frame = client.receive(std::chrono::seconds(60)))
    if (frame->rfind("[\"OK\"", 0) == 0)
      return true;
  return false;
}

struct started_node {
  temp_dir dir;
  std::unique_ptr<node_process> node;
  uint16_t port = 0;

  started_node(const options& opts, const std::string& name, const std::string& limits)
      : dir{"ferry-bench-clients"} {
    auto config = dir.path() / "ferry.toml";
    write_file(config, node_config(dir.path() / "data", limits));
    node = std::make_unique<node_process>(opts.ferry, config, dir.path(), name);
    auto relay = node->wait_for_relay_port();
    if (!relay)
      throw std::runtime_error(name + " did not report its relay port; log tail:\n"
                               + node->log_tail());
    port = *relay;
  }

  double rss_mib() {
    return static_cast<double>(node->rss_kib()) / 1024;
  }

  double peak_rss_mib() {
    return static_cast<double>(node->peak_rss_kib()) / 1024;
  }
};

/// Step 0; @returns the RSS growth per idle connection, in KiB.
double idle_crowd(const options& opts) {
  started_node n{opts, "crowd", ""};
  auto idle_mib = n.rss_mib();
  auto start = clock_type::now();
  bench::idle_clients crowd{n.port, crowd_clients};
  auto connected_mib = n.rss_mib();
  double per_client_kib = (connected_mib - idle_mib) * 1024 / crowd_clients;
  std::printf("crowd: %zu idle clients connected in %.1f s; node RSS %.1f MiB -> %.1f MiB "
              "(%.1f KiB per connection)\n",
              crowd.size(), seconds_since(start), idle_mib, connected_mib, per_client_kib);
  std::fflush(stdout);
  n.node->stop_cleanly();
  return per_client_kib;
}

/// Steps 1 and 2; @returns the RSS growth per client after step 2, in KiB.
double many_clients(const options& opts, const std::vector<nostr::event>& large) {
  started_node n{opts, "many-clients", ""};
  auto idle_mib = n.rss_mib();
  std::vector<std::unique_ptr<net::simple_ws_client>> clients;
  auto start = clock_type::now();
  for (size_t i = 0; i < idle_clients; ++i) {
    auto client = std::make_unique<net::simple_ws_client>();
    auto error = client->connect("127.0.0.1", n.port);
    if (!error.empty())
      throw std::runtime_error("client " + std::to_string(i) + ": " + error);
    clients.push_back(std::move(client));
  }
  auto connected_mib = n.rss_mib();
  std::printf("idle: %zu clients connected in %.1f s; node RSS %.1f MiB -> %.1f MiB "
              "(%.1f KiB per connection)\n",
              idle_clients, seconds_since(start), idle_mib, connected_mib,
              (connected_mib - idle_mib) * 1024 / idle_clients);
  start = clock_type::now();
  size_t answered = 0;
  for (size_t i = 0; i < idle_clients; ++i) {
    auto forged = large[i];
    forged.sig[0] ^= 1;
    auto error = clients[i]->send(event_frame(forged));
    if (!error.empty())
      throw std::runtime_error("client " + std::to_string(i) + ": " + error);
    answered += await_ok(*clients[i]);
  }
  auto after_mib = n.rss_mib();
  double per_client_kib = (after_mib - idle_mib) * 1024 / idle_clients;
  std::printf("one %zu KB EVENT from each, %zu answered in %.1f s: node RSS %.1f MiB "
              "(%.1f KiB per connection over idle; one message is %zu KiB)\n",
              large_event_bytes / 1000, answered, seconds_since(start), after_mib,
              per_client_kib, large_event_bytes / 1024);
  if (answered != idle_clients)
    throw std::runtime_error("only " + std::to_string(answered) + " of "
                             + std::to_string(idle_clients) + " EVENTs were answered");
  clients.clear();
  n.node->stop_cleanly();
  return per_client_kib;
}

struct flood_result {
  double seconds = 0;
  double peak_rss_mib = 0;
  size_t answered = 0;
};

/// Step 3 against a node with `limits`.
flood_result flood(const options& opts, const std::string& name, const std::string& limits,
                   const std::vector<std::vector<std::string>>& frames) {
  started_node n{opts, name, limits};
  std::vector<std::unique_ptr<net::simple_ws_client>> clients;
  for (size_t i = 0; i < frames.size(); ++i) {
    auto client = std::make_unique<net::simple_ws_client>();
    auto error = client->connect("127.0.0.1", n.port);
    if (!error.empty())
      throw std::runtime_error(name + " client " + std::to_string(i) + ": " + error);
    clients.push_back(std::move(client));
  }
  std::atomic<size_t> answered{0};
  auto start = clock_type::now();
  std::vector<std::thread> threads;
  for (size_t i = 0; i < frames.size(); ++i)
    threads.emplace_back([&, i] {
      auto& client = *clients[i];
      for (const auto& frame : frames[i])
        if (!client.send(frame).empty())
          return;
      for (size_t k = 0; k < frames[i].size() && await_ok(client); ++k)
        ++answered;
    });
  for (auto& thread : threads)
    thread.join();
  flood_result result;
  result.seconds = seconds_since(start);
  result.peak_rss_mib = n.peak_rss_mib();
  result.answered = answered;
  clients.clear();
  n.node->stop_cleanly();
  return result;
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  raise_open_file_limit();
  std::printf("bench_clients: ferry %s\n", opts.ferry.c_str());
  std::fflush(stdout);

  auto start = clock_type::now();
  event_generator large_events{large_event_bytes, large_event_bytes};
  auto large = large_events.events(idle_clients, 2);
  event_generator flood_events{flood_event_bytes, flood_event_bytes};
  auto flooded = flood_events.events(flood_clients * flood_events_per_client, 2);
  std::vector<std::vector<std::string>> frames(flood_clients);
  for (size_t i = 0; i < flooded.size(); ++i)
    frames[i % flood_clients].push_back(event_frame(flooded[i]));
  flooded.clear();
  std::printf("signed %zu events of %zu KB and %zu of %zu KB in %.1f s\n", large.size(),
              large_event_bytes / 1000, flood_clients * flood_events_per_client,
              flood_event_bytes / 1000, seconds_since(start));
  std::fflush(stdout);

  double per_idle_client_kib = 0;
  if (opts.wanted("crowd"))
    per_idle_client_kib = idle_crowd(opts);
  double per_client_kib = 0;
  if (opts.wanted("many-clients"))
    per_client_kib = many_clients(opts, large);

  const size_t flooded_total = flood_clients * flood_events_per_client;
  const double flooded_mib =
    static_cast<double>(flooded_total * flood_event_bytes) / (1024 * 1024);
  std::vector<std::pair<std::string, std::string>> variants{
    {"budget", ""},
    {"no-budget", "max_inbound_total_mb = 1048576\n"}};
  flood_result with_budget;
  flood_result without_budget;
  for (const auto& [variant, limits] : variants) {
    if (!opts.wanted(variant))
      continue;
    auto result = flood(opts, "flood-" + variant, limits, frames);
    std::printf("flood, %-9s: %zu clients x %zu EVENTs of %zu KB (%.0f MiB) sent at once: "
                "%zu answered in %.1f s (%.0f events/s), node peak RSS %.0f MiB\n",
                variant.c_str(), flood_clients, flood_events_per_client,
                flood_event_bytes / 1000, flooded_mib, result.answered, result.seconds,
                static_cast<double>(result.answered) / result.seconds, result.peak_rss_mib);
    std::fflush(stdout);
    (variant == "budget" ? with_budget : without_budget) = result;
  }

  if (opts.wanted("crowd"))
    goal_row(format("memory: 10,000 idle clients (max_connections), <= %.0f KiB each",
                    goal_kib_per_idle_client),
             format("%.1f KiB per client", per_idle_client_kib),
             per_idle_client_kib <= goal_kib_per_idle_client);
  if (opts.wanted("many-clients"))
    goal_row(format("memory: 1,000 clients after a 300 KB message each, <= %.0f KiB each",
                    goal_kib_per_client),
             format("%.1f KiB per client", per_client_kib),
             per_client_kib <= goal_kib_per_client);
  if (opts.wanted("budget") && opts.wanted("no-budget")) {
    char measured[96];
    std::snprintf(measured, sizeof measured, "%.0f MiB (%.0f without budget)%s",
                  with_budget.peak_rss_mib, without_budget.peak_rss_mib,
                  with_budget.answered == flooded_total ? "" : " (EVENTS UNANSWERED)");
    std::printf("goal-row|memory: 40 clients flood %.0f MiB of EVENTs, peak RSS <= %.0f "
                "MiB|%s|%s\n",
                flooded_mib, goal_flood_peak_mib, measured,
                with_budget.peak_rss_mib <= goal_flood_peak_mib
                    && with_budget.answered == flooded_total
                  ? "met"
                  : "not met");
  }
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_clients", ferry::bench::run, argc, argv);
}
