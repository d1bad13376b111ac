// The write policy seen from outside: a real `ferry node` with [policy]
// rules and a strfry plugin, a client on a real WebSocket, and a second node
// syncing from a first one whose events the policy refuses.

#include "tests/integration/sync_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>


using namespace ferry;
using namespace ferry::sync_test;
using namespace std::chrono_literals;

namespace {

std::string plugin(const std::string& name) {
  return test::source_dir() + "/tests/plugins/" + name;
}

std::string policy_config(const test::temp_dir& dir, const std::string& policy) {
  test::node_settings s;
  s.admin_extra = std::string{"token = \""} + admin_token + "\"\n";
  s.extra = policy;
  return test::node_config_with(dir, s);
}

/// A node syncing from the relay on `relay_port` by NIP-77 (an hour of
/// overlap), judging events by the plugin `command`.
std::string plugin_sync_config(const test::temp_dir& dir, uint16_t relay_port,
                               const std::string& command) {
  server_options neg;
  neg.mode = "negentropy";
  neg.overlap_seconds = 3600;
  return policy_config(dir, sync_server_toml(relay_port, neg)
                              + "[policy.plugin]\ncommand = \"" + command
                              + "\"\n");
}

/// Waits until node-a's catch-up is complete with `n` events refused.
void wait_refused(uint16_t admin_port, int64_t n) {
  REQUIRE(test::poll_until(
    [&] {
      return stat_of(admin_port, "node-a", "rejected") >= n
             && stat_flag(admin_port, "node-a", "catchup_complete");
    },
    10s));
}

/// Publishes `ev` and returns its OK frame.
std::string ok_for(net::simple_ws_client& client, const nostr::event& ev) {
  REQUIRE(client.send(event_frame(ev)).empty());
  auto ok = test::receive_until(client, "[\"OK\"");
  REQUIRE(ok);
  return *ok;
}

/// What `events` weigh as EVENT frames.
size_t frames_size(const std::vector<nostr::event>& events) {
  size_t n = 0;
  for (const auto& ev : events)
    n += event_frame(ev).size();
  return n;
}

std::string ok_frame(const nostr::event& ev, bool accepted, const std::string& msg) {
  return "[\"OK\",\"" + hex_id(ev) + "\"," + (accepted ? "true" : "false")
         + ",\"" + msg + "\"]";
}

/// Node A holding 20 good events (the newest 10 s old, a second apart) and
/// 30 spam events (the newest `spam_age` s old) by `spam_author`.
struct spammed_remote {
  nostr::keypair keys = nostr::generate_keypair();
  int64_t now = test::unix_now();
  std::vector<nostr::event> good = make_events(keys, 20, now - 10, 1, "good");
  std::vector<nostr::event> spam;
  test::temp_dir dir;
  node a{test::node_config(dir)};

  explicit spammed_remote(int64_t spam_age,
                          std::optional<nostr::keypair> spam_author = {})
    : spam(make_events(spam_author ? *spam_author : keys, 30, now - spam_age,
                       1, "spam")) {
    publish(a.port, good);
    publish(a.port, spam);
  }
};

/// Node-a's counters on B after a first catch-up that refused `spam`.
struct counters {
  uint16_t admin_port;
  size_t spam_bytes;
  int64_t received = stat_of(admin_port, "node-a", "received");
  int64_t rejected = stat_of(admin_port, "node-a", "rejected");
  int64_t duplicate = stat_of(admin_port, "node-a", "duplicate");
  int64_t rounds = stat_of(admin_port, "node-a", "neg_rounds");
  int64_t bytes = stat_of(admin_port, "node-a", "bytes_received");

  counters(uint16_t port, const std::vector<nostr::event>& spam)
    : admin_port(port), spam_bytes(frames_size(spam)) {
    // The first catch-up took the spam in.
    CHECK(bytes > static_cast<int64_t>(spam_bytes));
  }

  /// After a later catch-up: no spam event came again, so the session took
  /// in less than the spam alone weighs, and B holds `held` only.
  void check_not_fetched_again(node& b, const std::set<std::string>& held) {
    CHECK(stat_of(admin_port, "node-a", "rejected") == rejected);
    CHECK(stat_of(admin_port, "node-a", "bytes_received") - bytes
          < static_cast<int64_t>(spam_bytes));
    CHECK(ids_of(b.port, kind1_all) == held);
  }
};

/// Asks B for a catch-up of node-a now and waits until it is complete and
/// `over` holds.
template <class Over>
void catch_up_again(node& a, node& b, Over over) {
  auto admin_port = b.admin_port();
  auto res = admin(admin_port, "POST", "/api/v1/sync/servers/node-a/sync-now");
  require_answered(res, b.process);
  REQUIRE(res.response.status < 300);
  bool caught_up = test::poll_until(
    [&] {
      return over() && stat_flag(admin_port, "node-a", "catchup_complete");
    },
    10s);
  INFO(sync_reports(admin_port, "node-a") << logs(&a.process, &b.process));
  REQUIRE(caught_up);
}

} // namespace

