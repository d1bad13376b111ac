// bench_ingest: how close `ferry import` comes to the machine's verify ceiling.
//
// Signature verification bounds ingest (TOOLCHAIN.md section 3), so the goal is
// stated against the measured one-core verify rate times the core count: an
// import pipeline that spreads verification well reaches at least 70% of it.
// The import reads the realistic corpus (bench/corpus.hpp), the shape issue
// 13's goal 3 is stated for; its row ("goal-row|...") feeds the goal table
// bench/run.sh prints. Figures move with the machine's load: the import runs
// `import_runs` times and the median counts.

#include "bench/bench_util.hpp"
#include "bench/corpus.hpp"

#include "actors/ingest/plugin_host.hpp"
#include "actors/ingest/policy_rules.hpp"
#include "messages/nostr/event.hpp"
#include "messages/type_ids.hpp"
#include "net/io_runtime.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>
#include <utility>

namespace ferry::bench {
namespace {

/// Long enough that timer resolution and frequency ramp-up do not matter.
constexpr double min_measure_seconds = 2.0;

/// Distinct events cycled through by the one-core measurements: more than a
/// cache-friendly handful, few enough to sign quickly.
constexpr size_t sample_events = 2000;

/// Imports of the corpus, each into an empty store; the median is reported.
constexpr int import_runs = 3;

/// Issue 13, goal 3: 3x strfry's import of the realistic corpus on 2 cores.
constexpr double goal_import_events_per_second = 27000;
constexpr double goal_import_rss_mib = 250;

/// Calls `op(i)` with i cycling over [0, n) on this thread for at least
/// `min_measure_seconds`. @returns calls per second and how many returned false.
template <class Op>
std::pair<double, uint64_t> one_core_rate(size_t n, Op op) {
  uint64_t calls = 0;
  uint64_t failures = 0;
  auto start = clock_type::now();
  double elapsed = 0;
  do {
    // Reading the clock every call would show up next to a ~60 µs verify.
    for (int i = 0; i < 64; ++i, ++calls)
      failures += op(calls % n) ? 0 : 1;
    elapsed = seconds_since(start);
  } while (elapsed < min_measure_seconds);
  return {calls / elapsed, failures};
}

void warn_failures(uint64_t failures, const char* what) {
  if (failures > 0)
    std::printf("warning: %lu %s failed; the rate above is not meaningful\n",
                static_cast<unsigned long>(failures), what);
}

/// Built-in rules that every event passes, so each one is evaluated: lists,
/// limits, and token buckets too large to ever refuse.
config::policy_config bench_rules() {
  config::policy_config cfg;
  cfg.denied_pubkeys = {std::string(64, '0')};
  cfg.denied_kinds = {4};
  cfg.max_content_bytes = 1 << 20;
  cfg.max_tags = 10000;
  cfg.rate_pubkey = {1e12, int64_t{1} << 40};
  cfg.rate_source = {1e12, int64_t{1} << 40};
  return cfg;
}

std::string bench_rules_toml() {
  return "[policy]\ndenied_pubkeys = [\"" + std::string(64, '0')
         + "\"]\ndenied_kinds = [4]\nmax_content_bytes = 1048576\n"
           "max_tags = 10000\n[policy.rate_limit.pubkey]\nrate = 1e12\n"
           "burst = 1099511627776\n[policy.rate_limit.source]\nrate = 1e12\n"
           "burst = 1099511627776\n";
}

/// The plugin host's throughput with a plugin that accepts everything, with
/// `in_flight` requests outstanding. @returns events per second.
double plugin_rate(const fs::path& dir, const std::vector<nostr::event>& events,
                   size_t in_flight) {
  // Node, as most strfry plugins are: a shell loop reads its pipe a byte
  // at a time and would measure the shell.
  auto script = dir / "accept_all.js";
  write_file(script, "#!/usr/bin/env node\n"
                     "require('readline').createInterface({input: process.stdin})"
                     ".on('line', (l) => process.stdout.write(JSON.stringify("
                     "{id: JSON.parse(l).event.id, action: 'accept'}) + '\\n'));\n");
  fs::permissions(script, fs::perms::owner_all);
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  net::io_runtime io{1};
  plugin_host_config hcfg;
  hcfg.command = script.string();
  hcfg.timeout = std::chrono::seconds{30};
  auto host = sys.spawn(plugin_host, hcfg, &io.context());
  double rate = 0;
  {
    caf::scoped_actor self{sys};
    std::vector<ingest_item_ptr> items;
    for (auto& ev : events) {
      auto item = std::make_shared<ingest_item>();
      item->data.ev = ev;
      item->data.json = nostr::to_json(ev);
      item->source = "import";
      items.push_back(std::move(item));
    }
    size_t sent = 0;
    size_t answered = 0;
    uint64_t refused = 0;
    auto start = clock_type::now();
    while (sent < items.size() && sent < in_flight)
      self->send(host, atom::judge_v, items[sent++]);
    while (answered < items.size()) {
      self->receive([&](policy_verdict& v) {
        refused += v.action == policy_action::accept ? 0 : 1;
      });
      ++answered;
      if (sent < items.size())
        self->send(host, atom::judge_v, items[sent++]);
    }
    rate = items.size() / seconds_since(start);
    warn_failures(refused, "plugin answers");
    self->send_exit(host, caf::exit_reason::user_shutdown);
    self->wait_for(host);
  }
  return rate;
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("bench_ingest: %zu events, %u cores, ferry %s\n", opts.events, cores,
              opts.ferry.c_str());
  std::fflush(stdout);

  event_generator generator{50, 2000};

  // a. One-core ceilings.
  auto samples = generator.events(sample_events, 2);
  std::vector<std::string> sample_json;
  for (auto& ev : samples)
    sample_json.push_back(nostr::to_json(ev));
  auto [verify_rate, verify_failures] = one_core_rate(samples.size(), [&](size_t i) {
    return nostr::verify_signature(samples[i]);
  });
  std::printf("verify: %.0f sig/s on one core\n", verify_rate);
  warn_failures(verify_failures, "signature checks");
  nostr::event parsed;
  auto [check_rate, check_failures] = one_core_rate(sample_json.size(), [&](size_t i) {
    return nostr::parse_event(sample_json[i], parsed).empty()
           && nostr::check_event(parsed).empty();
  });
  std::printf("ingest check: %.0f events/s on one core (parse_event + check_event)\n",
              check_rate);
  warn_failures(check_failures, "ingest checks");
  std::fflush(stdout);

  // b. The import input: the realistic corpus, generated once per build
  // directory (not part of any figure).
  auto jsonl = realistic_corpus{}.jsonl(self_dir() / "bench-corpus", opts.events, cores);
  temp_dir tmp{"ferry-bench-ingest"};

  // c. The import itself, as a user runs it, into a new store each time:
  // the corpus by name (goal 3's row), then on stdin as strfry's import reads
  // it, alternated so both see the same machine.
  std::vector<double> rates;
  std::vector<double> stdin_rates;
  std::vector<double> cpu_us_per_event;
  std::vector<double> after_loop_shares;
  double peak_rss_mib = 0;
  for (int run = 1; run <= import_runs; ++run) {
    for (bool from_stdin : {false, true}) {
      auto data = tmp.path() / ("data-" + std::to_string(run));
      auto config = tmp.path() / "ferry.toml";
      write_file(config, "[store]\npath = " + toml_string(data.string()) + "\n");
      auto import = run_import(opts.ferry, jsonl, config, tmp.path(), from_stdin);
      double rss_mib = import.exit.max_rss_kib / 1024.0;
      auto& into = from_stdin ? stdin_rates : rates;
      into.push_back(opts.events / import.seconds);
      const char* how = from_stdin ? "from stdin" : "by name";
      std::printf("ferry import %s (run %d): %s\n", how, run, import.summary.c_str());
      // The import times its own loop over the lines ("in X s"); what the
      // process takes beyond it is mostly the final flush of the memtables.
      constexpr std::string_view loop_marker = " lines in ";
      double loop_seconds = 0;
      if (auto at = import.summary.find(loop_marker); at != std::string::npos)
        loop_seconds = std::atof(import.summary.c_str() + at + loop_marker.size());
      double after_loop = std::max(0.0, import.seconds - loop_seconds);
      cpu_us_per_event.push_back(1e6 * import.exit.cpu_seconds / opts.events);
      after_loop_shares.push_back(after_loop / import.seconds);
      std::printf("import %s run %d: %zu events in %.2f s = %.0f events/s, peak RSS "
                  "%.1f MiB, CPU %.1f us/event, %.2f s after the last line (%.0f%%)\n",
                  how, run, opts.events, import.seconds, into.back(), rss_mib,
                  cpu_us_per_event.back(), after_loop, 100 * after_loop_shares.back());
      std::fflush(stdout);
      peak_rss_mib = std::max(peak_rss_mib, rss_mib);
      fs::remove_all(data);
    }
  }
  double import_rate = percentile(rates, 0.5);
  std::printf("import: median %.0f events/s of %d runs, peak RSS %.1f MiB\n", import_rate,
              import_runs, peak_rss_mib);
  std::printf("import from stdin: median %.0f events/s of %d runs (%.0f%% of by name)\n",
              percentile(stdin_rates, 0.5), import_runs,
              100 * percentile(stdin_rates, 0.5) / import_rate);
  // The CPU budget goal 3 leaves: with every core busy, a rate R allows
  // cores / R seconds of CPU per event. One signature check is the largest
  // part of it; its cost moves with the machine's minute as the import's does.
  double budget_us = 1e6 * cores / goal_import_events_per_second;
  std::printf("import CPU: median %.1f us/event of %zu imports; goal 3 on %u cores "
              "allows %.1f us/event (one signature check took %.1f us at the start of "
              "this run); after the last line (the final flush): median %.0f%% of the "
              "wall time\n",
              percentile(cpu_us_per_event, 0.5), cpu_us_per_event.size(), cores,
              budget_us, 1e6 / verify_rate, 100 * percentile(after_loop_shares, 0.5));
  double goal = 0.7 * cores * verify_rate;
  std::printf("goal: >= 70%% of cores x one-core verify = %.0f events/s -> %s\n", goal,
              import_rate >= goal ? "MET" : "NOT MET");
  goal_row("3 import of the realistic corpus >= 27k ev/s, RSS <= 250 MB",
           format("%.0f ev/s, %.0f MiB", import_rate, peak_rss_mib),
           import_rate >= goal_import_events_per_second
             && peak_rss_mib <= goal_import_rss_mib);
  std::fflush(stdout);

  // d. The write policy's cost: none (the step is skipped without rules),
  // built-in rules (alone on one core, then the same import through them),
  // and a trivial plugin (round trips through its pipes).
  policy_rules rules{bench_rules()};
  std::vector<ingest_item> items(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    items[i].data.ev = samples[i];
    items[i].source = "import";
  }
  int64_t now = samples.front().created_at;
  // The buckets' clock must not run backwards: one tick per call.
  double tick = 0;
  auto [rules_rate, rules_refused] = one_core_rate(items.size(), [&](size_t i) {
    return rules.judge(items[i], now, tick += 1e-6).action == policy_action::accept;
  });
  std::printf("policy, built-in rules: %.0f events/s on one core (%.2f us/event)\n",
              rules_rate, 1e6 / rules_rate);
  warn_failures(rules_refused, "rule checks");
  auto ruled_config = tmp.path() / "ferry-rules.toml";
  write_file(ruled_config, "[store]\npath = "
                             + toml_string((tmp.path() / "data-rules").string())
                             + "\n" + bench_rules_toml());
  auto ruled = run_import(opts.ferry, jsonl, ruled_config, tmp.path());
  std::printf("ferry import with built-in rules: %s\n", ruled.summary.c_str());
  std::printf("import with built-in rules: %.0f events/s (no policy: %.0f)\n",
              opts.events / ruled.seconds, import_rate);
  std::fflush(stdout);
  auto plugin_events = generator.events(std::min<size_t>(opts.events, 20000), 3);
  double plugin = plugin_rate(tmp.path(), plugin_events, 256);
  std::printf("policy, trivial plugin (Node, 256 in flight): %.0f events/s "
              "(%.1f us/event)\n",
              plugin, 1e6 / plugin);
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_ingest", ferry::bench::run, argc, argv);
}
