#include "store/change_log.hpp"

#include "store/keys.hpp"
#include "tests/store/store_fixture.hpp"

#include <rocksdb/write_batch.h>

#include <algorithm>

using namespace ferry;
using namespace ferry::store;
using namespace ferry::store::test;

namespace {

std::vector<change> all_changes(const event_store& store, uint64_t after = 0) {
  std::vector<change> result;
  read_changes(store, after, SIZE_MAX, [&](const change& c) {
    result.push_back(c);
    return true;
  });
  return result;
}

/// Stores 50 kind 1 events of one author at distinct times (500 to 549),
/// one commit each, not in the order of their times.
std::vector<incoming_event> store_notes(store_fixture& fx) {
  auto keys = nostr::generate_keypair();
  std::vector<incoming_event> evs;
  for (int i = 0; i < 50; ++i)
    evs.push_back(make_event(keys, 1, 500 + (i * 7) % 50));
  for (const auto& ev : evs)
    fx.write(ev);
  return evs;
}

/// Sets the store's schema version back to 1, where the change log begins.
void set_schema_1(event_store& store) {
  REQUIRE(store.db()
            ->Put(rocksdb::WriteOptions{}, store.handle(cf::meta),
                  std::string(schema_version_key), "1")
            .ok());
}

} // namespace

TEST_CASE_METHOD(store_fixture, "the change log reads in sequence order from "
                                "any position",
                 "[store][changes]") {
  auto keys = nostr::generate_keypair();
  CHECK(last_change_seq(*store) == 0);
  std::vector<incoming_event> evs;
  for (int i = 0; i < 300; ++i)
    evs.push_back(make_event(keys, 1, 1000 - i));
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < evs.size(); ++i)
    append_change(batch, *store, i + 1, evs[i].ev.id,
                  i % 2 == 0 ? "client" : "sync:a");
  REQUIRE(store->db()->Write(rocksdb::WriteOptions{}, &batch).ok());
  reopen();
  CHECK(last_change_seq(*store) == 300);
  auto log = all_changes(*store);
  REQUIRE(log.size() == 300);
  for (size_t i = 0; i < log.size(); ++i) {
    CHECK(log[i].seq == i + 1);
    CHECK(log[i].id == evs[i].ev.id);
    CHECK(log[i].source == (i % 2 == 0 ? "client" : "sync:a"));
  }
  auto tail = all_changes(*store, 297);
  REQUIRE(tail.size() == 3);
  CHECK(tail.front().seq == 298);
  size_t seen = 0;
  CHECK(read_changes(*store, 10, 5, [&](const change&) { return ++seen < 99; })
        == 5);
  CHECK(read_changes(*store, 10, 50, [&](const change&) { return false; }) == 1);
  CHECK(all_changes(*store, 300).empty());
}

TEST_CASE_METHOD(store_fixture, "a schema 1 store gets its change log "
                                "backfilled oldest first",
                 "[store][changes]") {
  auto evs = store_notes(*this);
  REQUIRE(all_changes(*store).empty());
  set_schema_1(*store);
  reopen();
  auto log = all_changes(*store);
  REQUIRE(log.size() == evs.size());
  int64_t previous = 0;
  for (const auto& c : log) {
    auto json = store->get_json(c.id);
    REQUIRE(json);
    auto created_at = std::stoll(
      json->substr(json->find("\"created_at\":") + 13));
    CHECK(created_at >= previous);
    previous = created_at;
    CHECK(c.source.empty());
  }
  std::string version;
  REQUIRE(store->db()
            ->Get(rocksdb::ReadOptions{}, store->handle(cf::meta),
                  std::string(schema_version_key), &version)
            .ok());
  CHECK(version == std::to_string(schema_version));
  // A second start does not append again.
  reopen();
  CHECK(all_changes(*store).size() == evs.size());
}

