#include "store/hosted_relay_store.hpp"

#include "store/column_families.hpp"
#include "store_fixture.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::store;
using namespace ferry::store::test;

namespace {

hosted_relay make_relay(const std::string& id) {
  auto parsed = parse_hosted_relay(
    R"({"id":")" + id + R"(","subdomain":"s)" + std::to_string(id.size())
    + R"(","schema":"s_)" + std::to_string(id.size())
    + R"(","info":{"pubkey":")" + std::string(64, 'a') + R"("}})");
  REQUIRE(parsed);
  return *parsed;
}

activity_entry entry(const std::string& relay, uint64_t seq,
                     activity_type type) {
  activity_entry e;
  e.seq = seq;
  e.relay = relay;
  e.type = type;
  e.at = 1700000000 + static_cast<int64_t>(seq);
  if (type == activity_type::fail_relay_sync)
    e.error = "HTTP 500 #" + std::to_string(seq);
  return e;
}

std::vector<uint64_t> seqs(const std::vector<activity_entry>& log) {
  std::vector<uint64_t> result;
  for (auto& e : log)
    result.push_back(e.seq);
  return result;
}

} // namespace

TEST_CASE("a relay and its log are written together and read back",
          "[hosted_relay_store]") {
  store_fixture db;
  auto relay = make_relay("club");
  REQUIRE_FALSE(record_activity(*db.store, relay,
                                entry("club", 1, activity_type::create_relay)));
  auto back = get_hosted_relay(*db.store, "club");
  REQUIRE(back);
  REQUIRE(*back);
  CHECK(to_json(**back) == to_json(relay));
  auto missing = get_hosted_relay(*db.store, "nope");
  REQUIRE(missing);
  CHECK_FALSE(*missing);
  auto log = list_activity(*db.store, "club");
  REQUIRE(log);
  REQUIRE(log->size() == 1);
  CHECK((*log)[0].type == activity_type::create_relay);
  CHECK(db.keys_in(cf::hosted_relays) == 1);
  CHECK(db.keys_in(cf::activity) == 1);
}

TEST_CASE("one relay's log is its own prefix, in sequence order",
          "[hosted_relay_store]") {
  store_fixture db;
  // "a" is a byte prefix of "a.b" and "ab": the separator keeps them apart.
  auto a = make_relay("a");
  auto ab = make_relay("ab");
  auto a_b = make_relay("a.b");
  uint64_t seq = 0;
  for (int round = 0; round < 3; ++round)
    for (auto* r : {&a, &ab, &a_b})
      REQUIRE_FALSE(record_activity(
        *db.store, *r,
        entry(r->id, ++seq,
              round == 0 ? activity_type::create_relay
                         : activity_type::update_relay)));
  // More than 255 entries, so the big-endian order is exercised past a byte.
  for (int i = 0; i < 300; ++i)
    REQUIRE_FALSE(record_activity(
      *db.store, ab, entry("ab", ++seq, activity_type::fail_relay_sync)));
  auto log_a = list_activity(*db.store, "a");
  REQUIRE(log_a);
  CHECK(seqs(*log_a) == std::vector<uint64_t>{1, 4, 7});
  auto log_ab = list_activity(*db.store, "ab");
  REQUIRE(log_ab);
  CHECK(log_ab->size() == 303);
  CHECK(std::is_sorted(log_ab->begin(), log_ab->end(),
                       [](auto& x, auto& y) { return x.seq < y.seq; }));
  auto last_two = list_activity(*db.store, "ab", 2);
  REQUIRE(last_two);
  CHECK(seqs(*last_two) == std::vector<uint64_t>{seq - 1, seq});
  auto all = list_hosted_relays(*db.store);
  REQUIRE(all);
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].id == "a");
  CHECK((*all)[1].id == "a.b");
  CHECK((*all)[2].id == "ab");
}

TEST_CASE("the last sequence number survives a restart",
          "[hosted_relay_store]") {
  store_fixture db;
  auto fresh = last_activity_seq(*db.store);
  REQUIRE(fresh);
  CHECK(*fresh == 0);
  auto relay = make_relay("club");
  REQUIRE_FALSE(record_activity(*db.store, relay,
                                entry("club", 41, activity_type::create_relay)));
  REQUIRE_FALSE(record_activity(*db.store, relay,
                                entry("club", 42, activity_type::update_relay)));
  db.reopen();
  auto last = last_activity_seq(*db.store);
  REQUIRE(last);
  CHECK(*last == 42);
}

