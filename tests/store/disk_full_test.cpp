// The event store on a disk that fills up (a 16 MiB tmpfs the test mounts):
// RocksDB's own out-of-space errors must neither abort the process (its info
// LOG used to, with SIGABRT) nor lose what was acknowledged, and the store
// must take writes again once space returns, without a reopen.

#include "messages/error.hpp"
#include "tests/fixtures/tmpfs.hpp"
#include "tests/store/store_fixture.hpp"

#include <chrono>
#include <thread>

using namespace ferry;
using namespace ferry::store;
using namespace ferry::store::test;

namespace {

store_options options_on(const ferry::test::small_tmpfs& fs,
                         uint64_t reserve_bytes) {
  store_options opts;
  opts.path = fs.file("store");
  opts.write_buffer_mb = 1;
  opts.block_cache_mb = 8;
  opts.reserve_bytes = reserve_bytes;
  return opts;
}

/// Twenty events of about 1 KiB each.
std::vector<incoming_event> batch_of_events(const nostr::keypair& keys,
                                            int round) {
  std::vector<incoming_event> out;
  for (int i = 0; i < 20; ++i)
    out.push_back(make_event(keys, 1, default_now - round * 20 - i, {},
                             std::string(1000, static_cast<char>('a' + i))
                               + std::to_string(round)));
  return out;
}

std::vector<const incoming_event*> pointers(const std::vector<incoming_event>& xs) {
  std::vector<const incoming_event*> out;
  for (auto& x : xs)
    out.push_back(&x);
  return out;
}

/// Polls `recheck_space` (RocksDB's own recovery looks every ~5 s).
bool recovers(event_store& store) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (std::chrono::steady_clock::now() < deadline) {
    if (store.recheck_space())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  return false;
}

/// How many of `ids` the store lacks.
size_t missing_ids(const event_store& store,
                   const std::vector<nostr::bytes32>& ids) {
  size_t missing = 0;
  for (auto& id : ids)
    missing += store.contains(id) ? 0 : 1;
  return missing;
}

/// A store without a reserve on `fs`, filled up until RocksDB's own ENOSPC
/// failed a commit.
struct filled_store {
  std::unique_ptr<event_store> store;
  /// The ids of the commits that succeeded before.
  std::vector<nostr::bytes32> acked;
  caf::error failure;

  explicit filled_store(ferry::test::small_tmpfs& fs) {
    auto opened = event_store::open(options_on(fs, 0));
    REQUIRE(opened);
    store = std::move(*opened);
    fs.fill_until(300 << 10);
    auto keys = nostr::generate_keypair();
    for (int round = 0; round < 1000 && !failure; ++round) {
      auto events = batch_of_events(keys, round);
      if (auto written = store->write(pointers(events), default_now); !written)
        failure = written.error();
      else
        for (auto& e : events)
          acked.push_back(e.ev.id);
    }
    REQUIRE(failure);
  }
};

} // namespace

TEST_CASE("RocksDB's own ENOSPC: writes fail, nothing acknowledged is lost, "
          "writes resume when space returns",
          "[store][disk]") {
  ferry::test::small_tmpfs fs;
  if (!ferry::test::mounted_or_warn(fs))
    return;
  filled_store filled{fs};
  auto& store = filled.store;
  auto& acked = filled.acked;
  auto& failure = filled.failure;
  auto keys = nostr::generate_keypair();
  INFO(render(failure));
  CHECK(render(failure).find("No space left") != std::string::npos);
  REQUIRE(!acked.empty());
  // The DB is read-only now: the same error again, reads still work.
  auto problem = store->space_problem();
  CHECK(problem.find("No space left") != std::string::npos);
  CHECK(problem.find(fs.file("store")) != std::string::npos);
  CHECK(store->background_error());
  auto again = batch_of_events(keys, 5000);
  CHECK_FALSE(store->write(pointers(again), default_now));
  CHECK(store->contains(acked.front()));
  CHECK(store->contains(acked.back()));
  CHECK_FALSE(store->recheck_space());
  // An orderly shutdown while full reports the error instead of aborting in
  // FlushWAL.
  CHECK(store->flush());

  fs.remove_filler();
  REQUIRE(recovers(*store));
  CHECK(store->space_problem().empty());
  CHECK_FALSE(store->background_error());
  auto later = batch_of_events(keys, 6000);
  REQUIRE(store->write(pointers(later), default_now));
  for (auto& e : later)
    acked.push_back(e.ev.id);

  store.reset();
  auto reopened = event_store::open(options_on(fs, 0));
  REQUIRE(reopened);
  CHECK(missing_ids(**reopened, filled.acked) == 0);
}

TEST_CASE("the reserve reports the disk full before RocksDB runs out",
          "[store][disk]") {
  ferry::test::small_tmpfs fs;
  if (!ferry::test::mounted_or_warn(fs))
    return;
  constexpr uint64_t reserve = 2 << 20;
  auto opened = event_store::open(options_on(fs, reserve));
  REQUIRE(opened);
  auto store = std::move(*opened);
  CHECK(store->check_space().empty());
  fs.fill_until(reserve + (1 << 20));
  auto keys = nostr::generate_keypair();
  std::string problem;
  size_t written = 0;
  for (int round = 0; round < 1000; ++round) {
    problem = store->check_space();
    if (!problem.empty())
      break;
    auto events = batch_of_events(keys, round);
    // Every write the reserve lets through must succeed.
    REQUIRE(store->write(pointers(events), default_now));
    written += events.size();
  }
  INFO(problem);
  REQUIRE(!problem.empty());
  CHECK(written > 0);
  CHECK(problem.find("bytes free on " + fs.file("store")) != std::string::npos);
  CHECK(problem.find("below the reserve of 2097152 bytes") != std::string::npos);
  CHECK_FALSE(store->background_error());
  // Full stays full without measuring again, until a recheck finds room.
  CHECK(store->check_space() == problem);
  CHECK_FALSE(store->recheck_space());
  fs.remove_filler();
  CHECK(store->recheck_space());
  CHECK(store->check_space().empty());
}

TEST_CASE("closing a store whose WAL append failed does not abort, and the "
          "WAL replays on the next open",
          "[store][disk]") {
  ferry::test::small_tmpfs fs;
  if (!ferry::test::mounted_or_warn(fs))
    return;
  filled_store filled{fs};
  auto& store = filled.store;
  REQUIRE(store->background_error());
  auto keys = nostr::generate_keypair();
  for (int round = 0; round < 3; ++round) {
    auto events = batch_of_events(keys, 7000 + round);
    CHECK_FALSE(store->write(pointers(events), default_now));
  }
  // FlushWAL on the failed WAL writer asserts (SIGABRT); closing skips it.
  store.reset();
  fs.remove_filler();
  auto reopened = event_store::open(options_on(fs, 0));
  REQUIRE(reopened);
  CHECK(missing_ids(**reopened, filled.acked) == 0);
}
