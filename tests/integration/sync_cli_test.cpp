// `ferry sync URL` as a real process against real relays on loopback: a
// running `ferry node`, nostr-tools' negentropy in tests/interop/neg_relay.mjs,
// and relays without NIP-77. The local side is a store no node runs on,
// filled with `ferry import` and read back with `ferry export`, or a running
// node the sync is handed to (its progress readable while it runs).

#include "tests/fixtures/node_process.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <iterator>
#include <atomic>
#include <condition_variable>
#include <map>
#include <regex>
#include <set>
#include <thread>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

const std::string harness = test::source_dir() + "/tests/interop/neg_relay.mjs";

/// How one `ferry` run ended.
struct ran {
  int status = -1;
  std::string output;
  std::chrono::milliseconds took{0};
  bool killed = false;
};

/// Runs `ferry args...` to its end; kills it after `limit` (then `killed`).
ran run_ferry(std::vector<std::string> args, std::chrono::seconds limit = 60s) {
  auto start = std::chrono::steady_clock::now();
  test::ferry_process p{std::move(args)};
  std::mutex mtx;
  std::condition_variable cv;
  bool finished = false;
  bool killed = false;
  std::thread watchdog{[&] {
    std::unique_lock<std::mutex> guard{mtx};
    if (!cv.wait_for(guard, limit, [&] { return finished; })) {
      killed = true;
      ::kill(p.pid(), SIGKILL);
    }
  }};
  ran result;
  result.status = p.wait();
  {
    std::lock_guard<std::mutex> guard{mtx};
    finished = true;
  }
  cv.notify_all();
  watchdog.join();
  result.killed = killed;
  result.output = p.output();
  result.took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - start);
  return result;
}

std::string kind_filter(uint32_t kind) {
  return "{\"kinds\":[" + std::to_string(kind) + "]}";
}

/// Events of one kind split between the relay, the local store and both.
struct split {
  uint32_t kind = 1;
  std::vector<nostr::event> relay_only;
  std::vector<nostr::event> local_only;
  std::vector<nostr::event> shared;
};

/// `n` events of `kind`, `overlap` of them on both sides, the rest dealt
/// alternately to the relay and the local store. Many share a second, so
/// negentropy bounds need id prefixes.
split make_split(const nostr::keypair& keys, uint32_t kind, size_t n,
                 double overlap) {
  split s;
  s.kind = kind;
  const int64_t base = test::unix_now() - 50000;
  auto shared = static_cast<size_t>(n * overlap);
  for (size_t i = 0; i < n; ++i) {
    auto ev = test::make_note(keys, base + static_cast<int64_t>(i % 300),
                              "sync cli " + std::to_string(kind) + " "
                                + std::to_string(i),
                              kind);
    if (i < shared)
      s.shared.push_back(std::move(ev));
    else if ((i - shared) % 2 == 0)
      s.relay_only.push_back(std::move(ev));
    else
      s.local_only.push_back(std::move(ev));
  }
  return s;
}

std::set<std::string> ids(std::initializer_list<const std::vector<nostr::event>*> lists) {
  std::set<std::string> out;
  for (const auto* list : lists)
    for (const auto& ev : *list)
      out.insert(nostr::to_hex(ev.id));
  return out;
}

void append_jsonl(std::string& out, const std::vector<nostr::event>& events) {
  for (const auto& ev : events)
    out += nostr::to_json(ev) + "\n";
}

/// Imports `jsonl` into the store of `config`.
void import_into(const test::temp_dir& dir, const std::string& config,
                 const std::string& jsonl, const std::string& name) {
  auto file = dir.file(name);
  test::write_file(file, jsonl);
  auto r = run_ferry({"import", "--config", config, file});
  INFO(r.output);
  REQUIRE(r.status == 0);
}

/// Imports the events of `lists` into the store of `config`.
void import_events(const test::temp_dir& dir, const std::string& config,
                   std::initializer_list<const std::vector<nostr::event>*> lists) {
  std::string jsonl;
  for (const auto* list : lists)
    append_jsonl(jsonl, *list);
  import_into(dir, config, jsonl, "events.jsonl");
}

/// The ids of the events matching `filter` in the store of `config`.
std::set<std::string> local_ids(const std::string& config, const std::string& filter) {
  auto r = run_ferry({"export", "--config", config, "--filter", filter});
  INFO(r.output);
  REQUIRE(r.status == 0);
  std::set<std::string> out;
  static const std::regex id{"\"id\":\"([0-9a-f]{64})\""};
  for (std::sregex_iterator i{r.output.begin(), r.output.end(), id}, end; i != end; ++i)
    out.insert((*i)[1].str());
  return out;
}

/// The ids of the events of `kind` on the relay at `port` (a REQ).
std::set<std::string> relay_ids(uint16_t port, uint32_t kind) {
  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", port) == "");
  // Above the relay's default limit (500), below its max_limit (5000).
  REQUIRE(client.send("[\"REQ\",\"q\",{\"kinds\":[" + std::to_string(kind)
                      + "],\"limit\":5000}]")
          == "");
  std::vector<std::string> frames;
  REQUIRE(test::receive_until(client, "[\"EOSE\"", &frames));
  std::set<std::string> out;
  for (const auto& frame : frames) {
    if (frame.rfind("[\"EVENT\"", 0) != 0)
      continue;
    auto pos = frame.find("\"id\":\"");
    REQUIRE(pos != std::string::npos);
    out.insert(frame.substr(pos + 6, 64));
  }
  return out;
}

