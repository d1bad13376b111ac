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

#include "bench/cluster_members.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace ferry::bench {
namespace {

constexpr int relay_count = 12;
constexpr size_t lag_events = 1000;

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
  remote_relay remote{opts.ferry, root.path(), relay_count};
  trio members{root.path(), remote.servers};
  auto& a = members.a;
  auto& b = members.b;
  auto& c = members.c;
  members.start(opts.ferry);
  auto formed = wait_settled({&a, &b, &c}, relay_count);
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
  auto owned = ownership(a);
  auto killed = kill_busiest({&a, &b, &c}, owned, relay_count);
  auto failover = killed.seconds;
  auto* victim = killed.victim;
  auto& survivors = killed.survivors;
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
