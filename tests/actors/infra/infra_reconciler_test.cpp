#include "actors/infra/infra_reconciler.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/infra/relay_registry.hpp"
#include "messages/clock.hpp"
#include "messages/cluster/rendezvous.hpp"
#include "messages/error.hpp"
#include "messages/nostr/nip98.hpp"
#include "store/column_families.hpp"
#include "store/hosted_relay_store.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/fixtures/json.hpp"
#include "tests/fixtures/quiet_log.hpp"
#include "tests/store/store_fixture.hpp"

#include <caf/after.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <rocksdb/db.h>

#include <memory>

using namespace ferry;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace json = boost::json;

// -- retry arithmetic -------------------------------------------------------------

TEST_CASE("retry delays double from the base up to the cap", "[infra]") {
  auto base = caf::timespan{30s};
  auto cap = caf::timespan{15min};
  CHECK(retry_delay(1, base, cap) == caf::timespan{30s});
  CHECK(retry_delay(2, base, cap) == caf::timespan{60s});
  CHECK(retry_delay(3, base, cap) == caf::timespan{120s});
  CHECK(retry_delay(4, base, cap) == caf::timespan{240s});
  CHECK(retry_delay(5, base, cap) == caf::timespan{480s});
  // 960 s would exceed the cap.
  CHECK(retry_delay(6, base, cap) == caf::timespan{15min});
  CHECK(retry_delay(1000, base, cap) == caf::timespan{15min});
  CHECK(retry_delay(UINT32_MAX, base, cap) == caf::timespan{15min});
  // Attempt 0 is treated as the first; a base above the cap is capped.
  CHECK(retry_delay(0, base, cap) == caf::timespan{30s});
  CHECK(retry_delay(1, caf::timespan{1h}, cap) == caf::timespan{15min});
}

// -- the management API body ------------------------------------------------------

namespace {

const std::string owner
  = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

std::string relay_body(const std::string& id, const std::string& extra = {}) {
  return R"({"id":")" + id + R"(","subdomain":")" + id + R"(","schema":")"
         + id + R"(_db","info":{"name":"Relay )" + id + R"(","pubkey":")"
         + owner + R"("})" + extra + "}";
}

config::infra_config test_settings() {
  config::infra_config s;
  s.api_url = "http://127.0.0.1:9/zooid";
  s.relay_domain = "relays.test";
  s.roles_json = R"({"member":{"pubkeys":[],"can_invite":true}})";
  s.blossom.bucket = "media";
  s.blossom.region = "eu";
  s.blossom.secret_key = "s3-secret";
  s.livekit.server_url = "wss://lk.test";
  s.livekit.api_key = "lk-key";
  return s;
}

using test::parse_object;

} // namespace

TEST_CASE("the management body carries the relay and the node's settings",
          "[infra]") {
  auto relay = parse_hosted_relay(relay_body(
    "club", R"(,"status":"delinquent","groups":{"enabled":true},)"
            R"("blossom_enabled":true,"livekit_enabled":true)"));
  REQUIRE(relay);
  auto body = parse_object(management_body(*relay, test_settings(), "sek"));
  CHECK(body.at("host") == "club.relays.test");
  CHECK(body.at("schema") == "club_db");
  CHECK(body.at("secret") == "sek");
  CHECK(body.at("inactive") == true);
  CHECK(body.at("info").at("pubkey").as_string() == owner);
  CHECK(body.at("info").at("name") == "Relay club");
  CHECK(body.at("groups").at("enabled") == true);
  CHECK(body.at("policy") == json::object{});
  CHECK(body.at("roles").at("member").at("can_invite") == true);
  CHECK(body.at("blossom").at("adapter") == "s3");
  CHECK(body.at("blossom").at("s3").at("bucket") == "media");
  CHECK(body.at("blossom").at("s3").at("secret_key") == "s3-secret");
  CHECK(body.at("blossom").at("s3").at("key_prefix") == "club_db");
  CHECK(body.at("livekit").at("server_url") == "wss://lk.test");
  CHECK(body.at("livekit").at("api_key") == "lk-key");
  relay->status = hosted_status::active;
  relay->blossom_enabled = false;
  relay->livekit_enabled = false;
  auto update = parse_object(management_body(*relay, test_settings(), ""));
  CHECK_FALSE(update.contains("secret"));
  CHECK(update.at("inactive") == false);
  CHECK(update.at("blossom") == json::object{{"enabled", false}});
  CHECK(update.at("livekit") == json::object{{"enabled", false}});
  auto secret = generate_relay_secret();
  CHECK(secret.size() == 64);
  CHECK(secret != generate_relay_secret());
}

