// bench_req: how fast a node serves its stored events to one client, the way
// clients really download (issue 13, goals 1 and 7).
//
// The node holds the realistic corpus (bench/corpus.hpp). One client
// downloads all of it, in several ways, in the same run and in alternating
// rounds so that the machine's drift hits every variant alike:
//   page-500   `limit 500` + `until` = the oldest created_at of the last page,
//              deduplicated by id: how nostr-fetch and most clients page;
//   page-5000  the same with `limit 5000`;
//   one-REQ    one REQ asking for everything;
// each without compression and, for page-500 and one-REQ, with
// permessage-deflate; and page-500 once more from a second node on a copy
// of the store with read-ahead off (`relay.read_ahead_mb = 0`), so that
// what reading a paging client's next page ahead gives is measured in the
// same rounds; and page-500 with 1,000 and with 10,000 other clients
// connected and idle, as a busy relay has them, which divide the relay's
// outbound budget (`max_outbound_total_mb`) among themselves. For each it
// prints events/s, the first-event latency of each REQ (median, p99), the
// bytes on the wire and the node's CPU time.
//
// The C++ client above measures what the node can serve. strfry's figure in
// the issue came from a Node.js client, whose own CPU bounds what it
// receives, so page-500 also runs through bench/req_pager.mjs (nostr-tools'
// relay class over `ws`), with and without permessage-deflate: the rate to
// set beside strfry's.
// Lines starting with "goal-row|" feed the goal table bench/run.sh prints.

#include "bench/bench_util.hpp"
#include "bench/corpus.hpp"
#include "bench/idle_clients.hpp"
#include "bench/req_client.hpp"
#include "net/simple_client.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <unordered_set>

namespace ferry::bench {
namespace {

constexpr size_t rounds = 3;

/// strfry on the same machine kind with the Node.js client.
constexpr double strfry_page500_events_per_second = 71000;
/// strfry's socket bytes per event for the 2k-event download
/// (1.07 MB), with permessage-deflate.
constexpr double strfry_deflate_bytes_per_event = 1.07e6 / 2000;

std::string node_config(const fs::path& data, size_t events, size_t read_ahead_mb) {
  // Port 0: the OS picks a free port and the node logs it (read from an info
  // line). The one-REQ variant asks for the whole store at once.
  return "[relay]\naddress = \"127.0.0.1\"\nport = 0\ncompression = true\nread_ahead_mb = "
         + std::to_string(read_ahead_mb)
         + "\n\n[admin]\naddress = \"127.0.0.1\"\nport = 0\n\n[console]\nport = 0\n\n"
         "[relay.limits]\nmax_connections = 10100\nmax_limit = "
         + std::to_string(std::max<size_t>(events, 5000))
         + "\ndefault_limit = 500\n\n[store]\npath = " + toml_string(data.string())
         + "\n\n[log]\nlevel = \"info\"\n";
}

double thread_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct variant {
  std::string name;
  /// 0: one REQ for everything.
  size_t page_limit = 0;
  bool deflate = false;
  /// Served by the second node, whose read-ahead is off.
  bool without_read_ahead = false;
  /// Downloaded by bench/req_pager.mjs (Node.js, nostr-tools) instead of
  /// the C++ client.
  bool node_client = false;
  /// Other clients connected, idle, while it downloads.
  size_t idle_clients = 0;
};

/// One labelled sample of the node's /metrics, e.g.
/// `ferry_relay_read_ahead_pages_total{result="served"}`; 0 when absent.
double metric(uint16_t admin_port, const std::string& sample) {
  auto res = net::simple_http_request("127.0.0.1", admin_port, "GET", "/metrics");
  if (!res.error.empty() || res.response.status != 200)
    return 0;
  const auto& text = res.response.body;
  auto pos = text.find("\n" + sample + " ");
  return pos == std::string::npos
           ? 0
           : std::strtod(text.c_str() + pos + sample.size() + 2, nullptr);
}

struct download {
  uint64_t events = 0;
  uint64_t reqs = 0;
  double seconds = 0;
  uint64_t wire_bytes = 0;
  uint64_t payload_bytes = 0;
  double node_cpu_seconds = 0;
  double client_cpu_seconds = 0;
  /// The share of the wall time the Node.js client's event loop was busy;
  /// negative for the C++ client.
  double client_loop_busy = -1;
  std::vector<double> first_event_ms;
  std::string extensions;