/// The counts of the summary line.
struct summary {
  uint64_t rounds = 0, have = 0, need = 0;
  uint64_t fetched = 0, stored = 0, duplicate = 0, rejected = 0;
  uint64_t refused_before = 0, missing = 0, refused_by_relay = 0;
  uint64_t sent = 0, accepted = 0, refused = 0;
};

summary parse_summary(const std::string& output, bool dry_run = false) {
  static const std::regex head{"(\\d+) rounds?, have (\\d+), need (\\d+)"};
  static const std::regex tail{
    "fetched (\\d+), stored (\\d+), duplicate (\\d+), rejected (\\d+), "
    "refused before (\\d+), missing (\\d+), refused by the relay (\\d+); sent (\\d+), "
    "accepted (\\d+), refused (\\d+)"};
  summary s;
  std::smatch m;
  INFO(output);
  REQUIRE(std::regex_search(output, m, head));
  s.rounds = std::stoull(m[1]);
  s.have = std::stoull(m[2]);
  s.need = std::stoull(m[3]);
  if (dry_run) {
    CHECK_FALSE(std::regex_search(output, m, tail));
    return s;
  }
  REQUIRE(std::regex_search(output, m, tail));
  uint64_t* fields[] = {&s.fetched,  &s.stored, &s.duplicate,
                        &s.rejected, &s.refused_before, &s.missing,
                        &s.refused_by_relay, &s.sent, &s.accepted, &s.refused};
  for (size_t i = 0; i < std::size(fields); ++i)
    *fields[i] = std::stoull(m[i + 1]);
  return s;
}

/// The summary of a run that must have succeeded, its have and need
/// checked against the split (`local_only` is what the local side holds
/// alone, whether imported or published to a running node).
summary checked_summary(const ran& r, const split& events, bool dry_run = false) {
  INFO(r.output);
  REQUIRE(r.status == 0);
  auto s = parse_summary(r.output, dry_run);
  CHECK(s.have == events.local_only.size());
  CHECK(s.need == events.relay_only.size());
  return s;
}

/// A node config under `dir` whose admin API `ferry sync` can reach to hand
/// it a sync: a fixed port and a token.
std::string config_with_admin(const test::temp_dir& dir, uint16_t admin_port,
                              const std::string& token) {
  auto path = dir.file("ferry.toml");
  test::write_file(path, "[relay]\naddress = \"127.0.0.1\"\nport = 0\n"
                         "[admin]\naddress = \"127.0.0.1\"\nport = "
                           + std::to_string(admin_port) + "\ntoken = \""
                           + token + "\"\n[console]\nport = 0\n"
                           + "[store]\npath = \"" + dir.file("data") + "\"\n");
  return path;
}

/// Runs `ferry sync` of one kind with the local store of `config`.
ran sync_kind(const std::string& url, const std::string& config, uint32_t kind,
              const std::string& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"sync",  url,   "--config",     config,
                                "--dir", dir,   "--filter",     kind_filter(kind),
                                "--frame-size-limit", "4096"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_ferry(std::move(args));
}

/// neg_relay.mjs holding the events of `lists`, started with `flags`, and
/// one `ferry sync` of kind 1 (direction down) from it into the store of
/// `local_cfg`.
ran sync_kind1_from_neg_relay(test::temp_dir& dir,
                              std::initializer_list<const std::vector<nostr::event>*> lists,
                              std::vector<std::string> flags, const std::string& local_cfg) {
  std::string jsonl;
  for (const auto* list : lists)
    append_jsonl(jsonl, *list);
  auto events_file = dir.file("relay.jsonl");
  test::write_file(events_file, jsonl);
  std::vector<std::string> args{harness, "--events", events_file, "--port", "0"};
  args.insert(args.end(), flags.begin(), flags.end());
  test::ferry_process relay{args, {}, "node"};
  auto port = relay.wait_for_port();
  INFO(relay.output());
  REQUIRE(port);
  return sync_kind("ws://127.0.0.1:" + std::to_string(*port), local_cfg, 1, "down");
}

/// What each side must hold after a sync in direction `dir`.
void check_sides(const split& s, const std::string& dir,
                 const std::set<std::string>& on_relay,
                 const std::set<std::string>& on_local) {
  const bool down = dir != "up";
  const bool up = dir != "down";
  auto want_relay = up ? ids({&s.relay_only, &s.shared, &s.local_only})
                       : ids({&s.relay_only, &s.shared});
  auto want_local = down ? ids({&s.relay_only, &s.shared, &s.local_only})
                         : ids({&s.local_only, &s.shared});
  CHECK(on_relay == want_relay);
  CHECK(on_local == want_local);
}

/// A relay without NIP-77 must make `ferry sync` fail with `expected` in its
/// message, quickly.
void check_refused(const std::string& url, const std::string& config,
                   const std::vector<std::string>& expected) {
  // The store is empty: without the flag it would page the relay with REQ.
  auto r = run_ferry({"sync", url, "--config", config, "--timeout", "2",
                      "--reconcile-when-empty"},
                     30s);
  INFO(r.output);
  CHECK_FALSE(r.killed);
  CHECK(r.status == 1);
  CHECK(r.took < 15s);
  for (const auto& text : expected)
    CHECK(r.output.find(text) != std::string::npos);
}

} // namespace