// -- the actors on the test clock -------------------------------------------------

namespace {

/// One request the reconciler sent, and how to answer it.
struct call {
  infra_request request;
  std::function<void(infra_response)> done;
};

struct fixture : test::deterministic_actor_system {
  store::test::store_fixture db;
  std::shared_ptr<std::vector<call>> calls
    = std::make_shared<std::vector<call>>();
  handle_slot_ptr<relay_registry_actor> registry_slot
    = std::make_shared<handle_slot<relay_registry_actor>>();
  handle_slot_ptr<infra_reconciler_actor> reconciler_slot
    = std::make_shared<handle_slot<infra_reconciler_actor>>();
  relay_registry_actor registry;
  infra_reconciler_actor reconciler;
  nostr::keypair keys = nostr::generate_keypair();
  config::infra_config settings = test_settings();
  /// What the reconciler reads; a test replaces it as a reload would.
  live_value_ptr<config::infra_config> live_settings
    = std::make_shared<live_value<config::infra_config>>();
  size_t backlog_limit = 1000;
  /// Set: the reconciler runs on this cluster member.
  std::string cluster_node;
  ferry::test::quiet_log quiet;

  fixture() {
    settings.retry_base_ms = 30000;
    settings.retry_cap_ms = 900000;
    settings.max_attempts = 6;
    // The registry offers blossom but not livekit.
    auto offer = settings;
    offer.livekit.server_url.clear();
    registry = sys.spawn(relay_registry, db.store.get(), reconciler_slot,
                         std::make_shared<live_value<config::infra_config>>(
                           offer));
    registry_slot->set(registry);
    run();
  }

  ~fixture() {
    stop_reconciler();
    self->send_exit(registry, caf::exit_reason::user_shutdown);
    run();
  }

  void start_reconciler() {
    infra_reconciler_deps deps;
    live_settings->set(settings);
    deps.settings = live_settings;
    deps.keys = keys;
    deps.registry = registry_slot;
    deps.backlog_limit = backlog_limit;
    deps.cluster_node = cluster_node;
    deps.transport = [c = calls](infra_request req,
                                 std::function<void(infra_response)> done) {
      c->push_back({std::move(req), std::move(done)});
    };
    reconciler = sys.spawn(infra_reconciler, deps);
    reconciler_slot->set(reconciler);
    run();
  }

  void stop_reconciler() {
    if (!reconciler)
      return;
    reconciler_slot->set(infra_reconciler_actor{});
    self->send_exit(reconciler, caf::exit_reason::user_shutdown);
    run();
    reconciler = nullptr;
  }

  /// Sends a request and collects its reply or error.
  template <class T, class Handle, class... Ts>
  caf::expected<T> ask(const Handle& dest, Ts&&... xs) {
    self->send(dest, std::forward<Ts>(xs)...);
    run();
    caf::expected<T> result = caf::make_error(caf::sec::request_timeout);
    self->receive([&](T& x) { result = std::move(x); },
                  [&](caf::error& err) { result = std::move(err); },
                  caf::after(0s) >> [] { FAIL("no reply"); });
    return result;
  }

  /// Asks the registry for something that must work.
  template <class... Ts>
  std::string registry_ok(Ts&&... xs) {
    auto reply = ask<std::string>(registry, std::forward<Ts>(xs)...);
    if (!reply)
      FAIL(render(reply.error()));
    return *reply;
  }

  std::string create(const std::string& id, const std::string& extra = {}) {
    return registry_ok(atom::create_v, relay_body(id, extra));
  }

  json::object relay(const std::string& id) {
    return parse_object(registry_ok(atom::get_v, atom::relay_v, id));
  }

  std::vector<std::string> activity_types(const std::string& id) {
    std::vector<std::string> types;
    auto log = json::parse(registry_ok(atom::get_v, atom::activity_v, id));
    for (auto& e : log.as_array())
      types.emplace_back(e.at("type").as_string());
    return types;
  }

