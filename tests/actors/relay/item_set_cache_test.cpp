#include "actors/relay/item_set_cache.hpp"

#include "tests/store/store_fixture.hpp"

#include <chrono>
#include <future>
#include <thread>

using namespace ferry;
using namespace ferry::store::test;
namespace neg = ferry::nostr::negentropy;

namespace {

using namespace std::chrono_literals;

/// A store with `n` kind-1 notes and `n` kind-7 reactions.
struct fixture : store_fixture {
  nostr::keypair keys = nostr::generate_keypair();
  int64_t next_created_at = default_now - 10000;

  explicit fixture(size_t n = 50) {
    for (size_t i = 0; i < n; ++i) {
      add(1);
      add(7);
    }
  }

  void add(uint32_t kind) {
    write(make_event(keys, kind, next_created_at++, {}, "x"));
  }
};

nostr::filter parse(const std::string& json) {
  nostr::filter f;
  REQUIRE(nostr::parse_filter(json, f).empty());
  return f;
}

/// A pending `acquire`: its callback fills the future.
struct request {
  std::shared_ptr<std::promise<item_set_result>> promise
    = std::make_shared<std::promise<item_set_result>>();
  std::future<item_set_result> future = promise->get_future();

  item_set_cache::callback callback() const {
    return [p = promise](item_set_result r) { p->set_value(std::move(r)); };
  }

  bool answered() {
    return future.wait_for(0s) == std::future_status::ready;
  }

  item_set_result get() {
    REQUIRE(future.wait_for(10s) == std::future_status::ready);
    return future.get();
  }
};

item_set_result acquire(item_set_cache& cache, const std::string& filter) {
  request r;
  cache.acquire(parse(filter), default_now, r.callback());
  return r.get();
}

item_set_lease_ptr lease(item_set_cache& cache, const std::string& filter) {
  auto result = acquire(cache, filter);
  INFO(result.error);
  REQUIRE(result.lease);
  return std::move(result.lease);
}

item_set_cache_config roomy() {
  item_set_cache_config cfg;
  cfg.max_bytes = size_t{16} << 20;
  return cfg;
}

} // namespace

TEST_CASE("sessions with the same filter over the same snapshot share one "
          "item set, counted once",
          "[item_set_cache]") {
  fixture fx;
  item_set_cache cache{store_item_source(*fx.store), roomy()};
  auto a = lease(cache, R"({"kinds":[1,7]})");
  // Same filter, written differently: the key is the canonical JSON.
  auto b = lease(cache, R"({"kinds":[7,1]})");
  CHECK(a->items() == b->items());
  CHECK(a->items()->size() == 100);
  auto stats = cache.stats();
  CHECK(stats.item_sets == 1);
  CHECK(stats.builds == 1);
  CHECK(stats.shared == 1);
  CHECK(stats.sessions == 2);
  CHECK(stats.bytes == a->items()->memory_bytes() + 2 * neg_session_bytes);
  // Compact: the records and the vector, no spare capacity.
  CHECK(a->items()->memory_bytes()
        == sizeof(neg::item_set) + 100 * sizeof(neg::item));
  SECTION("another filter gets a set of its own") {
    auto c = lease(cache, R"({"kinds":[1]})");
    CHECK(c->items() != a->items());
    CHECK(c->items()->size() == 50);
    CHECK(cache.stats().item_sets == 2);
    CHECK(cache.stats().builds == 2);
  }
  SECTION("a limit is part of the key") {
    auto c = lease(cache, R"({"kinds":[1,7],"limit":10})");
    CHECK(c->items()->size() == 10);
    CHECK(cache.stats().item_sets == 2);
  }
}

TEST_CASE("a set's memory is given back when its last session lets go",
          "[item_set_cache]") {
  fixture fx;
  item_set_cache cache{store_item_source(*fx.store), roomy()};
  auto a = lease(cache, "{}");
  auto b = lease(cache, "{}");
  const auto set_bytes = a->items()->memory_bytes();
  a.reset();
  CHECK(cache.stats().bytes == set_bytes + neg_session_bytes);
  CHECK(cache.stats().item_sets == 1);
  b.reset();
  auto stats = cache.stats();
  CHECK(stats.bytes == 0);
  CHECK(stats.sessions == 0);
  CHECK(stats.item_sets == 0);
  // Nothing is kept without a session: the next one reads the store again.
  auto c = lease(cache, "{}");
  CHECK(cache.stats().builds == 2);
  CHECK(cache.stats().shared == 1);
}

TEST_CASE("a write to the store gives later sessions a new set, earlier ones "
          "keep theirs",
          "[item_set_cache]") {
  fixture fx;
  item_set_cache cache{store_item_source(*fx.store), roomy()};
  auto before = lease(cache, R"({"kinds":[1]})");
  fx.add(1);
  auto after = lease(cache, R"({"kinds":[1]})");
  CHECK(before->items() != after->items());
  CHECK(before->items()->size() == 50);
  CHECK(after->items()->size() == 51);
  CHECK(cache.stats().item_sets == 2);
  // And a session after that shares the newer set.
  auto again = lease(cache, R"({"kinds":[1]})");
  CHECK(again->items() == after->items());
  before.reset();
  CHECK(cache.stats().item_sets == 1);
  CHECK(cache.stats().bytes
        == after->items()->memory_bytes() + 2 * neg_session_bytes);
}

