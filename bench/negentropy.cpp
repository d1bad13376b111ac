// bench_negentropy: the cost of NIP-77 reconciliation, in process.
//
// a. Two sides of N items (default 100,000) sharing 99%: wall time of a whole
//    reconciliation (client and server engines, no network) and the bytes
//    the two sides exchange, with each side's default frame size limit, with
//    60,000-byte answers (the reference's) and without a limit.
// b. Building a relay's item set from the store: N events written to a fresh
//    RocksDB store, then `negentropy_items` for a covered filter (index keys
//    only) and an uncovered one (event headers read), plus the first round.
// c. A real `ferry node` over 20,000 imported events: 50 clients open 8
//    sessions each with `NEG-OPEN {}`; the node's resident memory before and
//    while the 400 sessions are open, in total and per session.

#include "bench/bench_util.hpp"

#include "messages/nostr/negentropy.hpp"
#include "net/simple_client.hpp"
#include "store/event_store.hpp"

#include <cstdio>
#include <memory>

namespace ferry::bench {
namespace {

namespace neg = nostr::negentropy;

constexpr int runs = 5;

struct exchange {
  double seconds = 0;
  size_t bytes = 0;
  size_t rounds = 0;
  size_t have = 0;
  size_t need = 0;
};

exchange reconcile_once(const neg::item_set_ptr& mine,
                        const neg::item_set_ptr& theirs, size_t query_limit,
                        size_t answer_limit) {
  exchange result;
  auto start = clock_type::now();
  neg::client client{mine, query_limit};
  neg::server server{theirs, answer_limit};
  auto query = client.initiate();
  for (;;) {
    std::string response;
    if (auto failure = server.reconcile(query, response); !failure.empty())
      throw std::runtime_error("server: " + failure);
    neg::client::round round;
    if (auto failure = client.reconcile(response, round); !failure.empty())
      throw std::runtime_error("client: " + failure);
    // Hex on the wire doubles every message.
    result.bytes += 2 * (query.size() + response.size());
    ++result.rounds;
    result.have += round.have.size();
    result.need += round.need.size();
    if (!round.next)
      break;
    query = std::move(*round.next);
  }
  result.seconds = seconds_since(start);
  return result;
}

void bench_reconcile(size_t n) {
  std::mt19937_64 rng{0x6e6567};
  const uint64_t now = 1'700'000'000;
  std::vector<neg::item> shared;
  std::vector<neg::item> mine;
  std::vector<neg::item> theirs;
  for (size_t i = 0; i < n; ++i) {
    neg::item x{now - rng() % (90 * 24 * 3600), random_bytes32(rng)};
    if (i < n * 99 / 100)
      shared.push_back(x);
    else if (i % 2 == 0)
      mine.push_back(x);
    else
      theirs.push_back(x);
  }
  // Each side: the shared 99% plus its own half of the rest, topped up to n.
  while (mine.size() + shared.size() < n)
    mine.push_back({now - rng() % (90 * 24 * 3600), random_bytes32(rng)});
  while (theirs.size() + shared.size() < n)
    theirs.push_back({now - rng() % (90 * 24 * 3600), random_bytes32(rng)});
  auto expect_have = mine.size();
  auto expect_need = theirs.size();
  mine.insert(mine.end(), shared.begin(), shared.end());
  theirs.insert(theirs.end(), shared.begin(), shared.end());
  auto start = clock_type::now();
  auto my_set = std::make_shared<const neg::item_set>(mine);
  auto their_set = std::make_shared<const neg::item_set>(theirs);
  std::printf("a. reconcile %zu vs %zu items, 99%% shared (%zu only here, %zu "
              "only there); sorting both sets: %.1f ms\n",
              my_set->size(), their_set->size(), expect_have, expect_need,
              seconds_since(start) * 1e3);
  struct limits {
    size_t query;
    size_t answer;
  };
  // Ferry syncing from a Ferry relay (each side's default), from a relay
  // answering in 60,000-byte frames like the reference, and unlimited.
  for (auto [query, answer] :
       {limits{neg::default_frame_size_limit, neg::default_relay_frame_size_limit},
        limits{neg::default_frame_size_limit, neg::default_frame_size_limit},
        limits{0, 0}}) {
    std::vector<double> times;
    exchange last;
    for (int i = 0; i < runs; ++i) {
      last = reconcile_once(my_set, their_set, query, answer);
      times.push_back(last.seconds);
      if (last.have != expect_have || last.need != expect_need)
        throw std::runtime_error("wrong result: have " + std::to_string(last.have)
                                 + ", need " + std::to_string(last.need));
    }
    std::sort(times.begin(), times.end());
    auto shown = [](size_t limit) {
      return limit == 0 ? std::string{"none"} : std::to_string(limit);
    };
    std::printf("   frames of at most %6s / %6s (query / answer): %6.1f ms "
                "(median of %d), %2zu rounds, %.0f KB exchanged as hex (all ids "
                "alone: %.0f KB)\n",
                shown(query).c_str(), shown(answer).c_str(),
                times[runs / 2] * 1e3, runs, last.rounds, last.bytes / 1e3,
                n * 64 / 1e3);
  }
}

void bench_store(size_t n) {
  temp_dir dir{"ferry-bench-negentropy"};
  store::store_options opts;
  opts.path = (dir.path() / "data").string();
  auto opened = store::event_store::open(opts);
  if (!opened)
    throw std::runtime_error("opening the store failed");
  auto& store = **opened;
  // Unsigned events with random ids: the store does not verify, and the
  // item scan never reads more than the headers.
  std::mt19937_64 rng{0x5702e};
  std::vector<nostr::bytes32> authors;
  for (int i = 0; i < 200; ++i)
    authors.push_back(random_bytes32(rng));
  const int64_t now = 1'700'000'000;
  auto start = clock_type::now();
  std::vector<store::incoming_event> batch;
  for (size_t i = 0; i < n; ++i) {
    store::incoming_event in;
    in.ev.id = random_bytes32(rng);
    in.ev.pubkey = authors[rng() % authors.size()];
    in.ev.kind = i % 10 == 0 ? 7 : 1;
    in.ev.created_at = now - static_cast<int64_t>(rng() % (90 * 24 * 3600));
    in.ev.content = "benchmark note " + std::to_string(i);
    in.json = nostr::to_json(in.ev);
    batch.push_back(std::move(in));
    if (batch.size() == 2000 || i + 1 == n) {
      std::vector<const store::incoming_event*> ptrs;
      for (const auto& e : batch)
        ptrs.push_back(&e);
      if (!store.write(ptrs, now))
        throw std::runtime_error("writing events failed");
      batch.clear();
    }
  }
  if (auto err = store.flush())
    throw std::runtime_error("flush failed");
  std::printf("b. item sets from a store of %zu events (written in %.1f s)\n", n,
              seconds_since(start));
  nostr::filter all;
  nostr::filter notes;
  notes.kinds = std::vector<uint32_t>{1};
  nostr::filter notes_by_authors = notes;
  notes_by_authors.authors = std::vector<nostr::bytes32>(authors.begin(),
                                                         authors.begin() + 100);
  std::sort(notes_by_authors.authors->begin(), notes_by_authors.authors->end());
  // 200 authors x 2 kinds is past the author-kind index's pair limit: the
  // author index finds candidates and their headers settle the kinds.
  nostr::filter wide = notes;
  wide.kinds = std::vector<uint32_t>{1, 2};
  wide.authors = authors;
  std::sort(wide.authors->begin(), wide.authors->end());
  struct named {
    const char* name;
    const nostr::filter* f;
  };
  for (auto [name, f] : {named{"{} (index only)", &all},
                         named{"kinds [1] (index only)", &notes},
                         named{"100 authors, kind 1 (index only)", &notes_by_authors},
                         named{"200 authors, kinds [1,2] (headers)", &wide}}) {
    std::vector<double> scan_times;
    std::vector<double> round_times;
    size_t items = 0;
    for (int i = 0; i < runs; ++i) {
      auto t0 = clock_type::now();
      auto scanned = store.negentropy_items(*f, now, 1'000'000);
      if (!scanned || scanned->over_limit)
        throw std::runtime_error(std::string{"scan failed: "} + name);
      items = scanned->items.size();
      auto set = std::make_shared<const neg::item_set>(std::move(scanned->items));
      scan_times.push_back(seconds_since(t0));
      // The relay's first answer to a client that holds nothing.
      neg::client empty{std::make_shared<const neg::item_set>()};
      auto t1 = clock_type::now();
      std::string response;
      neg::server{set}.reconcile(empty.initiate(), response);
      round_times.push_back(seconds_since(t1));
    }
    std::sort(scan_times.begin(), scan_times.end());
    std::sort(round_times.begin(), round_times.end());
    std::printf("   %-34s %7zu items: build %6.1f ms (%.2f M items/s), first "
                "round %5.2f ms\n",
                name, items, scan_times[runs / 2] * 1e3,
                items / scan_times[runs / 2] / 1e6, round_times[runs / 2] * 1e3);
  }
}

constexpr size_t node_events = 20000;
constexpr size_t node_clients = 50;
constexpr size_t sessions_per_client = 8;

/// Sends `frame` and returns the next frame, or throws.
std::string ask(net::simple_ws_client& client, const std::string& frame,
                node_process& node) {
  if (auto failure = client.send(frame); !failure.empty())
    throw std::runtime_error("send: " + failure);
  auto answer = client.receive(std::chrono::seconds{60});
  if (!answer)
    throw std::runtime_error("no answer to " + frame.substr(0, 80)
                             + "; node log tail:\n" + node.log_tail());
  return *answer;
}

void bench_node_sessions(const std::string& ferry) {
  temp_dir tmp{"ferry-bench-negentropy-node"};
  auto jsonl = tmp.path() / "events.jsonl";
  auto config = tmp.path() / "ferry.toml";
  event_generator{100, 400}.write_jsonl(jsonl, node_events, 2);
  // Only keys every version of the node knows, so old builds compare.
  write_file(config, "[relay]\naddress = \"127.0.0.1\"\nport = 0\n\n[store]\npath = "
                       + toml_string((tmp.path() / "data").string())
                       + "\n\n[log]\nlevel = \"info\"\n");
  run_import(ferry, jsonl, config, tmp.path());
  node_process node{ferry, config, tmp.path(), "node"};
  auto port = node.wait_for_relay_port();
  if (!port)
    throw std::runtime_error("node did not report its relay port; log tail:\n"
                             + node.log_tail());
  std::vector<std::unique_ptr<net::simple_ws_client>> clients;
  for (size_t c = 0; c < node_clients; ++c) {
    clients.push_back(std::make_unique<net::simple_ws_client>());
    if (auto failure = clients.back()->connect("127.0.0.1", *port);
        !failure.empty())
      throw std::runtime_error("connect: " + failure);
  }
  auto counted = ask(*clients.front(), "[\"COUNT\",\"n\",{}]", node);
  const auto before = node.rss_kib();
  // A client that holds nothing: the relay's first answer lists or
  // fingerprints its whole set.
  neg::client empty{std::make_shared<const neg::item_set>()};
  const auto query = neg::encode_hex(empty.initiate());
  auto start = clock_type::now();
  for (auto& client : clients)
    for (size_t s = 0; s < sessions_per_client; ++s)
      if (auto failure = client->send("[\"NEG-OPEN\",\"s" + std::to_string(s)
                                      + "\",{},\"" + query + "\"]");
          !failure.empty())
        throw std::runtime_error("send: " + failure);
  size_t opened = 0;
  size_t refused = 0;
  std::string refusal;
  for (auto& client : clients)
    for (size_t s = 0; s < sessions_per_client; ++s) {
      auto answer = client->receive(std::chrono::seconds{60});
      if (!answer)
        throw std::runtime_error("no answer to NEG-OPEN; node log tail:\n"
                                 + node.log_tail());
      if (answer->rfind("[\"NEG-MSG\"", 0) == 0) {
        ++opened;
      } else {
        ++refused;
        refusal = answer->substr(0, 200);
      }
    }
  const auto answered = seconds_since(start);
  const auto during = node.rss_kib();
  const auto sessions = node_clients * sessions_per_client;
  const double growth = static_cast<double>(during - before) * 1024;
  std::printf("c. node over %zu generated events (%s), %zu clients x %zu "
              "sessions of NEG-OPEN {}\n",
              node_events, counted.c_str(), node_clients, sessions_per_client);
  std::printf("   %zu opened, %zu refused%s%s; all answered in %.2f s\n", opened,
              refused, refused ? ": " : "", refusal.c_str(), answered);
  std::printf("   node RSS %.1f MiB before, %.1f MiB with the sessions open: "
              "+%.1f MiB, %.0f bytes per session\n",
              before / 1024.0, during / 1024.0, growth / (1 << 20),
              growth / static_cast<double>(sessions));
  std::fflush(stdout);
  clients.clear();
  node.stop_cleanly();
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  std::printf("bench_negentropy: %zu items per side\n", opts.events);
  std::fflush(stdout);
  bench_reconcile(opts.events);
  std::fflush(stdout);
  bench_store(opts.events);
  std::fflush(stdout);
  bench_node_sessions(opts.ferry);
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_negentropy", ferry::bench::run, argc, argv);
}
