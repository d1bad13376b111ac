// Crash-loop suite: node B syncs with node A (both real `ferry node`
// processes) while publishers keep sending both of them newly signed events,
// a quarter of them back-dated by up to three minutes (a real relay accepts
// those). B is killed with SIGKILL at random points and restarted, cycle
// after cycle; then the publishers stop, B finishes, and the events matching
// B's filters must be the same on both sides (down: B holds exactly A's; up:
// A holds exactly B's own; both: the same set on each), read from both
// stores with `ferry export` once both nodes stopped.
//
// Kill points, drawn per cycle from a seeded PRNG:
//   early    a random real delay of 0-300 ms after B's relay port is up
//            (NIP-11, connect, NEG-OPEN);
//   catchup  B's `received` reached a random count during its catch-up (REQ
//            paging: A serves 100 events per REQ; negentropy: fetches by id);
//   live     B is caught up and received (up: sent) a few more live events;
//   up       B's up stream sent a random number of events.
// Progress is read from B's admin API (`/api/v1/sync/servers/ID/stats`),
// polled every 2 ms. After each kill B stays down for a random 0-500 ms
// while A keeps receiving events.
//
// FERRY_CRASH_SEED=N replays a run (each case prints its seed);
// FERRY_CRASH_CYCLES=N sets the cycles per case (default 4).

#include "tests/integration/sync_helpers.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <sstream>

using namespace ferry;
using namespace ferry::sync_test;
using namespace std::chrono_literals;

namespace {

uint64_t env_number(const char* name, uint64_t fallback) {
  auto* text = std::getenv(name);
  if (!text || !*text)
    return fallback;
  return std::stoull(text);
}

/// The run's seed: FERRY_CRASH_SEED, or a fresh one.
uint64_t run_seed() {
  static const uint64_t seed
    = env_number("FERRY_CRASH_SEED", std::random_device{}());
  return seed;
}

/// Publishes a newly signed kind-1 event to one relay every `interval` until
/// stopped, reconnecting when the relay goes away (B is killed). A quarter
/// of the events are back-dated by up to three minutes.
class publisher {
public:
  publisher(uint16_t port, nostr::keypair keys, uint64_t seed, std::string tag,
            std::chrono::milliseconds interval = 50ms)
      : port_(port), keys_(keys), rng_(seed), tag_(std::move(tag)),
        interval_(interval) {
    thread_ = std::thread([this] { run(); });
  }

  ~publisher() {
    stop();
  }

  void stop() {
    stopping_ = true;
    if (thread_.joinable())
      thread_.join();
  }

  /// Events the relay answered `OK true`.
  uint64_t accepted() const {
    return accepted_;
  }

private:
  void run() {
    std::unique_ptr<net::simple_ws_client> client;
    uint64_t n = 0;
    while (!stopping_) {
      if (!client) {
        client = std::make_unique<net::simple_ws_client>();
        if (!client->connect("127.0.0.1", port_, "/", 1s).empty()) {
          client.reset();
          std::this_thread::sleep_for(20ms);
          continue;
        }
      }
      auto back = rng_() % 4 == 0 ? static_cast<int64_t>(rng_() % 180) : 0;
      auto ev = test::make_note(keys_, test::unix_now() - back,
                                tag_ + " " + std::to_string(n++));
      std::optional<std::string> ok;
      if (client->send(event_frame(ev)).empty())
        ok = test::receive_until(*client, "[\"OK\"", nullptr, 2s);
      if (!ok) {
        client.reset();
        continue;
      }
      if (ok->find(",true,") != std::string::npos)
        ++accepted_;
      std::this_thread::sleep_for(interval_);
    }
  }

  uint16_t port_;
  nostr::keypair keys_;
  std::mt19937_64 rng_;
  std::string tag_;
  std::chrono::milliseconds interval_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> accepted_{0};
  std::thread thread_;
};

/// The ids `ferry export` reads from a stopped node's store for `filter`.
std::set<std::string> exported_ids(const std::string& config,
                                   const std::string& filter) {
  test::ferry_process exported{{"export", "--config", config, "--filter", filter}};
  auto status = exported.wait();
  INFO(exported.output());
  REQUIRE(status == 0);
  std::set<std::string> ids;
  std::istringstream lines{exported.output()};
  for (std::string line; std::getline(lines, line);) {
    auto pos = line.find("\"id\":\"");
    if (line.rfind("{", 0) == 0 && pos != std::string::npos)
      ids.insert(line.substr(pos + 6, 64));
  }
  return ids;
}

std::string authors_filter(const nostr::keypair& keys, uint32_t kind) {
  return "{\"kinds\":[" + std::to_string(kind) + "],\"authors\":[\""
         + nostr::to_hex(keys.pubkey) + "\"]}";
}

/// What one side lacks of the other, for the failure message.
std::string difference(const std::set<std::string>& want,
                       const std::set<std::string>& got) {
  std::vector<std::string> missing;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  std::vector<std::string> extra;
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(),
                      std::back_inserter(extra));
  std::ostringstream out;
  out << want.size() << " wanted, " << got.size() << " held, "
      << missing.size() << " missing, " << extra.size() << " extra";
  for (size_t i = 0; i < missing.size() && i < 5; ++i)
    out << "\n  missing " << missing[i];
  for (size_t i = 0; i < extra.size() && i < 5; ++i)
    out << "\n  extra " << extra[i];
  return out.str();
}

