#include "actors/ingest/policy.hpp"

#include "actors/ingest/plugin_host.hpp"
#include "actors/ingest/verifier.hpp"
#include "actors/ingest/writer.hpp"
#include "messages/clock.hpp"
#include "net/io_runtime.hpp"
#include "store/refused_store.hpp"
#include "tests/fixtures/paths.hpp"
#include "tests/fixtures/threaded_actor_system.hpp"
#include "tests/store/store_fixture.hpp"

#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <thread>

using namespace ferry;
using namespace std::chrono_literals;
using ferry::store::test::make_event;

namespace {

std::string plugin_path(const std::string& name) {
  return test::source_dir() + "/tests/plugins/" + name;
}

/// The ingest path as the node builds it: verifier → policy (→ plugin) →
/// writer, over a real store.
struct fixture : test::threaded_actor_system {
  store::test::store_fixture db;
  net::io_runtime io{1};
  nostr::keypair keys = nostr::generate_keypair();
  writer_actor writer;
  plugin_host_actor plugin;
  policy_actor pol;
  verifier_actor verifier;
  /// What a config reload would replace.
  live_value_ptr<config::policy_config> live_policy;

  void start(config::policy_config cfg) {
    live_policy = std::make_shared<live_value<config::policy_config>>(cfg);
    auto writer_slot = std::make_shared<handle_slot<writer_actor>>();
    writer = sys.spawn<caf::detached>(ferry::writer, db.store.get(),
                                      handle_slot_ptr<hub_actor>{},
                                      writer_config{});
    writer_slot->set(writer);
    handle_slot_ptr<plugin_host_actor> plugin_slot;
    if (!cfg.plugin.command.empty()) {
      plugin_host_config hcfg;
      hcfg.command = cfg.plugin.command;
      hcfg.timeout = cfg.plugin.timeout;
      plugin = sys.spawn(plugin_host, hcfg, &io.context());
      plugin_slot = std::make_shared<handle_slot<plugin_host_actor>>(plugin);
    }
    pol = sys.spawn(policy, live_policy, db.store.get(), writer_slot,
                    plugin_slot);
    auto policy_slot = std::make_shared<handle_slot<policy_actor>>(pol);
    verifier = sys.spawn(ferry::verifier, db.store.get(), writer_slot,
                         policy_slot, cfg.remember_refused.max_entries > 0);
  }

  /// Kind 4 refused by the built-in rules; "spam" refused and "shadow"
  /// shadow-rejected by the keyword plugin.
  void start_denying_dms_and_spam() {
    config::policy_config cfg;
    cfg.denied_kinds = {4};
    cfg.plugin.command = plugin_path("keyword.sh");
    start(cfg);
  }

  ~fixture() {
    for (auto a : {caf::actor_cast<caf::actor>(verifier),
                   caf::actor_cast<caf::actor>(pol),
                   caf::actor_cast<caf::actor>(plugin),
                   caf::actor_cast<caf::actor>(writer)})
      if (a) {
        self->send_exit(a, caf::exit_reason::user_shutdown);
        self->wait_for(a);
      }
  }

  ingest_item_ptr item(std::string content, std::string source = "sync:s1",
                       uint32_t kind = 1, int64_t created_at = 1'700'000'000) {
    auto x = std::make_shared<ingest_item>();
    x->data = make_event(keys, kind, created_at, {}, std::move(content));
    x->source = std::move(source);
    return x;
  }

  /// An event from a client at 127.0.0.1, as a client session sends it.
  ingest_item_ptr from_client(std::string content, uint32_t kind = 1) {
    auto x = item(std::move(content), "client", kind);
    x->source_info = "127.0.0.1";
    return x;
  }

