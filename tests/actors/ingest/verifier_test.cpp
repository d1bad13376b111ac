// The VERIFIER in front of a real writer and store, without a policy step:
// single events and batches (what `ferry import` sends).

#include "actors/ingest/verifier.hpp"
#include "actors/ingest/writer.hpp"
#include "tests/fixtures/thread_names.hpp"
#include "tests/fixtures/threaded_actor_system.hpp"
#include "tests/store/store_fixture.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace ferry;
using namespace std::chrono_literals;
using ferry::store::test::make_event;

namespace {

struct fixture : test::threaded_actor_system {
  store::test::store_fixture db;
  nostr::keypair keys = nostr::generate_keypair();
  writer_actor writer;
  verifier_actor verifier;
  std::shared_ptr<handle_slot<writer_actor>> writer_slot
    = std::make_shared<handle_slot<writer_actor>>();

  fixture() {
    writer = sys.spawn<caf::detached>(ferry::writer, db.store.get(),
                                      handle_slot_ptr<hub_actor>{}, writer_config{});
    writer_slot->set(writer);
    verifier = sys.spawn(ferry::verifier, db.store.get(), writer_slot,
                         handle_slot_ptr<policy_actor>{}, false);
  }

  ~fixture() {
    for (auto a : {caf::actor_cast<caf::actor>(verifier),
                   caf::actor_cast<caf::actor>(writer)})
      if (a) {
        self->send_exit(a, caf::exit_reason::user_shutdown);
        self->wait_for(a);
      }
  }

  /// A signed event as `ferry import` parses it: no stored JSON yet.
  ingest_item_ptr parsed(int64_t created_at, std::string content = "note") {
    auto x = std::make_shared<ingest_item>();
    x->data = make_event(keys, 1, created_at, {{"t", "nostr"}}, std::move(content));
    x->data.json.clear();
    x->source = "import";
    return x;
  }

  ingest_results ingest(ingest_batch batch) {
    ingest_results result;
    self->request(verifier, 10s, atom::ingest_v, std::move(batch))
      .receive([&](ingest_results& r) { result = std::move(r); },
               [](caf::error& err) { FAIL(caf::to_string(err)); });
    return result;
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "a batch gets one answer per event, in its order, "
                          "and its valid events are stored with their JSON",
                 "[verifier]") {
  auto stored_before = parsed(100, "stored before");
  auto answer = ingest({stored_before});
  REQUIRE(answer.size() == 1);
  REQUIRE(answer[0].status == ingest_status::stored);

  auto first = parsed(200, "first \"quoted\"\n");
  auto wrong_id = parsed(300);
  wrong_id->data.ev.content = "changed after signing";
  auto bad_sig = parsed(400);
  bad_sig->data.ev.sig[10] ^= 1;
  auto second = parsed(500);
  auto repeated = std::make_shared<ingest_item>(*first);
  auto again = std::make_shared<ingest_item>(*stored_before);
  auto answers = ingest({first, wrong_id, bad_sig, second, repeated, again});
  REQUIRE(answers.size() == 6);
  CHECK(answers[0].status == ingest_status::stored);
  CHECK(answers[1].status == ingest_status::invalid);
  CHECK(answers[1].message == "invalid: event id does not match its content");
  CHECK(answers[2].status == ingest_status::invalid);
  CHECK(answers[2].message == "invalid: bad signature");
  CHECK(answers[3].status == ingest_status::stored);
  // Its twin was not stored yet when both were checked: the writer finds it.
  CHECK(answers[4].status == ingest_status::duplicate);
  // Stored already: answered without a signature check.
  CHECK(answers[5].status == ingest_status::duplicate);
  CHECK(answers[5].message == "duplicate: already have this event");

  CHECK(db.store->contains(first->data.ev.id));
  CHECK(db.store->contains(second->data.ev.id));
  CHECK_FALSE(db.store->contains(wrong_id->data.ev.id));
  CHECK_FALSE(db.store->contains(bad_sig->data.ev.id));
  auto json = db.store->get_json(first->data.ev.id);
  REQUIRE(json);
  CHECK(*json == nostr::to_json(first->data.ev));
}

TEST_CASE_METHOD(fixture, "a batch with no valid event is answered without "
                          "the writer",
                 "[verifier]") {
  auto bad_sig = parsed(100);
  bad_sig->data.ev.sig[0] ^= 1;
  auto wrong_id = parsed(200);
  wrong_id->data.ev.created_at += 1;
  // Without a writer any event that reached it would get an error.
  writer_slot->set(writer_actor{});
  auto answers = ingest({bad_sig, wrong_id});
  REQUIRE(answers.size() == 2);
  CHECK(answers[0].message == "invalid: bad signature");
  CHECK(answers[1].message == "invalid: event id does not match its content");
}

TEST_CASE_METHOD(fixture, "while the writer restarts a batch's valid events "
                          "are answered with an error, the others as usual",
                 "[verifier]") {
  writer_slot->set(writer_actor{});
  auto valid = parsed(100);
  auto bad_sig = parsed(200);
  bad_sig->data.ev.sig[0] ^= 1;
  auto answers = ingest({valid, bad_sig});
  REQUIRE(answers.size() == 2);
  CHECK(answers[0].status == ingest_status::error);
  CHECK(answers[0].message == "error: the writer is restarting; try again");
  CHECK(answers[1].message == "invalid: bad signature");
  CHECK_FALSE(db.store->contains(valid->data.ev.id));
}

TEST_CASE_METHOD(fixture, "a detached writer names its thread, and a verifier "
                          "on CAF's workers leaves theirs alone",
                 "[verifier]") {
  // One answer: both actors have run their start-up.
  auto results = ingest({parsed(1'700'000'000)});
  REQUIRE(results.size() == 1);
  auto names = test::thread_names();
  CHECK(std::count(names.begin(), names.end(), "writer") == 1);
  CHECK(std::count(names.begin(), names.end(), "verifier") == 0);
}
