// `ferry sync URL`: one NIP-77 reconciliation of the local store against a
// relay, then the transfers the direction asks for (actors/sync/
// one_shot_sync.cpp does the work). A node that holds the store is handed
// a sync that fetches: only it may write there.

#include "actors/runtime/logging.hpp"
#include "actors/runtime/node.hpp"
#include "actors/sync/one_shot_sync.hpp"
#include "app/commands.hpp"
#include "app/progress.hpp"
#include "messages/error.hpp"
#include "messages/type_ids.hpp"
#include "net/simple_client.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

namespace ferry::app {

namespace {

/// How long we wait for a node running the sync we handed it.
constexpr auto handed_sync_timeout = std::chrono::hours{6};

/// Where to reach the admin API on `address` from this machine.
std::string local_host_for(const std::string& address) {
  if (address == "0.0.0.0" || address.empty())
    return "127.0.0.1";
  if (address == "::")
    return "::1";
  return address;
}

/// How often a handed-over sync's progress is read while it runs.
constexpr auto progress_poll_interval = std::chrono::seconds{1};

/// A fresh name for a handed-over sync's progress.
std::string new_progress_id() {
  std::random_device device;
  std::string id;
  for (int i = 0; i < 4; ++i) {
    char part[9];
    std::snprintf(part, sizeof(part), "%08x", device());
    id += part;
  }
  return id;
}

/// While the node runs a sync handed to it, reads its progress (`GET
/// /api/v1/sync/run/ID`) about every second and draws the line a local sync
/// draws; does nothing when the line is not shown (not a terminal).
class progress_poller {
public:
  progress_poller(progress_line& line, std::string host, uint16_t port,
                  std::map<std::string, std::string> auth, std::string id)
      : line_(line) {
    if (!line.shown())
      return;
    thread_ = std::thread{[this, host = std::move(host), port,
                           auth = std::move(auth), id = std::move(id)] {
      std::unique_lock<std::mutex> lock{mtx_};
      while (!cv_.wait_for(lock, progress_poll_interval,
                           [this] { return finished_; })) {
        lock.unlock();
        draw(net::simple_http_request(host, port, "GET",
                                      "/api/v1/sync/run/" + id, auth, {},
                                      progress_poll_interval));
        lock.lock();
      }
    }};
  }

  progress_poller(const progress_poller&) = delete;
  progress_poller& operator=(const progress_poller&) = delete;

  ~progress_poller() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      finished_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }

private:
  /// An answer that is not the progress (a node that does not keep it, one
  /// that stops) draws nothing: the final output comes all the same.
  void draw(const net::http_result& res) {
    if (!res.error.empty() || res.response.status != 200)
      return;
    boost::json::error_code ec;
    auto body = boost::json::parse(res.response.body, ec);
    auto* progress = ec ? nullptr : body.if_object();
    if (progress == nullptr)
      return;
    auto count = [progress](const char* key) -> uint64_t {
      auto* x = progress->if_contains(key);
      return x && x->is_number() ? x->to_number<uint64_t>() : 0;
    };
    line_.update(count("events"), count("done"), count("total"));
  }

