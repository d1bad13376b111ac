// req_pager against a relay modelled in memory: it serves each REQ's filter
// newest first, up to the limit asked for or a cap of its own it does not
// announce, as relays do.

#include "actors/sync/req_pager.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace ferry;

namespace {

struct stored {
  int64_t created_at;
  uint32_t number;
};

/// The relay: its events and the most it serves per REQ whatever the limit.
struct model_relay {
  std::vector<stored> events;
  uint64_t cap = UINT64_MAX;

  /// A relay that serves its newest events whatever the since and until.
  bool ignores_time = false;

  std::vector<stored> serve(const nostr::filter& f) const {
    std::vector<stored> out;
    for (const auto& ev : events)
      if (ignores_time
          || ((!f.since || ev.created_at >= *f.since) && (!f.until || ev.created_at <= *f.until)))
        out.push_back(ev);
    std::sort(out.begin(), out.end(), [](const stored& x, const stored& y) {
      return std::pair{x.created_at, x.number} > std::pair{y.created_at, y.number};
    });
    out.resize(std::min<uint64_t>({out.size(), f.limit.value_or(UINT64_MAX), cap}));
    return out;
  }
};

/// What one paging did.
struct paged {
  std::set<uint32_t> received;
  std::vector<nostr::filter> requests;
  std::vector<std::string> warnings;
  /// Events the relay sent that the page's filter does not match.
  size_t beyond_page = 0;
};

/// The sub id and filter of a REQ frame `["REQ","<id>",{...}]`.
std::pair<std::string, nostr::filter> read_req(const std::string& frame) {
  REQUIRE(frame.rfind("[\"REQ\",\"", 0) == 0);
  auto id_end = frame.find('"', 8);
  nostr::filter f;
  auto object = frame.substr(id_end + 2, frame.size() - id_end - 3);
  REQUIRE(nostr::parse_filter(object, f).empty());
  return {frame.substr(8, id_end - 8), f};
}

paged page_all(const model_relay& relay, nostr::filter f, req_pager::options opts) {
  req_pager pager{std::move(f), opts};
  paged out;
  for (int round = 0; !pager.done(); ++round) {
    REQUIRE(round < 1000);
    auto frame = pager.fill();
    REQUIRE_FALSE(frame.empty());
    CHECK(pager.fill().empty());
    auto [sub_id, sent] = read_req(frame);
    CHECK(pager.owns(sub_id));
    CHECK_FALSE(pager.owns("other"));
    out.requests.push_back(sent);
    for (const auto& ev : relay.serve(sent)) {
      nostr::event served;
      served.created_at = ev.created_at;
      served.kind = 1;
      if (pager.on_event(served))
        out.received.insert(ev.number);
      else
        ++out.beyond_page;
    }
    auto after = pager.on_eose();
    CHECK(after.close == "[\"CLOSE\",\"" + sub_id + "\"]");
    CHECK_FALSE(pager.owns(sub_id));
    if (!after.warning.empty())
      out.warnings.push_back(after.warning);
  }
  CHECK(pager.pages() == out.requests.size());
  CHECK(pager.fill().empty());
  return out;
}

/// `n` events, `per_second` of them in each second down from 100,000.
model_relay spread(uint32_t n, uint32_t per_second) {
  model_relay relay;
  for (uint32_t i = 0; i < n; ++i)
    relay.events.push_back({100000 - static_cast<int64_t>(i / per_second), i});
  return relay;
}

std::set<uint32_t> numbers(const model_relay& relay) {
  std::set<uint32_t> out;
  for (const auto& ev : relay.events)
    out.insert(ev.number);
  return out;
}

req_pager::options sized(uint64_t page_size, uint64_t most_per_page) {
  req_pager::options opts;
  opts.page_size = page_size;
  opts.most_per_page = most_per_page;
  opts.sub_prefix = "p-";
  return opts;
}

} // namespace