TEST_CASE("ferry sync reconciles a stopped store with a ferry node at 0, 1, "
          "50 and 100 percent overlap in every direction",
          "[integration][sync_cli]") {
  auto keys = nostr::generate_keypair();
  struct sync_case {
    double overlap;
    std::string dir;
    split events;
  };
  std::vector<sync_case> cases;
  uint32_t kind = 1000;
  for (std::string dir : {"down", "up", "both"})
    for (double overlap : {0.0, 0.01, 0.5, 1.0})
      cases.push_back({overlap, dir, make_split(keys, kind++, 1200, overlap)});
  // The dry run's events: half on both sides.
  auto dry = make_split(keys, kind++, 400, 0.5);

  test::temp_dir relay_dir;
  test::temp_dir local_dir;
  auto relay_cfg = test::node_config(relay_dir, {},
                                     "[relay.negentropy]\nframe_size_limit = 4096\n");
  auto local_cfg = test::node_config(local_dir);
  std::string relay_jsonl;
  std::string local_jsonl;
  for (const auto* s : {&dry}) {
    append_jsonl(relay_jsonl, s->relay_only);
    append_jsonl(relay_jsonl, s->shared);
    append_jsonl(local_jsonl, s->local_only);
    append_jsonl(local_jsonl, s->shared);
  }
  for (const auto& c : cases) {
    append_jsonl(relay_jsonl, c.events.relay_only);
    append_jsonl(relay_jsonl, c.events.shared);
    append_jsonl(local_jsonl, c.events.local_only);
    append_jsonl(local_jsonl, c.events.shared);
  }
  import_into(relay_dir, relay_cfg, relay_jsonl, "relay.jsonl");
  import_into(local_dir, local_cfg, local_jsonl, "local.jsonl");

  test::ferry_process relay{{"node", "--config", relay_cfg}};
  auto port = relay.wait_for_port();
  REQUIRE(port);
  const auto url = "ws://127.0.0.1:" + std::to_string(*port);

  // The dry run first: it must leave both sides as they were.
  {
    auto relay_before = relay_ids(*port, dry.kind);
    auto local_before = local_ids(local_cfg, kind_filter(dry.kind));
    CHECK(relay_before == ids({&dry.relay_only, &dry.shared}));
    CHECK(local_before == ids({&dry.local_only, &dry.shared}));
    auto r = sync_kind(url, local_cfg, dry.kind, "both", {"--dry-run"});
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output.find("dry run") != std::string::npos);
    auto s = parse_summary(r.output, true);
    CHECK(s.have == dry.local_only.size());
    CHECK(s.need == dry.relay_only.size());
    CHECK(relay_ids(*port, dry.kind) == relay_before);
    CHECK(local_ids(local_cfg, kind_filter(dry.kind)) == local_before);
  }

  for (const auto& c : cases) {
    CAPTURE(c.dir, c.overlap);
    auto r = sync_kind(url, local_cfg, c.events.kind, c.dir);
    INFO(r.output);
    REQUIRE(r.status == 0);
    auto s = parse_summary(r.output);
    const auto relay_only = c.events.relay_only.size();
    const auto local_only = c.events.local_only.size();
    CHECK(s.have == local_only);
    CHECK(s.need == relay_only);
    // 1,200 ids do not fit one 4,096-byte frame.
    if (c.overlap < 1.0)
      CHECK(s.rounds > 1);
    CHECK(s.missing == 0);
    CHECK(s.refused_by_relay == 0);
    CHECK(s.rejected == 0);
    CHECK(s.refused == 0);
    if (c.dir != "up") {
      CHECK(s.fetched == relay_only);
      CHECK(s.stored == relay_only);
    } else {
      CHECK(s.fetched == 0);
    }
    if (c.dir != "down") {
      CHECK(s.sent == local_only);
      CHECK(s.accepted == local_only);
    } else {
      CHECK(s.sent == 0);
    }
  }
  for (const auto& c : cases) {
    CAPTURE(c.dir, c.overlap);
    check_sides(c.events, c.dir, relay_ids(*port, c.events.kind),
                local_ids(local_cfg, kind_filter(c.events.kind)));
  }
  // A second run finds nothing left to do.
  auto again = sync_kind(url, local_cfg, cases.back().events.kind, "both");
  INFO(again.output);
  REQUIRE(again.status == 0);
  auto s = parse_summary(again.output);
  CHECK(s.have == 0);
  CHECK(s.need == 0);

  CHECK(relay.kill(SIGTERM) == 0);
}

// `ferry sync` opens its store as an import does (store_options::bulk_import:
// index memtables sorted only at their flush), and a sync can die anywhere.
// Killed with SIGKILL once it has stored part of what it fetches, it must
// leave a store that holds its own events and, after the next sync, exactly
// the relay's: nothing stored is lost, nothing is stored twice, and the
// second sync's NIP-77 set (read from the store the crash left) asks only for
// what is missing.
TEST_CASE("a ferry sync killed while it stores events leaves a store the next "
          "sync completes, with every event of both sides and none twice",
          "[integration][sync_cli]") {
  auto keys = nostr::generate_keypair();
  auto events = make_split(keys, 1500, 12000, 0.0);
  test::temp_dir relay_dir;
  test::temp_dir local_dir;
  auto relay_cfg = test::node_config(relay_dir);
  auto local_cfg = test::node_config(local_dir);
  import_events(relay_dir, relay_cfg, {&events.relay_only});
  import_events(local_dir, local_cfg, {&events.local_only});
  test::ferry_process relay{{"node", "--config", relay_cfg}};
  auto port = relay.wait_for_port();
  REQUIRE(port);
  const auto url = "ws://127.0.0.1:" + std::to_string(*port);
  const auto filter = kind_filter(events.kind);
  const auto local_only = ids({&events.local_only});

  // Frozen now and then (SIGSTOP) to read its store beside it: killed at the
  // first look that finds some of the relay's events stored, not all.
  size_t stored_before_kill = 0;
  {
    test::ferry_process sync{{"sync", url, "--config", local_cfg, "--filter", filter,
                              "--frame-size-limit", "4096"}};
    for (int look = 0; look < 400; ++look) {
      std::this_thread::sleep_for(20ms);
      sync.signal(SIGSTOP);
      auto held = local_ids(local_cfg, filter);
      REQUIRE(std::includes(held.begin(), held.end(), local_only.begin(), local_only.end()));
      stored_before_kill = held.size() - local_only.size();
      if (stored_before_kill > 0 && stored_before_kill < events.relay_only.size())
        break;
      sync.signal(SIGCONT);
    }
    INFO(sync.output());
    REQUIRE(stored_before_kill > 0);
    REQUIRE(stored_before_kill < events.relay_only.size());
    CHECK(sync.kill(SIGKILL) == 128 + SIGKILL);
  }

  auto after_crash = local_ids(local_cfg, filter);
  CHECK(after_crash.size() >= local_only.size() + stored_before_kill);
  auto r = sync_kind(url, local_cfg, events.kind, "down");
  INFO(r.output);
  REQUIRE(r.status == 0);
  auto s = parse_summary(r.output);
  CHECK(s.need == events.relay_only.size() + local_only.size() - after_crash.size());
  CHECK(s.stored == s.need);
  CHECK(s.duplicate == 0);
  CHECK(s.missing == 0);
  CHECK(local_ids(local_cfg, filter) == ids({&events.relay_only, &events.local_only}));
  CHECK(relay.kill(SIGTERM) == 0);
}

