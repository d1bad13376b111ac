// Index scan == linear filter (strfry's fuzz test idea): random events and
// random filters, the planner's answer against a brute-force reference.

#include "tests/fixtures/test_seed.hpp"
#include "tests/store/store_fixture.hpp"

#include <algorithm>
#include <map>
#include <random>

using namespace ferry;
using namespace ferry::store;
using namespace ferry::store::test;
using nostr::bytes32;

namespace {

using ferry::test::test_seed;

struct corpus {
  std::mt19937_64 rng;
  std::vector<bytes32> authors;
  std::vector<uint32_t> kinds{1, 2, 4, 6, 7, 16, 1063, 1111, 1984, 9735};
  std::vector<std::string> words{"nostr", "ferry", "rocks", "sync", "relay",
                                 "git", "c++", "zap"};
  std::vector<bytes32> ref_ids; // targets of `e` tags
  std::vector<incoming_event> events;

  explicit corpus(uint64_t seed) : rng(seed) {
    for (int i = 0; i < 20; ++i)
      authors.push_back(random_bytes());
    for (int i = 0; i < 60; ++i)
      ref_ids.push_back(random_bytes());
  }

  bytes32 random_bytes() {
    bytes32 out;
    for (auto& b : out)
      b = static_cast<uint8_t>(rng());
    return out;
  }

  size_t pick(size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  }

  bool chance(int percent) {
    return pick(100) < static_cast<size_t>(percent);
  }

  /// A regular (non-replaceable) event; ids are random, the store does not verify.
  incoming_event make(int64_t now) {
    incoming_event in;
    auto& ev = in.ev;
    ev.id = random_bytes();
    ev.pubkey = authors[pick(authors.size())];
    ev.kind = kinds[pick(kinds.size())];
    ev.created_at = 1000 + static_cast<int64_t>(pick(300)); // many ties
    for (size_t n = pick(4); n > 0; --n) {
      switch (pick(3)) {
        case 0:
          ev.tags.push_back({"e", nostr::to_hex(ref_ids[pick(ref_ids.size())])});
          break;
        case 1:
          ev.tags.push_back({"p", nostr::to_hex(authors[pick(authors.size())]),
                             "wss://relay"});
          break;
        default:
          ev.tags.push_back({"t", words[pick(words.size())]});
      }
    }
    if (chance(5))
      ev.tags.push_back({"expiration", std::to_string(now + 1 + pick(200))});
    ev.content = "event " + std::to_string(events.size());
    in.json = nostr::to_json(ev);
    return in;
  }