TEST_CASE("a client hears the policy's verdicts in its OK answers",
          "[integration][policy]") {
  test::temp_dir dir;
  node n{policy_config(dir, "[policy]\ndenied_kinds = [4]\n"
                            "[policy.plugin]\ncommand = \""
                              + plugin("keyword.sh") + "\"\n")};
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", n.port).empty());

  auto dm = test::make_note(keys, now, "psst", 4);
  CHECK(ok_for(client, dm) == ok_frame(dm, false, "blocked: kind 4 is not accepted here"));
  auto spam = test::make_note(keys, now, "cheap spam");
  CHECK(ok_for(client, spam) == ok_frame(spam, false, "blocked: no spam here"));
  auto shadow = test::make_note(keys, now, "in the shadow");
  CHECK(ok_for(client, shadow) == ok_frame(shadow, true, ""));
  auto fine = test::make_note(keys, now, "hello");
  CHECK(ok_for(client, fine) == ok_frame(fine, true, ""));

  // Only the accepted one was stored.
  CHECK(ids_of(n.port, R"({"kinds":[1,4]})") == std::set<std::string>{hex_id(fine)});
  CHECK(n.process.kill(SIGTERM) == 0);
}

TEST_CASE("a client past its IP bucket is rate-limited",
          "[integration][policy]") {
  test::temp_dir dir;
  // 0.001 events per second: nothing refills during the test.
  node n{policy_config(dir, "[policy.rate_limit.ip]\nrate = 0.001\nburst = 3\n")};
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", n.port).empty());
  for (int i = 0; i < 3; ++i) {
    auto ev = test::make_note(keys, now, "note " + std::to_string(i));
    CHECK(ok_for(client, ev) == ok_frame(ev, true, ""));
  }
  auto ev = test::make_note(keys, now, "one too many");
  CHECK(ok_for(client, ev)
        == ok_frame(ev, false,
                    "rate-limited: too many events from this IP address; slow down"));
  CHECK(n.process.kill(SIGTERM) == 0);
}

TEST_CASE("clients must authenticate as the author when the policy says so",
          "[integration][policy]") {
  test::temp_dir dir;
  node n{policy_config(dir, "[policy]\nauth_required_for_writes = true\n")};
  auto keys = nostr::generate_keypair();
  net::simple_ws_client client;
  REQUIRE(client.connect("127.0.0.1", n.port).empty());
  auto ev = test::make_note(keys, test::unix_now(), "hi");
  CHECK(ok_for(client, ev)
        == ok_frame(ev, false, "auth-required: publishing needs NIP-42 authentication"));
  CHECK(n.process.kill(SIGTERM) == 0);
}

TEST_CASE("a sync counts the events the policy refuses and stores the rest",
          "[integration][policy][sync]") {
  test::temp_dir dir_a, dir_b;
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  auto good = make_events(keys, 20, now - 10, 1, "good");
  auto spam = make_events(keys, 10, now - 50, 1, "spam");
  node a{test::node_config(dir_a)};
  publish(a.port, good);
  publish(a.port, spam);

  node b{policy_config(dir_b, sync_server_toml(a.port)
                                + "[policy.plugin]\ncommand = \""
                                + plugin("keyword.js") + "\"\n")};
  require_exactly(a, b, kind1_all, id_set(good));
  auto admin_port = b.admin_port();
  // Every event received is answered; the 10 spam events (or more: the live
  // tail and the catch-up may both deliver one) are counted as rejected.
  bool counted = test::poll_until(
    [&] {
      auto rejected = stat_of(admin_port, "node-a", "rejected");
      return rejected >= 10
             && stat_of(admin_port, "node-a", "accepted")
                    + stat_of(admin_port, "node-a", "duplicate") + rejected
                  == stat_of(admin_port, "node-a", "received");
    },
    10s);
  INFO(sync_reports(admin_port, "node-a"));
  CHECK(counted);
  CHECK(b.process.kill(SIGTERM) == 0);
  CHECK(a.process.kill(SIGTERM) == 0);
}

