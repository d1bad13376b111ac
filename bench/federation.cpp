// bench_federation: federation collections between `ferry node` processes
// of different operators on loopback.
//
// B offers the collection "repos" (kind 30617) holding N addressable events
// (`--events`, default 10,000): NIP-34 repository announcements of 1,000
// authors, each at its own address, with a name tag (about 395 B of JSON
// each), imported into B's store with `ferry import` before B
// starts. B defines links with A and C, offering them "repos", and
// registers at both (incoming = auto_accept), as
// tests/integration/federation_collections_test does the other way round.
// C starts holding a version a day older of every one of B's events.
// Measured:
// 1. Pulls (`POST /api/v1/federation/peers/b/pull` on the puller's admin
//    API), each timed from the call to its answer, with the pull's report
//    (imported, skipped, replaced, refused) and events/s: A `merge`s into
//    its empty store, then pulls with `skip` and `overwrite` once it holds
//    every event (NIP-77 then finds nothing to fetch); C pulls with `skip`
//    (every event a conflict it keeps), then `merge` (every one replaces
//    C's older version), then `overwrite` (nothing left to fetch).
// 2. B's listing of its collections for A (`GET
//    /api/v1/federation/collections` on B's admin API, NIP-98-signed by A's
//    node key): re-counted (a note stored on B before each call makes B
//    scan the collection again, as after any write) and with B's count
//    reused; the median of 3 calls each.
// 3. A preview page at offset 9,000, limit 100 (`GET
//    .../collections/repos/events`, signed the same way): median of 3.
// Figures are printed, never asserted. The one goal row is the README's
// bound: a pull finishes within 60 s.

#include "bench/bench_util.hpp"

#include "messages/nostr/nip98.hpp"
#include "net/simple_client.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <thread>

namespace ferry::bench {
namespace {

namespace json = boost::json;

constexpr const char* admin_token = "bench-federation-token";
constexpr size_t default_events = 10000;
constexpr size_t author_count = 1000;
constexpr const char* collection = "repos";
constexpr size_t runs = 3;
/// The page the README's figure names, and its size (the most a preview
/// returns).
constexpr size_t preview_offset = 9000;
constexpr size_t preview_limit = 100;
/// A pull may take up to the node's 60 s; its answer comes a little later.
constexpr auto pull_timeout = std::chrono::seconds{65};
constexpr auto call_timeout = std::chrono::seconds{30};
constexpr auto link_timeout = std::chrono::seconds{60};
constexpr auto poll_interval = std::chrono::milliseconds{50};

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// `n` signed repository announcements by `authors` in turn, each at its
/// own address (author and d tag), created over the last 30 days.
std::vector<nostr::event> repo_announcements(size_t n,
                                             const std::vector<nostr::keypair>& authors) {
  static const char* const words[] = {"git",  "relay", "sync",   "wallet",
                                      "client", "notes", "lib",  "bot",
                                      "cli",  "web",   "search", "media"};
  constexpr size_t word_count = sizeof words / sizeof words[0];
  std::mt19937_64 rng{0x5eed0f3du};
  auto now = unix_now();
  std::vector<nostr::event> out(n);
  for (size_t i = 0; i < n; ++i) {
    std::string first = words[rng() % word_count];
    std::string second = words[rng() % word_count];
    auto number = std::to_string(i);
    auto& ev = out[i];
    ev.kind = 30617;
    ev.created_at = now - static_cast<int64_t>(rng() % (30 * 86400));
    ev.tags.push_back({"d", first + "-" + second + "-" + number});
    ev.tags.push_back({"name", first + " " + second + " " + number});
    nostr::sign_event(ev, authors[i % authors.size()]);
  }
  return out;
}

/// For each of `events` (made by `repo_announcements` with `authors`) a
/// version a day older at the same address.
std::vector<nostr::event> older_versions(std::vector<nostr::event> events,
                                         const std::vector<nostr::keypair>& authors) {
  for (size_t i = 0; i < events.size(); ++i) {
    events[i].created_at -= 86400;
    nostr::sign_event(events[i], authors[i % authors.size()]);
  }
  return events;
}

std::string to_jsonl(const std::vector<nostr::event>& events) {
  std::string jsonl;
  for (const auto& ev : events) {
    nostr::append_json(jsonl, ev);
    jsonl += '\n';
  }
  return jsonl;
}

/// A node on loopback ports the kernel picks (each node learns and
/// announces its bound ports), with its key file and a [federation] part.
std::string node_config(const fs::path& dir, const nostr::keypair& keys,
                        const std::string& federation) {
  auto key_file = dir / "node.key";
  write_file(key_file, nostr::to_hex(keys.secret) + "\n");
  return "[relay]\naddress = \"127.0.0.1\"\nport = 0\n[admin]\naddress = "
         "\"127.0.0.1\"\nport = 0\ntoken = \""
         + std::string{admin_token} + "\"\n[console]\nport = 0\n[store]\npath = "
         + toml_string((dir / "data").string())
         + "\n[node]\nkey_file = " + toml_string(key_file.string())
         + "\n[log]\nlevel = \"info\"\n" + federation;
}

struct peer_node {
  std::string name;
  nostr::keypair keys = nostr::generate_keypair();
  std::string pubkey = nostr::to_hex(keys.pubkey);
  fs::path dir;
  fs::path config;
  std::unique_ptr<node_process> process;
  /// Known once it runs.
  uint16_t relay_port = 0;
  uint16_t admin_port = 0;
  std::string relay_url;
  std::string admin_url;

