// The GRASP node killed with SIGKILL at random points while its relays keep
// receiving repository events: after every restart it must end up with
// exactly the relays' events of its repositories.
//
// FERRY_CRASH_SEED fixes the seed (printed on every run), FERRY_CRASH_CYCLES
// the number of kill/restart cycles (3 by default).

#include "tests/integration/grasp_helpers.hpp"

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

using namespace ferry;
using namespace ferry::grasp_test;
using namespace std::chrono_literals;

namespace {

uint64_t env_number(const char* name, uint64_t fallback) {
  auto* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::stoull(text) : fallback;
}

/// A client that stays connected to one relay and publishes on it.
class publisher {
public:
  explicit publisher(uint16_t port) : port_(port) {
  }

  /// @returns whether the relay accepted `ev`.
  bool publish(const nostr::event& ev) {
    if (!client_.is_open() && !client_.connect("127.0.0.1", port_).empty())
      return false;
    if (!client_.send("[\"EVENT\"," + nostr::to_json(ev) + "]").empty())
      return false;
    auto ok = test::receive_until(client_, "[\"OK\"");
    return ok && ok->find(",true,") != std::string::npos;
  }

private:
  uint16_t port_;
  net::simple_ws_client client_;
};

/// Publishes repository events to the relays until stopped: patches and
/// issues (roots) on either relay, comments and replies to any root so far
/// on either relay (so some follow a root known only from the other one),
/// a quarter of them back-dated by up to 10 minutes.
class traffic {
public:
  traffic(std::vector<uint16_t> ports, std::string repo, uint64_t seed)
    : repo_(std::move(repo)), random_(seed) {
    for (auto port : ports)
      relays_.push_back(std::make_unique<publisher>(port));
    thread_ = std::thread([this] { run(); });
  }

  ~traffic() {
    stop();
  }

  void stop() {
    running_ = false;
    if (thread_.joinable())
      thread_.join();
  }

  /// Events published, and those the relays refused (must stay 0).
  size_t published() const {
    return published_;
  }

  size_t refused() const {
    return refused_;
  }

private:
  void run() {
    std::vector<std::string> roots;
    while (running_) {
      auto& relay = *relays_[random_() % relays_.size()];
      auto age = random_() % 4 == 0 ? static_cast<int64_t>(random_() % 600) : 0;
      auto& keys = authors_[random_() % authors_.size()];
      nostr::event ev;
      auto what = roots.empty() ? 0 : random_() % 4;
      if (what == 0)
        ev = signed_event(keys, random_() % 2 ? grasp::kind_patch
                                               : grasp::kind_issue,
                          {{"a", repo_}}, age);
      else if (what == 1)
        ev = signed_event(keys, 1111,
                          {{"E", roots[random_() % roots.size()]},
                           {"A", repo_}, {"K", "1621"}},
                          age);
      else
        ev = signed_event(keys, 1, {{"e", roots[random_() % roots.size()]}},
                          age);
      if (!relay.publish(ev)) {
        ++refused_;
        continue;
      }
      ++published_;
      if (grasp::is_root_kind(ev.kind))
        roots.push_back(nostr::to_hex(ev.id));
      std::this_thread::sleep_for(std::chrono::milliseconds{10 + random_() % 40});
    }
  }

  std::string repo_;
  std::mt19937_64 random_;
  std::vector<std::unique_ptr<publisher>> relays_;
  std::vector<nostr::keypair> authors_{nostr::generate_keypair(),
                                       nostr::generate_keypair()};
  std::atomic<bool> running_{true};
  std::atomic<size_t> published_{0};
  std::atomic<size_t> refused_{0};
  std::thread thread_;
};

/// The repository's events a relay holds: tagged with it (`a`/`A`), or
/// replying to one of its roots (`e`/`E`).
std::optional<std::set<std::string>> repo_ids(uint16_t port,
                                              const std::string& repo,
                                              const std::set<std::string>& roots) {
  auto tagged = stored_ids(port, "{\"#a\":[\"" + repo + "\"]},{\"#A\":[\""
                                   + repo + "\"]}");
  if (!tagged || roots.empty())
    return tagged;
  std::string list;
  for (const auto& root : roots)
    list += (list.empty() ? "\"" : ",\"") + root + "\"";
  auto replies = stored_ids(port, "{\"#e\":[" + list + "]},{\"#E\":[" + list
                                    + "]}");
  if (!replies)
    return std::nullopt;
  tagged->insert(replies->begin(), replies->end());
  return tagged;
}

/// The root ids (patches, issues) of the repository a relay holds.
std::set<std::string> repo_roots(uint16_t port, const std::string& repo) {
  auto ids = stored_ids(port, "{\"kinds\":[1617,1621],\"#a\":[\"" + repo
                                + "\"]}");
  REQUIRE(ids);
  return *ids;
}

} // namespace