/// A local store holding the local and shared events of `splits`, and
/// neg_relay.mjs (nostr-tools' negentropy) holding the relay's and shared
/// ones, started with `flags`.
struct local_and_neg_relay {
  local_and_neg_relay(std::initializer_list<const split*> splits,
                      std::vector<std::string> flags)
    : local_cfg{test::node_config(dir)},
      relay{relay_args(splits, std::move(flags)), {}, "node"} {
    std::string local_jsonl;
    for (const auto* s : splits) {
      append_jsonl(local_jsonl, s->local_only);
      append_jsonl(local_jsonl, s->shared);
    }
    import_into(dir, local_cfg, local_jsonl, "local.jsonl");
    auto found = relay.wait_for_port();
    INFO(relay.output());
    REQUIRE(found);
    port = *found;
    url = "ws://127.0.0.1:" + std::to_string(port);
  }

  test::temp_dir dir;
  std::string local_cfg;
  test::ferry_process relay;
  uint16_t port = 0;
  std::string url;

private:
  std::vector<std::string> relay_args(std::initializer_list<const split*> splits,
                                      std::vector<std::string> flags) {
    std::string relay_jsonl;
    for (const auto* s : splits) {
      append_jsonl(relay_jsonl, s->relay_only);
      append_jsonl(relay_jsonl, s->shared);
    }
    auto events_file = dir.file("relay.jsonl");
    test::write_file(events_file, relay_jsonl);
    std::vector<std::string> args{harness, "--events", events_file, "--port", "0"};
    args.insert(args.end(), flags.begin(), flags.end());
    return args;
  }
};

TEST_CASE("ferry sync fetches from and sends to nostr-tools' negentropy",
          "[integration][sync_cli][interop]") {
  auto keys = nostr::generate_keypair();
  auto down = make_split(keys, 1, 900, 0.5);
  auto up = make_split(keys, 2, 900, 0.01);
  local_and_neg_relay scene{{&down, &up}, {"--frame-size-limit", "4096"}};
  const auto& url = scene.url;
  const auto& local_cfg = scene.local_cfg;
  const auto port = scene.port;

  auto s = checked_summary(sync_kind(url, local_cfg, down.kind, "down"), down);
  CHECK(s.stored == down.relay_only.size());
  s = checked_summary(sync_kind(url, local_cfg, up.kind, "up"), up);
  CHECK(s.accepted == up.local_only.size());

  check_sides(down, "down", relay_ids(port, down.kind),
              local_ids(local_cfg, kind_filter(down.kind)));
  check_sides(up, "up", relay_ids(port, up.kind),
              local_ids(local_cfg, kind_filter(up.kind)));
}

// Before, every needed id was kept until the reconciliation ended and only
// then fetched: a relay holding millions the store lacks had them all in
// memory, ~100 bytes each. Now a round that leaves `--fetch-backlog` or
// more waits until they are asked for, and their events come in while the
// reconciliation goes on.
TEST_CASE("ferry sync fetches what the reconciliation found missing before "
          "its next round once --fetch-backlog ids wait",
          "[integration][sync_cli][interop]") {
  auto keys = nostr::generate_keypair();
  auto down = make_split(keys, 1, 1800, 0.1);
  local_and_neg_relay scene{{&down}, {"--frame-size-limit", "4096"}};
  auto r = sync_kind(scene.url, scene.local_cfg, down.kind, "down",
                     {"--fetch-backlog", "20"});
  auto s = checked_summary(r, down);
  CHECK(s.stored == down.relay_only.size());
  CHECK(s.missing == 0);
  static const std::regex held{"\\((\\d+) rounds? held for fetches\\)"};
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, held));
  CHECK(std::stoull(m[1]) >= 1);
  CHECK_THAT(r.output, Catch::Matchers::Contains(
                         "needed ids are asked for before the next round"));
  CHECK(local_ids(scene.local_cfg, kind_filter(down.kind))
        == ids({&down.relay_only, &down.shared, &down.local_only}));
  // Without holding (the default backlog), the same counts.
  test::temp_dir other;
  auto fresh = test::node_config(other);
  std::string jsonl;
  append_jsonl(jsonl, down.local_only);
  append_jsonl(jsonl, down.shared);
  import_into(other, fresh, jsonl, "local.jsonl");
  auto plain = checked_summary(
    sync_kind(scene.url, fresh, down.kind, "down"), down);
  CHECK(plain.stored == down.relay_only.size());
}