  /// Answers request `i` as the management API would.
  void answer(size_t i, uint32_t status, std::string body = "{}") {
    REQUIRE(i < calls->size());
    infra_response res;
    res.status = status;
    res.body = std::move(body);
    (*calls)[i].done(std::move(res));
    run();
  }

  const infra_request& request(size_t i) {
    REQUIRE(i < calls->size());
    return (*calls)[i].request;
  }

  /// The request is signed by the node key for its own URL, method and body.
  void check_signed(const infra_request& req) {
    nostr::http_auth_event signer;
    auto why = nostr::verify_http_auth(req.authorization, req.url, req.method,
                                       req.body, unix_now(), &signer);
    INFO(req.method << " " << req.url);
    CHECK(why.empty());
    CHECK(signer.pubkey == keys.pubkey);
  }

  /// Steps the clock to just before `delay` (no request may go out), then to
  /// `delay` (exactly one must).
  void expect_retry_after(caf::timespan delay) {
    auto before = calls->size();
    advance(delay - 1ms);
    INFO("a retry went out before " << delay.count() << " ns");
    REQUIRE(calls->size() == before);
    advance(1ms);
    INFO("no retry after " << delay.count() << " ns");
    REQUIRE(calls->size() == before + 1);
  }

  /// Creates relay `id`, answers its POST, then deletes it: the second
  /// request is out.
  void push_then_delete(const std::string& id) {
    auto before = calls->size();
    create(id);
    answer(before, 201);
    registry_ok(atom::erase_v, id);
    REQUIRE(calls->size() == before + 2);
  }

  health_report health() {
    auto reply = ask<health_report>(reconciler, atom::health_v);
    REQUIRE(reply);
    return *reply;
  }

  /// Every value of a column family, to look for what must not be stored.
  std::string all_values(store::cf family) {
    std::string out;
    std::unique_ptr<rocksdb::Iterator> it{db.store->db()->NewIterator(
      rocksdb::ReadOptions{}, db.store->handle(family))};
    for (it->SeekToFirst(); it->Valid(); it->Next())
      out += it->value().ToString() + "\n";
    return out;
  }
};

} // namespace

TEST_CASE_METHOD(fixture,
                 "a new relay is POSTed with a secret, changes are PATCHed",
                 "[infra]") {
  start_reconciler();
  CHECK(calls->empty());
  create("club");
  REQUIRE(calls->size() == 1);
  auto& post = request(0);
  CHECK(post.method == "POST");
  CHECK(post.url == "http://127.0.0.1:9/zooid/relay/club");
  check_signed(post);
  auto body = parse_object(post.body);
  auto secret = std::string{body.at("secret").as_string()};
  CHECK(secret.size() == 64);
  CHECK(body.at("host") == "club.relays.test");
  CHECK(body.at("inactive") == false);
  CHECK_FALSE(relay("club").at("synced").as_bool());
  answer(0, 201);
  CHECK(relay("club").at("synced").as_bool());
  CHECK(activity_types("club")
        == std::vector<std::string>{"create_relay", "complete_relay_sync"});

  registry_ok(atom::patch_v, std::string{"club"},
              std::string{R"({"info":{"name":"Renamed"}})"});
  REQUIRE(calls->size() == 2);
  CHECK(request(1).method == "PATCH");
  check_signed(request(1));
  auto update = parse_object(request(1).body);
  CHECK_FALSE(update.contains("secret"));
  CHECK(update.at("info").at("name") == "Renamed");
  answer(1, 200);

  registry_ok(atom::deactivate_v, std::string{"club"});
  REQUIRE(calls->size() == 3);
  CHECK(request(2).method == "PATCH");
  CHECK(parse_object(request(2).body).at("inactive") == true);
  answer(2, 200);
  CHECK(relay("club").at("synced").as_bool());
  CHECK(relay("club").at("status") == "inactive");
  CHECK(activity_types("club")
        == std::vector<std::string>{"create_relay", "complete_relay_sync",
                                    "update_relay", "complete_relay_sync",
                                    "deactivate_relay",
                                    "complete_relay_sync"});
  // The secret went out once and lives nowhere in the store.
  for (auto family : {store::cf::hosted_relays, store::cf::activity,
                      store::cf::meta})
    CHECK_THAT(all_values(family), !Contains(secret));
  auto status = ask<status_map>(reconciler, atom::get_v, atom::status_v);
  REQUIRE(status);
  CHECK(caf::get_or(*status, "syncs_ok", int64_t{0}) == 3);
}