TEST_CASE("requests beyond the memory budget are refused with blocked:",
          "[item_set_cache]") {
  fixture fx;
  size_t set_bytes = 0;
  {
    item_set_cache measure{store_item_source(*fx.store), roomy()};
    set_bytes = lease(measure, R"({"kinds":[1]})")->items()->memory_bytes();
  }
  // Room for one set and two sessions.
  item_set_cache_config cfg;
  cfg.max_bytes = set_bytes + 2 * neg_session_bytes;
  item_set_cache cache{store_item_source(*fx.store), cfg};
  auto a = lease(cache, R"({"kinds":[1]})");
  SECTION("a second set does not fit") {
    // kinds [7] has as many events as kinds [1].
    auto refused = acquire(cache, R"({"kinds":[7]})");
    CHECK_FALSE(refused.lease);
    CHECK(refused.error.rfind("blocked: the relay's negentropy memory budget "
                              "is full",
                              0)
          == 0);
    CHECK(refused.error.find("try again later or narrow the filter")
          != std::string::npos);
    CHECK(cache.stats().refusals == 1);
    // The failed read holds nothing afterwards.
    CHECK(cache.stats().bytes == set_bytes + neg_session_bytes);
    CHECK(cache.stats().item_sets == 1);
    a.reset();
    CHECK(lease(cache, R"({"kinds":[7]})")->items()->size() == 50);
  }
  SECTION("sharing sessions still cost their own bytes") {
    auto b = lease(cache, R"({"kinds":[1]})");
    CHECK(cache.stats().bytes == cfg.max_bytes);
    auto refused = acquire(cache, R"({"kinds":[1]})");
    CHECK_FALSE(refused.lease);
    CHECK(refused.error.rfind("blocked:", 0) == 0);
    b.reset();
    CHECK(lease(cache, R"({"kinds":[1]})")->items() == a->items());
  }
}

TEST_CASE("a filter over max_items is refused with blocked:",
          "[item_set_cache]") {
  fixture fx;
  auto cfg = roomy();
  cfg.max_items = 60;
  item_set_cache cache{store_item_source(*fx.store), cfg};
  auto refused = acquire(cache, "{}");
  CHECK_FALSE(refused.lease);
  CHECK(refused.error
        == "blocked: more than 60 events match this filter (the relay's "
           "max_items per negentropy session); narrow it with since/until");
  CHECK(cache.stats().refusals == 0);
  CHECK(cache.stats().bytes == 0);
  CHECK(lease(cache, R"({"kinds":[1]})")->items()->size() == 50);
}

TEST_CASE("identical requests during a build wait for it, which runs once",
          "[item_set_cache]") {
  fixture fx;
  // Reads wait for the gate; the first one tells when it has begun.
  std::promise<void> gate;
  auto opened = gate.get_future().share();
  auto reading = std::make_shared<std::promise<void>>();
  auto began = reading->get_future();
  auto source = store_item_source(*fx.store);
  auto read = source.read;
  source.read = [read, opened, reading](const nostr::filter& f, int64_t now,
                                        size_t max_items) mutable {
    if (reading) {
      reading->set_value();
      reading.reset();
    }
    opened.wait();
    return read(f, now, max_items);
  };
  auto cfg = roomy();
  cfg.build_threads = 1;
  item_set_cache cache{source, cfg};
  request first;
  request second;
  request other;
  cache.acquire(parse("{}"), default_now, first.callback());
  cache.acquire(parse("{}"), default_now, second.callback());
  cache.acquire(parse(R"({"kinds":[1]})"), default_now, other.callback());
  SECTION("they share the one result") {
    CHECK_FALSE(first.answered());
    CHECK_FALSE(second.answered());
    CHECK(cache.stats().builds == 0);
    gate.set_value();
    auto a = first.get();
    auto b = second.get();
    REQUIRE(a.lease);
    REQUIRE(b.lease);
    CHECK(a.lease->items() == b.lease->items());
    auto c = other.get();
    CHECK(c.lease);
    CHECK(cache.stats().builds == 2);
    CHECK(cache.stats().item_sets == 2);
  }
  SECTION("stopping refuses what is queued and finishes what runs") {
    REQUIRE(began.wait_for(10s) == std::future_status::ready);
    std::thread stopper{[&cache] { cache.stop(); }};
    auto dropped = other.get();
    CHECK_FALSE(dropped.lease);
    CHECK(dropped.error == "error: the relay is shutting down");
    gate.set_value();
    stopper.join();
    CHECK(first.get().lease);
    CHECK(second.get().lease);
    auto late = acquire(cache, "{}");
    CHECK(late.error == "error: the relay is shutting down");
  }
}

TEST_CASE("a plain read runs on a build thread, is neither shared nor "
          "counted, and is refused once stopped",
          "[item_set_cache]") {
  fixture fx;
  item_set_cache cache{store_item_source(*fx.store), roomy()};
  using read_result = caf::expected<store::item_scan>;
  auto read = [&cache](const std::string& filter, size_t max_items) {
    auto promise = std::make_shared<std::promise<std::pair<read_result, std::thread::id>>>();
    auto future = promise->get_future();
    cache.read(parse(filter), default_now, max_items, [promise](read_result r) {
      promise->set_value({std::move(r), std::this_thread::get_id()});
    });
    REQUIRE(future.wait_for(10s) == std::future_status::ready);
    return future.get();
  };
  auto [notes, thread] = read(R"({"kinds":[1]})", 1000);
  REQUIRE(notes);
  CHECK(notes->items.size() == 50);
  CHECK_FALSE(notes->over_limit);
  CHECK(thread != std::this_thread::get_id());
  CHECK(cache.stats().builds == 0);
  CHECK(cache.stats().item_sets == 0);
  CHECK(cache.stats().bytes == 0);
  auto [capped, _] = read("{}", 10);
  REQUIRE(capped);
  CHECK(capped->over_limit);
  cache.stop();
  auto [late, late_thread] = read("{}", 1000);
  CHECK_FALSE(late);
  CHECK(late_thread == std::this_thread::get_id());
}
