// bench_ingest: how close `ferry import` comes to the machine's verify ceiling.
//
// Signature verification bounds ingest (TOOLCHAIN.md section 3), so the goal is
// stated against the measured one-core verify rate times the core count: an
// import pipeline that spreads verification well reaches at least 70% of it.

#include "bench/bench_util.hpp"

#include "messages/nostr/event.hpp"

#include <cstdio>
#include <thread>
#include <utility>

namespace ferry::bench {
namespace {

/// Long enough that timer resolution and frequency ramp-up do not matter.
constexpr double min_measure_seconds = 2.0;

/// Distinct events cycled through by the one-core measurements: more than a
/// cache-friendly handful, few enough to sign quickly.
constexpr size_t sample_events = 2000;

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

  // b. The import input; its generation is not part of any figure.
  temp_dir tmp{"ferry-bench-ingest"};
  auto jsonl = tmp.path() / "events.jsonl";
  auto gen_start = clock_type::now();
  auto bytes = generator.write_jsonl(jsonl, opts.events, 2);
  std::printf("generated %zu events (%.1f MB JSONL) in %.1f s (not measured)\n",
              opts.events, bytes / 1e6, seconds_since(gen_start));
  std::fflush(stdout);

  // c. The import itself, as a user runs it.
  auto config = tmp.path() / "ferry.toml";
  write_file(config, "[store]\npath = " + toml_string((tmp.path() / "data").string())
                       + "\n");
  auto import = run_import(opts.ferry, jsonl, config, tmp.path());
  std::printf("ferry import: %s\n", import.summary.c_str());
  double import_rate = opts.events / import.seconds;
  std::printf("import: %zu events in %.2f s = %.0f events/s, peak RSS %.1f MiB\n",
              opts.events, import.seconds, import_rate,
              import.exit.max_rss_kib / 1024.0);
  double goal = 0.7 * cores * verify_rate;
  std::printf("goal: >= 70%% of cores x one-core verify = %.0f events/s -> %s\n", goal,
              import_rate >= goal ? "MET" : "NOT MET");
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_ingest", ferry::bench::run, argc, argv);
}