TEST_CASE("a grasp node killed at random points ends up with its relays' "
          "repository events",
          "[integration][grasp][crash]") {
  auto seed = env_number("FERRY_CRASH_SEED", std::random_device{}());
  auto cycles = env_number("FERRY_CRASH_CYCLES", 3);
  std::cout << "grasp crash test: FERRY_CRASH_SEED=" << seed
            << " FERRY_CRASH_CYCLES=" << cycles << std::endl;
  INFO("FERRY_CRASH_SEED=" << seed);
  std::mt19937_64 random{seed};
  test::temp_dir dir_s;
  remote_relays remotes;
  auto s_port = test::free_port();
  // The overlap covers the back-dating of events published while the node
  // is down (a catch-up asks from last_connected minus the overlap); those
  // published while it runs reach it on the live tails, which have no since.
  auto s_cfg = grasp_node_config(dir_s, s_port,
                                 "overlap_window_seconds = 900\n"
                                 "resync_after_seconds = 1800\n");
  std::optional<test::ferry_process> s;
  auto start_s = [&] {
    s.emplace(std::vector<std::string>{"node", "--config", s_cfg});
    REQUIRE(s->wait_for_port() == s_port);
  };
  auto logs = [&] {
    return "--- S ---\n" + test::output_tail(*s, 80) + remotes.logs();
  };
  start_s();
  auto owner = nostr::generate_keypair();
  auto repo = "30617:" + nostr::to_hex(owner.pubkey) + ":crash";
  auto s_url = "ws://127.0.0.1:" + std::to_string(s_port);
  publish(s_port,
          signed_event(owner, grasp::kind_announcement,
                       {{"d", "crash"},
                        {"relays", s_url, remotes.url1, remotes.url2}}));
  traffic events{{remotes.port1, remotes.port2}, repo, random()};
  for (uint64_t cycle = 1; cycle <= cycles; ++cycle) {
    // The kill point: anywhere from the start-up (rebuild, catch-up) to
    // well into the live phase.
    std::this_thread::sleep_for(std::chrono::milliseconds{random() % 3000});
    REQUIRE(s->kill(SIGKILL) == 128 + SIGKILL);
    // Down for a while, as the relays go on.
    std::this_thread::sleep_for(std::chrono::milliseconds{random() % 1000});
    start_s();
  }
  events.stop();
  CHECK(events.refused() == 0);
  INFO("events published: " << events.published());
  std::set<std::string> roots = repo_roots(remotes.port1, repo);
  auto more = repo_roots(remotes.port2, repo);
  roots.insert(more.begin(), more.end());
  std::set<std::string> expected;
  for (auto port : {remotes.port1, remotes.port2}) {
    auto ids = repo_ids(port, repo, roots);
    REQUIRE(ids);
    expected.insert(ids->begin(), ids->end());
  }
  std::set<std::string> held;
  auto converged = test::poll_until(
    [&] {
      auto ids = repo_ids(s_port, repo, roots);
      if (ids)
        held = std::move(*ids);
      return held == expected;
    },
    30s, 200ms);
  if (!converged) {
    std::vector<std::string> missing;
    std::set_difference(expected.begin(), expected.end(), held.begin(),
                        held.end(), std::back_inserter(missing));
    FAIL("after " << cycles << " kills (FERRY_CRASH_SEED=" << seed << ") S "
                  << "holds " << held.size() << " of the relays' "
                  << expected.size() << " events; missing e.g. "
                  << (missing.empty() ? "none (extra ones)" : missing.front())
                  << "\n"
                  << logs());
  }
  CHECK(s->kill(SIGTERM) == 0);
  CHECK(remotes.r1.kill(SIGTERM) == 0);
  CHECK(remotes.r2.kill(SIGTERM) == 0);
}