  void configure(const fs::path& root, const std::string& federation) {
    dir = root / name;
    fs::create_directories(dir);
    config = dir / "ferry.toml";
    write_file(config, node_config(dir, keys, federation));
  }

  void start(const std::string& ferry) {
    process = std::make_unique<node_process>(ferry, config, dir, name);
    auto relay = process->wait_for_relay_port();
    auto admin = process->wait_for_admin_port();
    if (!relay || !admin)
      throw std::runtime_error(name + " did not report its ports; log tail:\n"
                               + process->log_tail());
    relay_port = *relay;
    admin_port = *admin;
    relay_url = "ws://127.0.0.1:" + std::to_string(relay_port);
    admin_url = "http://127.0.0.1:" + std::to_string(admin_port);
  }

  /// A call of its operator (the admin token).
  net::http_result call(const std::string& method, const std::string& target,
                        const std::string& body = {},
                        std::chrono::milliseconds timeout = call_timeout) const {
    std::map<std::string, std::string> headers{
      {"Authorization", std::string{"Bearer "} + admin_token}};
    if (!body.empty())
      headers.emplace("Content-Type", "application/json");
    return net::simple_http_request("127.0.0.1", admin_port, method, target,
                                    headers, body, timeout);
  }

  /// GET `target` as node `as` calls it (NIP-98 signed by its key; the
  /// signing is done before the clock starts). @returns the answer and its
  /// wall time in milliseconds.
  std::pair<net::http_result, double> timed_signed_get(const nostr::keypair& as,
                                                       const std::string& target) const {
    std::map<std::string, std::string> headers{
      {"Authorization",
       nostr::make_http_auth(as, admin_url + target, "GET", "", unix_now())}};
    auto start = clock_type::now();
    auto res = net::simple_http_request("127.0.0.1", admin_port, "GET", target,
                                        headers, {}, call_timeout);
    return {std::move(res), 1000 * seconds_since(start)};
  }

  /// GET /api/v1/federation/peers/NAME; null when not 200.
  json::value peer(const std::string& peer_name) const {
    auto res = call("GET", "/api/v1/federation/peers/" + peer_name);
    if (!res.error.empty() || res.response.status != 200)
      return nullptr;
    return json::parse(res.response.body);
  }