TEST_CASE_METHOD(fixture,
                 "failures are retried after 30 s x 2^(n-1) and given up "
                 "after 6",
                 "[infra]") {
  start_reconciler();
  create("club");
  REQUIRE(calls->size() == 1);
  answer(0, 500, "database is down");
  // A failure never syncs at once: it only puts a retry on the clock.
  CHECK(calls->size() == 1);
  CHECK(relay("club").at("sync_error")
        == "POST /relay/club: HTTP 500: database is down");
  for (int n = 1; n <= 5; ++n) {
    INFO("retry " << n);
    expect_retry_after(caf::timespan{30s} * (1 << (n - 1)));
    // Never synced, so every retry still creates.
    CHECK(request(calls->size() - 1).method == "POST");
    check_signed(request(calls->size() - 1));
    answer(calls->size() - 1, 503, "busy");
  }
  REQUIRE(calls->size() == 6);
  advance(24h);
  CHECK(calls->size() == 6);
  auto report = health();
  CHECK(report.status == "degraded");
  REQUIRE(report.reasons.size() == 1);
  CHECK_THAT(report.reasons[0], Contains("club")
                                  && Contains("after 6 failed attempts")
                                  && Contains("HTTP 503: busy"));
  auto row = relay("club");
  CHECK(row.at("failed_attempts") == 6);
  CHECK(row.at("given_up") == true);
  auto status = ask<status_map>(reconciler, atom::get_v, atom::status_v);
  REQUIRE(status);
  CHECK(caf::get_or(*status, "retries_scheduled", int64_t{0}) == 5);
  CHECK(caf::get_or(*status, "syncs_failed", int64_t{0}) == 6);

  // A change starts over: synced at once, the given-up mark is gone.
  registry_ok(atom::activate_v, std::string{"club"});
  REQUIRE(calls->size() == 7);
  CHECK(request(6).method == "POST");
  CHECK(health().status == "ok");
  answer(6, 201);
  CHECK(relay("club").at("synced").as_bool());
  CHECK(relay("club").at("failed_attempts") == 0);
}

TEST_CASE_METHOD(fixture, "retry delays stop growing at the cap", "[infra]") {
  settings.retry_base_ms = 30000;
  settings.retry_cap_ms = 100000;
  settings.max_attempts = 5;
  start_reconciler();
  create("club");
  answer(0, 500);
  for (auto delay : {30s, 60s, 100s, 100s}) {
    expect_retry_after(delay);
    answer(calls->size() - 1, 500);
  }
  advance(1h);
  CHECK(calls->size() == 5);
  CHECK(health().status == "degraded");
}

TEST_CASE_METHOD(fixture,
                 "a restarted reconciler resumes the retries from the log",
                 "[infra]") {
  start_reconciler();
  create("club");
  answer(0, 500);
  expect_retry_after(30s);
  answer(1, 500);
  expect_retry_after(60s);
  answer(2, 500);
  // Three failures in the log; the next retry would wait 120 s.
  stop_reconciler();
  // Meanwhile another relay is created: nobody hears about it.
  create("fresh");
  CHECK(calls->size() == 3);
  start_reconciler();
  // The relay without an error is synced at once; the failing one waits for
  // its fourth attempt's delay, measured from the restart.
  REQUIRE(calls->size() == 4);
  CHECK(request(3).url == "http://127.0.0.1:9/zooid/relay/fresh");
  answer(3, 201);
  expect_retry_after(120s);
  CHECK(request(4).url == "http://127.0.0.1:9/zooid/relay/club");
  answer(4, 500);
  expect_retry_after(240s);
  answer(5, 201);
  CHECK(relay("club").at("synced").as_bool());
  auto status = ask<status_map>(reconciler, atom::get_v, atom::status_v);
  REQUIRE(status);
  CHECK(caf::get_or(*status, "reconciles", int64_t{0}) == 1);
}