// The backfill commits in chunks; a crash or a full disk after the first
// left a partial log that the next open, finding it non-empty, kept for good
// (and wrote schema 2 over it).
TEST_CASE_METHOD(store_fixture, "an interrupted backfill is completed by the "
                                "next open",
                 "[store][changes]") {
  auto evs = store_notes(*this);
  // Oldest first, the order of the backfill.
  std::sort(evs.begin(), evs.end(), [](const auto& x, const auto& y) {
    return x.ev.created_at < y.ev.created_at;
  });
  set_schema_1(*store);
  // What a first chunk committed: the oldest events, from seq 1 on.
  rocksdb::WriteBatch partial;
  for (size_t i = 0; i < 20; ++i)
    append_change(partial, *store, i + 1, evs[i].ev.id, "");
  REQUIRE(store->db()->Write(rocksdb::WriteOptions{}, &partial).ok());
  reopen();
  auto log = all_changes(*store);
  REQUIRE(log.size() == evs.size());
  for (size_t i = 0; i < log.size(); ++i) {
    CHECK(log[i].seq == i + 1);
    CHECK(log[i].id == evs[i].ev.id);
  }
  CHECK(last_change_seq(*store) == evs.size());

  SECTION("entries past the rebuilt log are cleared with the rest") {
    set_schema_1(*store);
    rocksdb::WriteBatch stale;
    append_change(stale, *store, 1000, nostr::generate_keypair().pubkey, "");
    REQUIRE(store->db()->Write(rocksdb::WriteOptions{}, &stale).ok());
    reopen();
    CHECK(all_changes(*store).size() == evs.size());
    CHECK(last_change_seq(*store) == evs.size());
  }
}

TEST_CASE_METHOD(store_fixture, "a sweep deletes the log entries of events no "
                                "longer stored, in steps, and keeps the entry "
                                "it is told to",
                 "[store][changes]") {
  auto keys = nostr::generate_keypair();
  // Twelve notes, one log entry each; every third is gone from the events
  // (as a replaced, deleted or purged event is), and so is the last.
  std::vector<incoming_event> evs;
  rocksdb::WriteBatch batch;
  for (int i = 0; i < 12; ++i) {
    evs.push_back(make_event(keys, 1, 1000 + i));
    write(evs.back());
    append_change(batch, *store, static_cast<uint64_t>(i + 1),
                  evs.back().ev.id, "client");
  }
  REQUIRE(store->db()->Write(rocksdb::WriteOptions{}, &batch).ok());
  std::vector<uint64_t> live;
  for (size_t i = 0; i < evs.size(); ++i) {
    const bool gone = i % 3 == 0 || i + 1 == evs.size();
    if (gone)
      REQUIRE(store->db()
                ->Delete(rocksdb::WriteOptions{}, store->handle(cf::events),
                         rocksdb::Slice{reinterpret_cast<const char*>(
                                          evs[i].ev.id.data()),
                                        evs[i].ev.id.size()})
                .ok());
    if (!gone || i + 1 == evs.size())
      live.push_back(i + 1);
  }
  // Steps of five: entries 1-5, 6-10, 11-12.
  auto first = sweep_changes(*store, 0, 5, 12);
  REQUIRE(first);
  CHECK(first->examined == 5);
  CHECK(first->deleted == 2); // 1 and 4
  CHECK(first->through == 5);
  CHECK_FALSE(first->at_end);
  auto second = sweep_changes(*store, first->through, 5, 12);
  REQUIRE(second);
  CHECK(second->deleted == 2); // 7 and 10
  CHECK(second->through == 10);
  CHECK_FALSE(second->at_end);
  auto third = sweep_changes(*store, second->through, 5, 12);
  REQUIRE(third);
  CHECK(third->examined == 2);
  CHECK(third->deleted == 0); // 12 is gone, but the one to keep
  CHECK(third->through == 12);
  CHECK(third->at_end);
  std::vector<uint64_t> left;
  for (const auto& c : all_changes(*store))
    left.push_back(c.seq);
  CHECK(left == live);
  CHECK(last_change_seq(*store) == 12);
  // Past the end: nothing to look at.
  auto after_end = sweep_changes(*store, 12, 5, 12);
  REQUIRE(after_end);
  CHECK(after_end->examined == 0);
  CHECK(after_end->through == 12);
  CHECK(after_end->at_end);
  // Once it is no longer the one to keep, the last dead entry goes too.
  auto again = sweep_changes(*store, 0, 100, 13);
  REQUIRE(again);
  CHECK(again->deleted == 1);
  CHECK(all_changes(*store).size() == live.size() - 1);
}
