#include "actors/runtime/logging.hpp"
#include "actors/runtime/node.hpp"
#include "app/commands.hpp"
#include "app/line_reader.hpp"
#include "app/progress.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/type_ids.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <functional>
#include <mutex>
#include <unistd.h>
#include <utility>
#include <vector>

namespace ferry::app {

namespace {

/// Events in the pipeline at once: enough to keep every verifier and the
/// writer busy, bounded so a huge file never sits in memory.
constexpr size_t max_in_flight = 8192;

/// A full pipeline takes answers for this many events before reading on.
/// Taking one answer per line kept this thread in lockstep with the writer:
/// it slept on nearly every answer and the writer woke it (a system call
/// each); answers taken in a run mostly wait in the mailbox already.
/// Same-run A/B of the 100k realistic corpus: ~3% less CPU per event, less
/// system time.
constexpr size_t refill_step = 1024;

/// Events per message to a verifier (and per answer back). One message per
/// event kept this thread, the verifiers and the writer waking each other
/// up: 24-62k context switches per 100k events, ~6k now. 100k realistic
/// corpus, 6 alternated pairs: wall 4.39 -> 3.81 s, CPU 8.03 -> 7.05 s.
/// 128, 256 and 512 are alike; at 1024 the verifiers wait for work.
constexpr size_t events_per_message = 256;

struct import_counts {
  uint64_t lines = 0;
  uint64_t accepted = 0;
  uint64_t duplicate = 0;
  uint64_t invalid = 0;
  uint64_t refused = 0;
  uint64_t errors = 0;