TEST_CASE_METHOD(fixture,
                 "a gap in the activity sequence makes it reconcile",
                 "[infra]") {
  start_reconciler();
  create("a");
  answer(0, 201);
  // An activity the reconciler never hears of.
  reconciler_slot->set(infra_reconciler_actor{});
  create("b");
  reconciler_slot->set(reconciler);
  CHECK(calls->size() == 1);
  // The next activity it hears of is two ahead: it reconciles.
  registry_ok(atom::patch_v, std::string{"a"},
              std::string{R"({"info":{"name":"A"}})"});
  REQUIRE(calls->size() == 3);
  std::vector<std::string> urls{request(1).url, request(2).url};
  std::sort(urls.begin(), urls.end());
  CHECK(urls
        == std::vector<std::string>{"http://127.0.0.1:9/zooid/relay/a",
                                    "http://127.0.0.1:9/zooid/relay/b"});
  auto status = ask<status_map>(reconciler, atom::get_v, atom::status_v);
  REQUIRE(status);
  CHECK(caf::get_or(*status, "reconciles", int64_t{0}) == 2);
}

TEST_CASE_METHOD(fixture,
                 "a flooded mailbox is reconciled in one go, each relay once",
                 "[infra]") {
  backlog_limit = 0;
  start_reconciler();
  for (auto id : {"a", "b", "c"})
    self->send(registry, atom::create_v, relay_body(id));
  run();
  REQUIRE(calls->size() == 3);
  std::vector<std::string> urls;
  for (auto& c : *calls)
    urls.push_back(c.request.url);
  std::sort(urls.begin(), urls.end());
  CHECK(urls.back() == "http://127.0.0.1:9/zooid/relay/c");
  CHECK(std::unique(urls.begin(), urls.end()) == urls.end());
  auto status = ask<status_map>(reconciler, atom::get_v, atom::status_v);
  REQUIRE(status);
  CHECK(caf::get_or(*status, "reconciles", int64_t{0}) == 2);
}

TEST_CASE_METHOD(fixture, "a relay deleted before its retry is a no-op",
                 "[infra]") {
  start_reconciler();
  create("club");
  answer(0, 500);
  // Deleted without the reconciler hearing of it: its retry finds nothing.
  reconciler_slot->set(infra_reconciler_actor{});
  registry_ok(atom::erase_v, std::string{"club"});
  reconciler_slot->set(reconciler);
  advance(1h);
  CHECK(calls->size() == 1);
  CHECK(health().status == "ok");
  auto gone = ask<std::string>(registry, atom::get_v, atom::relay_v,
                               std::string{"club"});
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code() == static_cast<uint8_t>(ec::not_found));
}

TEST_CASE_METHOD(fixture,
                 "a change during a request is pushed right after it",
                 "[infra]") {
  start_reconciler();
  create("club");
  REQUIRE(calls->size() == 1);
  registry_ok(atom::patch_v, std::string{"club"},
              std::string{R"({"info":{"name":"Second"}})"});
  // One request at a time per relay.
  CHECK(calls->size() == 1);
  answer(0, 201);
  // The POST pushed the first version: not synced until the second is.
  CHECK_FALSE(relay("club").at("synced").as_bool());
  REQUIRE(calls->size() == 2);
  CHECK(request(1).method == "PATCH");
  CHECK(parse_object(request(1).body).at("info").at("name") == "Second");
  answer(1, 200);
  CHECK(relay("club").at("synced").as_bool());
}

TEST_CASE_METHOD(fixture, "a POST answered 409 is followed by a PATCH",
                 "[infra]") {
  start_reconciler();
  create("club");
  answer(0, 409, R"({"error":"relay with this id already exists"})");
  REQUIRE(calls->size() == 2);
  CHECK(request(1).method == "PATCH");
  check_signed(request(1));
  CHECK_FALSE(parse_object(request(1).body).contains("secret"));
  answer(1, 200);
  CHECK(relay("club").at("synced").as_bool());
  CHECK(activity_types("club")
        == std::vector<std::string>{"create_relay", "complete_relay_sync"});
}

