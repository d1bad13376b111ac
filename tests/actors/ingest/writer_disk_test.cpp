// The WRITER on a store whose disk fills up (a 16 MiB tmpfs the test mounts):
// below the reserve it answers `error: disk full: ...` and stores nothing,
// resumes by itself once space returns. (That a sync cursor never passes a
// failed event is the relay connection's rule: sync_cursor_test and the
// disk_full integration test.)

#include "actors/runtime/logging.hpp"
#include "actors/ingest/writer.hpp"
#include "messages/nostr/keys.hpp"
#include "store/sync_store.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/fixtures/quiet_log.hpp"
#include "tests/fixtures/tmpfs.hpp"

#include <caf/after.hpp>
#include <caf/settings.hpp>

#include <catch2/catch.hpp>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t reserve = 2 << 20;

struct fixture : test::deterministic_actor_system {
  explicit fixture(const test::small_tmpfs& fs) {
    store::store_options opts;
    opts.path = fs.file("store");
    opts.write_buffer_mb = 1;
    opts.block_cache_mb = 8;
    opts.reserve_bytes = reserve;
    auto opened = store::event_store::open(opts);
    REQUIRE(opened);
    db = std::move(*opened);
    writer_config config;
    config.purge_interval = 0s;
    aut = sys.spawn(writer, db.get(), handle_slot_ptr<hub_actor>{}, config);
    run();
  }

  ~fixture() {
    self->send_exit(aut, caf::exit_reason::user_shutdown);
    run();
  }

  /// An event from sync server "s".
  ingest_item_ptr live_event(int64_t created_at) {
    auto item = std::make_shared<ingest_item>();
    item->data.ev.kind = 1;
    item->data.ev.created_at = created_at;
    item->data.ev.content = "live " + std::to_string(created_at);
    nostr::sign_event(item->data.ev, keys);
    item->data.json = nostr::to_json(item->data.ev);
    item->source = "sync:s";
    return item;
  }

  ingest_result write(ingest_item_ptr item) {
    self->send(aut, atom::write_v, std::move(item));
    run();
    ingest_result result;
    self->receive([&](ingest_result& r) { result = std::move(r); },
                  caf::after(0s) >> [] { FAIL("no answer from the writer"); });
    return result;
  }

  status_map status() {
    self->send(aut, atom::get_v, atom::status_v);
    run();
    status_map result;
    self->receive([&](status_map& x) { result = std::move(x); },
                  caf::after(0s) >> [] { FAIL("no status from the writer"); });
    return result;
  }

  int64_t cursor() {
    auto c = store::get_sync_cursor(*db, "s");
    REQUIRE(c);
    return *c ? (*c)->created_at : 0;
  }

  ferry::test::quiet_log quiet;
  nostr::keypair keys = nostr::generate_keypair();
  std::unique_ptr<store::event_store> db;
  writer_actor aut;
};

} // namespace

TEST_CASE("below the reserve the writer refuses events, resumes by itself, "
          "and commits cursors again",
          "[writer][disk]") {
  test::small_tmpfs fs;
  if (!test::mounted_or_warn(fs))
    return;
  fixture f{fs};
  REQUIRE(f.write(f.live_event(1000)).status == ingest_status::stored);

  fs.fill_until(reserve - (64 << 10));
  auto refused = f.write(f.live_event(2000));
  INFO(refused.message);
  CHECK(refused.status == ingest_status::error);
  CHECK(refused.message.rfind("error: disk full: ", 0) == 0);
  CHECK(refused.message.find("bytes free on " + fs.file("store"))
        != std::string::npos);
  CHECK(f.db->space_problem() != "");
  auto status = f.status();
  CHECK(caf::get_if<std::string>(&status, "disk_full"));
  // Still full at the next recheck: still refused.
  f.advance(500ms);
  CHECK(f.write(f.live_event(2001)).status == ingest_status::error);

  // Space returns: the next recheck lets writes through, no restart.
  fs.remove_filler();
  f.advance(500ms);
  CHECK(f.db->space_problem() == "");
  CHECK(f.write(f.live_event(3000)).status == ingest_status::stored);
  f.self->send(f.aut, atom::cursor_v, std::string{"s"}, int64_t{3000}, uint64_t{0});
  f.run();
  CHECK(f.cursor() == 3000);
}

TEST_CASE("below the reserve the writer answers every event of a batch with "
          "the disk-full error",
          "[writer][disk]") {
  test::small_tmpfs fs;
  if (!test::mounted_or_warn(fs))
    return;
  fixture f{fs};
  fs.fill_until(reserve - (64 << 10));
  auto first = f.live_event(1000);
  auto second = f.live_event(1001);
  f.self->send(f.aut, atom::write_v, ingest_batch{first, second});
  f.run();
  ingest_results answers;
  f.self->receive([&](ingest_results& r) { answers = std::move(r); },
                  caf::after(0s) >> [] { FAIL("no answer to the batch"); });
  REQUIRE(answers.size() == 2);
  for (const auto& r : answers) {
    INFO(r.message);
    CHECK(r.status == ingest_status::error);
    CHECK(r.message.rfind("error: disk full: ", 0) == 0);
  }
  CHECK_FALSE(f.db->contains(first->data.ev.id));
  CHECK_FALSE(f.db->contains(second->data.ev.id));
  CHECK(caf::get_or(f.status(), "failed_events", int64_t{0}) == 2);
}
