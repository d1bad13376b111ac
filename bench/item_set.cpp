// bench_item_set: the NIP-77 item set of `{}` built from an existing store,
// in process, as bench_scale's "item set" row times it (store read plus the
// item_set constructor) but without importing a corpus first: point it at a
// store bench_scale or `ferry import` left behind and it times only the build,
// once the store is at rest (`settle`: a store just imported still compacts).
//
//   bench_item_set --store DIR [--builds N=7]
//
// Prints every build's wall and CPU time (of the whole process: both reading
// threads; on a busy machine the CPU time is the steadier figure), their
// medians, the set's size and the SHA-256 of its items in order, so that two
// builds of Ferry can be checked to give the same set byte for byte.

#include "bench/bench_util.hpp"
#include "bench/whole_store_set.hpp"

#include "messages/nostr/sha256.hpp"

#include <cstdio>

namespace ferry::bench {
namespace {

namespace neg = nostr::negentropy;

[[noreturn]] void usage(const char* self, int status) {
  std::fprintf(status == 0 ? stdout : stderr,
               "usage: %s --store DIR [--builds N=7]\n", self);
  std::exit(status);
}

int run(int argc, char** argv) {
  std::string path;
  int builds = 7;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h")
      usage(argv[0], 0);
    if (i + 1 >= argc)
      usage(argv[0], 2);
    std::string value = argv[++i];
    if (arg == "--store") {
      path = value;
    } else if (arg == "--builds") {
      char* end = nullptr;
      auto n = std::strtol(value.c_str(), &end, 10);
      if (*end != '\0' || n <= 0 || n > 1000)
        usage(argv[0], 2);
      builds = static_cast<int>(n);
    } else {
      usage(argv[0], 2);
    }
  }
  if (path.empty())
    usage(argv[0], 2);
  if (!fs::is_directory(path))
    throw std::runtime_error("no store at " + path);
  store::store_options store_opts;
  store_opts.path = path;
  auto opened = store::event_store::open(store_opts);
  if (!opened)
    throw std::runtime_error("opening the store at " + path + " failed");
  auto cpu_ms = [] {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
    return ms(usage.ru_utime) + ms(usage.ru_stime);
  };
  std::printf("the store compacted for %.0f s after it was opened\n", settle(**opened));
  std::vector<double> times;
  std::vector<double> cpu_times;
  neg::item_set_ptr items;
  for (int i = 0; i < builds; ++i) {
    auto cpu_start = cpu_ms();
    auto start = clock_type::now();
    auto set = whole_store_set(**opened);
    times.push_back(seconds_since(start) * 1e3);
    cpu_times.push_back(cpu_ms() - cpu_start);
    std::printf("build %d: %.1f ms, %.1f ms CPU\n", i + 1, times.back(), cpu_times.back());
    items = std::move(set);
  }
  const auto& all = items->items();
  auto hash = nostr::sha256({reinterpret_cast<const char*>(all.data()),
                             all.size() * sizeof(neg::item)});
  std::printf("item set of {}: %zu items, median %.1f ms (%.1f ms CPU) of %d "
              "builds, sha256 of the items %s\n",
              items->size(), percentile(times, 0.5), percentile(cpu_times, 0.5), builds,
              neg::encode_hex({reinterpret_cast<const char*>(hash.data()), hash.size()})
                .c_str());
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_item_set", ferry::bench::run, argc, argv);
}