  /// Whether its link with `other` is active and pins `other`'s key.
  bool linked_with(const peer_node& other) const {
    auto v = peer(other.name);
    return v.is_object() && v.at("status") == "active"
           && v.at("pinned") == json::value(other.pubkey);
  }
};

/// The JSON body of a 200 answer; throws with `what`, the status and the
/// body otherwise.
json::value answer_of(const net::http_result& res, const std::string& what) {
  if (!res.error.empty())
    throw std::runtime_error(what + ": " + res.error);
  if (res.response.status != 200)
    throw std::runtime_error(what + ": HTTP " + std::to_string(res.response.status)
                             + " " + res.response.body);
  return json::parse(res.response.body);
}

int64_t number(const json::value& v, const char* key) {
  return v.at(key).to_number<int64_t>();
}

/// Stores a kind-1 note on the node at `port` (outside the collection):
/// the node's next listing counts its collections again.
void store_note(uint16_t port) {
  nostr::event note;
  note.kind = 1;
  note.created_at = unix_now();
  note.content = "a write between two listings";
  nostr::sign_event(note, nostr::generate_keypair());
  net::simple_ws_client client;
  if (auto err = client.connect("127.0.0.1", port); !err.empty())
    throw std::runtime_error("cannot connect to B's relay: " + err);
  if (auto err = client.send("[\"EVENT\"," + nostr::to_json(note) + "]"); !err.empty())
    throw std::runtime_error("cannot send a note to B: " + err);
  auto deadline = clock_type::now() + call_timeout;
  while (clock_type::now() < deadline) {
    auto frame = client.receive(std::chrono::milliseconds{500});
    if (!frame)
      continue;
    if (frame->rfind("[\"OK\"", 0) != 0)
      continue;
    if (frame->find(",true,") == std::string::npos)
      throw std::runtime_error("B refused the note: " + *frame);
    return;
  }
  throw std::runtime_error("no OK from B for the note");
}

struct pull_outcome {
  double seconds = 0;
  int64_t imported = 0;
  int64_t skipped = 0;
  int64_t replaced = 0;
  int64_t refused = 0;
};

/// `puller`'s pull of B's collection with `strategy`, timed from the
/// operator's call to its answer.
pull_outcome pull(const peer_node& puller, const std::string& strategy,
                  const std::string& situation) {
  auto body = std::string{"{\"collection\":\""} + collection
              + "\",\"conflict_strategy\":\"" + strategy + "\"}";
  auto start = clock_type::now();
  auto res = puller.call("POST", "/api/v1/federation/peers/b/pull", body, pull_timeout);
  pull_outcome out;
  out.seconds = seconds_since(start);
  auto report = answer_of(res, puller.name + "'s pull " + strategy);
  out.imported = number(report, "imported");
  out.skipped = number(report, "skipped");
  out.replaced = number(report, "replaced");
  out.refused = number(report, "refused");
  auto fetched = out.imported + out.skipped + out.replaced + out.refused;
  std::printf("pull %s (%s): %.2f s, %s; imported %lld, skipped %lld, replaced "
              "%lld, refused %lld\n",
              strategy.c_str(), situation.c_str(), out.seconds,
              fetched == 0 ? "NIP-77 found nothing to fetch"
                           : format("%.0f events/s", fetched / out.seconds).c_str(),
              static_cast<long long>(out.imported), static_cast<long long>(out.skipped),
              static_cast<long long>(out.replaced), static_cast<long long>(out.refused));
  std::fflush(stdout);
  return out;
}

/// Waits until `b` and `peer` both hold an active link pinning the other.
void wait_linked(const peer_node& b, const peer_node& peer) {
  auto start = clock_type::now();
  while (!peer.linked_with(b) || !b.linked_with(peer)) {
    if (clock_type::now() - start > link_timeout)
      throw std::runtime_error(b.name + " and " + peer.name
                               + " did not link within 60 s; log of " + peer.name
                               + ":\n" + peer.process->log_tail() + "log of " + b.name
                               + ":\n" + b.process->log_tail());
    std::this_thread::sleep_for(poll_interval);
  }
}

/// `runs` signed GETs of `target` on B as A; each checked by `check`.
/// @returns the median wall time in milliseconds, after printing every run.
template <class Check, class Before>
double median_call(const peer_node& b, const peer_node& a, const std::string& target,
                   const std::string& label, Check check, Before before) {
  std::vector<double> ms;
  std::string each;
  for (size_t i = 0; i < runs; ++i) {
    before();
    auto [res, took] = b.timed_signed_get(a.keys, target);
    check(answer_of(res, label));
    ms.push_back(took);
    each += format("%s%.1f", i == 0 ? "" : ", ", took);
  }
  auto median = percentile(ms, 0.5);
  std::printf("%s: median %.1f ms (runs %s ms)\n", label.c_str(), median, each.c_str());
  std::fflush(stdout);
  return median;
}

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  // parse_options' default suits the store benches; this one's is the
  // README's collection, unless --events is given (whatever its value).
  auto events_given = std::any_of(argv + 1, argv + argc, [](const char* arg) {
    return std::string{arg} == "--events";
  });
  auto events = events_given ? opts.events : default_events;
  std::printf("bench_federation: %zu events, ferry %s\n", events, opts.ferry.c_str());
  std::fflush(stdout);
  temp_dir root{"ferry-bench-federation"};

  auto gen_start = clock_type::now();
  std::vector<nostr::keypair> authors;
  for (size_t i = 0; i < author_count; ++i)
    authors.push_back(nostr::generate_keypair());
  auto repos = repo_announcements(events, authors);
  auto jsonl = to_jsonl(repos);
  write_file(root.path() / "repos.jsonl", jsonl);
  write_file(root.path() / "older.jsonl", to_jsonl(older_versions(repos, authors)));
  std::printf("generated %zu repository announcements (kind 30617, %.0f B each, "
              "%.2f MB JSONL) and a day older version of each in %.1f s (not "
              "measured)\n",
              events, static_cast<double>(jsonl.size() - events) / events,
              jsonl.size() / 1e6, seconds_since(gen_start));

