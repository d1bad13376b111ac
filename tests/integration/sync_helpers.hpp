#pragma once

// Helpers of the two-node sync tests (sync_test.cpp, sync_tls_test.cpp):
// node processes, publishing and querying over plain ws://, B's config with
// [[sync.server]] tables, B's admin API, and tests/interop/neg_relay.mjs's
// command line (a third-party NIP-77 relay).
//
// Every wait is bounded and polls (REQ/COUNT or HTTP every 100 ms); a failed
// wait reports both nodes' log tails.

#include "tests/fixtures/node_process.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>

namespace ferry::sync_test {

using namespace std::chrono_literals;

inline constexpr const char* admin_token = "sync-test-token";

inline std::string event_frame(const nostr::event& ev) {
  return "[\"EVENT\"," + nostr::to_json(ev) + "]";
}

inline std::string hex_id(const nostr::event& ev) {
  return nostr::to_hex(ev.id);
}

inline std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

/// Whether a node still runs, or how it ended (128 + n: killed by signal n).
inline std::string state_of(test::ferry_process& p) {
  if (p.is_running())
    return "running";
  return "EXITED with status " + std::to_string(p.wait());
}

/// Both nodes' state and last log lines, for failure messages.
inline std::string logs(test::ferry_process* a, test::ferry_process* b) {
  std::string text;
  if (a)
    text += "--- node A (" + state_of(*a) + ") log tail ---\n" + test::output_tail(*a);
  if (b)
    text += "--- node B (" + state_of(*b) + ") log tail ---\n" + test::output_tail(*b);
  return text;
}

/// Sends a REQ on a fresh connection and returns the ids of the stored events
/// it yields before EOSE; nullopt when the node cannot be asked.
inline std::optional<std::set<std::string>>
try_ids(uint16_t port, const std::string& filter,
        const std::string& host = "127.0.0.1") {
  net::simple_ws_client client;
  if (!client.connect(host, port).empty())
    return std::nullopt;
  if (!client.send("[\"REQ\",\"q\"," + filter + "]").empty())
    return std::nullopt;
  std::vector<std::string> frames;
  if (!test::receive_until(client, "[\"EOSE\"", &frames))
    return std::nullopt;
  std::set<std::string> ids;
  for (auto& frame : frames) {
    if (frame.rfind("[\"EVENT\"", 0) != 0)
      continue;
    auto pos = frame.find("\"id\":\"");
    if (pos != std::string::npos)
      ids.insert(frame.substr(pos + 6, 64));
  }
  return ids;
}

inline std::set<std::string> ids_of(uint16_t port, const std::string& filter) {
  auto ids = try_ids(port, filter);
  REQUIRE(ids);
  return *ids;
}

/// COUNT on a fresh connection; -1 when the node cannot be asked.
inline int64_t count_of(uint16_t port, const std::string& filter) {
  net::simple_ws_client client;
  if (!client.connect("127.0.0.1", port).empty())
    return -1;
  if (!client.send("[\"COUNT\",\"c\"," + filter + "]").empty())
    return -1;
  auto answer = test::receive_until(client, "[\"COUNT\"");
  if (!answer)
    return -1;
  static const std::regex count_re{"\"count\":([0-9]+)"};
  std::smatch m;
  if (!std::regex_search(*answer, m, count_re))
    return -1;
  return std::stoll(m[1].str());
}

/// Publishes `events` to a relay and requires an accepting OK for each.
inline void publish(uint16_t port, const std::vector<nostr::event>& events) {
  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", port).empty());
  for (auto& ev : events)
    REQUIRE(client.send(event_frame(ev)).empty());
  for (size_t i = 0; i < events.size(); ++i) {
    auto ok = test::receive_until(client, "[\"OK\"");
    REQUIRE(ok);
    INFO(*ok);
    REQUIRE(ok->find(",true,") != std::string::npos);
  }
}

/// Writes `events` as JSONL and runs `ferry import` on the node's config.
inline void import_into(const test::temp_dir& dir, const std::string& config,
                        const std::vector<nostr::event>& events) {
  std::string jsonl;
  for (auto& ev : events)
    jsonl += nostr::to_json(ev) + "\n";
  auto file = dir.file("import.jsonl");
  test::write_file(file, jsonl);
  test::ferry_process import{{"import", file, "--config", config}};
  auto status = import.wait();
  INFO(import.output());
  REQUIRE(status == 0);
}

/// `n` events of `kind` by `keys`, `created_at` from `newest` downwards with
/// `per_second` events sharing each second.
inline std::vector<nostr::event> make_events(const nostr::keypair& keys, size_t n,
                                             int64_t newest, uint32_t kind,
                                             const std::string& tag, size_t per_second = 1) {
  std::vector<nostr::event> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i)
    out.push_back(test::make_note(keys, newest - static_cast<int64_t>(i / per_second),
                                  tag + " " + std::to_string(i), kind));
  return out;
}

