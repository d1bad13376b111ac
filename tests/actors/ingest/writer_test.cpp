#include "actors/ingest/writer.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/nostr/hex.hpp"
#include "store/change_log.hpp"
#include "store/sync_store.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/store/store_fixture.hpp"

#include <caf/after.hpp>

#include <catch2/catch.hpp>

using namespace ferry;
using namespace std::chrono_literals;
using ferry::store::test::make_event;

namespace {

struct fixture : test::deterministic_actor_system {
  store::test::store_fixture db;
  nostr::keypair keys = nostr::generate_keypair();
  writer_actor aut;

  fixture() {
    aut = sys.spawn(writer, db.store.get(), handle_slot_ptr<hub_actor>{},
                    writer_config{});
    run();
  }

  ~fixture() {
    self->send_exit(aut, caf::exit_reason::user_shutdown);
    run();
  }

  int64_t cursor(const std::string& server) {
    auto c = store::get_sync_cursor(*db.store, server);
    REQUIRE(c);
    return *c ? (*c)->created_at : 0;
  }

  /// Hands the writer cursor `created_at` of server "s", made under `era`;
  /// @returns the cursor of "s" once the writer handled it.
  int64_t cursor_after(int64_t created_at, uint64_t era) {
    self->send(aut, atom::cursor_v, std::string{"s"}, created_at, era);
    run();
    return cursor("s");
  }

  /// A signed kind-1 event at `created_at`, as the verifier hands it on.
  ingest_item_ptr item(int64_t created_at) {
    auto x = std::make_shared<ingest_item>();
    x->data = make_event(keys, 1, created_at);
    x->source = "import";
    return x;
  }