enum class kill_point { early, catchup, live, up };

const char* to_string(kill_point x) {
  switch (x) {
    case kill_point::early:
      return "early";
    case kill_point::catchup:
      return "catchup";
    case kill_point::live:
      return "live";
    case kill_point::up:
      return "up";
  }
  return "?";
}

/// `reconcile_when_empty` false: B, holding nothing its filters match at
/// first (direction down), pages A instead of reconciling until a cycle
/// stored something; a kill mid-page leaves a store the next cycle
/// reconciles. `a_max_subscriptions` 1: A holds one subscription per
/// connection, so B's REQ catch-up closes its live tail to page and opens it
/// again after (a kill may come in between).
void crash_loop(const std::string& mode, const std::string& direction,
                uint64_t case_number, bool reconcile_when_empty = true,
                int a_max_subscriptions = 0) {
  const bool down = direction != "up";
  const bool up = direction != "down";
  const auto seed = run_seed();
  const auto cycles = env_number("FERRY_CRASH_CYCLES", 4);
  std::mt19937_64 rng{seed * 1000 + case_number};
  std::cout << "crash loop " << mode << "/" << direction << ": seed " << seed
            << ", " << cycles << " cycles (FERRY_CRASH_SEED=" << seed
            << " replays)" << std::endl;
  std::ostringstream journal;
  journal << "seed " << seed << ", mode " << mode << ", direction "
          << direction << "\n";

  test::temp_dir dir_a, dir_b;
  auto alice = nostr::generate_keypair(); // A's own events
  auto bob = nostr::generate_keypair();   // B's own events
  auto old = test::unix_now() - 20'000;
  // History older than the overlap window on each side, plus kind-7 events
  // that B's filters (kind 1) leave where they are.
  auto a_history = make_events(alice, down ? 2000 : 200, old, 1, "a old");
  auto a_reactions = make_events(alice, 100, old, 7, "a +");
  auto b_history = make_events(bob, up ? 1500 : 0, old - 5000, 1, "b old");
  auto b_reactions = make_events(bob, 100, old - 5000, 7, "b +");

  test::node_settings a_settings;
  a_settings.relay_port = test::free_port();
  a_settings.relay_extra = "[relay.limits]\nmax_limit = 100\ndefault_limit = 100\n";
  if (a_max_subscriptions > 0)
    a_settings.relay_extra += "max_subscriptions = " + std::to_string(a_max_subscriptions) + "\n";
  auto a_cfg = test::node_config_with(dir_a, a_settings);
  auto a_events = a_history;
  a_events.insert(a_events.end(), a_reactions.begin(), a_reactions.end());
  import_into(dir_a, a_cfg, a_events);

  server_options o;
  o.mode = mode;
  o.direction = direction;
  o.reconcile_when_empty = reconcile_when_empty;
  test::node_settings b_settings;
  b_settings.relay_port = test::free_port();
  b_settings.admin_extra = std::string{"token = \""} + admin_token + "\"\n";
  b_settings.extra = sync_server_toml(a_settings.relay_port, o);
  auto b_cfg = test::node_config_with(dir_b, b_settings);
  auto b_events = b_history;
  b_events.insert(b_events.end(), b_reactions.begin(), b_reactions.end());
  import_into(dir_b, b_cfg, b_events);

  node a{a_cfg};
  publisher to_a{a.port, alice, rng(), "a live"};
  std::optional<publisher> to_b;
  if (up)
    to_b.emplace(b_settings.relay_port, bob, rng(), "b live");

  // B starts empty of what it syncs, so the first of its processes to
  // start a catch-up pages (and logs so) before it stores anything.
  constexpr const char* paged_line = "pages the remote with REQ instead of reconciling";
  bool paged_seen = false;
  constexpr const char* yield_line = "the live tail closes while the catch-up pages";
  bool yield_seen = false;
  std::vector<kill_point> points{kill_point::early, kill_point::live};
  if (down)
    points.push_back(kill_point::catchup);
  if (up)
    points.push_back(kill_point::up);
  for (uint64_t cycle = 0; cycle < cycles; ++cycle) {
    node b{b_cfg};
    auto b_admin = b.admin_port();
    auto point = points[rng() % points.size()];
    auto progress = [&] {
      return stat_of(b_admin, "node-a", down ? "received" : "sent");
    };
    auto caught_up = [&] {
      return stat_flag(b_admin, "node-a", "catchup_complete");
    };
    int64_t target = 0;
    bool reached = true;
    switch (point) {
      case kill_point::early:
        target = static_cast<int64_t>(rng() % 300);
        std::this_thread::sleep_for(std::chrono::milliseconds{target});
        break;
      case kill_point::catchup:
        target = 1 + static_cast<int64_t>(rng() % 400);
        reached = test::poll_until(
          [&] { return progress() >= target || caught_up(); }, 30s, 2ms);
        break;
      case kill_point::live: {
        reached = test::poll_until(caught_up, 30s, 2ms);
        target = progress() + 1 + static_cast<int64_t>(rng() % 10);
        reached = reached
                  && test::poll_until([&] { return progress() >= target; },
                                      20s, 2ms);
        break;
      }
      case kill_point::up:
        target = 1 + static_cast<int64_t>(rng() % 1500);
        reached = test::poll_until(
          [&] {
            return stat_of(b_admin, "node-a", "sent") >= target || caught_up();
          },
          30s, 2ms);
        break;
    }
    journal << "cycle " << cycle << ": kill at " << to_string(point) << " "
            << target << (reached ? "" : " (not reached)") << ", received "
            << stat_of(b_admin, "node-a", "received") << ", sent "
            << stat_of(b_admin, "node-a", "sent") << ", caught up "
            << caught_up() << "\n";
    b.process.kill(SIGKILL);
    paged_seen = paged_seen || b.process.output().find(paged_line) != std::string::npos;
    yield_seen = yield_seen || b.process.output().find(yield_line) != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds{rng() % 500});
  }

  node b{b_cfg};
  auto b_admin = b.admin_port();
  to_a.stop();
  if (to_b)
    to_b->stop();
  journal << "published: " << to_a.accepted() << " to A, "
          << (to_b ? to_b->accepted() : 0) << " to B\n";
  INFO(journal.str());
  std::cout << journal.str();
  // Settled when the counts agree; the id sets are compared below.
  auto mirrored = down ? std::string{R"({"kinds":[1]})"} : authors_filter(bob, 1);
  bool settled = test::poll_until(
    [&] {
      auto on_b = count_of(b.port, mirrored);
      return on_b >= 0 && on_b == count_of(a.port, mirrored)
             && (!up || stat_of(b_admin, "node-a", "up_in_flight") == 0);
    },
    60s);
  if (!settled)
    FAIL_CHECK("B and A never agreed on " << mirrored << ": B "
                                          << count_of(b.port, mirrored) << ", A "
                                          << count_of(a.port, mirrored) << "\n"
                                          << sync_reports(b_admin, "node-a")
                                          << logs(&a.process, &b.process));
  paged_seen = paged_seen || b.process.output().find(paged_line) != std::string::npos;
  yield_seen = yield_seen || b.process.output().find(yield_line) != std::string::npos;
  // Only a catch-up into a store holding nothing it syncs pages.
  CHECK(paged_seen == (!reconcile_when_empty && mode == "negentropy" && !up));
  // The first catch-up through A's history needs pages beside the live
  // tail: only a remote holding one subscription closes it for them.
  CHECK(yield_seen == (a_max_subscriptions == 1));
  REQUIRE(b.process.kill(SIGTERM) == 0);
  REQUIRE(a.process.kill(SIGTERM) == 0);

  auto a_ids = exported_ids(a_cfg, mirrored);
  auto b_ids = exported_ids(b_cfg, mirrored);
  if (a_ids != b_ids)
    FAIL_CHECK("B against A, " << mirrored << ": " << difference(a_ids, b_ids));
  // Kind 7 is outside the filters: it never crosses.
  CHECK(exported_ids(b_cfg, R"({"kinds":[7]})") == id_set(b_reactions));
  CHECK(exported_ids(a_cfg, R"({"kinds":[7]})") == id_set(a_reactions));
  if (!down)
    CHECK(exported_ids(b_cfg, authors_filter(alice, 1)).empty());
  if (!up)
    CHECK(exported_ids(a_cfg, authors_filter(bob, 1)).empty());
}

} // namespace

TEST_CASE("crash loop: req_stream down", "[integration][sync][crash]") {
  crash_loop("req_stream", "down", 1);
}

TEST_CASE("crash loop: req_stream up", "[integration][sync][crash]") {
  crash_loop("req_stream", "up", 2);
}

TEST_CASE("crash loop: req_stream both", "[integration][sync][crash]") {
  crash_loop("req_stream", "both", 3);
}

TEST_CASE("crash loop: negentropy down", "[integration][sync][crash]") {
  crash_loop("negentropy", "down", 4);
}

TEST_CASE("crash loop: negentropy down into an empty store, paged first",
          "[integration][sync][crash]") {
  crash_loop("negentropy", "down", 7, false);
}

TEST_CASE("crash loop: req_stream down from a remote that holds one subscription",
          "[integration][sync][crash]") {
  crash_loop("req_stream", "down", 8, true, 1);
}

TEST_CASE("crash loop: negentropy up", "[integration][sync][crash]") {
  crash_loop("negentropy", "up", 5);
}

TEST_CASE("crash loop: negentropy both", "[integration][sync][crash]") {
  crash_loop("negentropy", "both", 6);
}