  template <class T>
  std::vector<T> sample(const std::vector<T>& from, size_t n) {
    std::vector<T> out;
    for (size_t i = 0; i < n; ++i)
      out.push_back(from[pick(from.size())]);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  nostr::filter random_filter() {
    nostr::filter f;
    if (chance(10)) {
      std::vector<bytes32> ids;
      for (size_t n = 1 + pick(6); n > 0; --n)
        ids.push_back(chance(80) ? events[pick(events.size())].ev.id : random_bytes());
      f.ids = sample(ids, ids.size());
    }
    if (chance(40)) {
      auto pool = authors;
      // Unknown authors too, so authors x kinds sometimes exceeds the pair limit.
      if (chance(20))
        for (int i = 0; i < 30; ++i)
          pool.push_back(random_bytes());
      f.authors = sample(pool, 1 + pick(chance(20) ? pool.size() : 4));
    }
    if (chance(40))
      f.kinds = sample(kinds, 1 + pick(chance(20) ? kinds.size() : 3));
    for (char letter : {'e', 'p', 't', 'x'}) {
      if (!chance(letter == 'x' ? 2 : 15))
        continue;
      nostr::tag_condition c{letter, {}};
      for (size_t n = 1 + pick(3); n > 0; --n) {
        if (letter == 'e')
          c.values.push_back(nostr::to_hex(ref_ids[pick(ref_ids.size())]));
        else if (letter == 'p')
          c.values.push_back(nostr::to_hex(authors[pick(authors.size())]));
        else
          c.values.push_back(words[pick(words.size())]);
      }
      c.values = sample(c.values, c.values.size());
      f.tags.push_back(std::move(c));
    }
    if (chance(30))
      f.since = 1000 + static_cast<int64_t>(pick(320));
    if (chance(30))
      f.until = 990 + static_cast<int64_t>(pick(320));
    return f;
  }
};

bool expired(const nostr::event& ev, int64_t now) {
  auto exp = nostr::expiration(ev);
  return exp && *exp <= now;
}

/// The linear reference: every matching, unexpired event, newest first.
std::vector<bytes32> reference(const std::vector<incoming_event>& events,
                               const nostr::filter& f, int64_t now) {
  std::vector<const nostr::event*> hits;
  for (const auto& in : events)
    if (f.matches(in.ev) && !expired(in.ev, now))
      hits.push_back(&in.ev);
  std::sort(hits.begin(), hits.end(), [](const auto* a, const auto* b) {
    return a->created_at != b->created_at ? a->created_at > b->created_at
                                          : a->id < b->id;
  });
  std::vector<bytes32> ids;
  for (const auto* ev : hits)
    ids.push_back(ev->id);
  return ids;
}

/// The negentropy records of `f`, sorted by id for comparison.
std::vector<bytes32> item_ids(const event_store& store, const nostr::filter& f,
                              int64_t now, size_t max_items, bool& over) {
  auto scanned = store.negentropy_items(f, now, max_items);
  REQUIRE(scanned);
  over = scanned->over_limit;
  std::vector<bytes32> ids;
  for (const auto& x : scanned->items)
    ids.push_back(x.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

/// The scan again, in pages of `page` events resumed from the last position.
std::vector<bytes32> paged_scan(const event_store& store, const nostr::filter& f,
                                int64_t now, size_t page) {
  std::vector<bytes32> ids;
  std::optional<scan_position> resume;
  for (int guard = 0; guard < 100000; ++guard) {
    bool more = store.scan(f, now, resume, page,
                           [&](std::string_view, const scan_position& pos) {
                             ids.push_back(pos.id);
                             resume = pos;
                             return true;
                           });
    if (!more)
      break;
  }
  return ids;
}

/// The scan again, each call allowed to examine only `examine` candidates
/// and resumed after the last one it examined when that ran out (as a REQ's
/// slices go on), else after the last event delivered. `calls`: how many
/// scans it took.
std::vector<bytes32> examine_bounded_scan(const event_store& store,
                                          const nostr::filter& f, int64_t now,
                                          uint64_t examine, size_t& calls) {
  std::vector<bytes32> ids;
  std::optional<scan_position> resume;
  for (calls = 1; calls < 100000; ++calls) {
    read_budget budget{examine};
    bool more = store.scan(f, now, resume, std::numeric_limits<size_t>::max(),
                           [&](std::string_view, const scan_position& pos) {
                             ids.push_back(pos.id);
                             resume = pos;
                             return true;
                           },
                           &budget);
    if (budget.exhausted && budget.examined_through)
      resume = budget.examined_through;
    if (!more)
      break;
  }
  return ids;
}

} // namespace

TEST_CASE_METHOD(store_fixture, "indexed scans equal a linear filter",
                 "[store][differential]") {
  auto seed = test_seed();
  CAPTURE(seed);
  corpus c{seed};
  const int64_t write_now = 900;
  for (int i = 0; i < 3000; ++i)
    c.events.push_back(c.make(write_now));
  for (size_t i = 0; i < c.events.size(); i += 100) {
    std::vector<const incoming_event*> batch;
    for (size_t j = i; j < std::min(i + 100, c.events.size()); ++j)
      batch.push_back(&c.events[j]);
    for (const auto& r : write(batch, write_now))
      REQUIRE(r.outcome == write_outcome::stored);
  }
  // Some events have expired by the time of the queries.
  const int64_t now = write_now + 100;

  for (int round = 0; round < 300; ++round) {
    auto f = c.random_filter();
    CAPTURE(round, nostr::to_json(f));
    auto expected = reference(c.events, f, now);
    auto actual = scan_ids(f, now);
    REQUIRE(actual == expected);
    REQUIRE(store->count({f}, now) == expected.size());
    if (round % 4 == 0) {
      // A budget that suffices changes nothing; one below the matches stops
      // the count and says so, and a scan there has sent a prefix.
      read_budget ample{std::numeric_limits<uint64_t>::max()};
      REQUIRE(store->count({f}, now, &ample) == expected.size());
      REQUIRE_FALSE(ample.exhausted);
      if (!expected.empty()) {
        read_budget short_of_count{expected.size() - 1};
        store->count({f}, now, &short_of_count);
        REQUIRE(short_of_count.exhausted);
        read_budget short_of_scan{expected.size() - 1};
        std::vector<bytes32> sent;
        store->scan(f, now, std::nullopt, std::numeric_limits<size_t>::max(),
                    [&sent](std::string_view, const scan_position& pos) {
                      sent.push_back(pos.id);
                      return true;
                    },
                    &short_of_scan);
        REQUIRE(short_of_scan.exhausted);
        REQUIRE(sent.size() < expected.size());
        REQUIRE(std::equal(sent.begin(), sent.end(), expected.begin()));
      }
    }
    {
      // Negentropy records: the same set, straight from the indexes; with a
      // limit, the newest `limit` (what a REQ gets); and refused, not cut,
      // beyond the item bound.
      auto g = f;
      if (round % 3 == 0)
        g.limit = c.pick(expected.size() + 2);
      auto want = expected;
      if (g.limit && *g.limit < want.size())
        want.resize(*g.limit);
      std::sort(want.begin(), want.end());
      bool over = true;
      CAPTURE(nostr::to_json(g));
      REQUIRE(item_ids(*store, g, now, want.size() + c.pick(3), over) == want);
      REQUIRE_FALSE(over);
      if (!want.empty()) {
        REQUIRE(item_ids(*store, g, now, want.size() - 1, over).empty());
        REQUIRE(over);
      }
      auto scanned = store->negentropy_items(g, now, want.size());
      REQUIRE(scanned);
      for (const auto& x : scanned->items) {
        auto source = std::find_if(c.events.begin(), c.events.end(),
                                   [&x](const incoming_event& in) {
                                     return in.ev.id == x.id;
                                   });
        REQUIRE(source != c.events.end());
        REQUIRE(x.timestamp == static_cast<uint64_t>(source->ev.created_at));
      }
    }
    if (round % 10 == 0) {
      // Pages below and above the scan's MultiGet batch of 64 candidates.
      auto page = 1 + c.pick(150);
      CAPTURE(page);
      REQUIRE(paged_scan(*store, f, now, page) == expected);
    }
    if (round % 10 == 5 && !f.ids) {
      // Slices bounded by what they examine, resumed from where each
      // stopped, deliver the same events, whatever the bound, even where a
      // slice delivered none.
      auto examine = 1 + c.pick(100);
      CAPTURE(examine);
      size_t calls = 0;
      REQUIRE(examine_bounded_scan(*store, f, now, examine, calls) == expected);
      if (expected.size() > examine)
        REQUIRE(calls > 1);
    }
    if (round % 5 == 0) {
      auto g = c.random_filter();
      CAPTURE(nostr::to_json(g));
      auto union_ids = expected;
      auto more = reference(c.events, g, now);
      union_ids.insert(union_ids.end(), more.begin(), more.end());
      std::sort(union_ids.begin(), union_ids.end());
      union_ids.erase(std::unique(union_ids.begin(), union_ids.end()),
                      union_ids.end());
      REQUIRE(store->count({f, g}, now) == union_ids.size());
    }
  }
}

TEST_CASE_METHOD(store_fixture, "a resumed scan continues one long scan",
                 "[store]") {
  auto keys = nostr::generate_keypair();
  auto other = nostr::generate_keypair();
  std::vector<incoming_event> evs;
  for (int i = 0; i < 120; ++i)
    evs.push_back(make_event(i % 3 == 0 ? other : keys, 1 + i % 2, 100 + i / 7,
                             {{"t", i % 2 ? "a" : "b"}}, std::to_string(i)));
  std::vector<const incoming_event*> batch;
  for (const auto& ev : evs)
    batch.push_back(&ev);
  write(batch);

  nostr::filter two_authors;
  two_authors.authors = std::vector<bytes32>{keys.pubkey, other.pubkey};
  std::sort(two_authors.authors->begin(), two_authors.authors->end());
  nostr::filter two_tags;
  two_tags.tags = {{'t', {"a", "b"}}};
  nostr::filter window = kinds_filter({1, 2});
  window.since = 105;
  window.until = 112;

  for (const auto& f : {nostr::filter{}, two_authors, two_tags, window}) {
    CAPTURE(nostr::to_json(f));
    auto whole = scan_ids(f);
    CHECK_FALSE(whole.empty());
    for (size_t page : {1, 7, 50, 64, 65, 100}) {
      CAPTURE(page);
      CHECK(paged_scan(*store, f, default_now, page) == whole);
    }
    CHECK(store->count({f}, default_now) == whole.size());
  }
}

TEST_CASE_METHOD(store_fixture,
                 "negentropy items of a large store, read on two threads, are "
                 "the store's events in item-set order",
                 "[store][differential][negentropy]") {
  // Large enough (~6 MiB of `by_created` keys) that a range read is split
  // between two threads; the corpus's few hundred seconds give long runs of
  // events sharing a second on both sides of the split.
  auto seed = test_seed();
  CAPTURE(seed);
  corpus c{seed};
  const int64_t write_now = 900;
  const size_t regular = 120'000;
  for (size_t i = 0; i < regular; ++i)
    c.events.push_back(c.make(write_now));
  // Replaceable (kind 10002) and addressable (kind 30001) versions: each
  // author's newer ones take the older ones' slots.
  for (int i = 0; i < 400; ++i) {
    incoming_event in;
    in.ev.id = c.random_bytes();
    in.ev.pubkey = c.authors[c.pick(c.authors.size())];
    in.ev.created_at = 1000 + static_cast<int64_t>(c.pick(300));
    in.ev.kind = i % 2 == 0 ? 10002 : 30001;
    if (in.ev.kind == 30001)
      in.ev.tags.push_back({"d", c.words[c.pick(c.words.size())]});
    in.json = nostr::to_json(in.ev);
    c.events.push_back(std::move(in));
  }
  // Deletions by the authors of the events they name.
  for (int i = 0; i < 200; ++i) {
    const auto& target = c.events[c.pick(regular)].ev;
    incoming_event in;
    in.ev.id = c.random_bytes();
    in.ev.pubkey = target.pubkey;
    in.ev.created_at = 1400;
    in.ev.kind = 5;
    in.ev.tags.push_back({"e", nostr::to_hex(target.id)});
    in.json = nostr::to_json(in.ev);
    c.events.push_back(std::move(in));
  }
  for (size_t i = 0; i < c.events.size(); i += 1000) {
    std::vector<const incoming_event*> batch;
    for (size_t j = i; j < std::min(i + 1000, c.events.size()); ++j)
      batch.push_back(&c.events[j]);
    write(batch, write_now);
  }

  std::map<bytes32, uint64_t> created_at;
  for (const auto& in : c.events)
    created_at[in.ev.id] = static_cast<uint64_t>(in.ev.created_at);

  auto require_items_equal_scan = [&](int64_t now) {
    nostr::filter window;
    window.since = 1050;
    window.until = 1250;
    for (const auto& f : {nostr::filter{}, window}) {
      CAPTURE(now, nostr::to_json(f));
      auto expected = scan_ids(f, now);
      REQUIRE(expected.size() > 60'000);
      auto scanned = store->negentropy_items(f, now, expected.size());
      REQUIRE(scanned);
      REQUIRE_FALSE(scanned->over_limit);
      const auto& items = scanned->items;
      REQUIRE(items.size() == expected.size());
      // Oldest first, ids ascending within a second, no repeats: the item
      // set takes them as they are.
      auto out_of_order = std::adjacent_find(
        items.begin(), items.end(),
        [](const auto& x, const auto& y) { return !(x < y); });
      REQUIRE(out_of_order == items.end());
      std::vector<bytes32> ids;
      for (const auto& x : items)
        ids.push_back(x.id);
      std::sort(ids.begin(), ids.end());
      std::sort(expected.begin(), expected.end());
      REQUIRE(ids == expected);
      size_t wrong_time = 0;
      for (const auto& x : items)
        wrong_time += x.timestamp != created_at.at(x.id) ? 1 : 0;
      REQUIRE(wrong_time == 0);
      auto over = store->negentropy_items(f, now, expected.size() - 1);
      REQUIRE(over);
      REQUIRE(over->over_limit);
      REQUIRE(over->items.empty());
    }
  };
  // Some events have expired by then, some not yet.
  require_items_equal_scan(write_now + 100);
  REQUIRE(store->purge_expired(write_now + 100));
  reopen();
  require_items_equal_scan(write_now + 100);
  require_items_equal_scan(write_now + 1000);
}