TEST_CASE("a second catch-up does not fetch the events refused in the first",
          "[integration][policy][sync]") {
  spammed_remote remote{100};
  auto& a = remote.a;
  test::temp_dir dir_b;
  node b{plugin_sync_config(dir_b, a.port, plugin("keyword.sh"))};
  require_exactly(a, b, kind1_all, id_set(remote.good));
  auto admin_port = b.admin_port();
  wait_refused(admin_port, 30);
  counters first{admin_port, remote.spam};
  CHECK(first.received >= 50);
  CHECK(first.rounds > 0);

  catch_up_again(a, b, [&] {
    return stat_of(admin_port, "node-a", "neg_rounds") > first.rounds;
  });
  // The reconciliation still finds the 30 ids missing here, but they are
  // remembered as refused: none is downloaded again.
  CHECK(stat_of(admin_port, "node-a", "received") == first.received);
  CHECK(stat_of(admin_port, "node-a", "neg_need_refused") >= 30);
  first.check_not_fetched_again(b, id_set(remote.good));
  CHECK(b.process.kill(SIGTERM) == 0);
  CHECK(a.process.kill(SIGTERM) == 0);
}

TEST_CASE("a second REQ catch-up does not fetch the events refused in the "
          "first",
          "[integration][policy][sync]") {
  // The spam is older than the cursor less the overlap window.
  spammed_remote remote{1000};
  auto& a = remote.a;
  test::temp_dir dir_b;
  server_options req;
  req.overlap_seconds = 5;
  node b{policy_config(dir_b, sync_server_toml(a.port, req)
                                + "[policy.plugin]\ncommand = \""
                                + plugin("keyword.js") + "\"\n")};
  require_exactly(a, b, kind1_all, id_set(remote.good));
  auto admin_port = b.admin_port();
  wait_refused(admin_port, 30);
  counters first{admin_port, remote.spam};

  // The cursor stands at the newest good event: the overlap brings the 6
  // good ones of its last 5 seconds again, as duplicates.
  catch_up_again(a, b, [&] {
    return stat_of(admin_port, "node-a", "duplicate") >= first.duplicate + 6;
  });
  // The cursor passed the refused events: not one came again.
  CHECK(stat_of(admin_port, "node-a", "received") - first.received < 20);
  first.check_not_fetched_again(b, id_set(remote.good));
  CHECK(b.process.kill(SIGTERM) == 0);
  CHECK(a.process.kill(SIGTERM) == 0);
}

TEST_CASE("a plugin script changed under a running node forgets what the "
          "old script refused, so the next catch-up fetches it again",
          "[integration][policy][sync]") {
  test::temp_dir dir_a, dir_b;
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  auto good = make_events(keys, 10, now - 10, 1, "good");
  auto spam = make_events(keys, 10, now - 100, 1, "spam");
  node a{test::node_config(dir_a)};
  publish(a.port, good);
  publish(a.port, spam);
  auto script = dir_b.file("plugin.sh");
  std::filesystem::copy_file(plugin("keyword.sh"), script);

  node b{plugin_sync_config(dir_b, a.port, script)};
  require_exactly(a, b, kind1_all, id_set(good));
  auto admin_port = b.admin_port();
  wait_refused(admin_port, 10);

  // The new script refuses "eggs" instead; the host restarts it when it
  // judges an event (it looks at the file at most once a second), and the
  // refused memory forgets the old refusals.
  {
    std::ifstream in{plugin("keyword.sh")};
    std::string text{std::istreambuf_iterator<char>{in},
                     std::istreambuf_iterator<char>{}};
    text.replace(text.find("*spam*"), 6, "*eggs*");
    std::ofstream out{script, std::ios::trunc};
    out << text;
  }
  std::filesystem::last_write_time(
    script, std::filesystem::last_write_time(script) + 2s);

  auto all = id_set(good);
  for (const auto& id : id_set(spam))
    all.insert(id);
  // Forgetting runs beside the node: a catch-up may start just before it.
  int notes = 0;
  auto fetched = test::poll_until(
    [&] {
      publish(b.port, make_events(keys, 1, now, 1,
                                  "a client's note " + std::to_string(++notes)));
      admin(admin_port, "POST", "/api/v1/sync/servers/node-a/sync-now");
      return test::poll_until(
        [&] {
          auto held = ids_of(b.port, kind1_all);
          return std::includes(held.begin(), held.end(), all.begin(),
                               all.end());
        },
        2s);
    },
    20s);
  INFO(sync_reports(admin_port, "node-a") << logs(&a.process, &b.process));
  CHECK(fetched);
  CHECK(b.process.kill(SIGTERM) == 0);
  CHECK(a.process.kill(SIGTERM) == 0);
}

