// bench_cluster_scale: the three-member run of bench_cluster with 100 remote
// relays (sync servers on 100 URL paths of one remote ferry node), for CPU
// and memory per member and the ownership split. Relay i syncs the kind-1
// notes of author i, so each event reaches the cluster through exactly one
// relay, as if the 100 relays held different events.
//
// 1. Formation: the three members start; the time until each relay is
//    connected on exactly one of them, and how many each owns.
// 2. Idle: 10 s of heartbeats, replication links and 100 open relay
//    connections; each member's CPU over that time.
// 3. Ingest: N kind-1 events (`--events`, default 5,000) of the 100 authors
//    published to the remote relay, timed until every member holds them all
//    (the owner of each author's relay fetches them, the others replicate
//    them from it); each member's CPU over that time.
// 4. Failover: kill -9 of the member owning the most relays; the time until
//    the two others have every relay connected.
// Each member's RSS (and peak) is printed after each phase. Figures are
// printed, never asserted.

#include "bench/cluster_members.hpp"

#include "messages/nostr/hex.hpp"

#include <cstdio>
#include <ctime>
#include <map>

namespace ferry::bench {
namespace {

constexpr size_t relay_count = 100;
constexpr auto idle_window = std::chrono::seconds{10};
constexpr auto ingest_timeout = std::chrono::seconds{600};

/// CPU seconds of each running member so far.
std::map<std::string, double> cpu_of(const std::vector<member*>& members) {
  std::map<std::string, double> result;
  for (auto* m : members)
    if (m->process)
      result[m->name] = process_cpu_seconds(m->process->find_pid());
  return result;
}

/// Each member's CPU since `before` over `seconds` of wall time, and its
/// memory now.
void print_usage(const char* phase, const std::vector<member*>& members,
                 const std::map<std::string, double>& before, double seconds) {
  auto after = cpu_of(members);
  for (auto* m : members) {
    if (!m->process)
      continue;
    auto used = after[m->name] - before.at(m->name);
    std::printf("  %-7s %-6s CPU %6.2f s (%5.1f%% of one core over %.1f s)  "
                "RSS %ld KiB (peak %ld KiB)\n",
                phase, m->name.c_str(), used, 100.0 * used / seconds, seconds,
                m->process->rss_kib(), m->process->peak_rss_kib());
  }
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  auto ingest_events = opts.events == 100000 ? size_t{5000} : opts.events;
  temp_dir root{"ferry-bench-cluster-scale"};
  std::vector<nostr::keypair> authors;
  std::vector<std::string> filters;
  for (size_t i = 0; i < relay_count; ++i) {
    authors.push_back(nostr::generate_keypair());
    filters.push_back("{ kinds = [1], authors = [\""
                      + nostr::to_hex(authors.back().pubkey) + "\"] }");
  }
  remote_relay remote{opts.ferry, root.path(), relay_count, filters};
  trio members{root.path(), remote.servers};
  auto all = members.all();

  // 1. Formation.
  auto start = clock_type::now();
  members.start(opts.ferry);
  wait_settled(all, relay_count);
  auto formation = seconds_since(start);
  std::printf("cluster formed and settled %.2f s after the start (3 members, "
              "%zu relays)\n",
              formation, relay_count);
  auto owned = ownership(members.a);
  std::printf("ownership split:");
  for (auto* m : all)
    std::printf(" %s %d", m->name.c_str(), owned[m->name]);
  std::printf(" (of %zu)\n", relay_count);
  // From each process's start.
  std::map<std::string, double> from_start;
  for (auto* m : all)
    from_start[m->name] = 0;
  print_usage("formed", all, from_start, formation);
  wait_replicating(all);

  // 2. Idle.
  auto cpu_idle = cpu_of(all);
  auto idle_start = clock_type::now();
  std::this_thread::sleep_for(idle_window);
  print_usage("idle", all, cpu_idle, seconds_since(idle_start));

  // 3. Ingest through the remote relay.
  auto now = static_cast<int64_t>(std::time(nullptr));
  std::vector<nostr::event> notes;
  for (size_t i = 0; i < ingest_events; ++i) {
    nostr::event ev;
    ev.kind = 1;
    ev.created_at = now - static_cast<int64_t>(i / relay_count);
    ev.content = "scale note " + std::to_string(i);
    nostr::sign_event(ev, authors[i % relay_count]);
    notes.push_back(std::move(ev));
  }
  std::map<std::string, int64_t> held_before;
  for (auto* m : all)
    held_before[m->name] = m->count();
  auto cpu_ingest = cpu_of(all);
  auto ingest_start = clock_type::now();
  net::simple_ws_client publisher;
  if (!publisher.connect("127.0.0.1", remote.port).empty())
    throw std::runtime_error("cannot connect to the remote relay");
  constexpr size_t window = 200;
  for (size_t i = 0; i < notes.size(); i += window) {
    auto end = std::min(notes.size(), i + window);
    for (size_t j = i; j < end; ++j)
      publisher.send("[\"EVENT\"," + nostr::to_json(notes[j]) + "]");
    require_ok(publisher, end - i);
  }
  for (auto* m : all)
    while (m->count()
           < held_before[m->name] + static_cast<int64_t>(notes.size())) {
      if (clock_type::now() - ingest_start > ingest_timeout)
        throw std::runtime_error(m->name + " did not hold every event within "
                                 "600 s");
      std::this_thread::sleep_for(poll_interval);
    }
  auto ingest = seconds_since(ingest_start);
  std::printf("ingest: %zu events published to the remote relay held by all "
              "three members after %.2f s (%.0f events/s)\n",
              notes.size(), ingest, static_cast<double>(notes.size()) / ingest);
  print_usage("ingest", all, cpu_ingest, ingest);

  // 4. Failover of the busiest owner.
  auto failover = kill_busiest(all, owned, relay_count);
  auto& survivors = failover.survivors;
  auto split = ownership(*survivors.front());
  std::printf("ownership split after the failover:");
  for (auto* m : survivors)
    std::printf(" %s %d", m->name.c_str(), split[m->name]);
  std::printf("\n");
  goal_row("14 scale: 3 members, 100 relays: failover (kill -9), "
           "failure_timeout_ms 1000",
           format("%.2f s", failover.seconds), failover.seconds <= 2.0);
  for (auto* m : survivors)
    m->process->stop();
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_cluster_scale", ferry::bench::run, argc,
                                argv);
}