// A relay that caps a filter's ids below our REQs' size and will not serve
// one event: the rest is fetched in smaller REQs, the one event is counted
// as refused by the relay, and the run still ends well.
TEST_CASE("ferry sync fetches in smaller REQs what the relay refused in large "
          "ones, and counts the one event it refuses alone",
          "[integration][sync_cli][interop]") {
  auto keys = nostr::generate_keypair();
  auto down = make_split(keys, 1, 300, 0.5);
  const auto not_served = nostr::to_hex(down.relay_only.at(5).id);
  local_and_neg_relay scene{{&down}, {"--max-ids", "20", "--refuse-id", not_served}};
  const auto& url = scene.url;
  const auto& local_cfg = scene.local_cfg;

  auto r = sync_kind(url, local_cfg, down.kind, "down");
  INFO(r.output);
  REQUIRE(r.status == 0);
  auto s = parse_summary(r.output);
  CHECK(s.need == down.relay_only.size());
  CHECK(s.refused_by_relay == 1);
  CHECK(s.missing == 0);
  CHECK(s.stored == down.relay_only.size() - 1);
  CHECK_THAT(r.output, Catch::Matchers::Contains(
                         "refused to serve an event it reconciled: blocked:"));
  auto want = ids({&down.relay_only, &down.shared, &down.local_only});
  want.erase(not_served);
  CHECK(local_ids(local_cfg, kind_filter(down.kind)) == want);
}

// A relay that holds three subscriptions per connection and drops a REQ
// beyond them with only a NOTICE (as relays did before NIP-01 had CLOSED):
// `ferry sync` opens four REQs by ids, so one of them is never answered.
// Its ids are asked for again once the open REQs are found quiet, and the
// run ends with every event, well before its own timeout would end it.
TEST_CASE("ferry sync fetches every event from a relay that drops REQs beyond "
          "its subscription limit",
          "[integration][sync_cli][interop]") {
  auto keys = nostr::generate_keypair();
  // 1,700 events on the relay alone: four REQs of 500 ids.
  auto down = make_split(keys, 1, 3400, 0.0);
  local_and_neg_relay scene{{&down}, {"--max-subs", "3"}};
  const auto& url = scene.url;
  const auto& local_cfg = scene.local_cfg;

  // Looks every 2 s: one finds the dropped REQ 2–4 s after the relay's last
  // answer, before the 6 s without an answer that end a run.
  auto r = sync_kind(url, local_cfg, down.kind, "down", {"--timeout", "6"});
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Matchers::Contains(
                         "1 REQs by ids had no answer for 2 s: asked again, "
                         "at most 3 open at once"));
  auto s = parse_summary(r.output);
  CHECK(s.need == down.relay_only.size());
  CHECK(s.fetched == down.relay_only.size());
  CHECK(s.stored == down.relay_only.size());
  CHECK(s.missing == 0);
  CHECK(local_ids(local_cfg, kind_filter(down.kind))
        == ids({&down.relay_only, &down.local_only}));
}

TEST_CASE("ferry sync fails clearly and quickly against relays without NIP-77",
          "[integration][sync_cli]") {
  test::temp_dir dir;
  auto local_cfg = test::node_config(dir);
  auto events_file = dir.file("relay.jsonl");
  test::write_file(events_file, "");
  const std::string hint = "support NIP-77 negentropy";

  SECTION("a ferry node with negentropy disabled") {
    test::temp_dir relay_dir;
    auto relay_cfg = test::node_config(relay_dir, {},
                                       "[relay.negentropy]\nenabled = false\n");
    test::ferry_process relay{{"node", "--config", relay_cfg}};
    auto port = relay.wait_for_port();
    REQUIRE(port);
    check_refused("ws://127.0.0.1:" + std::to_string(*port), local_cfg,
                  {"NOTICE", "unknown message type", "does not seem to", hint, "req_stream"});
  }

  for (std::string mode : {"error", "notice", "silent"}) {
    DYNAMIC_SECTION("neg_relay.mjs in " << mode << " mode") {
      test::ferry_process relay{{harness, "--events", events_file, "--port", "0",
                                 "--negentropy", mode},
                                {},
                                "node"};
      auto port = relay.wait_for_port();
      INFO(relay.output());
      REQUIRE(port);
      const auto url = "ws://127.0.0.1:" + std::to_string(*port);
      if (mode == "error")
        check_refused(url, local_cfg,
                      {"NEG-ERR", "blocked: negentropy is disabled", hint, "req_stream"});
      else if (mode == "notice")
        check_refused(url, local_cfg, {"NOTICE", hint, "req_stream"});
      else
        check_refused(url, local_cfg, {"no answer to NEG-OPEN", "within 2 s", hint, "req_stream"});
    }
  }
}