TEST_CASE("a pager reads every event newest first, page by page, and ends with an empty page",
          "[req_pager]") {
  auto relay = spread(1234, 3);
  auto run = page_all(relay, {}, sized(100, 1000));
  CHECK(run.received == numbers(relay));
  CHECK(run.warnings.empty());
  REQUIRE(run.requests.size() >= 13);
  CHECK_FALSE(run.requests.front().until);
  for (const auto& f : run.requests)
    CHECK(f.limit == 100u);
  // Each page goes on from the oldest second of the one before, inclusive.
  CHECK(run.requests[1].until == relay.serve(run.requests[0]).back().created_at);
  CHECK(relay.serve(run.requests.back()).empty());
}

TEST_CASE("a pager reads everything from a relay that serves fewer than the limit unasked",
          "[req_pager]") {
  auto relay = spread(777, 5);
  relay.cap = 40;
  auto run = page_all(relay, {}, sized(100, 1000));
  CHECK(run.received == numbers(relay));
  CHECK(run.warnings.empty());
}

TEST_CASE("a second holding more than a page is asked for alone with a growing limit",
          "[req_pager]") {
  model_relay relay;
  for (uint32_t i = 0; i < 250; ++i)
    relay.events.push_back({5000, i});
  for (uint32_t i = 0; i < 60; ++i)
    relay.events.push_back({4990 - static_cast<int64_t>(i), 1000 + i});
  for (uint32_t i = 0; i < 30; ++i)
    relay.events.push_back({6000 + static_cast<int64_t>(i), 2000 + i});

  SECTION("within what the relay serves: every event") {
    auto run = page_all(relay, {}, sized(100, 1000));
    CHECK(run.received == numbers(relay));
    CHECK(run.warnings.empty());
    std::vector<uint64_t> second_limits;
    for (const auto& f : run.requests)
      if (f.since && f.until && *f.since == 5000 && *f.until == 5000)
        second_limits.push_back(*f.limit);
    CHECK(second_limits == std::vector<uint64_t>{200, 400});
    // Below the crowded second, paging goes on with the page size.
    auto below = std::find_if(run.requests.begin(), run.requests.end(),
                              [](const nostr::filter& f) { return f.until == 4999; });
    REQUIRE(below != run.requests.end());
    CHECK(below->limit == 100u);
    CHECK_FALSE(below->since);
  }

  SECTION("beyond it: a warning names the second, and what lies below is read") {
    auto run = page_all(relay, {}, sized(100, 200));
    CHECK(run.warnings
          == std::vector<std::string>{"the filter matches more than 200 events at 5000: "
                                      "the relay serves no more of that second"});
    std::set<uint32_t> missed;
    for (auto n : numbers(relay))
      if (!run.received.count(n))
        missed.insert(n);
    CHECK(missed.size() == 50);
    CHECK(std::all_of(missed.begin(), missed.end(), [](uint32_t n) { return n < 250; }));
  }
}

TEST_CASE("a pager keeps to its filter's since and a smaller limit", "[req_pager]") {
  auto relay = spread(600, 2);
  nostr::filter f;
  f.since = 100000 - 149;
  f.limit = 50;
  auto run = page_all(relay, f, sized(100, 1000));
  std::set<uint32_t> wanted;
  for (const auto& ev : relay.events)
    if (ev.created_at >= *f.since)
      wanted.insert(ev.number);
  CHECK(run.received == wanted);
  for (const auto& r : run.requests) {
    CHECK(r.limit == 50u);
    CHECK(r.since == f.since);
    CHECK((!r.until || *r.until >= *f.since));
  }
}

TEST_CASE("a pager of a relay holding nothing asks once", "[req_pager]") {
  auto run = page_all({}, {}, sized(100, 1000));
  CHECK(run.requests.size() == 1);
  CHECK(run.received.empty());
}

TEST_CASE("a pager of a relay that ignores until ends, counting only what its pages match",
          "[req_pager]") {
  auto relay = spread(1000, 4);
  relay.ignores_time = true;
  auto run = page_all(relay, {}, sized(100, 1000));
  // The first page, then its oldest second, then nothing of the page.
  CHECK(run.requests.size() == 3);
  CHECK(run.received.size() == 100);
  CHECK(run.beyond_page == 196);
  CHECK(run.warnings.empty());
}