TEST_CASE("a sync server's own policy refuses what it names, and what its "
          "rate limit holds back comes with a later catch-up",
          "[integration][policy][sync]") {
  test::temp_dir dir_a, dir_b;
  auto keys = nostr::generate_keypair();
  auto spammer = nostr::generate_keypair();
  auto now = test::unix_now();
  auto good = make_events(keys, 30, now - 100, 1, "good");
  auto spam = make_events(spammer, 10, now - 100, 1, "spam");
  node a{test::node_config(dir_a)};
  publish(a.port, good);
  publish(a.port, spam);

  // Only this server's events pass these rules: the node-wide [policy] is
  // empty. The bucket lets 5 through at once, then 4 per second.
  server_options o;
  o.extra = "policy = { denied_pubkeys = [\"" + nostr::to_hex(spammer.pubkey)
            + "\"], rate_limit = { rate = 4, burst = 5 } }\n";
  node b{b_config(dir_b, sync_server_toml(a.port, o))};
  auto admin_port = b.admin_port();
  // The rate limit holds some back in the first catch-up; each sync-now
  // asks again from below them, until every good event is here.
  std::set<std::string> got;
  bool held_back = false;
  auto all_good = test::poll_until(
    [&] {
      if (auto ids = try_ids(b.port, kind1_all))
        got = std::move(*ids);
      held_back |= got.size() >= 5 && got.size() < good.size();
      if (got == id_set(good))
        return true;
      admin(admin_port, "POST", "/api/v1/sync/servers/node-a/sync-now");
      return false;
    },
    30s, 500ms);
  INFO(sync_reports(admin_port, "node-a") << logs(&a.process, &b.process));
  CHECK(all_good);
  CHECK(got == id_set(good));
  CHECK(held_back);
  // The spammer's 10, and the good ones the bucket refused for a while.
  CHECK(stat_of(admin_port, "node-a", "rejected") > 10);
  // The server's rules come back in its definition.
  auto def = admin(admin_port, "GET", "/api/v1/sync/servers/node-a");
  CHECK(def.response.body.find("\"rate_limit\":{\"rate\":4,\"burst\":5}")
        != std::string::npos);
  CHECK(b.process.kill(SIGTERM) == 0);
  CHECK(a.process.kill(SIGTERM) == 0);
}

TEST_CASE("a sync server's own rules are remembered: the next catch-up "
          "fetches none of what they refused, and new rules forget them",
          "[integration][policy][sync]") {
  auto spammer = nostr::generate_keypair();
  spammed_remote remote{100, spammer};
  auto& a = remote.a;
  const auto& good = remote.good;
  const auto& spam = remote.spam;
  test::temp_dir dir_b;
  // Only the server's own rules refuse: the node-wide [policy] is empty.
  server_options o;
  o.mode = "negentropy";
  o.overlap_seconds = 3600;
  o.extra = "policy = { denied_pubkeys = [\"" + nostr::to_hex(spammer.pubkey)
            + "\"] }\n";
  node b{b_config(dir_b, sync_server_toml(a.port, o))};
  require_exactly(a, b, kind1_all, id_set(good));
  auto admin_port = b.admin_port();
  wait_refused(admin_port, 30);
  counters first{admin_port, spam};
  CHECK(first.received >= 50);

  catch_up_again(a, b, [&] {
    return stat_of(admin_port, "node-a", "neg_rounds") > first.rounds;
  });
  // The reconciliation finds the 30 ids missing again; the memory answers
  // for them, so not one is downloaded.
  CHECK(stat_of(admin_port, "node-a", "received") == first.received);
  CHECK(stat_of(admin_port, "node-a", "neg_need_refused") >= 30);
  CHECK(stat_of(admin_port, "node-a", "refused") >= 30);
  first.check_not_fetched_again(b, id_set(good));
  // Skipped for being refused before, apart from the fresh refusals.
  auto metrics = admin(admin_port, "GET", "/metrics").response.body;
  std::smatch skipped;
  REQUIRE(std::regex_search(
    metrics, skipped,
    std::regex{"ferry_sync_refused_skipped_total\\{server=\"node-a\"\\} ([0-9]+)"}));
  CHECK(std::stoll(skipped[1].str()) >= 30);

  // `ferry console refused [SOURCE]` lists them, from the running node.
  auto gate = test::wait_for_output(
    b.process, "console-gate listening on (127\\.0\\.0\\.1:[0-9]+)");
  REQUIRE(gate);
  auto console = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"console", "--node", *gate});
    test::ferry_process run{args};
    auto status = run.wait();
    INFO(run.output());
    CHECK(status == 0);
    return run.output();
  };
  auto listed = boost::json::parse(console({"--json", "refused", "sync:node-a"}));
  REQUIRE(listed.is_array());
  std::set<std::string> listed_ids;
  for (const auto& entry : listed.as_array()) {
    CHECK(entry.at("source") == "sync:node-a");
    CHECK(entry.at("reason") == "blocked: this pubkey may not write here");
    listed_ids.insert(std::string{entry.at("id").as_string()});
  }
  CHECK(listed_ids == id_set(spam));
  auto table = console({"refused"});
  CHECK(table.find("REASON") != std::string::npos);
  CHECK(table.find(hex_id(spam.front())) != std::string::npos);
  CHECK(table.find("sync:node-a") != std::string::npos);
  CHECK(console({"refused", "sync:elsewhere"}).find("(no refused events)")
        != std::string::npos);

  // Other rules for the server (by PUT): the connection restarts, forgets
  // what the old rules refused and fetches it.
  auto res = admin(admin_port, "PUT", "/api/v1/sync/servers/node-a",
                   "{\"url\":\"" + relay_url(a.port)
                     + "\",\"filters\":[{\"kinds\":[1]}],\"mode\":"
                       "\"negentropy\",\"overlap_window_seconds\":3600,"
                       "\"tls\":{\"mode\":\"disabled\"},"
                       "\"policy\":{\"max_tags\":50}}");
  require_answered(res, b.process);
  INFO(res.response.body);
  REQUIRE(res.response.status == 200);
  auto all = id_set(good);
  for (const auto& id : id_set(spam))
    all.insert(id);
  require_exactly(a, b, kind1_all, all);
  CHECK(b.process.kill(SIGTERM) == 0);
  CHECK(a.process.kill(SIGTERM) == 0);
}