TEST_CASE_METHOD(fixture, "members come from the management API", "[infra]") {
  start_reconciler();
  create("club");
  answer(0, 201);
  self->send(reconciler, atom::members_v, std::string{"club"});
  run();
  REQUIRE(calls->size() == 2);
  CHECK(request(1).method == "GET");
  CHECK(request(1).url == "http://127.0.0.1:9/zooid/relay/club/members");
  check_signed(request(1));
  answer(1, 200, R"({"members":[")" + owner + R"("]})");
  std::string members;
  self->receive([&](std::string& x) { members = x; },
                [&](caf::error& err) { FAIL(render(err)); },
                caf::after(0s) >> [] { FAIL("no reply"); });
  CHECK(parse_object(members).at("members").as_array().size() == 1);

  auto unknown = ask<std::string>(reconciler, atom::members_v,
                                  std::string{"nope"});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code() == static_cast<uint8_t>(ec::not_found));

  self->send(reconciler, atom::members_v, std::string{"club"});
  run();
  answer(2, 404, R"({"error":"relay not found"})");
  caf::error failure;
  self->receive([&](std::string&) { FAIL("expected an error"); },
                [&](caf::error& err) { failure = err; },
                caf::after(0s) >> [] { FAIL("no reply"); });
  CHECK(failure.code() == static_cast<uint8_t>(ec::upstream_failure));
  // The error names the relay it was about, not an elided path.
  CHECK_THAT(render(failure),
             Contains("management API: GET /relay/club/members: HTTP 404"));

  auto failed_members = [&](size_t i, infra_response res) {
    self->send(reconciler, atom::members_v, std::string{"club"});
    run();
    REQUIRE(i < calls->size());
    (*calls)[i].done(std::move(res));
    run();
    std::string why;
    self->receive([&](std::string&) { FAIL("expected an error"); },
                  [&](caf::error& err) { why = render(err); },
                  caf::after(0s) >> [] { FAIL("no reply"); });
    return why;
  };
  infra_response not_json;
  not_json.status = 200;
  not_json.body = "<html>";
  CHECK_THAT(failed_members(3, not_json),
             Contains("GET /relay/club/members: the answer is not JSON"));
  infra_response timed_out;
  timed_out.error = "timeout: no HTTP response from 127.0.0.1:9 within "
                    "10000 ms (connected, request sent)";
  CHECK_THAT(failed_members(4, timed_out),
             Contains("GET /relay/club/members: timeout: no HTTP response"));
}

TEST_CASE_METHOD(fixture, "the registry refuses conflicts naming the field",
                 "[infra]") {
  start_reconciler();
  create("club");
  answer(0, 201);
  auto again = ask<std::string>(registry, atom::create_v, relay_body("club"));
  REQUIRE_FALSE(again);
  CHECK(again.error().code() == static_cast<uint8_t>(ec::conflict));
  CHECK_THAT(render(again.error()), Catch::Matchers::StartsWith("id: "));
  auto same_subdomain = ask<std::string>(
    registry, atom::create_v,
    std::string{R"({"id":"other","subdomain":"club","schema":"other",)"
                R"("info":{"pubkey":")"}
      + owner + R"("}})");
  REQUIRE_FALSE(same_subdomain);
  CHECK_THAT(render(same_subdomain.error()),
             Catch::Matchers::StartsWith("subdomain: "));
  // Synced once, so its schema is fixed.
  auto schema = ask<std::string>(registry, atom::patch_v, std::string{"club"},
                                 std::string{R"({"schema":"renamed"})"});
  REQUIRE_FALSE(schema);
  CHECK(schema.error().code() == static_cast<uint8_t>(ec::conflict));
  CHECK_THAT(render(schema.error()), Catch::Matchers::StartsWith("schema: "));
  // Livekit is not configured in this registry.
  auto livekit = ask<std::string>(registry, atom::patch_v, std::string{"club"},
                                  std::string{R"({"livekit_enabled":true})"});
  REQUIRE_FALSE(livekit);
  CHECK(livekit.error().code() == static_cast<uint8_t>(ec::invalid_input));
  CHECK_THAT(render(livekit.error()),
             Catch::Matchers::StartsWith("livekit_enabled: "));
  CHECK(calls->size() == 1);
}

TEST_CASE_METHOD(fixture, "an idle reconciler sends nothing", "[infra]") {
  settings.api_url.clear();
  start_reconciler();
  create("club");
  advance(1h);
  CHECK(calls->empty());
  CHECK(health().status == "ok");
  auto members = ask<std::string>(reconciler, atom::members_v,
                                  std::string{"club"});
  REQUIRE_FALSE(members);
  CHECK_THAT(render(members.error()), Contains("idle"));
}