TEST_CASE("ferry sync into a store holding nothing of its filter pages the relay "
          "with REQ, NIP-77 or not, and reconciles the next time",
          "[integration][sync_cli]") {
  auto keys = nostr::generate_keypair();
  // Five events a second, so pages end inside a second; kind 7 is outside
  // the filter.
  auto notes = make_split(keys, 1, 1500, 1.0).shared;
  auto others = make_split(keys, 7, 20, 1.0).shared;
  const bool negentropy = GENERATE(true, false);
  INFO("relay negentropy " << negentropy);
  test::temp_dir relay_dir;
  test::temp_dir local_dir;
  auto relay_cfg = test::node_config(
    relay_dir, {}, negentropy ? "" : "[relay.negentropy]\nenabled = false\n");
  auto local_cfg = test::node_config(local_dir);
  import_events(relay_dir, relay_cfg, {&notes, &others});
  test::ferry_process relay{{"node", "--config", relay_cfg}};
  auto port = relay.wait_for_port();
  REQUIRE(port);
  const auto url = "ws://127.0.0.1:" + std::to_string(*port);

  auto r = sync_kind(url, local_cfg, 1, "both");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("the store holds nothing the filter matches: pages " + url
                      + " with REQ instead of reconciling")
        != std::string::npos);
  std::smatch m;
  static const std::regex paged{"\\(both\\): paged in (\\d+) REQs \\(nothing held to "
                                "reconcile\\); fetched (\\d+), stored (\\d+)"};
  REQUIRE(std::regex_search(r.output, m, paged));
  // The whole kind in one page, its oldest second again, then an empty page.
  CHECK(std::stoull(m[1]) == 3);
  CHECK(std::stoull(m[3]) == notes.size());
  CHECK(std::stoull(m[2]) >= notes.size());
  CHECK(r.output.find("round") == std::string::npos);
  CHECK(local_ids(local_cfg, kind_filter(1)) == ids({&notes}));
  CHECK(local_ids(local_cfg, kind_filter(7)).empty());

  if (negentropy) {
    // Now the store holds the kind: the next sync reconciles, and finds
    // nothing to move.
    auto again = sync_kind(url, local_cfg, 1, "both");
    INFO(again.output);
    REQUIRE(again.status == 0);
    auto s = parse_summary(again.output);
    CHECK(s.have == 0);
    CHECK(s.need == 0);
    CHECK(s.rounds >= 1);
    CHECK(again.output.find("paged") == std::string::npos);
  }
}

TEST_CASE("ferry sync pages within a relay's NIP-11 max_limit, and says which "
          "second held more than it serves",
          "[integration][sync_cli]") {
  auto keys = nostr::generate_keypair();
  const int64_t crowded = test::unix_now() - 10000;
  std::vector<nostr::event> spread;
  std::vector<nostr::event> second;
  for (size_t i = 0; i < 600; ++i)
    spread.push_back(test::make_note(keys, crowded - 1 - static_cast<int64_t>(i / 3),
                                     "spread " + std::to_string(i), 1));
  for (size_t i = 0; i < 300; ++i)
    second.push_back(test::make_note(keys, crowded, "crowded " + std::to_string(i), 1));
  test::temp_dir dir;
  auto local_cfg = test::node_config(dir);
  auto r = sync_kind1_from_neg_relay(dir, {&spread, &second},
                                     {"--max-limit", "200", "--advertise-limits"}, local_cfg);
  INFO(r.output);
  CHECK(r.status == 0);
  // Pages of 200: the second's first page was full, so that second alone
  // was asked for, and the relay serves no more of it than 200.
  CHECK(r.output.find("(200 events a page)") != std::string::npos);
  CHECK(r.output.find("the filter matches more than 200 events at " + std::to_string(crowded)
                      + ": the relay serves no more of that second")
        != std::string::npos);
  auto local = local_ids(local_cfg, kind_filter(1));
  auto all_spread = ids({&spread});
  CHECK(std::includes(local.begin(), local.end(), all_spread.begin(), all_spread.end()));
  auto of_second = ids({&second});
  CHECK(std::count_if(of_second.begin(), of_second.end(),
                      [&](const std::string& id) { return local.count(id) > 0; })
        == 200);
  CHECK(local.size() == 800);
}

TEST_CASE("ferry sync paging a relay that ignores until ends, and stores only "
          "what its pages asked for",
          "[integration][sync_cli]") {
  auto keys = nostr::generate_keypair();
  auto notes = make_split(keys, 1, 300, 1.0).shared;
  test::temp_dir dir;
  auto local_cfg = test::node_config(dir);
  auto r = sync_kind1_from_neg_relay(dir, {&notes}, {"--ignore-until"}, local_cfg);
  INFO(r.output);
  CHECK(r.status == 0);
  // The whole kind in one page, its oldest second again (the relay sends it
  // all, one event is asked for), then nothing the page asked for.
  std::smatch m;
  static const std::regex paged{"paged in (\\d+) REQs .*; fetched (\\d+), stored (\\d+)"};
  REQUIRE(std::regex_search(r.output, m, paged));
  CHECK(m[1] == "3");
  CHECK(m[2] == "301");
  CHECK(m[3] == "300");
  CHECK(local_ids(local_cfg, kind_filter(1)) == ids({&notes}));
}