/// A NIP-09 deletion of `target` by its author.
inline nostr::event deletion_of(const nostr::keypair& keys, const nostr::event& target) {
  nostr::event ev;
  ev.created_at = test::unix_now();
  ev.kind = 5;
  ev.tags = {{"e", nostr::to_hex(target.id)}, {"k", "1"}};
  ev.content = "published by mistake";
  nostr::sign_event(ev, keys);
  return ev;
}

/// A REQ filter for exactly these ids (hex).
inline std::string ids_filter(const std::set<std::string>& ids) {
  std::string filter = "{\"ids\":[";
  for (auto& id : ids)
    filter += (filter.back() == '[' ? "\"" : ",\"") + id + "\"";
  return filter + "]}";
}

inline std::set<std::string> id_set(const std::vector<nostr::event>& events) {
  std::set<std::string> ids;
  for (auto& ev : events)
    ids.insert(hex_id(ev));
  return ids;
}

/// neg_relay.mjs's command line for a relay holding `events`, with `flags`.
inline std::vector<std::string>
neg_relay_args(test::temp_dir& dir, const std::vector<nostr::event>& events,
               std::vector<std::string> flags) {
  std::string jsonl;
  for (const auto& ev : events)
    jsonl += nostr::to_json(ev) + "\n";
  auto file = dir.file("events.jsonl");
  test::write_file(file, jsonl);
  std::vector<std::string> args{test::source_dir() + "/tests/interop/neg_relay.mjs",
                                "--events", file, "--port", "0"};
  args.insert(args.end(), flags.begin(), flags.end());
  return args;
}

/// What a `[[sync.server]]` table holds beyond id and url.
struct server_options {
  std::string id = "node-a";
  std::string filters = "[{ kinds = [1] }]";
  std::string relay_info_mode = "best_effort";
  std::string auth_pubkey;
  std::string auth_mode = "on_challenge";
  std::string direction = "down";
  std::string mode = "req_stream";
  int overlap_seconds = 300;
  bool follow_deletions = true;
  /// On: NIP-77 reconciles into an empty store too, as the tests of the
  /// reconciliation and its fetches (all starting from empty stores) need.
  /// Paging an empty store instead, the default, has tests of its own.
  bool reconcile_when_empty = true;
  /// The remote's URL; empty: ws://127.0.0.1:PORT.
  std::string url;
  /// The `tls` inline table.
  std::string tls = "{ mode = \"disabled\" }";
  /// More `key = value` lines of the table.
  std::string extra;
};

inline std::string relay_url(uint16_t port) {
  return "ws://127.0.0.1:" + std::to_string(port);
}

inline std::string sync_server_toml(uint16_t a_port, const server_options& o = {}) {
  auto url = o.url.empty() ? relay_url(a_port) : o.url;
  return "[[sync.server]]\nid = \"" + o.id + "\"\nurl = \"" + url
         + "\"\nfilters = " + o.filters + "\ndirection = \"" + o.direction
         + "\"\n"
         + "mode = \"" + o.mode + "\"\noverlap_window_seconds = "
         + std::to_string(o.overlap_seconds) + "\nfollow_deletions = "
         + (o.follow_deletions ? "true" : "false") + "\nreconcile_when_empty = "
         + (o.reconcile_when_empty ? "true" : "false") + "\nrelay_info_mode = \""
         + o.relay_info_mode + "\"\nauth_pubkey = \"" + o.auth_pubkey
         + "\"\nauth = { type = \"nip42\", mode = \"" + o.auth_mode + "\" }\n"
         + "tls = " + o.tls + "\n" + o.extra;
}

/// Node B's config: an admin token and the given sync servers.
inline std::string b_config(const test::temp_dir& dir, const std::string& servers) {
  test::node_settings s;
  s.admin_extra = std::string{"token = \""} + admin_token + "\"\n";
  s.extra = servers;
  return test::node_config_with(dir, s);
}

inline net::http_result admin(uint16_t admin_port, const std::string& method,
                              const std::string& target, const std::string& body = {}) {
  std::map<std::string, std::string> headers{
    {"Authorization", std::string{"Bearer "} + admin_token}};
  if (!body.empty())
    headers.emplace("Content-Type", "application/json");
  return net::simple_http_request("127.0.0.1", admin_port, method, target, headers,
                                  body);
}

/// Requires an HTTP answer; reports the error and B's state otherwise.
inline void require_answered(const net::http_result& res, test::ferry_process& b) {
  if (!res.error.empty())
    FAIL("no HTTP answer from B: " << res.error << "\n" << logs(nullptr, &b));
}

/// B's sync health and stats bodies, concatenated (what an operator sees).
inline std::string sync_reports(uint16_t admin_port, const std::string& id) {
  std::string text;
  for (auto target : {std::string{"/api/v1/sync/health"},
                      std::string{"/api/v1/sync/stats"},
                      "/api/v1/sync/servers/" + id + "/stats"}) {
    auto res = admin(admin_port, "GET", target);
    text += target + " -> "
            + (res.error.empty() ? std::to_string(res.response.status) + " "
                                     + res.response.body
                                 : "error " + res.error)
            + "\n";
  }
  return text;
}