TEST_CASE_METHOD(fixture,
                 "after a reload marks every relay, each is pushed again to "
                 "the new API with the new host, the one in flight too",
                 "[infra]") {
  start_reconciler();
  create("club");
  create("band");
  REQUIRE(calls->size() == 2);
  answer(0, 201);
  // band's POST is still out when the reload comes.
  settings.api_url = "http://127.0.0.1:9/moved";
  settings.relay_domain = "new.test";
  live_settings->set(settings);
  auto marked = ask<uint64_t>(registry, atom::reload_v);
  REQUIRE(marked);
  CHECK(*marked == 2);
  REQUIRE(calls->size() == 3);
  CHECK(request(2).method == "PATCH");
  CHECK(request(2).url == "http://127.0.0.1:9/moved/relay/club");
  CHECK(parse_object(request(2).body).at("host") == "club.new.test");
  answer(2, 200);
  CHECK(relay("club").at("synced").as_bool());
  CHECK(activity_types("club").back() == "complete_relay_sync");
  // band's old push ends: it is pushed again, to the new API.
  answer(1, 201);
  REQUIRE(calls->size() == 4);
  CHECK(request(3).url == "http://127.0.0.1:9/moved/relay/band");
  CHECK(parse_object(request(3).body).at("host") == "band.new.test");
  answer(3, 200);
  CHECK(relay("band").at("synced").as_bool());
}

TEST_CASE_METHOD(fixture,
                 "a reconciler turned on by a reload pushes what waited, and "
                 "one turned off sends no retry",
                 "[infra]") {
  settings.api_url.clear();
  start_reconciler();
  create("club");
  advance(1min);
  CHECK(calls->empty());
  settings.api_url = "http://127.0.0.1:9/zooid";
  live_settings->set(settings);
  self->send(reconciler, atom::reconcile_v);
  run();
  REQUIRE(calls->size() == 1);
  CHECK(request(0).method == "POST");
  answer(0, 500);
  settings.enabled = false;
  live_settings->set(settings);
  advance(1h);
  CHECK(calls->size() == 1);
}

TEST_CASE_METHOD(fixture,
                 "a relay deleted here is DELETEd on the API, a failure "
                 "retried and 404 taken as done",
                 "[infra]") {
  start_reconciler();
  push_then_delete("club");
  CHECK(request(1).method == "DELETE");
  CHECK(request(1).url == "http://127.0.0.1:9/zooid/relay/club");
  CHECK(request(1).body.empty());
  check_signed(request(1));
  answer(1, 500);
  expect_retry_after(30s);
  CHECK(request(2).method == "DELETE");
  answer(2, 404);
  advance(1h);
  CHECK(calls->size() == 3);
  CHECK(health().status == "ok");
}

TEST_CASE_METHOD(fixture,
                 "a relay created again while its DELETE waits for a retry is "
                 "pushed, and the DELETE is not sent",
                 "[infra]") {
  start_reconciler();
  push_then_delete("club");
  answer(1, 500);
  create("club");
  REQUIRE(calls->size() == 3);
  CHECK(request(2).method == "POST");
  answer(2, 201);
  CHECK(relay("club").at("synced").as_bool());
  advance(1h);
  CHECK(calls->size() == 3);
  CHECK(health().status == "ok");
}

TEST_CASE_METHOD(fixture,
                 "a relay created again while its DELETE is out is pushed "
                 "right after it",
                 "[infra]") {
  start_reconciler();
  push_then_delete("club");
  create("club");
  CHECK(calls->size() == 2);
  answer(1, 200);
  REQUIRE(calls->size() == 3);
  // Its log went with the deletion: the API gets it as new.
  CHECK(request(2).method == "POST");
  answer(2, 201);
  CHECK(relay("club").at("synced").as_bool());
}

TEST_CASE_METHOD(fixture,
                 "a DELETE lost to a restart is sent again by the next "
                 "reconciler, until the API answered it",
                 "[infra]") {
  start_reconciler();
  push_then_delete("club");
  // The node stops before the API answers.
  stop_reconciler();
  start_reconciler();
  REQUIRE(calls->size() == 3);
  CHECK(request(2).method == "DELETE");
  CHECK(request(2).url == "http://127.0.0.1:9/zooid/relay/club");
  answer(2, 404);
  stop_reconciler();
  start_reconciler();
  advance(1h);
  CHECK(calls->size() == 3);
  // Deleted while no reconciler runs, then created again: a relay to
  // push, no deletion.
  stop_reconciler();
  create("club");
  registry_ok(atom::erase_v, std::string{"club"});
  create("club");
  start_reconciler();
  REQUIRE(calls->size() == 4);
  CHECK(request(3).method == "POST");
  answer(3, 201);
  advance(1h);
  CHECK(calls->size() == 4);
}

