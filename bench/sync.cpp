// bench_sync: how fast node B mirrors node A's whole store through outbound
// sync (direction "down", mode "req_stream", filter {}).
//
// N events are imported into A's store with `ferry import`; the same file is
// also imported into a scratch store, which gives B's own import rate on this
// machine. Then A starts, B starts with a [[sync.server]] for A, and the wall
// time until B holds everything A holds is measured by polling B's COUNT every
// 100 ms. The goal: sync at >= 70% of B's import rate.

#include "bench/bench_util.hpp"

#include "net/simple_client.hpp"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <dirent.h>
#include <exception>
#include <mutex>
#include <regex>
#include <thread>

namespace ferry::bench {
namespace {

constexpr double goal_fraction = 0.70;
/// B gaining no event for this long while behind A is a stalled sync.
constexpr auto stall_timeout = std::chrono::seconds{60};
constexpr auto poll_interval = std::chrono::milliseconds{100};
constexpr const char* admin_token = "bench-sync-token";

/// A node on free loopback ports; `limits` goes into [relay.limits], `extra`
/// (whole tables) at the end.
std::string node_config(const fs::path& data, const std::string& extra,
                        const std::string& limits = {}) {
  return "[relay]\naddress = \"127.0.0.1\"\nport = 0\n\n[relay.limits]\n" + limits
         + "\n[admin]\naddress = "
         "\"127.0.0.1\"\nport = 0\ntoken = \""
         + std::string{admin_token}
         + "\"\n\n[console]\nport = 0\n\n[store]\npath = " + toml_string(data.string())
         + "\n\n[log]\nlevel = \"info\"\n\n" + extra;
}

/// COUNT of everything on a fresh connection; -1 when the node cannot answer.
int64_t count_all(uint16_t port) {
  net::simple_ws_client client;
  if (!client.connect("127.0.0.1", port).empty())
    return -1;
  if (!client.send(R"(["COUNT","c",{}])").empty())
    return -1;
  auto deadline = clock_type::now() + std::chrono::seconds{10};
  while (clock_type::now() < deadline) {
    auto frame = client.receive(std::chrono::milliseconds{500});
    if (!frame) {
      if (!client.is_open())
        return -1;
      continue;
    }
    auto pos = frame->find("\"count\":");
    if (frame->rfind("[\"COUNT\"", 0) == 0 && pos != std::string::npos)
      return std::strtoll(frame->c_str() + pos + 8, nullptr, 10);
  }
  return -1;
}

/// Bytes received from A, if B's per-server stats expose a bytes counter.
std::optional<uint64_t> bytes_received(uint16_t admin_port, std::string* body) {
  auto res = net::simple_http_request(
    "127.0.0.1", admin_port, "GET", "/api/v1/sync/servers/a/stats",
    {{"Authorization", std::string{"Bearer "} + admin_token}});
  if (!res.error.empty() || res.response.status != 200)
    return std::nullopt;
  *body = res.response.body;
  static const std::regex bytes_re{"\"bytes[a-z_]*(?:in|received|down|read)[a-z_]*\":([0-9]+)"};
  std::smatch m;
  if (std::regex_search(res.response.body, m, bytes_re))
    return std::stoull(m[1].str());
  return std::nullopt;
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  std::printf("bench_sync: %zu events, ferry %s\n", opts.events, opts.ferry.c_str());
  std::fflush(stdout);

  temp_dir tmp{"ferry-bench-sync"};
  auto jsonl = tmp.path() / "events.jsonl";
  auto gen_start = clock_type::now();
  auto bytes = event_generator{100, 400}.write_jsonl(jsonl, opts.events, 2);
  std::printf("generated %zu events (%.1f MB JSONL) in %.1f s (not measured)\n",
              opts.events, bytes / 1e6, seconds_since(gen_start));

  // B's own import rate on this machine: the same file into a scratch store.
  fs::create_directories(tmp.path() / "scratch");
  auto scratch_config = tmp.path() / "scratch" / "ferry.toml";
  write_file(scratch_config, node_config(tmp.path() / "scratch" / "data", ""));
  auto scratch = run_import(opts.ferry, jsonl, scratch_config, tmp.path() / "scratch");
  double import_rate = opts.events / scratch.seconds;
  std::printf("B import: %s in %.2f s = %.0f events/s\n", scratch.summary.c_str(),
              scratch.seconds, import_rate);

  fs::create_directories(tmp.path() / "a");
  auto a_config = tmp.path() / "a" / "ferry.toml";
  // A may queue a whole catch-up page for B; do not cut B off for it.
  write_file(a_config, node_config(tmp.path() / "a" / "data", "",
                                   "max_outbound_bytes = "
                                     + std::to_string(2 * bytes + (64u << 20)) + "\n"));
  auto a_import = run_import(opts.ferry, jsonl, a_config, tmp.path() / "a");
  std::printf("A import: %s in %.2f s\n", a_import.summary.c_str(), a_import.seconds);
  std::fflush(stdout);

  node_process a{opts.ferry, a_config, tmp.path() / "a", "a"};
  auto a_port = a.wait_for_relay_port();
  if (!a_port)
    throw std::runtime_error("node A did not report its relay port; log tail:\n"
                             + a.log_tail());
  auto target = count_all(*a_port);
  if (target <= 0)
    throw std::runtime_error("node A holds no events (COUNT " + std::to_string(target)
                             + "); log tail:\n" + a.log_tail());
  // Replaceable and addressable kinds supersede each other, so A may hold
  // fewer than N; B must hold what A holds.
  std::printf("node A: relay on ws://127.0.0.1:%u holding %lld events\n", *a_port,
              static_cast<long long>(target));
  std::fflush(stdout);

  fs::create_directories(tmp.path() / "b");
  auto b_config = tmp.path() / "b" / "ferry.toml";
  write_file(b_config,
             node_config(tmp.path() / "b" / "data",
                         "[[sync.server]]\nid = \"a\"\nurl = \"ws://127.0.0.1:"
                           + std::to_string(*a_port)
                           + "\"\nfilters = [{}]\ndirection = \"down\"\nmode = "
                             "\"req_stream\"\ntls = { mode = \"disabled\" }\n"));

  auto start = clock_type::now();
  node_process b{opts.ferry, b_config, tmp.path() / "b", "b"};
  auto b_port = b.wait_for_relay_port();
  if (!b_port)
    throw std::runtime_error("node B did not report its relay port; log tail:\n"
                             + b.log_tail());
  auto b_admin = b.wait_for_admin_port();
  std::printf("node B: relay on ws://127.0.0.1:%u, up after %.2f s\n", *b_port,
              seconds_since(start));
  std::fflush(stdout);

  int64_t held = 0;
  long peak_kib = 0;
  auto last_progress = clock_type::now();
  auto last_report = clock_type::now();
  for (;;) {
    auto n = count_all(*b_port);
    peak_kib = std::max(peak_kib, b.peak_rss_kib());
    if (n > held) {
      held = n;
      last_progress = clock_type::now();
    }
    if (held >= target)
      break;
    if (b.ended())
      throw std::runtime_error("node B ended during sync; log tail:\n" + b.log_tail());
    if (clock_type::now() - last_progress > stall_timeout)
      throw std::runtime_error(
        "sync stalled: B holds " + std::to_string(held) + " of "
        + std::to_string(target) + " events, none gained for "
        + std::to_string(stall_timeout.count()) + " s; B log tail:\n" + b.log_tail()
        + "A log tail:\n" + a.log_tail());
    if (clock_type::now() - last_report > std::chrono::seconds{5}) {
      std::printf("  ... B holds %lld of %lld after %.1f s\n",
                  static_cast<long long>(held), static_cast<long long>(target),
                  seconds_since(start));
      std::fflush(stdout);
      last_report = clock_type::now();
    }
    std::this_thread::sleep_for(poll_interval);
  }
  double seconds = seconds_since(start);
  double rate = held / seconds;

  std::string stats_body;
  std::optional<uint64_t> received;
  if (b_admin)
    received = bytes_received(*b_admin, &stats_body);

  auto b_exit = b.stop();
  peak_kib = std::max(peak_kib, b_exit.max_rss_kib);
  a.stop();

  std::printf("sync: %lld events in %.2f s = %.0f events/s, B peak RSS %.1f MiB\n",
              static_cast<long long>(held), seconds, rate, peak_kib / 1024.0);
  if (received)
    std::printf("sync: B received %.1f MB (%.1f MB/s)\n", *received / 1e6,
                *received / 1e6 / seconds);
  else
    std::printf("sync: bytes received not exposed by B's stats%s%.300s\n",
                stats_body.empty() ? "" : ": ", stats_body.c_str());
  std::printf("goal: >= %.0f%% of B's import rate (%.0f events/s) -> %s\n",
              goal_fraction * 100, goal_fraction * import_rate,
              rate >= goal_fraction * import_rate ? "MET" : "NOT MET");
  if (!b_exit.success())
    throw std::runtime_error("node B failed on SIGTERM (" + b_exit.describe()
                             + "); log tail:\n" + b.log_tail());
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  try {
    return ferry::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "bench_sync: %s\n", e.what());
    return 1;
  }
}