TEST_CASE("ferry import and ferry sync judge events by the rules and the "
          "plugin as the node does",
          "[integration][policy][cli]") {
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  // One of each verdict: stored, refused by a rule, refused and shadowed by
  // the plugin.
  auto judged = [&](const std::string& tag) {
    return std::vector<nostr::event>{
      test::make_note(keys, now, tag + " fine"),
      test::make_note(keys, now, tag + " dm", 4),
      test::make_note(keys, now, tag + " spam"),
      test::make_note(keys, now, tag + " shadow")};
  };
  auto rules = "[policy]\ndenied_kinds = [4]\n[policy.plugin]\ncommand = \""
               + plugin("keyword.sh") + "\"\n";
  auto exported = [](const std::string& config) {
    test::ferry_process p{{"export", "--config", config}};
    REQUIRE(p.wait() == 0);
    return p.output();
  };

  test::temp_dir import_dir;
  auto import_cfg = policy_config(import_dir, rules);
  auto imported = judged("imported");
  std::string jsonl;
  for (auto& ev : imported)
    jsonl += nostr::to_json(ev) + "\n";
  test::write_file(import_dir.file("in.jsonl"), jsonl);
  test::ferry_process import{
    {"import", import_dir.file("in.jsonl"), "--config", import_cfg}};
  REQUIRE(import.wait() == 0);
  CHECK(import.output().find("accepted 1, duplicate 0, invalid 0, refused 3")
        != std::string::npos);
  CHECK(exported(import_cfg) == nostr::to_json(imported[0]) + "\n");

  test::temp_dir remote_dir, sync_dir;
  node remote{test::node_config(remote_dir)};
  auto synced = judged("synced");
  publish(remote.port, synced);
  auto sync_cfg = policy_config(sync_dir, rules);
  test::ferry_process sync{
    {"sync", relay_url(remote.port), "--config", sync_cfg}};
  auto status = sync.wait();
  INFO(sync.output());
  CHECK(status == 0);
  CHECK(sync.output().find("stored 1,") != std::string::npos);
  CHECK(exported(sync_cfg) == nostr::to_json(synced[0]) + "\n");
  // Again: the three it refused are remembered, so none is fetched.
  test::ferry_process again{
    {"sync", relay_url(remote.port), "--config", sync_cfg}};
  status = again.wait();
  INFO(again.output());
  CHECK(status == 0);
  CHECK(again.output().find("need 3; fetched 0, stored 0, duplicate 0, "
                            "rejected 0, refused before 3,")
        != std::string::npos);
  stop(remote);
}