  /// Polls the plugin host until `n` requests wait for the plugin.
  bool plugin_holds(int64_t n) {
    for (int i = 0; i < 1000; ++i) {
      int64_t waiting = -1;
      self->request(plugin, 10s, atom::get_v, atom::status_v)
        .receive([&](status_map& m) { waiting = caf::get_or(m, "waiting", int64_t{-1}); },
                 [](caf::error& err) { FAIL(caf::to_string(err)); });
      if (waiting >= n)
        return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  void stop(const caf::actor& a) {
    self->send_exit(a, caf::exit_reason::user_shutdown);
    self->wait_for(a);
  }

  ingest_result ingest(const ingest_item_ptr& x) {
    ingest_result result;
    self->request(verifier, 10s, atom::ingest_v, x)
      .receive([&](ingest_result& r) { result = std::move(r); },
               [](caf::error& err) { FAIL(caf::to_string(err)); });
    return result;
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "the policy step stores what it accepts and "
                          "nothing else",
                 "[policy]") {
  start_denying_dms_and_spam();
  auto fine = item("hello");
  CHECK(ingest(fine).status == ingest_status::stored);
  CHECK(db.store->contains(fine->data.ev.id));

  auto dm = item("psst", "sync:s1", 4);
  auto r = ingest(dm);
  CHECK(r.status == ingest_status::refused);
  CHECK(r.message == "blocked: kind 4 is not accepted here");
  CHECK_FALSE(db.store->contains(dm->data.ev.id));

  auto spam = item("spam");
  r = ingest(spam);
  CHECK(r.status == ingest_status::refused);
  CHECK(r.message == "blocked: no spam here");
  CHECK_FALSE(db.store->contains(spam->data.ev.id));

  auto shadow = item("shadow");
  r = ingest(shadow);
  CHECK(r.status == ingest_status::shadowed);
  CHECK(r.accepted());
  CHECK_FALSE(db.store->contains(shadow->data.ev.id));
}

TEST_CASE_METHOD(fixture, "a batch through the policy step gets each "
                          "event's verdict, in its order",
                 "[policy]") {
  start_denying_dms_and_spam();
  auto fine = item("hello");
  auto dm = item("psst", "sync:s1", 4);
  auto spam = item("spam");
  auto bad_sig = item("broken");
  bad_sig->data.ev.sig[0] ^= 1;
  auto shadow = item("shadow");
  auto also_fine = item("hello again");
  ingest_results answers;
  self->request(verifier, 10s, atom::ingest_v,
                ingest_batch{fine, dm, spam, bad_sig, shadow, also_fine})
    .receive([&](ingest_results& r) { answers = std::move(r); },
             [](caf::error& err) { FAIL(caf::to_string(err)); });
  REQUIRE(answers.size() == 6);
  CHECK(answers[0].status == ingest_status::stored);
  CHECK(answers[1].message == "blocked: kind 4 is not accepted here");
  CHECK(answers[2].message == "blocked: no spam here");
  CHECK(answers[3].message == "invalid: bad signature");
  CHECK(answers[4].status == ingest_status::shadowed);
  CHECK(answers[5].status == ingest_status::stored);
  CHECK(db.store->contains(fine->data.ev.id));
  CHECK(db.store->contains(also_fine->data.ev.id));
  for (const auto& x : {dm, spam, bad_sig, shadow})
    CHECK_FALSE(db.store->contains(x->data.ev.id));
}

TEST_CASE_METHOD(fixture, "new built-in rules apply from the next event "
                          "after a reload",
                 "[policy]") {
  config::policy_config cfg;
  cfg.denied_kinds = {4};
  start(cfg);
  auto first = from_client("first dm", 4);
  CHECK(ingest(first).status == ingest_status::refused);
  // A client's refusal is not remembered: it is judged again each time.
  CHECK(store::latest_refused(*db.store, "", 10).empty());
  cfg.denied_kinds = {7};
  live_policy->set(cfg);
  CHECK(ingest(first).status == ingest_status::stored);
  auto dm = from_client("second dm", 4);
  CHECK(ingest(dm).status == ingest_status::stored);
  CHECK(db.store->contains(dm->data.ev.id));
  auto r = ingest(from_client("a like", 7));
  CHECK(r.status == ingest_status::refused);
  CHECK(r.message == "blocked: kind 7 is not accepted here");
}

TEST_CASE_METHOD(fixture, "a remote's refused events are remembered and "
                          "answered again without a signature check",
                 "[policy]") {
  config::policy_config cfg;
  cfg.plugin.command = plugin_path("keyword.sh");
  start(cfg);
  auto spam = item("spam");
  CHECK(ingest(spam).message == "blocked: no spam here");
  auto remembered = store::find_refused(*db.store, "sync:s1", spam->data.ev.id);
  REQUIRE(remembered);
  CHECK(remembered->reason == "blocked: no spam here");

  // The same event again from the same source, with its signature broken:
  // the memory answers, so no check (and no plugin) runs.
  auto again = std::make_shared<ingest_item>(*spam);
  again->data.ev.sig[0] ^= 1;
  auto r = ingest(again);
  CHECK(r.status == ingest_status::refused);
  CHECK(r.message == "blocked: no spam here");
  int64_t skipped = -1;
  self->request(verifier, 10s, atom::get_v, atom::status_v)
    .receive([&](status_map& m) { skipped = caf::get_or(m, "skipped_refused", int64_t{-1}); },
             [](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(skipped == 1);

  // Another source's copy is judged on its own.
  CHECK(ingest(item("spam", "sync:s2")).message == "blocked: no spam here");
  // A client's refusal is not remembered (nothing would look it up).
  auto from_client = item("spam from a client", "client");
  CHECK(ingest(from_client).status == ingest_status::refused);
  CHECK_FALSE(store::find_refused(*db.store, "client", from_client->data.ev.id));
}

TEST_CASE_METHOD(fixture, "a bad signature from a remote is remembered, a "
                          "rate limit is not",
                 "[policy]") {
  config::policy_config cfg;
  cfg.rate_source = {0.001, 1};
  start(cfg);
  auto forged = item("forged");
  forged->data.ev.sig[5] ^= 1;
  CHECK(ingest(forged).status == ingest_status::invalid);
  auto remembered = store::find_refused(*db.store, "sync:s1", forged->data.ev.id);
  REQUIRE(remembered);
  CHECK(remembered->reason == "invalid: bad signature");

  CHECK(ingest(item("one")).status == ingest_status::stored);
  auto limited = item("two");
  CHECK(ingest(limited).message.rfind("rate-limited: ", 0) == 0);
  CHECK_FALSE(store::find_refused(*db.store, "sync:s1", limited->data.ev.id));
}

TEST_CASE_METHOD(fixture, "a created_at too far ahead is refused for now "
                          "only, one too old for good",
                 "[policy]") {
  config::policy_config cfg;
  cfg.max_future_seconds = 60;
  cfg.max_age_seconds = 3600;
  start(cfg);
  auto now = unix_now();
  auto early = item("from the future", "sync:s1", 1, now + 600);
  auto r = ingest(early);
  CHECK(r.status == ingest_status::refused);
  CHECK(r.message == "blocked: created_at is more than 60 seconds in the future");
  CHECK(is_temporary_refusal(r.message));
  // Time makes it acceptable: a later catch-up must fetch it again.
  CHECK_FALSE(store::find_refused(*db.store, "sync:s1", early->data.ev.id));

  auto old = item("from the past", "sync:s1", 1, now - 7200);
  r = ingest(old);
  CHECK(r.message == "blocked: created_at is more than 3600 seconds in the past");
  CHECK_FALSE(is_temporary_refusal(r.message));
  CHECK(store::find_refused(*db.store, "sync:s1", old->data.ev.id));
}

TEST_CASE_METHOD(fixture, "with the memory off nothing is remembered",
                 "[policy]") {
  config::policy_config cfg;
  cfg.denied_kinds = {4};
  cfg.remember_refused.max_entries = 0;
  start(cfg);
  auto dm = item("psst", "sync:s1", 4);
  CHECK(ingest(dm).status == ingest_status::refused);
  CHECK_FALSE(store::find_refused(*db.store, "sync:s1", dm->data.ev.id));
}

TEST_CASE("the policy's fingerprint follows the plugin script's contents",
          "[policy]") {
  auto script = std::filesystem::temp_directory_path()
                / ("ferry-plugin-" + nostr::to_hex(nostr::generate_keypair().pubkey)
                   + ".sh");
  auto write = [&](const std::string& text) {
    std::ofstream out{script, std::ios::trunc};
    out << text;
  };
  config::policy_config cfg;
  cfg.plugin.command = script.string();
  write("#!/bin/sh\n# rejects kind 4\n");
  auto first = policy_fingerprint(cfg);
  CHECK(policy_fingerprint(cfg) == first);
  write("#!/bin/sh\n# accepts everything\n");
  auto edited = policy_fingerprint(cfg);
  CHECK(edited != first);
  // Through the shell the command names no one file: only its text counts.
  config::policy_config shell = cfg;
  shell.plugin.command = "sh " + script.string();
  auto via_shell = policy_fingerprint(shell);
  write("#!/bin/sh\n# rejects kind 4\n");
  CHECK(policy_fingerprint(shell) == via_shell);
  CHECK(policy_fingerprint(cfg) == first);
  std::filesystem::remove(script);
  CHECK(policy_fingerprint(cfg) != first);
}

TEST_CASE_METHOD(fixture, "an ingest actor that ends while a batch's events "
                          "wait in it answers each of them",
                 "[policy]") {
  // CAF 0.17 drops the promises of an actor that ends, and the requesters
  // (sessions, relay connections, pulls) ask without a timeout.
  config::policy_config cfg;
  cfg.plugin.command = plugin_path("hang.js");
  cfg.plugin.timeout = 10min;
  start(cfg);
  auto first = item("one");
  auto second = item("two");
  self->send(verifier, atom::ingest_v, ingest_batch{first, second});
  REQUIRE(plugin_holds(2));
  std::string expected;
  SECTION("the verifier") {
    stop(caf::actor_cast<caf::actor>(verifier));
    expected = "error: the verifier stopped before this event was answered; "
               "try again";
  }
  SECTION("the policy") {
    stop(caf::actor_cast<caf::actor>(pol));
    expected = "error: the write policy stopped before judging this event; "
               "try again";
  }
  SECTION("the plugin host (its fallback applies)") {
    stop(caf::actor_cast<caf::actor>(plugin));
    expected = "error: the write policy plugin could not judge this event "
               "(the plugin host stopped)";
  }
  ingest_results answers;
  self->receive([&](ingest_results& r) { answers = std::move(r); },
                [](caf::error& err) { FAIL(caf::to_string(err)); },
                caf::after(10s) >> [] { FAIL("the batch was never answered"); });
  REQUIRE(answers.size() == 2);
  for (const auto& a : answers) {
    CHECK_FALSE(a.accepted());
    CHECK(a.message == expected);
  }
  CHECK_FALSE(db.store->contains(first->data.ev.id));
  CHECK_FALSE(db.store->contains(second->data.ev.id));
}