  void add(const ingest_result& r) {
    switch (r.status) {
      case ingest_status::stored:
      case ingest_status::ephemeral:
        ++accepted;
        break;
      case ingest_status::duplicate:
        ++duplicate;
        break;
      case ingest_status::invalid:
        ++invalid;
        break;
      case ingest_status::refused:
      case ingest_status::shadowed:
        ++refused;
        break;
      case ingest_status::error:
        ++errors;
        break;
    }
  }
};

} // namespace

bool held_by_another_process(const caf::error& err) {
  return render(err).find("lock") != std::string::npos;
}

caf::expected<std::unique_ptr<store::event_store>>
open_unless_held(const config::config& cfg, bool bulk_import) {
  // RocksDB logs a failed lock as a warning before the open returns, and
  // may log from its own threads for as long as the store is open.
  struct held_back {
    std::mutex mutex;
    bool holding = true;
    std::vector<std::pair<bool, std::string>> lines;
    std::function<void(bool, std::string_view)> log;
  };
  auto opts = store_options_from(cfg);
  opts.bulk_import = bulk_import;
  auto held = std::make_shared<held_back>();
  held->log = std::move(opts.log);
  opts.log = [held](bool problem, std::string_view line) {
    std::lock_guard<std::mutex> guard{held->mutex};
    if (held->holding)
      held->lines.emplace_back(problem, std::string{line});
    else if (held->log)
      held->log(problem, line);
  };
  auto store = store::event_store::open(opts);
  std::lock_guard<std::mutex> guard{held->mutex};
  held->holding = false;
  if ((store || !held_by_another_process(store.error())) && held->log)
    for (const auto& [problem, line] : held->lines)
      held->log(problem, line);
  held->lines.clear();
  return store;
}

std::unique_ptr<store::event_store> open_for_reading(const config::config& cfg,
                                                     const char* command) {
  auto store = open_unless_held(cfg);
  auto opts = store_options_from(cfg);
  if (!store && held_by_another_process(store.error())) {
    // Reading needs no lock: what the node had stored by now.
    opts.beside_running_node = true;
    store = store::event_store::open(opts);
    if (store)
      std::fprintf(stderr,
                   "%s: a node holds %s; reading the events it had stored "
                   "when this began\n",
                   command, opts.path.c_str());
  }
  if (!store) {
    std::fprintf(stderr, "%s: %s\n", command, render(store.error()).c_str());
    return nullptr;
  }
  return std::move(*store);
}

std::string store_hint(const caf::error& err) {
  auto text = render(err);
  if (held_by_another_process(err))
    text += " (is a node running on this store? stop it first)";
  return text;
}

int run_import(const config::config& cfg, const std::string& input) {
  log::init(cfg.log.level == "info" ? "warn" : cfg.log.level);
  int fd = STDIN_FILENO;
  if (input != "-") {
    fd = ::open(input.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(stderr, "ferry import: %s: cannot open: %s\n", input.c_str(),
                   std::strerror(errno));
      return 1;
    }
  }
  struct closer {
    int fd;
    ~closer() {
      if (fd != STDIN_FILENO)
        ::close(fd);
    }
  } close_input{fd};
  line_reader lines{fd};
  auto store = open_unless_held(cfg, /*bulk_import=*/true);
  if (!store) {
    std::fprintf(stderr, "ferry import: %s\n", store_hint(store.error()).c_str());
    return 1;
  }
  caf::actor_system_config sys_cfg;
  add_message_types(sys_cfg);
  tune_scheduler(sys_cfg);
  caf::actor_system sys{sys_cfg};
  auto pipeline = spawn_ingest_pipeline(sys, **store, cfg.ingest, cfg.policy);
  import_counts counts;
  std::string disk_full;
  size_t in_flight = 0;
  size_t next = 0;
  // The file's size makes the share done and the time left; stdin has none.
  uint64_t total_bytes = 0;
  if (input != "-") {
    std::error_code ec;
    total_bytes = std::filesystem::file_size(input, ec);
    if (ec)
      total_bytes = 0;
  }
  uint64_t bytes_read = 0;
  auto start = std::chrono::steady_clock::now();
  {
    progress_line progress{"imported"};
    caf::scoped_actor self{sys};
    auto collect_one = [&] {
      self->receive([&](ingest_results& answers) {
        in_flight -= answers.size();
        for (const auto& r : answers) {
          counts.add(r);
          if (disk_full.empty()
              && r.message.compare(0, store::disk_full_prefix.size(),
                                   store::disk_full_prefix)
                   == 0)
            disk_full = r.message;
        }
      });
    };
    ingest_batch batch;
    batch.reserve(events_per_message);
    auto send_batch = [&] {
      in_flight += batch.size();
      self->send(pipeline.verifiers[next++ % pipeline.verifiers.size()],
                 atom::ingest_v, std::move(batch));
      batch = ingest_batch{};
      batch.reserve(events_per_message);
    };
    // A full disk ends the import: every further event would fail alike.
    while (disk_full.empty()) {
      auto line = lines.next();
      if (!line)
        break;
      bytes_read += line->bytes;
      progress.update(counts.lines, bytes_read, total_bytes);
      if (line->text.empty() && !line->too_long)
        continue;
      ++counts.lines;
      auto item = std::make_shared<ingest_item>();
      if (line->too_long || !nostr::parse_event(line->text, item->data.ev).empty()) {
        ++counts.invalid;
        continue;
      }
      item->source = "import";
      batch.push_back(std::move(item));
      // A part of a batch goes too before the reader waits for its input
      // (a slow pipe): what was read is not held back meanwhile.
      if (batch.size() < events_per_message && lines.next_is_ready())
        continue;
      send_batch();
      if (in_flight >= max_in_flight)
        while (in_flight > max_in_flight - refill_step)
          collect_one();
    }
    if (!batch.empty())
      send_batch();
    while (in_flight > 0)
      collect_one();
  }
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  stop_and_wait(sys, pipeline.actors());
  if (!lines.error().empty())
    std::fprintf(stderr, "ferry import: %s: read error after line %lu: %s\n",
                 input == "-" ? "stdin" : input.c_str(),
                 static_cast<unsigned long>(counts.lines), lines.error().c_str());
  std::printf("imported %lu lines in %.2f s (%.0f events/s): accepted %lu, "
              "duplicate %lu, invalid %lu, refused %lu, errors %lu\n",
              static_cast<unsigned long>(counts.lines), elapsed.count(),
              counts.lines / std::max(elapsed.count(), 1e-9),
              static_cast<unsigned long>(counts.accepted),
              static_cast<unsigned long>(counts.duplicate),
              static_cast<unsigned long>(counts.invalid),
              static_cast<unsigned long>(counts.refused),
              static_cast<unsigned long>(counts.errors));
  if (!disk_full.empty()) {
    std::fprintf(stderr,
                 "ferry import: store %s: %s; stopped after line %lu (free "
                 "space, or lower store.reserve_mb, and import again: stored "
                 "events come back as duplicates)\n",
                 cfg.store.path.c_str(), disk_full.c_str(),
                 static_cast<unsigned long>(counts.lines));
    return 1;
  }
  if (auto failure = (*store)->flush()) {
    std::fprintf(stderr, "ferry import: %s\n", render(failure).c_str());
    return 1;
  }
  return counts.errors == 0 && lines.error().empty() ? 0 : 1;
}

int run_export(const config::config& cfg, const std::string& filter_json) {
  nostr::filter f;
  if (auto reason = nostr::parse_filter(filter_json, f); !reason.empty()) {
    std::fprintf(stderr, "ferry export: --filter: %s\n", reason.c_str());
    return 2;
  }
  auto store = open_for_reading(cfg, "ferry export");
  if (!store)
    return 1;
  auto now = unix_now();
  uint64_t remaining = f.limit.value_or(UINT64_MAX);
  std::optional<store::scan_position> resume;
  bool more = true;
  std::string out;
  uint64_t exported = 0;
  // The store's estimate is the total when there is no filter to narrow it.
  auto expected = filter_json == "{}" ? store->approximate_event_count()
                                      : uint64_t{0};
  progress_line progress{"exported"};
  while (more && remaining > 0) {
    out.clear();
    more = store->scan(f, now, resume, std::min<uint64_t>(remaining, 4096),
                          [&](std::string_view json,
                              const store::scan_position& pos) {
                            out += json;
                            out += '\n';
                            resume = pos;
                            --remaining;
                            ++exported;
                            return true;
                          });
    progress.update(exported, exported, expected);
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

} // namespace ferry::app
