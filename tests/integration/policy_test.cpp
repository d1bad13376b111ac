// The write policy seen from outside: a real `ferry node` with [policy]
// rules and a strfry plugin, a client on a real WebSocket, and a second node
// syncing from a first one whose events the policy refuses.

#include "tests/integration/sync_helpers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>


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

std::string ok_frame(const nostr::event& ev, bool accepted, const std::string& msg) {
  return "[\"OK\",\"" + hex_id(ev) + "\"," + (accepted ? "true" : "false")
         + ",\"" + msg + "\"]";
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
  test::temp_dir dir_a, dir_b;
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  auto good = make_events(keys, 20, now - 10, 1, "good");
  auto spam = make_events(keys, 30, now - 100, 1, "spam");
  node a{test::node_config(dir_a)};
  publish(a.port, good);
  publish(a.port, spam);

  node b{plugin_sync_config(dir_b, a.port, plugin("keyword.sh"))};
  require_exactly(a, b, kind1_all, id_set(good));
  auto admin_port = b.admin_port();
  wait_refused(admin_port, 30);
  auto received = stat_of(admin_port, "node-a", "received");
  auto rejected = stat_of(admin_port, "node-a", "rejected");
  auto rounds = stat_of(admin_port, "node-a", "neg_rounds");
  CHECK(received >= 50);
  CHECK(rounds > 0);

  auto res = admin(admin_port, "POST", "/api/v1/sync/servers/node-a/sync-now");
  require_answered(res, b.process);
  REQUIRE(res.response.status < 300);
  bool caught_up = test::poll_until(
    [&] {
      return stat_of(admin_port, "node-a", "neg_rounds") > rounds
             && stat_flag(admin_port, "node-a", "catchup_complete");
    },
    10s);
  INFO(sync_reports(admin_port, "node-a") << logs(&a.process, &b.process));
  REQUIRE(caught_up);
  // The reconciliation still finds the 30 ids missing here, but they are
  // remembered as refused: none is downloaded again.
  CHECK(stat_of(admin_port, "node-a", "received") == received);
  CHECK(stat_of(admin_port, "node-a", "rejected") == rejected);
  CHECK(ids_of(b.port, kind1_all) == id_set(good));
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
  stop(remote);
}