/// Starts a node and waits for its relay port.
struct node {
  explicit node(const std::string& config)
      : process{{"node", "--config", config}} {
    auto p = process.wait_for_port();
    if (!p)
      FAIL("no relay port\n" << logs(nullptr, &process));
    port = *p;
    // Logged once every subsystem has started: before that the admin API
    // may already answer, with 503 for a sync manager still starting.
    if (!test::wait_for_identity(process))
      FAIL("the node did not finish starting\n" << logs(nullptr, &process));
  }
  uint16_t admin_port() {
    auto p = test::wait_for_admin_port(process);
    if (!p)
      FAIL("no admin port\n" << logs(nullptr, &process));
    return *p;
  }
  test::ferry_process process;
  uint16_t port = 0;
};

/// Waits until the ids `holder` has for `filter` are `want` (`exactly`) or
/// include it; fails with `what`, the counts and both nodes' logs otherwise.
inline void wait_for_ids(node& holder, const std::string& filter,
                         const std::set<std::string>& want, bool exactly,
                         const std::string& what, node* other,
                         std::chrono::milliseconds timeout = 20s) {
  std::set<std::string> got;
  bool ok = test::poll_until(
    [&] {
      if (auto ids = try_ids(holder.port, filter))
        got = std::move(*ids);
      return exactly ? got == want
                     : std::includes(got.begin(), got.end(), want.begin(),
                                     want.end());
    },
    timeout);
  if (!ok)
    FAIL(what << ": holds " << got.size() << " events matching " << filter
              << (exactly ? ", wants exactly " : ", wants at least ")
              << want.size() << " after " << timeout.count() << " ms\n"
              << logs(other ? &other->process : nullptr, &holder.process));
}

/// Waits until B holds exactly `expected` among its events matching `filter`
/// (for a remote the test cannot query over plain ws://).
inline void require_exactly(node& a, node& b, const std::string& filter,
                            const std::set<std::string>& expected,
                            std::chrono::milliseconds timeout = 20s) {
  wait_for_ids(b, filter, expected, true, "B", &a, timeout);
}

/// Waits until B holds exactly A's events matching `filter`.
inline void require_mirrored(node& a, node& b, const std::string& filter,
                             std::chrono::milliseconds timeout = 20s) {
  require_exactly(a, b, filter, ids_of(a.port, filter), timeout);
}

/// Stops a node, requiring a clean exit.
inline void stop(node& n) {
  auto status = n.process.kill(SIGTERM);
  INFO(test::output_tail(n.process));
  REQUIRE(status == 0);
}

/// Stops each node with SIGTERM, in the order given; every one must exit
/// cleanly, and a failing one does not keep the others running.
template <class... Nodes>
void check_clean_shutdown(Nodes&... nodes) {
  auto check = [](node& n) { CHECK(n.process.kill(SIGTERM) == 0); };
  (check(nodes), ...);
}

/// Directories for nodes A and B and one author: how most two-node tests
/// begin.
struct two_nodes {
  test::temp_dir dir_a, dir_b;
  nostr::keypair keys = nostr::generate_keypair();
};

/// A node config on a fixed relay port, so a restarted node is found again.
inline std::string config_on_port(const test::temp_dir& dir, uint16_t port) {
  test::node_settings settings;
  settings.relay_port = port;
  return test::node_config_with(dir, settings);
}

inline const std::string kind1_all = R"({"kinds":[1],"limit":5000})";

/// One integer field of B's stats for server `id`; -1 when unavailable.
inline int64_t stat_of(uint16_t admin_port, const std::string& id,
                       const std::string& field) {
  auto res = admin(admin_port, "GET", "/api/v1/sync/servers/" + id + "/stats");
  if (!res.error.empty() || res.response.status != 200)
    return -1;
  std::regex re{"\"" + field + "\":([0-9]+)"};
  std::smatch m;
  if (!std::regex_search(res.response.body, m, re))
    return -1;
  return std::stoll(m[1].str());
}

/// One boolean field of B's stats for server `id`.
inline bool stat_flag(uint16_t admin_port, const std::string& id,
                      const std::string& field) {
  auto res = admin(admin_port, "GET", "/api/v1/sync/servers/" + id + "/stats");
  return res.error.empty() && res.response.status == 200
         && res.response.body.find("\"" + field + "\":true") != std::string::npos;
}

/// Waits until `to` holds every event of `from` matching `filter`.
inline void require_holds(node& from, node& to, const std::string& filter,
                          const std::string& what,
                          std::chrono::milliseconds timeout = 20s) {
  wait_for_ids(to, filter, ids_of(from.port, filter), false, what, &from,
               timeout);
}

} // namespace ferry::sync_test