TEST_CASE("ferry sync beside a running node: a dry run and an upload read "
          "its store, its newest events included, and a fetch is handed to "
          "the node",
          "[integration][sync_cli]") {
  auto keys = nostr::generate_keypair();
  auto events = make_split(keys, 1, 300, 0.5);
  test::temp_dir relay_dir;
  test::temp_dir local_dir;
  auto relay_cfg = test::node_config(relay_dir);
  // A fixed admin port and a token: how `ferry sync` reaches the node to
  // hand it a sync that fetches.
  const auto admin_port = test::free_port();
  auto local_cfg = config_with_admin(local_dir, admin_port, "sync-t0ken");
  import_events(relay_dir, relay_cfg, {&events.relay_only, &events.shared});
  import_events(local_dir, local_cfg, {&events.shared});

  test::ferry_process relay{{"node", "--config", relay_cfg}};
  auto relay_port = relay.wait_for_port();
  REQUIRE(relay_port);
  test::ferry_process local{{"node", "--config", local_cfg}};
  auto local_port = local.wait_for_port();
  REQUIRE(local_port);
  // Published to the running node: only in its WAL and memtable.
  {
    net::simple_ws_client client;
    REQUIRE(client.connect("127.0.0.1", *local_port).empty());
    for (const auto& ev : events.local_only) {
      REQUIRE(client.send("[\"EVENT\"," + nostr::to_json(ev) + "]").empty());
      auto ok = test::receive_until(client, "[\"OK\"");
      REQUIRE(ok);
      REQUIRE(ok->find(",true,") != std::string::npos);
    }
  }
  const auto url = "ws://127.0.0.1:" + std::to_string(*relay_port);

  auto dry = sync_kind(url, local_cfg, events.kind, "both", {"--dry-run"});
  CHECK(dry.output.find("a node holds " + local_dir.file("data")) != std::string::npos);
  CHECK(dry.output.find("LOCK") == std::string::npos);
  checked_summary(dry, events, true);
  auto s = checked_summary(sync_kind(url, local_cfg, events.kind, "up"), events);
  CHECK(s.sent == events.local_only.size());
  CHECK(s.accepted == events.local_only.size());
  CHECK(relay_ids(*relay_port, events.kind)
        == ids({&events.relay_only, &events.shared, &events.local_only}));
  // The node kept its store: it still serves what it held.
  CHECK(relay_ids(*local_port, events.kind)
        == ids({&events.shared, &events.local_only}));

  // A sync that fetches is handed to the node, which stores what it gets
  // through its own ingest path; the output and exit code are the same.
  auto down = sync_kind(url, local_cfg, events.kind, "down");
  INFO(down.output);
  REQUIRE(down.status == 0);
  CHECK(down.output.find("it runs the sync") != std::string::npos);
  CHECK(down.output.find("LOCK") == std::string::npos);
  // Not a terminal: no progress line, only the summary.
  CHECK(down.output.find('\r') == std::string::npos);
  CHECK(down.output.find("events/s") == std::string::npos);
  s = parse_summary(down.output);
  CHECK(s.have == 0);
  CHECK(s.need == events.relay_only.size());
  CHECK(s.fetched == events.relay_only.size());
  CHECK(s.stored == events.relay_only.size());
  CHECK(relay_ids(*local_port, events.kind)
        == ids({&events.relay_only, &events.shared, &events.local_only}));
  // The node checks a job's options itself: 400 naming the field.
  for (auto [body, field] : std::vector<std::pair<std::string, std::string>>{
         {R"({"url":"http://127.0.0.1:1"})", "url"},
         {R"({"url":"ws://127.0.0.1:1","direction":"sideways"})", "direction"},
         {R"({"url":"ws://127.0.0.1:1","filter":[1]})", "filter"},
         {R"({"url":"ws://127.0.0.1:1","frame_size_limit":10})",
          "frame_size_limit"},
         {R"({"url":"ws://127.0.0.1:1","colour":"red"})", "colour"},
         {R"({"url":"ws://127.0.0.1:1","progress_id":"a/b"})",
          "progress_id"}}) {
    auto res = net::simple_http_request(
      "127.0.0.1", admin_port, "POST", "/api/v1/sync/run",
      {{"Authorization", "Bearer sync-t0ken"}}, body);
    INFO(body << " -> " << res.response.body << res.error);
    CHECK(res.response.status == 400);
    CHECK(res.response.body.find(R"("field":")" + field + "\"")
          != std::string::npos);
  }
  // A bad relay fails the same way through the node: exit 1, the reason.
  auto unreachable = "ws://127.0.0.1:" + std::to_string(test::free_port());
  auto failed = run_ferry({"sync", unreachable, "--config", local_cfg,
                           "--timeout", "5"});
  INFO(failed.output);
  CHECK(failed.status == 1);
  CHECK(failed.output.find("cannot connect to " + unreachable)
        != std::string::npos);

  CHECK(local.kill(SIGTERM) == 0);
  CHECK(relay.kill(SIGTERM) == 0);
}

TEST_CASE("a sync handed to a node shows growing counts while it runs, and "
          "its final figures once done",
          "[integration][sync_cli]") {
  auto keys = nostr::generate_keypair();
  // 3000 events the node lacks, 3000 it holds alone.
  auto events = make_split(keys, 1, 6000, 0);
  test::temp_dir relay_dir;
  test::temp_dir local_dir;
  auto relay_cfg = test::node_config(relay_dir);
  const auto admin_port = test::free_port();
  auto local_cfg = config_with_admin(local_dir, admin_port, "pr0gress");
  import_events(relay_dir, relay_cfg, {&events.relay_only});
  import_events(local_dir, local_cfg, {&events.local_only});
  test::ferry_process relay{{"node", "--config", relay_cfg}};
  auto relay_port = relay.wait_for_port();
  REQUIRE(relay_port);
  test::ferry_process local{{"node", "--config", local_cfg}};
  REQUIRE(local.wait_for_port());
  REQUIRE(test::wait_for_admin_port(local));
  // Logged once every subsystem has started: before, the sync manager may
  // not answer yet (503).
  REQUIRE(test::wait_for_identity(local));

  const std::map<std::string, std::string> auth{
    {"Authorization", "Bearer pr0gress"}};
  auto progress = [&] {
    return net::simple_http_request("127.0.0.1", admin_port, "GET",
                                    "/api/v1/sync/run/watch-1", auth);
  };
  CHECK(progress().response.status == 404);
  std::atomic<bool> answered{false};
  net::http_result run;
  std::thread job{[&] {
    run = net::simple_http_request(
      "127.0.0.1", admin_port, "POST", "/api/v1/sync/run", auth,
      R"({"url":"ws://127.0.0.1:)" + std::to_string(*relay_port)
        + R"(","filter":{"kinds":[1]},"progress_id":"watch-1"})",
      120s);
    answered = true;
  }};
  // Read as fast as it answers while the job runs: what a polling command
  // sees, without depending on how long the sync takes.
  std::vector<uint64_t> seen;
  while (!answered) {
    auto res = progress();
    if (res.response.status != 200)
      continue;
    auto body = boost::json::parse(res.response.body).as_object();
    if (!body.at("running").as_bool())
      continue;
    seen.push_back(body.at("events").to_number<uint64_t>());
  }
  job.join();
  INFO(run.error << run.response.body);
  REQUIRE(run.response.status == 200);
  auto answer = boost::json::parse(run.response.body).as_object();
  CHECK(answer.at("exit_code").as_int64() == 0);
  auto s = parse_summary(std::string{answer.at("stdout").as_string()});
  CHECK(s.fetched == events.relay_only.size());

  auto final_res = progress();
  REQUIRE(final_res.response.status == 200);
  auto final_body = boost::json::parse(final_res.response.body).as_object();
  INFO(final_res.response.body);
  CHECK_FALSE(final_body.at("running").as_bool());
  auto final_events = final_body.at("events").to_number<uint64_t>();
  CHECK(final_events == s.fetched);
  CHECK(final_body.at("done") == final_body.at("total"));
  // The counts only grow, and the job was seen before it had them all.
  REQUIRE_FALSE(seen.empty());
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  CHECK(seen.front() < final_events);
  CHECK(seen.back() <= final_events);
  CHECK(local.kill(SIGTERM) == 0);
  CHECK(relay.kill(SIGTERM) == 0);
}

TEST_CASE("a node that stops during a sync handed to it ends the sync and "
          "still stops promptly",
          "[integration][sync_cli]") {
  test::temp_dir dir;
  auto events_file = dir.file("relay.jsonl");
  test::write_file(events_file, "");
  // A relay that never answers NEG-OPEN: the sync waits on it.
  test::ferry_process relay{{harness, "--events", events_file, "--port", "0",
                             "--negentropy", "silent"},
                            {},
                            "node"};
  auto relay_port = relay.wait_for_port();
  REQUIRE(relay_port);
  test::temp_dir local_dir;
  auto local_cfg = config_with_admin(local_dir, test::free_port(), "t0ken");
  test::ferry_process local{{"node", "--config", local_cfg}};
  REQUIRE(local.wait_for_port());
  test::ferry_process sync{{"sync",
                            "ws://127.0.0.1:" + std::to_string(*relay_port),
                            "--config", local_cfg, "--timeout", "60",
                            "--reconcile-when-empty"}};
  REQUIRE(test::wait_for_output(local, "runs a one-shot sync with"));
  auto start = std::chrono::steady_clock::now();
  CHECK(local.kill(SIGTERM) == 0);
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  CHECK(sync.wait() == 1);
  INFO(sync.output());
  // The admin API stops first: it answers 503 while the job ends, or its
  // socket closes under the request.
  const auto output = sync.output();
  CHECK((output.find("the node did not finish the sync (HTTP 503)")
           != std::string::npos
         || output.find("did not answer") != std::string::npos));
  CHECK(relay.kill(SIGTERM) == 0);
}

TEST_CASE("ferry sync refuses a store a running node holds, and reports bad "
          "arguments and unreachable relays",
          "[integration][sync_cli]") {
  test::temp_dir dir;
  auto cfg = test::node_config(dir);

  SECTION("a running node holds the store") {
    test::ferry_process node{{"node", "--config", cfg}};
    auto port = node.wait_for_port();
    REQUIRE(port);
    auto r = run_ferry({"sync", "ws://127.0.0.1:" + std::to_string(*port),
                        "--config", cfg});
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("a node holds " + dir.file("data")
                        + ", and fetching writes to it")
          != std::string::npos);
    CHECK(r.output.find("--dry-run and --dir up only read") != std::string::npos);
    CHECK(node.kill(SIGTERM) == 0);
  }

  SECTION("nothing listens at the URL") {
    auto url = "ws://127.0.0.1:" + std::to_string(test::free_port());
    auto r = run_ferry({"sync", url, "--config", cfg, "--timeout", "5"});
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("cannot connect to " + url) != std::string::npos);
  }

  SECTION("bad arguments") {
    auto bad_filter = run_ferry({"sync", "ws://127.0.0.1:1", "--config", cfg,
                                 "--filter", "{\"kinds\":\"x\"}"});
    CHECK(bad_filter.status == 2);
    CHECK(bad_filter.output.find("--filter") != std::string::npos);
    auto bad_url = run_ferry({"sync", "http://127.0.0.1:1", "--config", cfg});
    CHECK(bad_url.status == 2);
    CHECK(bad_url.output.find("ws:// or wss://") != std::string::npos);
    auto bad_frame = run_ferry({"sync", "ws://127.0.0.1:1", "--config", cfg,
                                "--frame-size-limit", "100"});
    CHECK(bad_frame.status == 2);
    CHECK(bad_frame.output.find("--frame-size-limit") != std::string::npos);
    auto bad_dir = run_ferry({"sync", "ws://127.0.0.1:1", "--config", cfg,
                              "--dir", "sideways"});
    CHECK(bad_dir.status != 0);
    CHECK(bad_dir.output.find("--dir") != std::string::npos);
  }
}
