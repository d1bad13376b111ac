#include "actors/sync/up_stream.hpp"

#include "messages/nostr/hex.hpp"
#include "store/change_log.hpp"
#include "tests/store/store_fixture.hpp"

#include <rocksdb/write_batch.h>

using namespace ferry;
using namespace ferry::store;
using namespace ferry::store::test;

namespace {

/// A store whose change log holds `events` with the given sources, the way
/// the writer logs them.
struct up_fixture : store_fixture {
  nostr::keypair keys = nostr::generate_keypair();
  std::vector<incoming_event> events;

  void add(uint32_t kind, int64_t created_at, const std::string& source) {
    events.push_back(make_event(keys, kind, created_at));
    write(events.back());
    rocksdb::WriteBatch batch;
    append_change(batch, *store, events.size(), events.back().ev.id, source);
    REQUIRE(store->db()->Write(rocksdb::WriteOptions{}, &batch).ok());
  }

  std::string id_of(size_t i) const {
    return nostr::to_hex(events[i].ev.id);
  }
};

std::string id_in(const std::string& frame) {
  auto at = frame.find("\"id\":\"");
  REQUIRE(at != std::string::npos);
  return frame.substr(at + 6, 64);
}

} // namespace

TEST_CASE_METHOD(up_fixture, "the up stream sends matching events in log "
                             "order within its window and skips echoes",
                 "[up_stream]") {
  add(1, 100, "client");    // 1
  add(7, 101, "client");    // 2: not in the filters
  add(1, 102, "sync:a");    // 3: came from this remote
  add(1, 103, "import");    // 4
  add(1, 50, "sync:other"); // 5: old, but written after the others
  add(1, 104, "client");    // 6
  up_stream up{*store, "sync:a", {kinds_filter({1})}, 0, 2};
  auto first = up.fill(default_now);
  REQUIRE(first.size() == 2);
  CHECK(id_in(first[0]) == id_of(0));
  CHECK(id_in(first[1]) == id_of(3));
  CHECK(first[0].rfind("[\"EVENT\",{", 0) == 0);
  CHECK(up.echoes_skipped == 1);
  CHECK(up.fill(default_now).empty()); // the window is full
  CHECK(up.cursor() == 0);
  // The later answer first: the cursor waits for the earlier one.
  CHECK(up.on_ok(id_of(3), true, "") == up_stream::answer::accepted);
  CHECK(up.cursor() == 0);
  CHECK(up.on_ok(id_of(0), true, "duplicate: have it")
        == up_stream::answer::duplicate);
  CHECK(up.cursor() == 4);
  CHECK(up.on_ok(id_of(0), true, "") == up_stream::answer::unknown);
  auto second = up.fill(default_now);
  REQUIRE(second.size() == 2);
  CHECK(id_in(second[0]) == id_of(4));
  CHECK(id_in(second[1]) == id_of(5));
  CHECK(up.on_ok(id_of(4), false, "blocked: no") == up_stream::answer::refused);
  CHECK(up.on_ok(id_of(5), true, "") == up_stream::answer::accepted);
  CHECK(up.fill(default_now).empty());
  CHECK(up.drained());
  CHECK(up.cursor() == 6);
  CHECK(up.sent == 4);
  CHECK(up.accepted == 2);
  CHECK(up.duplicate == 1);
  CHECK(up.refused == 1);
}

TEST_CASE_METHOD(up_fixture, "the up stream resumes from its cursor and "
                             "resends what was not answered",
                 "[up_stream]") {
  for (int i = 0; i < 10; ++i)
    add(1, 100 + i, "client");
  up_stream up{*store, "sync:a", {kinds_filter({1})}, 3, 4};
  auto frames = up.fill(default_now);
  REQUIRE(frames.size() == 4);
  CHECK(id_in(frames[0]) == id_of(3));
  SECTION("a rate limit keeps the event for later") {
    CHECK(up.on_ok(id_of(3), false, "rate-limited: slow down")
          == up_stream::answer::rate_limited);
    CHECK(up.on_ok(id_of(4), true, "") == up_stream::answer::accepted);
    CHECK(up.cursor() == 3);
    up.rewind();
    auto again = up.fill(default_now);
    REQUIRE(again.size() == 4);
    CHECK(id_in(again[0]) == id_of(3));
    CHECK(id_in(again[1]) == id_of(4));
  }
  SECTION("a new stream starts after the last cursor") {
    CHECK(up.on_ok(id_of(3), true, "") == up_stream::answer::accepted);
    CHECK(up.on_ok(id_of(4), true, "") == up_stream::answer::accepted);
    up_stream next{*store, "sync:a", {kinds_filter({1})}, up.cursor(), 100};
    auto rest = next.fill(default_now);
    REQUIRE(rest.size() == 5);
    CHECK(id_in(rest[0]) == id_of(5));
  }
}