  progress_line& line_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::thread thread_;
};

/// Hands the sync to the node that holds the store (POST /api/v1/sync/run)
/// and prints what it reports. @returns its exit code, or 1.
int hand_to_node(const config::config& cfg, sync_options opts) {
  const auto& admin = cfg.admin;
  // What keeps us from reaching the node's admin API, if anything.
  std::string obstacle;
  if (admin.token.empty())
    obstacle = "that needs [admin] token";
  else if (admin.port == 0)
    obstacle = "its [admin] port is 0 (any free port), so it cannot be found";
  if (!obstacle.empty()) {
    std::fprintf(stderr,
                 "ferry sync: a node holds %s, and fetching writes to it: the "
                 "node runs the sync when asked through its admin API, but %s "
                 "in %s; set it (or stop the node first). --dry-run and --dir "
                 "up only read, and run beside it\n",
                 cfg.store.path.c_str(), obstacle.c_str(),
                 cfg.source.empty() ? "ferry.toml" : cfg.source.c_str());
    return 1;
  }
  std::fprintf(stderr, "ferry sync: a node holds %s; it runs the sync\n",
               cfg.store.path.c_str());
  auto host = local_host_for(admin.address);
  std::map<std::string, std::string> auth{
    {"Authorization", "Bearer " + admin.token}};
  opts.progress_id = new_progress_id();
  net::http_result res;
  {
    progress_line line{"synced"};
    progress_poller poller{line, host, admin.port, auth, opts.progress_id};
    auto headers = auth;
    headers.emplace("Content-Type", "application/json");
    res = net::simple_http_request(host, admin.port, "POST",
                                   "/api/v1/sync/run", headers, to_json(opts),
                                   handed_sync_timeout);
  }
  if (!res.error.empty()) {
    std::fprintf(stderr,
                 "ferry sync: the node's admin API at %s:%u did not answer: "
                 "%s\n",
                 host.c_str(), static_cast<unsigned>(admin.port),
                 res.error.c_str());
    return 1;
  }
  boost::json::error_code ec;
  auto body = boost::json::parse(res.response.body, ec);
  const boost::json::object* answer = ec ? nullptr : body.if_object();
  if (res.response.status != 200 || answer == nullptr) {
    std::string why = res.response.body;
    if (answer != nullptr)
      if (auto* error = answer->if_contains("error"); error && error->is_object())
        if (auto* message = error->as_object().if_contains("message");
            message && message->is_string())
          why = std::string{message->as_string()};
    // 4xx: it did not take the job; otherwise it took it and could not end
    // it (a node that stops answers 503).
    const auto status = res.response.status;
    std::fprintf(stderr, "ferry sync: the node %s (HTTP %u): %s\n",
                 status >= 400 && status < 500 ? "refused the sync"
                                               : "did not finish the sync",
                 static_cast<unsigned>(status), why.c_str());
    return 1;
  }
  auto text = [answer](const char* key) {
    auto* x = answer->if_contains(key);
    return x && x->is_string() ? std::string{x->as_string()} : std::string{};
  };
  auto err = text("stderr");
  auto out = text("stdout");
  std::fwrite(err.data(), 1, err.size(), stderr);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  auto* code = answer->if_contains("exit_code");
  return code && code->is_int64() ? static_cast<int>(code->as_int64()) : 1;
}

} // namespace

int run_sync(const config::config& cfg, const sync_options& opts) {
  log::init(cfg.log.level == "info" ? "warn" : cfg.log.level);
  nostr::filter f;
  if (auto wrong = check_sync_options(opts, f)) {
    auto where = wrong.option.empty() ? std::string{} : wrong.option + ": ";
    std::fprintf(stderr, "ferry sync: %s%s\n", where.c_str(),
                 wrong.message.c_str());
    return 2;
  }
  std::unique_ptr<store::event_store> store;
  if (opts.writes()) {
    // The sync is the store's only user while it runs and reads the index
    // families once, at its start (the NIP-77 set): tuned as an import is.
    auto opened = open_unless_held(cfg, /*bulk_import=*/true);
    if (!opened) {
      if (held_by_another_process(opened.error()))
        return hand_to_node(cfg, opts);
      std::fprintf(stderr, "ferry sync: %s\n", render(opened.error()).c_str());
      return 1;
    }
    store = std::move(*opened);
  } else {
    store = open_for_reading(cfg, "ferry sync");
    if (!store)
      return 1;
  }

  caf::actor_system_config sys_cfg;
  add_message_types(sys_cfg);
  tune_scheduler(sys_cfg);
  caf::actor_system sys{sys_cfg};
  std::optional<ingest_pipeline> pipeline;
  if (opts.writes())
    pipeline = spawn_ingest_pipeline(sys, *store, cfg.ingest, cfg.policy);
  int status = 1;
  {
    progress_line progress{"synced"};
    one_shot_report report;
    report.progress = [&progress](uint64_t events, uint64_t done,
                                  uint64_t total) {
      progress.update(events, done, total);
    };
    status = run_one_shot_sync(sys, *store, opts, f,
                               cfg.relay.negentropy.max_items,
                               pipeline ? pipeline->verifiers
                                        : std::vector<verifier_actor>{},
                               report);
  }
  if (pipeline)
    stop_and_wait(sys, pipeline->actors());
  if (opts.writes()) {
    if (auto failure = store->flush()) {
      std::fprintf(stderr, "ferry sync: %s\n", render(failure).c_str());
      return 1;
    }
  }
  return status;
}

} // namespace ferry::app