  // A and C pull from B; C holds the older versions from the start. Their
  // links are made by B's registration.
  peer_node a, b, c;
  a.name = "a";
  b.name = "b";
  c.name = "c";
  for (auto* puller : {&a, &c})
    puller->configure(root.path(), "[federation]\nenabled = true\nname = \""
                                     + puller->name
                                     + "\"\nincoming = \"auto_accept\"\n");
  auto c_import = run_import(opts.ferry, root.path() / "older.jsonl", c.config, c.dir);
  std::printf("C import of the older versions: %s (not measured)\n",
              c_import.summary.c_str());
  a.start(opts.ferry);
  c.start(opts.ferry);
  // B's peer filters name a kind no event has: the live links move
  // nothing, only the pulls do.
  std::string b_federation
    = "[federation]\nenabled = true\nname = \"b\"\nincoming = \"deny\"\n"
      "[[federation.collection]]\nname = \""
      + std::string{collection} + "\"\nfilters = [{ kinds = [30617] }]\n";
  for (auto* puller : {&a, &c})
    b_federation += "[[federation.peer]]\nname = \"" + puller->name
                    + "\"\nendpoint = \"" + puller->relay_url + "\"\nadmin_url = \""
                    + puller->admin_url
                    + "\"\nfilters = [{ kinds = [7777] }]\ncollections = [\""
                    + collection + "\"]\n";
  b.configure(root.path(), b_federation);
  auto import = run_import(opts.ferry, root.path() / "repos.jsonl", b.config, b.dir);
  std::printf("B import: %s in %.2f s (not measured)\n", import.summary.c_str(),
              import.seconds);
  auto link_start = clock_type::now();
  b.start(opts.ferry);
  wait_linked(b, a);
  wait_linked(b, c);
  std::printf("linked: B started and registered at A and C in %.2f s\n",
              seconds_since(link_start));

  // 1. Pulls.
  auto merge = pull(a, "merge", "A empty");
  if (merge.imported != static_cast<int64_t>(events))
    throw std::runtime_error("the merge pull imported " + std::to_string(merge.imported)
                             + " of " + std::to_string(events) + " events");
  pull(a, "skip", "A holds all");
  pull(a, "overwrite", "A holds all");
  // Conflicts: every event of B is a newer version of one C holds.
  pull(c, "skip", "C holds an older version of each");
  pull(c, "merge", "C holds an older version of each");
  pull(c, "overwrite", "C holds all after the merge");

  // 2. Listings.
  const std::string list_target = "/api/v1/federation/collections";
  uint64_t bytes = 0;
  auto check_list = [&](const json::value& body) {
    const auto& list = body.at("collections").as_array();
    if (list.size() != 1 || number(list[0], "events") != static_cast<int64_t>(events))
      throw std::runtime_error("B listed " + json::serialize(body));
    bytes = static_cast<uint64_t>(number(list[0], "bytes"));
  };
  auto recounted = median_call(b, a, list_target,
                               "list B's collections from A, re-counted (a note "
                               "stored on B before each)",
                               check_list, [&] { store_note(b.relay_port); });
  auto reused = median_call(b, a, list_target,
                            "list B's collections from A, count reused",
                            check_list, [] {});
  std::printf("collection %s on B: %zu events, %.2f MB (B's listing)\n", collection,
              events, bytes / 1e6);

  // 3. A preview page deep in the collection (the last page when it is
  // smaller than the README's).
  auto offset = std::min(preview_offset, events > preview_limit ? events - preview_limit : 0);
  auto page_size = std::min(preview_limit, events - offset);
  auto preview = median_call(
    b, a,
    std::string{"/api/v1/federation/collections/"} + collection
      + "/events?limit=" + std::to_string(preview_limit)
      + "&offset=" + std::to_string(offset),
    "preview offset " + std::to_string(offset) + " limit "
      + std::to_string(preview_limit),
    [&](const json::value& body) {
      if (body.at("events").as_array().size() != page_size)
        throw std::runtime_error("the preview held "
                                 + std::to_string(body.at("events").as_array().size())
                                 + " events, not " + std::to_string(page_size));
    },
    [] {});

  std::printf("summary: %zu addressable events (%.2f MB): pull %.2f s (%.0f events/s), "
              "list %.1f ms re-counted / %.1f ms reused, preview at offset %zu %.1f ms\n",
              events, bytes / 1e6, merge.seconds, events / merge.seconds, recounted,
              reused, offset, preview);
  goal_row(format("15 federation: pull of a %zu-event collection within 60 s", events),
           format("%.2f s (%.0f events/s)", merge.seconds, events / merge.seconds),
           merge.seconds < 60);
  for (auto* n : {&a, &b, &c})
    n->process->stop_cleanly();
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_federation", ferry::bench::run, argc, argv);
}