  int64_t batches() {
    self->send(aut, atom::get_v, atom::status_v);
    run();
    int64_t result = -1;
    self->receive(
      [&](status_map& x) { result = caf::get_or(x, "batches", int64_t{-1}); },
      caf::after(0s) >> [] { FAIL("no status"); });
    return result;
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "the writer commits a sync cursor with its next "
                          "batch and never moves it backwards",
                 "[writer]") {
  CHECK(cursor_after(100, 0) == 100);
  CHECK(cursor_after(50, 0) == 100);
  // Sent while events wait for their commit: one batch carries both.
  auto item = std::make_shared<ingest_item>();
  item->data = make_event(keys, 1, 300);
  item->source = "client";
  auto before = batches();
  self->send(aut, atom::write_v, item);
  self->send(aut, atom::cursor_v, std::string{"s"}, int64_t{200}, uint64_t{0});
  run();
  self->receive(
    [](ingest_result& r) { CHECK(r.status == ingest_status::stored); },
    caf::after(0s) >> [] { FAIL("no answer to the write"); });
  CHECK(cursor("s") == 200);
  CHECK(batches() == before + 1);
}

// A cursor is made under its definition's era. A connection of the old
// definition may still hand one over after the server was deleted, or
// given other filters, and the writer caches the last one it wrote. Before
// eras, such a late cursor was committed after the delete and read back as
// the new definition's: DELETE and create again (or a PUT of other
// filters) resumed past history never fetched.
TEST_CASE_METHOD(fixture, "the writer drops a cursor of another era, and a "
                          "server deleted and created again starts over",
                 "[writer]") {
  auto def = parse_sync_server(
    R"({"id":"s","url":"wss://relay.example.com","filters":[{"kinds":[1]}]})");
  REQUIRE(def);
  REQUIRE_FALSE(store::put_sync_server(*db.store, *def, 7));
  CHECK(cursor_after(100, 7) == 100);
  SECTION("deleted and created again") {
    REQUIRE_FALSE(store::delete_sync_server(*db.store, "s"));
    // The old connection's last cursor, after the delete.
    CHECK(cursor_after(150, 7) == 0);
    REQUIRE_FALSE(store::put_sync_server(*db.store, *def, 8));
  }
  SECTION("given other filters") {
    def->filters.front().kinds->push_back(7);
    REQUIRE_FALSE(store::put_sync_server(*db.store, *def, 8));
    CHECK(cursor("s") == 0);
  }
  CHECK(cursor_after(150, 7) == 0);
  // The new definition's own cursor, below the cached one of the old.
  CHECK(cursor_after(60, 8) == 60);
}

TEST_CASE_METHOD(fixture, "the writer answers a batch in its order, in the "
                          "same commit as single events queued with it",
                 "[writer]") {
  auto stored_before = item(50);
  self->send(aut, atom::write_v, stored_before);
  run();
  self->receive([](ingest_result&) {},
                caf::after(0s) >> [] { FAIL("no answer to the first write"); });

  auto single = item(100);
  auto first = item(200);
  auto second = item(300);
  auto last = item(400);
  auto before = batches();
  self->send(aut, atom::write_v, single);
  // The batch repeats an event of its own and one already stored.
  self->send(aut, atom::write_v,
             ingest_batch{first, second, std::make_shared<ingest_item>(*first),
                          stored_before});
  self->send(aut, atom::write_v, last);
  run();
  std::vector<std::string> order;
  auto single_answer = [&](const char* name) {
    self->receive(
      [&](ingest_result& r) {
        order.push_back(name);
        CHECK(r.status == ingest_status::stored);
      },
      [&](ingest_results&) { order.push_back("batch"); },
      caf::after(0s) >> [] { FAIL("an answer is missing"); });
  };
  single_answer("single");
  self->receive(
    [&](ingest_results& answers) {
      order.push_back("batch");
      REQUIRE(answers.size() == 4);
      CHECK(answers[0].status == ingest_status::stored);
      CHECK(answers[1].status == ingest_status::stored);
      CHECK(answers[2].status == ingest_status::duplicate);
      CHECK(answers[3].status == ingest_status::duplicate);
    },
    [&](ingest_result&) { order.push_back("a single answer"); },
    caf::after(0s) >> [] { FAIL("no answer to the batch"); });
  single_answer("last");
  CHECK(order == std::vector<std::string>{"single", "batch", "last"});
  CHECK(batches() == before + 1);
  for (const auto& x : {single, first, second, last})
    CHECK(db.store->contains(x->data.ev.id));
}

TEST_CASE_METHOD(fixture, "an empty batch is answered at once with no "
                          "answers and no commit",
                 "[writer]") {
  auto before = batches();
  self->send(aut, atom::write_v, ingest_batch{});
  run();
  self->receive([](ingest_results& answers) { CHECK(answers.empty()); },
                caf::after(0s) >> [] { FAIL("no answer to the empty batch"); });
  CHECK(batches() == before);
}

TEST_CASE_METHOD(fixture, "a writer that ends with events waiting for their "
                          "commit answers each with an error and stores none",
                 "[writer]") {
  // Its requesters (verifiers, the policy) wait without a timeout: an
  // answer CAF dropped with the writer would never come.
  auto single = item(100);
  auto first = item(200);
  auto second = item(300);
  // All three are in its mailbox before it runs: the commit's flush
  // message lands behind the exit.
  self->send(aut, atom::write_v, single);
  self->send(aut, atom::write_v, ingest_batch{first, second});
  self->send_exit(aut, caf::exit_reason::user_shutdown);
  run();
  const std::string stopped
    = "error: the writer stopped before storing this event; try again";
  self->receive(
    [&](ingest_result& r) {
      CHECK(r.status == ingest_status::error);
      CHECK(r.message == stopped);
    },
    [](caf::error& err) { FAIL(caf::to_string(err)); },
    caf::after(0s) >> [] { FAIL("the single event was never answered"); });
  self->receive(
    [&](ingest_results& answers) {
      REQUIRE(answers.size() == 2);
      for (const auto& a : answers) {
        CHECK(a.status == ingest_status::error);
        CHECK(a.message == stopped);
      }
    },
    [](caf::error& err) { FAIL(caf::to_string(err)); },
    caf::after(0s) >> [] { FAIL("the batch was never answered"); });
  for (const auto& x : {single, first, second})
    CHECK_FALSE(db.store->contains(x->data.ev.id));
}

TEST_CASE("the writer's purges sweep the change log of the entries of events "
          "replaced or deleted, in steps, a bounded number a purge, and "
          "number on after them",
          "[writer]") {
  struct sweep_fixture : test::deterministic_actor_system {
    store::test::store_fixture db;
    writer_actor aut;
    sweep_fixture() {
      writer_config config;
      config.sweep_step = 2;
      config.sweep_per_purge = 3;
      aut = sys.spawn(writer, db.store.get(), handle_slot_ptr<hub_actor>{},
                      config);
      run();
    }
    ~sweep_fixture() {
      self->send_exit(aut, caf::exit_reason::user_shutdown);
      run();
    }
    void write(const store::incoming_event& ev) {
      auto x = std::make_shared<ingest_item>();
      x->data = ev;
      x->source = "client";
      self->send(aut, atom::write_v, x);
      run();
      self->receive(
        [](ingest_result& r) { CHECK(r.status == ingest_status::stored); },
        caf::after(0s) >> [] { FAIL("no answer"); });
    }
    std::vector<uint64_t> log() {
      std::vector<uint64_t> seqs;
      store::read_changes(*db.store, 0, SIZE_MAX, [&](const store::change& c) {
        seqs.push_back(c.seq);
        return true;
      });
      return seqs;
    }
  } fx;
  auto keys = nostr::generate_keypair();
  // Three versions of a profile (entries 1-3: two replaced), a note and
  // its deletion (4, 5: the note is erased), a second note (6).
  for (int64_t t : {100, 200, 300})
    fx.write(make_event(keys, 0, t, {}, "{}"));
  auto note = make_event(keys, 1, 150);
  fx.write(note);
  fx.write(make_event(keys, 5, 160, {{"e", nostr::to_hex(note.ev.id)}}));
  fx.write(make_event(keys, 1, 170));
  REQUIRE(fx.log() == std::vector<uint64_t>{1, 2, 3, 4, 5, 6});
  // The first purge comes after purge_interval; its sweep looks at three
  // entries (a step of two, a step of one), the next purge's at the rest.
  fx.advance(writer_config{}.purge_interval);
  CHECK(fx.log() == std::vector<uint64_t>{3, 4, 5, 6});
  fx.advance(writer_config{}.purge_interval);
  CHECK(fx.log() == std::vector<uint64_t>{3, 5, 6});
  auto swept = fx.reply_of<status_map>(fx.aut, "the writer", atom::get_v,
                                       atom::status_v);
  REQUIRE(swept);
  CHECK(caf::get_or(*swept, "changes_swept", int64_t{-1}) == 3);
  // No number is used twice: an up stream past entry 6 reads the next.
  fx.write(make_event(keys, 1, 180));
  CHECK(fx.log() == std::vector<uint64_t>{3, 5, 6, 7});
}