  double rate() const {
    return events / seconds;
  }
};

/// Downloads the whole store as `v` says, on a fresh connection.
download run_download(const variant& v, uint16_t port, size_t store_events,
                      node_process& node) {
  req_client client{port, v.deflate};
  download d;
  d.extensions = client.extensions();
  std::unordered_set<std::string> seen;
  seen.reserve(store_events * 2);
  std::optional<int64_t> until;
  auto pid = node.find_pid();
  auto node_cpu_start = process_cpu_seconds(pid);
  auto client_cpu_start = thread_cpu_seconds();
  auto start = clock_type::now();
  for (;;) {
    auto sub = "q" + std::to_string(d.reqs++);
    std::string filter = "{\"limit\":"
                         + std::to_string(v.page_limit ? v.page_limit : store_events);
    if (until)
      filter += ",\"until\":" + std::to_string(*until);
    filter += "}";
    auto sent = clock_type::now();
    client.send("[\"REQ\",\"" + sub + "\"," + filter + "]");
    bool first = true;
    size_t received = 0;
    size_t fresh = 0;
    int64_t oldest = std::numeric_limits<int64_t>::max();
    for (;;) {
      auto msg = client.receive();
      if (first) {
        d.first_event_ms.push_back(seconds_since(sent) * 1e3);
        first = false;
      }
      if (msg.kind == client_message::type::eose)
        break;
      if (msg.kind == client_message::type::closed)
        throw std::runtime_error("REQ refused: " + client.last_other());
      if (msg.kind != client_message::type::event) {
        std::printf("  (unexpected: %.200s)\n", client.last_other().c_str());
        continue;
      }
      ++received;
      oldest = std::min(oldest, msg.created_at);
      if (seen.emplace(msg.id).second)
        ++fresh;
    }
    client.send("[\"CLOSE\",\"" + sub + "\"]");
    // A short page is the last; a page of nothing new would repeat forever.
    if (v.page_limit == 0 || received < v.page_limit || fresh == 0)
      break;
    until = oldest;
  }
  d.seconds = seconds_since(start);
  d.client_cpu_seconds = thread_cpu_seconds() - client_cpu_start;
  d.node_cpu_seconds = process_cpu_seconds(pid) - node_cpu_start;
  d.events = seen.size();
  d.wire_bytes = client.wire_bytes();
  d.payload_bytes = client.payload_bytes();
  return d;
}

/// The Node.js executable on PATH; empty when there is none.
std::string node_executable() {
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "";
  while (!rest.empty()) {
    auto colon = rest.find(':');
    auto dir = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    auto candidate = fs::path{std::string{dir}} / "node";
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0)
      return candidate.string();
  }
  return {};
}

/// Downloads the whole store as `v` says through bench/req_pager.mjs: the
/// issue's kind of client. Its wire bytes are not counted (the C++ client's
/// page-500+deflate row has them).
download run_node_download(const variant& v, uint16_t port, node_process& node,
                           const fs::path& work_dir) {
  static const auto node_bin = node_executable();
  if (node_bin.empty())
    throw std::runtime_error("no `node` on PATH (make setup installs Node.js)");
  auto script = fs::path{FERRY_SOURCE_DIR} / "bench" / "req_pager.mjs";
  auto out_path = work_dir / "req_pager.stdout";
  auto err_path = work_dir / "req_pager.stderr";
  auto pid = node.find_pid();
  auto node_cpu_start = process_cpu_seconds(pid);
  child_process child({node_bin, script.string(), "ws://127.0.0.1:" + std::to_string(port),
                       std::to_string(v.page_limit), v.deflate ? "1" : "0"},
                      out_path, err_path);
  auto exit = child.wait();
  download d;
  d.node_cpu_seconds = process_cpu_seconds(pid) - node_cpu_start;
  if (!exit.success())
    throw std::runtime_error("req_pager.mjs failed (" + exit.describe()
                             + "): " + read_file(err_path));
  auto report = boost::json::parse(read_file(out_path)).as_object();
  d.events = report.at("events").to_number<uint64_t>();
  d.reqs = report.at("reqs").to_number<uint64_t>();
  d.seconds = report.at("seconds").to_number<double>();
  d.client_cpu_seconds = report.at("cpu_seconds").to_number<double>();
  d.client_loop_busy = report.at("event_loop_busy").to_number<double>();
  for (const auto& ms : report.at("first_event_ms").as_array())
    d.first_event_ms.push_back(ms.to_number<double>());
  d.extensions = boost::json::value_to<std::string>(report.at("extensions"));
  return d;
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs.empty() ? 0 : xs[xs.size() / 2];
}

/// The medians of one variant's rounds.
struct summary {
  double rate = 0;
  double first_event_median_ms = 0;
  double first_event_p99_ms = 0;
  double wire_bytes_per_event = 0;
  double node_cpu_us_per_event = 0;
  double reqs = 0;
  /// The client's CPU time over the download's wall time.
  double client_cpu_share = 0;
  /// The Node.js client's event loop: busy time over wall time.
  double client_loop_busy = -1;
};

summary summarize(const std::vector<download>& runs) {
  std::vector<double> rates, wire, cpu, reqs, latencies, client_cpu, client_loop;
  for (const auto& d : runs) {
    client_cpu.push_back(d.client_cpu_seconds / d.seconds);
    client_loop.push_back(d.client_loop_busy);
    rates.push_back(d.rate());
    wire.push_back(static_cast<double>(d.wire_bytes) / d.events);
    cpu.push_back(d.node_cpu_seconds * 1e6 / d.events);
    reqs.push_back(static_cast<double>(d.reqs));
    latencies.insert(latencies.end(), d.first_event_ms.begin(), d.first_event_ms.end());
  }
  return {median(rates),  median(latencies), percentile(latencies, 0.99),
          median(wire),   median(cpu),       median(reqs), median(client_cpu),
          median(client_loop)};
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  std::printf("bench_req: %zu corpus events, ferry %s\n", opts.events, opts.ferry.c_str());
  std::fflush(stdout);

  auto jsonl = realistic_corpus{}.jsonl(self_dir() / "bench-corpus", opts.events, 2);
  temp_dir tmp{"ferry-bench-req"};
  auto config = tmp.path() / "ferry.toml";
  write_file(config, node_config(tmp.path() / "data", opts.events, 32));
  auto import = run_import(opts.ferry, jsonl, config, tmp.path());
  std::printf("ferry import: %s\n", import.summary.c_str());
  double import_rate = opts.events / import.seconds;
  // Goal 3's row comes from bench_ingest, which takes the median of several imports.
  std::printf("import of the corpus: %.0f events/s, peak RSS %.1f MiB\n", import_rate,
              import.exit.max_rss_kib / 1024.0);
  std::fflush(stdout);

  // A copy of the store as the import closed it, for the node without
  // read-ahead (taken before any node opens the store and changes its files).
  if (opts.wanted("page-500-no-read-ahead"))
    fs::copy(tmp.path() / "data", tmp.path() / "data-no-read-ahead",
             fs::copy_options::recursive);
  node_process node{opts.ferry, config, tmp.path(), "node"};
  auto port = node.wait_for_relay_port();
  if (!port)
    throw std::runtime_error("node did not report its relay port; log tail:\n"
                             + node.log_tail());

  // Idle: started, store opened, nobody connected yet.
  double idle_rss_mib = node.rss_kib() / 1024.0;
  std::printf("goal-row|6 idle node RSS <= 40 MB|%.1f MiB|%s\n", idle_rss_mib,
              idle_rss_mib <= 40 ? "met" : "not met");

  std::vector<variant> variants;
  for (auto v : std::vector<variant>{{"page-500", 500, false},
                                     {"page-500-no-read-ahead", 500, false, true},
                                     {"page-500 +1000 idle", 500, false, false, false, 1000},
                                     {"page-500 +10000 idle", 500, false, false, false, 10000},
                                     {"page-5000", 5000, false},
                                     {"one-REQ", 0, false},
                                     {"page-500+deflate", 500, true},
                                     {"one-REQ+deflate", 0, true},
                                     {"node.js page-500", 500, false, false, true},
                                     {"node.js page-500+deflate", 500, true, false, true}})
    if (opts.wanted(v.name))
      variants.push_back(std::move(v));
  auto admin_port = node.wait_for_admin_port();
  // One warm-up download fills the caches the way a running relay has them.
  auto warm = run_download({"warm-up", 0, false}, *port, opts.events, node);
  std::printf("node: relay on ws://127.0.0.1:%u, %lu events stored\n", *port,
              static_cast<unsigned long>(warm.events));
  // The second node, on its copy of the store, idle but for its variant.
  std::unique_ptr<node_process> plain;
  std::optional<uint16_t> plain_port;
  if (opts.wanted("page-500-no-read-ahead")) {
    auto plain_config = tmp.path() / "ferry-no-read-ahead.toml";
    write_file(plain_config,
               node_config(tmp.path() / "data-no-read-ahead", opts.events, 0));
    plain = std::make_unique<node_process>(opts.ferry, plain_config, tmp.path(),
                                           "node-no-read-ahead");
    plain_port = plain->wait_for_relay_port();
    if (!plain_port)
      throw std::runtime_error("the second node did not report its relay port; log tail:\n"
                               + plain->log_tail());
    run_download({"warm-up", 0, false}, *plain_port, opts.events, *plain);
  }
  std::map<std::string, std::vector<download>> results;
  for (size_t round = 1; round <= rounds; ++round)
    for (const auto& v : variants) {
      download d;
      try {
        if (v.node_client)
          d = run_node_download(v, *port, node, tmp.path());
        else if (v.without_read_ahead)
          d = run_download(v, *plain_port, warm.events, *plain);
        else if (v.idle_clients > 0) {
          idle_clients idle{*port, v.idle_clients};
          d = run_download(v, *port, warm.events, node);
        } else
          d = run_download(v, *port, warm.events, node);
      } catch (const std::exception& e) {
        // A variant that fails is reported and left out; the others go on.
        std::printf("round %zu %-24s FAILED: %s\n", round, v.name.c_str(), e.what());
        continue;
      }
      if (d.events != warm.events)
        throw std::runtime_error(v.name + " got " + std::to_string(d.events)
                                 + " distinct events of " + std::to_string(warm.events));
      auto wire = v.node_client ? std::string{"wire not counted"}
                                : format("wire %.1f MB (payload %.1f MB)",
                                         d.wire_bytes / 1e6, d.payload_bytes / 1e6);
      auto loop = d.client_loop_busy < 0
                    ? std::string{}
                    : format(" (event loop busy %.0f%%)", 100 * d.client_loop_busy);
      std::printf("round %zu %-24s %6.0f ev/s  %4lu REQs  first event %.2f ms median  "
                  "%s  node CPU %.2f s  client CPU %.0f%%%s%s\n",
                  round, v.name.c_str(), d.rate(), static_cast<unsigned long>(d.reqs),
                  median(d.first_event_ms), wire.c_str(), d.node_cpu_seconds,
                  100 * d.client_cpu_seconds / d.seconds, loop.c_str(),
                  v.deflate ? (d.extensions.empty() ? "  (deflate NOT negotiated)"
                                                    : "  (deflate negotiated)")
                            : "");
      std::fflush(stdout);
      results[v.name].push_back(std::move(d));
    }

  std::printf("\nmedians of %zu rounds:\n", rounds);
  std::printf("%-24s %9s %6s %12s %12s %10s %12s %11s\n", "variant", "ev/s", "REQs",
              "first p50 ms", "first p99 ms", "wire B/ev", "node us/ev", "client CPU");
  std::map<std::string, summary> s;
  for (const auto& v : variants) {
    if (results[v.name].empty()) {
      std::printf("%-24s failed in every round\n", v.name.c_str());
      continue;
    }
    s[v.name] = summarize(results[v.name]);
    const auto& x = s[v.name];
    auto wire = v.node_client ? std::string{"-"} : format("%.0f", x.wire_bytes_per_event);
    std::printf("%-24s %9.0f %6.0f %12.3f %12.3f %10s %12.1f %10.0f%%\n", v.name.c_str(),
                x.rate, x.reqs, x.first_event_median_ms, x.first_event_p99_ms, wire.c_str(),
                x.node_cpu_us_per_event, 100 * x.client_cpu_share);
  }
  if (admin_port) {
    auto pages = [&](const char* result) {
      return metric(*admin_port, std::string("ferry_relay_read_ahead_pages_total{result=\"")
                                   + result + "\"}");
    };
    std::printf("read-ahead pages (whole run): %.0f read, %.0f served, %.0f dropped\n",
                pages("read"), pages("served"), pages("dropped"));
  }
  for (const char* crowd : {"1000", "10000"}) {
    auto name = std::string{"page-500 +"} + crowd + " idle";
    if (s.count("page-500") && s.count(name))
      std::printf("page-500 beside %s idle clients / alone: %.0f / %.0f ev/s (%+.0f%%)\n",
                  crowd, s[name].rate, s["page-500"].rate,
                  100 * (s[name].rate / s["page-500"].rate - 1));
  }
  if (s.count("page-500") && s.count("page-500-no-read-ahead"))
    std::printf("page-500 with read-ahead / without: %.0f / %.0f ev/s (%+.0f%%)\n",
                s["page-500"].rate, s["page-500-no-read-ahead"].rate,
                100 * (s["page-500"].rate / s["page-500-no-read-ahead"].rate - 1));
  if (!opts.only.empty()) {
    // A partial run measures no goal.
    node.stop();
    return 0;
  }
  const auto& page = s["page-500"];
  const auto& big = s["one-REQ"];
  // What each page costs beyond streaming its events at the one-REQ rate.
  double overhead_ms = (page.reqs > 0)
                         ? std::max(0.0, (warm.events / page.rate - warm.events / big.rate)
                                           * 1e3 / page.reqs)
                         : 0;
  std::printf("page-500 overhead per REQ beyond the one-REQ rate: %.3f ms\n", overhead_ms);
  std::printf("page-500 rate / one-REQ rate: %.0f%%\n", 100 * page.rate / big.rate);
  std::printf("deflate: page-500 %.0f -> %.0f wire B/event, node CPU %.1f -> %.1f us/event\n",
              page.wire_bytes_per_event, s["page-500+deflate"].wire_bytes_per_event,
              page.node_cpu_us_per_event, s["page-500+deflate"].node_cpu_us_per_event);

  goal_row("1 REQ first-event latency, page-500 (median) <= 0.5 ms",
           format("%.3f ms", page.first_event_median_ms), page.first_event_median_ms <= 0.5);
  goal_row("1 REQ page-500 rate >= 90% of one-REQ rate",
           format("%.0f%%", 100 * page.rate / big.rate), page.rate >= 0.9 * big.rate);
  goal_row("1 REQ one-REQ, C++ client >= 200k ev/s", format("%.0f ev/s", big.rate),
           big.rate >= 200000);
  goal_row("1 REQ page-500, C++ client >= 107k ev/s", format("%.0f ev/s", page.rate),
           page.rate >= 1.5 * strfry_page500_events_per_second);
  // strfry's 71k came from a Node.js client: only the same kind of client
  // compares with it.
  const auto& node_page = s["node.js page-500"];
  // The client's event loop bounds it: busy all the time, never waiting
  // for the node, it would receive rate / busy share. Its CPU share counts
  // the garbage collector's helper threads too, which run beside the loop.
  double node_client_ceiling = node_page.client_loop_busy > 0
                                 ? node_page.rate / node_page.client_loop_busy
                                 : 0;
  std::printf("page-500 with the Node.js client: %.0f ev/s = %.2fx strfry's %.0f; the "
              "client's CPU %.0f%% of the wall time (all its threads), its event loop "
              "busy %.0f%%: answered at once, it would take ~%.0f ev/s (%.2fx); with "
              "permessage-deflate (`ws` inflates each message on Node's thread pool) "
              "%.0f ev/s\n",
              node_page.rate, node_page.rate / strfry_page500_events_per_second,
              strfry_page500_events_per_second, 100 * node_page.client_cpu_share,
              100 * node_page.client_loop_busy, node_client_ceiling,
              node_client_ceiling / strfry_page500_events_per_second,
              s["node.js page-500+deflate"].rate);
  goal_row("1 REQ page-500, Node.js client as strfry's >= 1.5x strfry (107k)",
           format("%.0f ev/s = %.2fx (client CPU %.0f%%, event loop busy %.0f%%)",
                  node_page.rate, node_page.rate / strfry_page500_events_per_second,
                  100 * node_page.client_cpu_share, 100 * node_page.client_loop_busy),
           node_page.rate >= 1.5 * strfry_page500_events_per_second);
  const auto& deflated = s["page-500+deflate"];
  goal_row("7 deflate: wire bytes per event <= strfry's (535 B)",
           format("%.0f B/event", deflated.wire_bytes_per_event),
           deflated.wire_bytes_per_event <= strfry_deflate_bytes_per_event);
  goal_row("7 deflate: page-500 ev/s >= strfry's uncompressed page-500 (71k)",
           format("%.0f ev/s", deflated.rate),
           deflated.rate >= strfry_page500_events_per_second);

  auto exit = node.stop_cleanly();
  std::printf("node: stopped on SIGTERM (%s), peak RSS %.1f MiB\n", exit.describe().c_str(),
              exit.max_rss_kib / 1024.0);
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_req", ferry::bench::run, argc, argv);
}