TEST_CASE("after_page: the page that follows, a crowded second's, or none",
          "[req_pager]") {
  nostr::filter sent;
  sent.kinds = std::vector<uint32_t>{1};
  sent.limit = 100;
  sent.until = 1000;
  SECTION("a page that got events goes on at its oldest second, inclusive") {
    auto out = after_page(sent, 100, 900, std::nullopt, 1000);
    REQUIRE(out.next);
    CHECK(out.next->until == 900);
    CHECK(out.next->limit == 100);
    CHECK(out.next->kinds == sent.kinds);
    CHECK_FALSE(out.resume);
    CHECK_FALSE(out.crowded);
  }
  SECTION("an empty page ends the paging") {
    auto out = after_page(sent, 0, INT64_MAX, std::nullopt, 1000);
    CHECK_FALSE(out.next);
    CHECK_FALSE(out.crowded);
  }
  SECTION("a page below the limit goes on too: a relay may cap it unasked") {
    auto out = after_page(sent, 40, 950, std::nullopt, 1000);
    REQUIRE(out.next);
    CHECK(out.next->until == 950);
  }
  SECTION("a full page of its until second asks for that second alone, "
          "with twice the limit, and goes on below it after") {
    auto out = after_page(sent, 100, 1000, std::nullopt, 1000);
    REQUIRE(out.next);
    CHECK(out.next->since == 1000);
    CHECK(out.next->until == 1000);
    CHECK(out.next->limit == 200);
    REQUIRE(out.resume);
    CHECK(out.resume->until == 1000);
    CHECK(out.resume->limit == 100);
    SECTION("the second's page not full: the paging resumes below it") {
      auto after = after_page(*out.next, 150, 1000, out.resume, 1000);
      REQUIRE(after.next);
      CHECK(after.next->until == 999);
      CHECK(after.next->limit == 100);
      CHECK_FALSE(after.next->since);
      CHECK_FALSE(after.resume);
    }
    SECTION("the second's page empty: the paging resumes below it too") {
      auto after = after_page(*out.next, 0, INT64_MAX, out.resume, 1000);
      REQUIRE(after.next);
      CHECK(after.next->until == 999);
    }
  }
  SECTION("a second fuller than the largest page is reported and stepped "
          "past") {
    auto out = after_page(sent, 100, 1000, std::nullopt, 100);
    REQUIRE(out.crowded);
    CHECK(out.crowded->second == 1000);
    CHECK(out.crowded->limit == 100);
    REQUIRE(out.next);
    CHECK(out.next->until == 999);
    CHECK_FALSE(out.resume);
  }
  SECTION("a page that did not fill its until second steps past it") {
    auto out = after_page(sent, 30, 1000, std::nullopt, 1000);
    REQUIRE(out.next);
    CHECK(out.next->until == 999);
    CHECK_FALSE(out.crowded);
  }
  SECTION("the paging ends below the filter's since, and below 0") {
    auto bounded = sent;
    bounded.since = 900;
    // A page may be capped unasked: its oldest second is asked for again.
    auto at_since = after_page(bounded, 20, 900, std::nullopt, 1000);
    REQUIRE(at_since.next);
    CHECK(at_since.next->until == 900);
    // That page, holding only its until second, steps below since.
    CHECK_FALSE(after_page(*at_since.next, 20, 900, std::nullopt, 1000).next);
    auto at_zero = sent;
    at_zero.until = 0;
    CHECK_FALSE(after_page(at_zero, 20, 0, std::nullopt, 1000).next);
  }
  SECTION("the first page, without until, goes on at its oldest second") {
    auto first = sent;
    first.until.reset();
    auto out = after_page(first, 100, 1000, std::nullopt, 1000);
    REQUIRE(out.next);
    CHECK(out.next->until == 1000);
    CHECK_FALSE(out.resume);
  }
}