namespace {

/// The first of `candidates` that `owner` owns among `live`.
std::string owned_by(const std::string& owner,
                     const std::vector<std::string>& live) {
  for (int i = 0; i < 100; ++i) {
    auto id = "r" + std::to_string(i);
    if (cluster::rendezvous_owner(id, live) == owner)
      return id;
  }
  FAIL("no id owned by " << owner);
  return {};
}

} // namespace

TEST_CASE_METHOD(fixture,
                 "in a cluster only the owner of a relay pushes or deletes "
                 "it, and a new owner pushes what it now owns",
                 "[infra][cluster]") {
  cluster_node = "node-a";
  std::vector<std::string> both{"node-a", "node-b"};
  auto mine = owned_by("node-a", both);
  auto theirs = owned_by("node-b", both);
  auto mine_url = "http://127.0.0.1:9/zooid/relay/" + mine;
  auto theirs_url = "http://127.0.0.1:9/zooid/relay/" + theirs;
  start_reconciler();
  // Until the cluster tells the live set, nothing is ours.
  create(mine);
  create(theirs);
  CHECK(calls->empty());
  self->send(reconciler, atom::members_v, both);
  run();
  REQUIRE(calls->size() == 1);
  CHECK(request(0).method == "POST");
  CHECK(request(0).url == mine_url);
  answer(0, 201);
  // A change of a relay node-b owns: node-b pushes it.
  registry_ok(atom::patch_v, theirs,
              std::string{R"({"info":{"name":"Theirs"}})"});
  advance(1h);
  CHECK(calls->size() == 1);

  // node-b is gone: its relay is ours now, and pushed as new from here.
  self->send(reconciler, atom::members_v, std::vector<std::string>{"node-a"});
  run();
  REQUIRE(calls->size() == 2);
  CHECK(request(1).method == "POST");
  CHECK(request(1).url == theirs_url);
  CHECK(parse_object(request(1).body).at("info").at("name") == "Theirs");
  answer(1, 500);
  // node-b is back before the retry: the retry is node-b's business.
  self->send(reconciler, atom::members_v, both);
  run();
  advance(1h);
  CHECK(calls->size() == 2);
  CHECK(health().status == "ok");

  // Deletions: only what is ours goes to the API.
  registry_ok(atom::erase_v, theirs);
  CHECK(calls->size() == 2);
  registry_ok(atom::erase_v, mine);
  REQUIRE(calls->size() == 3);
  CHECK(request(2).method == "DELETE");
  CHECK(request(2).url == mine_url);
  answer(2, 200);
  // Leaving the cluster: nothing is ours.
  self->send(reconciler, atom::members_v, std::vector<std::string>{});
  run();
  create(mine);
  advance(1h);
  CHECK(calls->size() == 3);
}

TEST_CASE_METHOD(fixture,
                 "a deletion its owner did not get through is sent by the "
                 "member that takes the relay over",
                 "[infra][cluster]") {
  cluster_node = "node-a";
  std::vector<std::string> both{"node-a", "node-b"};
  auto theirs = owned_by("node-b", both);
  start_reconciler();
  self->send(reconciler, atom::members_v, both);
  run();
  create(theirs);
  registry_ok(atom::erase_v, theirs);
  CHECK(calls->empty());
  // node-b dies: whether or not its DELETE went through, node-a sends one.
  self->send(reconciler, atom::members_v, std::vector<std::string>{"node-a"});
  run();
  REQUIRE(calls->size() == 1);
  CHECK(request(0).method == "DELETE");
  CHECK(request(0).url == "http://127.0.0.1:9/zooid/relay/" + theirs);
  answer(0, 404);
  // Done: the next change of the live set sends nothing.
  self->send(reconciler, atom::members_v, both);
  run();
  self->send(reconciler, atom::members_v, std::vector<std::string>{"node-a"});
  run();
  advance(1h);
  CHECK(calls->size() == 1);
}