// What Ferry's own relay answers when it cannot store an event for now.
// Before, any OK false but a rate limit or an AUTH was a refusal for good:
// the cursor passed the event and it never reached the remote.
TEST_CASE_METHOD(up_fixture, "an event the remote could not store for now "
                             "stays in flight and is sent again",
                 "[up_stream]") {
  const std::string why = GENERATE(
    std::string{"error: disk full: x"},
    std::string{"error: the writer is restarting; try again"},
    std::string{"error: no verifier is running; try again"});
  CAPTURE(why);
  for (int i = 0; i < 3; ++i)
    add(1, 100 + i, "client");
  up_stream up{*store, "sync:a", {kinds_filter({1})}, 0, 10};
  REQUIRE(up.fill(default_now).size() == 3);
  CHECK(up.on_ok(id_of(0), false, why) == up_stream::answer::failed);
  CHECK(up.on_ok(id_of(1), true, "") == up_stream::answer::accepted);
  CHECK(up.refused == 0);
  CHECK(up.cursor() == 0);
  CHECK_FALSE(up.drained());
  up.rewind();
  auto again = up.fill(default_now);
  REQUIRE(again.size() == 3);
  CHECK(id_in(again[0]) == id_of(0));
  for (int i = 0; i < 3; ++i)
    CHECK(up.on_ok(id_of(i), true, "") == up_stream::answer::accepted);
  CHECK(up.cursor() == 3);
}

TEST_CASE_METHOD(up_fixture, "the up stream skips events gone from the store "
                             "and expired ones",
                 "[up_stream]") {
  add(1, 100, "client");
  // An expired event and an entry whose event is not stored.
  events.push_back(make_event(keys, 1, 101, {{"expiration", "1000"}}));
  write(events.back(), 900);
  rocksdb::WriteBatch batch;
  append_change(batch, *store, 2, events.back().ev.id, "client");
  nostr::bytes32 missing{};
  missing[0] = 1;
  append_change(batch, *store, 3, missing, "client");
  REQUIRE(store->db()->Write(rocksdb::WriteOptions{}, &batch).ok());
  up_stream up{*store, "sync:a", {kinds_filter({1})}, 0, 10};
  auto frames = up.fill(2000);
  REQUIRE(frames.size() == 1);
  CHECK(id_in(frames[0]) == id_of(0));
  CHECK(up.on_ok(id_of(0), true, "") == up_stream::answer::accepted);
  CHECK(up.cursor() == 3);
  CHECK(up.drained());
}

TEST_CASE_METHOD(up_fixture, "the up stream's cursor skips what a full "
                             "reconciliation covered only once the events the "
                             "remote lacks are answered",
                 "[up_stream]") {
  for (int i = 0; i < 5; ++i)
    add(1, 100 + i, "client");
  up_stream up{*store, "sync:a", {kinds_filter({1})}, 0, 10};
  // The remote lacks entries 2 and 4; it holds the rest.
  up.enqueue({events[1].ev.id, events[3].ev.id});
  up.skip_to(5);
  auto frames = up.fill(default_now);
  REQUIRE(frames.size() == 2);
  // A crash now must send 2 and 4 again: the cursor may not pass them.
  CHECK(up.cursor() == 0);
  CHECK(up.on_ok(id_of(1), true, "") == up_stream::answer::accepted);
  CHECK(up.cursor() == 0);
  CHECK(up.on_ok(id_of(3), false, "blocked: no") == up_stream::answer::refused);
  CHECK(up.cursor() == 5);
  // Later entries move it as usual.
  add(1, 200, "client");
  REQUIRE(up.fill(default_now).size() == 1);
  CHECK(up.cursor() == 5);
  CHECK(up.on_ok(id_of(5), true, "") == up_stream::answer::accepted);
  CHECK(up.cursor() == 6);
}

TEST_CASE_METHOD(up_fixture, "a log entry already on its way as an extra "
                             "holds the up cursor until that event is answered",
                 "[up_stream]") {
  for (int i = 0; i < 4; ++i)
    add(1, 100 + i, "client");
  up_stream up{*store, "sync:a", {kinds_filter({1})}, 0, 10};
  // A reconciliation found entry 3 missing on the remote: it goes first.
  up.enqueue({events[2].ev.id});
  auto frames = up.fill(default_now);
  REQUIRE(frames.size() == 4);
  CHECK(id_in(frames[0]) == id_of(2));
  for (auto i : {0, 1, 3})
    CHECK(up.on_ok(id_of(i), true, "") == up_stream::answer::accepted);
  // Entry 3 is read from the log but unanswered: the cursor stops before it.
  CHECK(up.cursor() == 2);
  SECTION("its answer settles the entry") {
    CHECK(up.on_ok(id_of(2), true, "") == up_stream::answer::accepted);
    CHECK(up.cursor() == 4);
  }
  SECTION("after a rewind it is sent again from the log") {
    up.rewind();
    auto again = up.fill(default_now);
    REQUIRE(again.size() == 2);
    CHECK(id_in(again[0]) == id_of(2));
    CHECK(id_in(again[1]) == id_of(3));
    CHECK(up.cursor() == 2);
  }
}
