// bench_req: how fast a node streams stored events to one client.
//
// One REQ asking for the whole store measures the query path end to end:
// store scan, EVENT serialization, the session's outbound queue and the
// WebSocket transport. The goal is 100k events/s.

#include "bench/bench_util.hpp"

#include "net/simple_client.hpp"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

namespace ferry::bench {
namespace {

constexpr size_t req_runs = 3;
constexpr double goal_events_per_second = 100000;

/// A node this quiet for this long while a REQ is being answered is stuck.
constexpr auto stall_timeout = std::chrono::seconds{30};


std::string node_config(const fs::path& data, size_t events, size_t jsonl_bytes) {
  // The whole answer may sit in the session's queue if the client reads
  // slower than the node writes; the EVENT envelope adds ~20 bytes per event.
  size_t outbound = 2 * jsonl_bytes + (64u << 20);
  // Port 0: the OS picks a free port and the node logs it.
  return "[relay]\naddress = \"127.0.0.1\"\nport = 0\n\n[relay.limits]\nmax_limit = "
         + std::to_string(events) + "\ndefault_limit = " + std::to_string(std::min<size_t>(events, 500))
         + "\nmax_outbound_bytes = " + std::to_string(outbound)
         + "\n\n[store]\npath = " + toml_string(data.string())
         // The port is read from an info line.
         + "\n\n[log]\nlevel = \"info\"\n";
}

struct req_result {
  uint64_t events = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  double client_cpu_seconds = 0;
};

/// CPU time of the calling thread: shows whether the client, not the node,
/// limits a run.
double thread_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// Sends one REQ for `limit` events and reads until its EOSE.
req_result run_req(net::simple_ws_client& client, node_process& node,
                   const std::string& sub, size_t limit) {
  const std::string event_prefix = "[\"EVENT\",\"" + sub + "\",";
  const std::string eose = "[\"EOSE\",\"" + sub + "\"]";
  const std::string closed_prefix = "[\"CLOSED\",\"" + sub + "\",";
  req_result result;
  auto cpu_start = thread_cpu_seconds();
  auto start = clock_type::now();
  if (auto failure = client.send("[\"REQ\",\"" + sub + "\",{\"limit\":"
                                 + std::to_string(limit) + "}]");
      !failure.empty())
    throw std::runtime_error("sending REQ " + sub + ": " + failure);
  for (;;) {
    auto message = client.receive(stall_timeout);
    if (!message) {
      auto progress = std::to_string(result.events) + " EVENT frames ("
                      + std::to_string(result.bytes) + " bytes) after "
                      + std::to_string(seconds_since(start)) + " s";
      if (!client.is_open())
        throw std::runtime_error("REQ " + sub + ": connection closed after " + progress
                                 + ", close reason '" + client.close_reason()
                                 + "'; node log tail:\n" + node.log_tail());
      throw std::runtime_error("REQ " + sub + " stalled: nothing received for "
                               + std::to_string(stall_timeout.count()) + " s after " + progress + "; node log tail:\n" + node.log_tail());
    }
    if (message->compare(0, event_prefix.size(), event_prefix) == 0) {
      ++result.events;
      result.bytes += message->size();
    } else if (*message == eose) {
      result.bytes += message->size();
      break;
    } else if (message->compare(0, closed_prefix.size(), closed_prefix) == 0) {
      throw std::runtime_error("REQ " + sub + " refused: " + *message);
    } else {
      // NOTICEs and leftovers of earlier subscriptions: visible, not counted.
      std::printf("  (unexpected during %s: %.200s)\n", sub.c_str(), message->c_str());
    }
  }
  result.seconds = seconds_since(start);
  result.client_cpu_seconds = thread_cpu_seconds() - cpu_start;
  if (auto failure = client.send("[\"CLOSE\",\"" + sub + "\"]"); !failure.empty())
    throw std::runtime_error("sending CLOSE " + sub + ": " + failure);
  return result;
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  std::printf("bench_req: %zu events, ferry %s\n", opts.events, opts.ferry.c_str());
  std::fflush(stdout);

  temp_dir tmp{"ferry-bench-req"};
  auto jsonl = tmp.path() / "events.jsonl";
  auto data = tmp.path() / "data";
  auto config = tmp.path() / "ferry.toml";
  auto gen_start = clock_type::now();
  auto bytes = event_generator{100, 400}.write_jsonl(jsonl, opts.events, 2);
  std::printf("generated %zu events (%.1f MB JSONL) in %.1f s (not measured)\n",
              opts.events, bytes / 1e6, seconds_since(gen_start));
  write_file(config, node_config(data, opts.events, bytes));
  auto import = run_import(opts.ferry, jsonl, config, tmp.path());
  std::printf("ferry import: %s\n", import.summary.c_str());
  std::fflush(stdout);

  node_process node{opts.ferry, config, tmp.path(), "node"};
  auto port = node.wait_for_relay_port();
  if (!port)
    throw std::runtime_error("node did not report its relay port; log tail:\n"
                             + node.log_tail());
  std::printf("node: relay on ws://127.0.0.1:%u\n", *port);
  std::fflush(stdout);

  std::vector<double> rates;
  {
    net::simple_ws_client client;
    if (auto failure = client.connect("127.0.0.1", *port); !failure.empty())
      throw std::runtime_error("connect: " + failure);
    for (size_t i = 1; i <= req_runs; ++i) {
      auto r = run_req(client, node, "bench" + std::to_string(i), opts.events);
      double rate = r.events / r.seconds;
      rates.push_back(rate);
      std::printf("req: %lu events in %.3f s = %.0f events/s (%.1f MB/s), "
                  "client CPU %.0f%%\n",
                  static_cast<unsigned long>(r.events), r.seconds, rate,
                  r.bytes / r.seconds / 1e6, 100 * r.client_cpu_seconds / r.seconds);
      std::fflush(stdout);
    }
    client.close();
  }
  std::sort(rates.begin(), rates.end());
  double median = rates[rates.size() / 2];
  std::printf("req best: %.0f events/s, median: %.0f events/s\n", rates.back(), median);
  // The median, so one lucky run on a noisy shared machine does not decide it.
  std::printf("goal: >= %.0f events/s (median of %zu) -> %s\n", goal_events_per_second,
              req_runs, median >= goal_events_per_second ? "MET" : "NOT MET");

  auto exit = node.stop();
  std::printf("node: stopped on SIGTERM (%s), peak RSS %.1f MiB\n",
              exit.describe().c_str(), exit.max_rss_kib / 1024.0);
  if (!exit.success())
    throw std::runtime_error("node failed on SIGTERM; log tail:\n" + node.log_tail());
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_req", ferry::bench::run, argc, argv);
}