TEST_CASE("the sync history counts trailing failures and a success resets it",
          "[hosted_relay_store]") {
  store_fixture db;
  auto relay = make_relay("club");
  uint64_t seq = 0;
  auto add = [&](activity_type type) {
    REQUIRE_FALSE(
      record_activity(*db.store, relay, entry("club", ++seq, type)));
  };
  auto history = [&] {
    auto h = read_sync_history(*db.store, "club");
    REQUIRE(h);
    return *h;
  };
  CHECK(history().trailing_failures == 0);
  add(activity_type::create_relay);
  add(activity_type::fail_relay_sync);
  add(activity_type::fail_relay_sync);
  CHECK(history().trailing_failures == 2);
  CHECK_FALSE(history().ever_synced);
  add(activity_type::complete_relay_sync);
  CHECK(history().trailing_failures == 0);
  CHECK(history().ever_synced);
  add(activity_type::update_relay);
  add(activity_type::fail_relay_sync);
  add(activity_type::fail_relay_sync);
  add(activity_type::fail_relay_sync);
  CHECK(history().trailing_failures == 3);
  CHECK(history().ever_synced);
  // A change starts a new series.
  add(activity_type::activate_relay);
  CHECK(history().trailing_failures == 0);
}

TEST_CASE("deleting a relay removes its log and nothing else",
          "[hosted_relay_store]") {
  store_fixture db;
  auto a = make_relay("a");
  auto ab = make_relay("ab");
  REQUIRE_FALSE(
    record_activity(*db.store, a, entry("a", 1, activity_type::create_relay)));
  REQUIRE_FALSE(record_activity(*db.store, ab,
                                entry("ab", 2, activity_type::create_relay)));
  REQUIRE_FALSE(record_activity(
    *db.store, a, entry("a", 3, activity_type::fail_relay_sync)));
  REQUIRE_FALSE(delete_hosted_relay(*db.store, "a"));
  REQUIRE_FALSE(delete_hosted_relay(*db.store, "never-existed"));
  auto gone = get_hosted_relay(*db.store, "a");
  REQUIRE(gone);
  CHECK_FALSE(*gone);
  auto log_a = list_activity(*db.store, "a");
  REQUIRE(log_a);
  CHECK(log_a->empty());
  auto log_ab = list_activity(*db.store, "ab");
  REQUIRE(log_ab);
  CHECK(seqs(*log_ab) == std::vector<uint64_t>{2});
  // The counter stays: sequence numbers are never handed out twice.
  auto last = last_activity_seq(*db.store);
  REQUIRE(last);
  CHECK(*last == 3);
}

TEST_CASE("a deleted relay's deletion is pending until forgotten or the "
          "relay is written again",
          "[hosted_relay_store]") {
  store_fixture db;
  auto pending = [&] {
    auto ids = pending_relay_deletions(*db.store);
    REQUIRE(ids);
    return *ids;
  };
  CHECK(pending().empty());
  for (auto id : {"b", "a", "c"}) {
    REQUIRE_FALSE(record_activity(*db.store, make_relay(id),
                                  entry(id, 1, activity_type::create_relay)));
    REQUIRE_FALSE(delete_hosted_relay(*db.store, id));
  }
  CHECK(pending() == std::vector<std::string>{"a", "b", "c"});
  REQUIRE_FALSE(forget_relay_deletion(*db.store, "b"));
  REQUIRE_FALSE(forget_relay_deletion(*db.store, "never-deleted"));
  CHECK(pending() == std::vector<std::string>{"a", "c"});
  // Created again: no longer a deletion.
  REQUIRE_FALSE(record_activity(*db.store, make_relay("a"),
                                entry("a", 2, activity_type::create_relay)));
  CHECK(pending() == std::vector<std::string>{"c"});
  // The activity counter in the same family is no deletion.
  auto last = last_activity_seq(*db.store);
  REQUIRE(last);
  CHECK(*last == 2);
}
