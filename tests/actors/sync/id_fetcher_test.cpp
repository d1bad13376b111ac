#include "actors/sync/id_fetcher.hpp"

#include <catch2/catch.hpp>

#include <simdjson.h>

#include <algorithm>
#include <set>

using namespace ferry;
using nostr::bytes32;

namespace {

bytes32 id_number(uint32_t n) {
  bytes32 id{};
  id[28] = static_cast<uint8_t>(n >> 24);
  id[29] = static_cast<uint8_t>(n >> 16);
  id[30] = static_cast<uint8_t>(n >> 8);
  id[31] = static_cast<uint8_t>(n);
  return id;
}

std::vector<bytes32> ids(uint32_t first, uint32_t count) {
  std::vector<bytes32> out;
  for (uint32_t i = 0; i < count; ++i)
    out.push_back(id_number(first + i));
  return out;
}

/// Options with `batch_size` ids per REQ, at most `max_requests` open, and
/// subscription ids starting with "f-"; no claims.
id_fetcher::options unclaimed(size_t batch_size, size_t max_requests) {
  id_fetcher::options opts;
  opts.batch_size = batch_size;
  opts.max_requests = max_requests;
  opts.sub_prefix = "f-";
  return opts;
}

/// A REQ frame's subscription id, its ids and its limit.
struct parsed_req {
  std::string sub_id;
  std::vector<bytes32> ids;
  uint64_t limit = 0;
};

parsed_req parse_req(const std::string& frame) {
  simdjson::dom::parser parser;
  simdjson::dom::array msg;
  REQUIRE_FALSE(parser.parse(frame).get(msg));
  REQUIRE(msg.size() == 3);
  std::string_view verb;
  std::string_view sub;
  REQUIRE_FALSE(msg.at(0).get(verb));
  REQUIRE(verb == "REQ");
  REQUIRE_FALSE(msg.at(1).get(sub));
  simdjson::dom::object filter;
  REQUIRE_FALSE(msg.at(2).get(filter));
  parsed_req out;
  out.sub_id = std::string{sub};
  REQUIRE_FALSE(filter["limit"].get(out.limit));
  simdjson::dom::array list;
  REQUIRE_FALSE(filter["ids"].get(list));
  for (auto value : list) {
    std::string_view hex;
    REQUIRE_FALSE(value.get(hex));
    bytes32 id;
    REQUIRE(nostr::from_hex(hex, id));
    out.ids.push_back(id);
  }
  return out;
}

} // namespace

TEST_CASE("the id fetcher asks for ids in bounded batches with a bounded "
          "number of REQs open",
          "[id_fetcher]") {
  id_fetcher fetcher{unclaimed(3, 2)};
  fetcher.add(ids(0, 8));
  fetcher.add(ids(6, 4)); // two of them again
  CHECK(fetcher.wanted == 10);
  auto frames = fetcher.fill();
  REQUIRE(frames.size() == 2);
  auto a = parse_req(frames[0]);
  auto b = parse_req(frames[1]);
  CHECK(a.ids == ids(0, 3));
  CHECK(a.limit == 3);
  CHECK(b.ids == ids(3, 3));
  CHECK(a.sub_id != b.sub_id);
  CHECK(fetcher.owns(a.sub_id));
  CHECK_FALSE(fetcher.owns("other"));
  CHECK(fetcher.fill().empty()); // the window is full
  CHECK(fetcher.open_requests() == 2);
  CHECK(fetcher.queued() == 4);

  for (const auto& id : a.ids)
    CHECK(fetcher.on_event(a.sub_id, id));
  CHECK_FALSE(fetcher.on_event(a.sub_id, a.ids[0])); // a repeat
  CHECK_FALSE(fetcher.on_event(a.sub_id, id_number(99))); // not asked for
  CHECK_FALSE(fetcher.on_event(b.sub_id, a.ids[1])); // asked for elsewhere
  CHECK(fetcher.unexpected == 3);
  CHECK(fetcher.on_eose(a.sub_id) == "[\"CLOSE\",\"" + a.sub_id + "\"]");
  CHECK(fetcher.on_eose(a.sub_id).empty()); // no longer open

  frames = fetcher.fill();
  REQUIRE(frames.size() == 1);
  auto c = parse_req(frames[0]);
  CHECK(c.ids == ids(6, 3));
  // b delivers nothing: its ids are given up.
  fetcher.on_eose(b.sub_id);
  CHECK(fetcher.missing == 3);
  for (auto& frame : fetcher.fill())
    for (const auto& id : parse_req(frame).ids)
      CHECK(id == id_number(9));
  CHECK(fetcher.delivered == 3);
  CHECK_FALSE(fetcher.done());
}

TEST_CASE("the id fetcher asks again for what a capped REQ left out, and "
          "gives up on what no REQ delivers",
          "[id_fetcher]") {
  id_fetcher fetcher{unclaimed(4, 1)};
  fetcher.add(ids(0, 4));
  auto first = parse_req(fetcher.fill().at(0));
  // The relay caps its answer at two events.
  CHECK(fetcher.on_event(first.sub_id, first.ids[0]));
  CHECK(fetcher.on_event(first.sub_id, first.ids[1]));
  fetcher.on_eose(first.sub_id);
  CHECK(fetcher.missing == 0);
  auto second = parse_req(fetcher.fill().at(0));
  CHECK(std::set<bytes32>(second.ids.begin(), second.ids.end())
        == std::set<bytes32>{first.ids[2], first.ids[3]});
  // Now it has only one of them.
  CHECK(fetcher.on_event(second.sub_id, first.ids[2]));
  fetcher.on_eose(second.sub_id);
  auto third = parse_req(fetcher.fill().at(0));
  CHECK(third.ids == std::vector<bytes32>{first.ids[3]});
  fetcher.on_eose(third.sub_id);
  CHECK(fetcher.missing == 1);
  CHECK(fetcher.delivered == 3);
  CHECK(fetcher.requests == 3);
  CHECK(fetcher.done());
  CHECK(fetcher.fill().empty());
}

using closed = id_fetcher::closed_outcome;

/// Delivers every id of `req` and ends it with EOSE.
void answer_all(id_fetcher& fetcher, const parsed_req& req) {
  for (const auto& id : req.ids)
    CHECK(fetcher.on_event(req.sub_id, id));
  CHECK_FALSE(fetcher.on_eose(req.sub_id).empty());
}

std::set<bytes32> id_set_of(const std::vector<bytes32>& xs) {
  return {xs.begin(), xs.end()};
}

/// Adds `count` ids from `first` and opens REQs for them: `reqs` of them.
std::vector<std::string> open_reqs(id_fetcher& fetcher, uint32_t first,
                                   uint32_t count, size_t reqs) {
  fetcher.add(ids(first, count));
  auto frames = fetcher.fill();
  REQUIRE(frames.size() == reqs);
  return frames;
}

TEST_CASE("a REQ the relay closes is asked for again in halves, and the REQs "
          "after it are as small until one that large is answered",
          "[id_fetcher]") {
  id_fetcher fetcher{unclaimed(8, 4)};
  fetcher.add(ids(0, 8));
  auto first = parse_req(fetcher.fill().at(0));
  REQUIRE(first.ids.size() == 8);
  CHECK(fetcher.on_closed(first.sub_id, "invalid: ids has more than 5 values")
        == closed::retrying);
  CHECK(fetcher.closed_reason() == "invalid: ids has more than 5 values");
  CHECK(fetcher.batch_size() == 4);
  CHECK(fetcher.missing == 0);
  CHECK(fetcher.queued() == 8);
  CHECK_FALSE(fetcher.done());

  fetcher.add(ids(100, 6));
  auto frames = fetcher.fill();
  REQUIRE(frames.size() == 4);
  auto half_a = parse_req(frames[0]);
  auto half_b = parse_req(frames[1]);
  CHECK(half_a.ids.size() == 4);
  CHECK(half_b.ids.size() == 4);
  auto both = id_set_of(half_a.ids);
  both.insert(half_b.ids.begin(), half_b.ids.end());
  CHECK(both == id_set_of(ids(0, 8)));
  CHECK(parse_req(frames[2]).ids == ids(100, 4));
  CHECK(parse_req(frames[3]).ids == ids(104, 2));
  for (const auto& frame : frames)
    answer_all(fetcher, parse_req(frame));
  CHECK(fetcher.done());
  CHECK(fetcher.delivered == 14);
  CHECK(fetcher.missing == 0);
  CHECK(fetcher.refused == 0);
}

TEST_CASE("one event the relay refuses among many is isolated and given up "
          "alone, and the REQs stay as large",
          "[id_fetcher]") {
  id_fetcher fetcher{unclaimed(4, 1)};
  fetcher.add(ids(0, 8));
  answer_all(fetcher, parse_req(fetcher.fill().at(0))); // REQs of 4 are served
  const auto not_served = id_number(6);
  size_t closures = 0;
  while (!fetcher.done()) {
    auto frames = fetcher.fill();
    REQUIRE(frames.size() == 1);
    auto req = parse_req(frames[0]);
    if (id_set_of(req.ids).count(not_served) == 0) {
      answer_all(fetcher, req);
      continue;
    }
    ++closures;
    REQUIRE(closures <= 3);
    CHECK(fetcher.on_closed(req.sub_id, "blocked: not served here")
          == (req.ids.size() > 1 ? closed::retrying : closed::refused));
  }
  CHECK(closures == 3); // 4 ids, then 2, then 1
  CHECK(fetcher.refused == 1);
  CHECK(fetcher.delivered == 7);
  CHECK(fetcher.missing == 0);
  CHECK(fetcher.batch_size() == 4);
  CHECK(fetcher.requests == 6);
}

TEST_CASE("a REQ closed for a rate limit or for authentication, or one id's "
          "REQ closed by an error, gives nothing up: its owner stops",
          "[id_fetcher]") {
  for (std::string reason : {"rate-limited: slow down", "auth-required: log in first"}) {
    CAPTURE(reason);
    id_fetcher fetcher{unclaimed(3, 2)};
    fetcher.add(ids(0, 3));
    auto req = parse_req(fetcher.fill().at(0));
    CHECK(fetcher.on_event(req.sub_id, req.ids[0]));
    CHECK(fetcher.on_closed(req.sub_id, reason) == closed::stop);
    CHECK(fetcher.on_closed(req.sub_id, reason) == closed::not_ours);
    CHECK(fetcher.closed_reason() == reason);
    CHECK(fetcher.missing == 0);
    CHECK(fetcher.refused == 0);
    CHECK(fetcher.queued() == 2);
    CHECK_FALSE(fetcher.done());
    auto again = parse_req(fetcher.fill().at(0));
    CHECK(id_set_of(again.ids) == std::set<bytes32>{req.ids[1], req.ids[2]});
  }
  id_fetcher fetcher{unclaimed(1, 1)};
  fetcher.add(ids(0, 1));
  auto req = parse_req(fetcher.fill().at(0));
  CHECK(fetcher.on_closed("not-ours", "error: x") == closed::not_ours);
  CHECK(fetcher.on_closed(req.sub_id, "error: the database is busy") == closed::stop);
  CHECK(fetcher.queued() == 1);
  CHECK(fetcher.refused == 0);
  CHECK(fetcher.missing == 0);
}

// A relay that counts our REQs against a subscription limit and refuses the
// ones beyond it with CLOSED: that refusal is not the event's. The REQ is
// asked for again whole with fewer open at once; an id refused alone while
// other REQs were open is asked for again with none open before it is given
// up.
TEST_CASE("a REQ closed for the number of subscriptions open gives nothing "
          "up, and an id is given up only when refused with no other REQ open",
          "[id_fetcher]") {
  {
    id_fetcher fetcher{unclaimed(2, 4)};
    auto frames = open_reqs(fetcher, 0, 8, 4);
    auto crowded = parse_req(frames[3]);
    CHECK(fetcher.on_closed(crowded.sub_id, "blocked: too many open subscriptions (max 5)")
          == closed::retrying);
    CHECK(fetcher.max_requests() == 3);
    CHECK(fetcher.batch_size() == 2);
    CHECK(fetcher.queued() == 2);
    CHECK(fetcher.fill().empty()); // the relay holds 3
    answer_all(fetcher, parse_req(frames[0]));
    auto again = fetcher.fill();
    REQUIRE(again.size() == 1);
    CHECK(id_set_of(parse_req(again[0]).ids) == id_set_of(crowded.ids));
    CHECK(fetcher.refused == 0);
    CHECK(fetcher.missing == 0);
  }
  for (std::string reason : {"auth-required: this subscription needs NIP-42",
                             "rate-limited: too many subscriptions"}) {
    // The prefix decides: the owner authenticates, or cools down.
    CAPTURE(reason);
    id_fetcher fetcher{unclaimed(2, 4)};
    auto frames = open_reqs(fetcher, 0, 4, 2);
    CHECK(fetcher.on_closed(parse_req(frames[1]).sub_id, reason) == closed::stop);
    CHECK(fetcher.max_requests() == 4);
  }
  {
    // Nothing else of ours open: the relay holds none of our fetches.
    id_fetcher fetcher{unclaimed(4, 4)};
    fetcher.add(ids(0, 1));
    auto req = parse_req(fetcher.fill().at(0));
    CHECK(fetcher.on_closed(req.sub_id, "error: too many concurrent REQs")
          == closed::stop);
    CHECK(fetcher.queued() == 1);
    CHECK(fetcher.refused == 0);
  }
  {
    id_fetcher fetcher{unclaimed(1, 3)};
    auto frames = open_reqs(fetcher, 0, 3, 3);
    auto refused_req = parse_req(frames[1]);
    // Refused while two other REQs are open: not given up yet.
    CHECK(fetcher.on_closed(refused_req.sub_id, "blocked: not served here")
          == closed::retrying);
    CHECK(fetcher.refused == 0);
    CHECK(fetcher.queued() == 1);
    CHECK(fetcher.fill().empty()); // waits until none is open
    answer_all(fetcher, parse_req(frames[0]));
    CHECK(fetcher.fill().empty());
    answer_all(fetcher, parse_req(frames[2]));
    auto alone = fetcher.fill();
    REQUIRE(alone.size() == 1);
    auto alone_req = parse_req(alone[0]);
    CHECK(alone_req.ids == refused_req.ids);
    // Nothing else goes out while it is open.
    fetcher.add(ids(50, 1));
    CHECK(fetcher.fill().empty());
    CHECK(fetcher.on_closed(alone_req.sub_id, "blocked: not served here")
          == closed::refused);
    CHECK(fetcher.refused == 1);
    auto last = fetcher.fill();
    REQUIRE(last.size() == 1);
    answer_all(fetcher, parse_req(last[0]));
    CHECK(fetcher.done());
    CHECK(fetcher.delivered == 3);
  }
}

using quiet = id_fetcher::quiet_look::outcome;

// A relay holding 2 subscriptions for our fetches, that drops the REQs beyond
// them with a NOTICE: they are found quiet at the second look after they went
// out, asked for again, and from then on only 2 REQs are open at once.
TEST_CASE("REQs the relay leaves unanswered are asked for again with fewer "
          "open at once, and one unanswered alone stops the fetch",
          "[id_fetcher]") {
  id_fetcher fetcher{unclaimed(2, 4)};
  auto frames = open_reqs(fetcher, 0, 8, 4);
  auto taken_a = parse_req(frames[0]);
  auto taken_b = parse_req(frames[1]);
  auto dropped_a = parse_req(frames[2]);
  auto dropped_b = parse_req(frames[3]);
  // A look right after they went out: too soon to call anything quiet.
  CHECK(fetcher.look_for_quiet().what == quiet::answered);
  answer_all(fetcher, taken_a);
  answer_all(fetcher, taken_b);
  // Answers since the last look: not quiet.
  CHECK(fetcher.look_for_quiet().what == quiet::answered);
  CHECK(fetcher.open_requests() == 2);
  // A whole interval without any answer.
  auto look = fetcher.look_for_quiet();
  REQUIRE(look.what == quiet::retrying);
  CHECK(look.close.size() == 2);
  for (const auto* req : {&dropped_a, &dropped_b})
    CHECK(std::count(look.close.begin(), look.close.end(),
                     "[\"CLOSE\",\"" + req->sub_id + "\"]")
          == 1);
  CHECK(fetcher.unanswered == 2);
  CHECK(fetcher.max_requests() == 2);
  CHECK(fetcher.open_requests() == 0);
  CHECK(fetcher.missing == 0);
  CHECK(fetcher.queued() == 4);
  // A late answer to a closed REQ is not taken.
  CHECK_FALSE(fetcher.on_event(dropped_a.sub_id, dropped_a.ids[0]));

  auto again = fetcher.fill();
  REQUIRE(again.size() == 2);
  std::set<bytes32> asked;
  for (const auto& frame : again) {
    auto req = parse_req(frame);
    asked.insert(req.ids.begin(), req.ids.end());
  }
  auto expected = id_set_of(dropped_a.ids);
  expected.insert(dropped_b.ids.begin(), dropped_b.ids.end());
  CHECK(asked == expected);
  for (const auto& frame : again)
    answer_all(fetcher, parse_req(frame));
  CHECK(fetcher.done());
  CHECK(fetcher.delivered == 8);

  // A relay that answers nothing at all: down to one REQ, then a stop that
  // keeps the ids queued.
  id_fetcher stuck{unclaimed(2, 4)};
  open_reqs(stuck, 100, 8, 4);
  CHECK(stuck.look_for_quiet().what == quiet::answered);
  CHECK(stuck.look_for_quiet().what == quiet::retrying);
  CHECK(stuck.max_requests() == 1);
  REQUIRE(stuck.fill().size() == 1);
  CHECK(stuck.look_for_quiet().what == quiet::answered); // sent since the last look
  auto last = stuck.look_for_quiet();
  CHECK(last.what == quiet::stop);
  CHECK(last.close.empty());
  CHECK(stuck.queued() == 8);
  CHECK(stuck.missing == 0);
  CHECK_FALSE(stuck.done());
}

TEST_CASE("the id fetcher asks within given filters: one filter each, with "
          "the ids and that filter's conditions",
          "[id_fetcher]") {
  id_fetcher::options opts;
  opts.batch_size = 2;
  opts.max_requests = 1;
  opts.sub_prefix = "w-";
  nostr::filter profiles;
  profiles.kinds = std::vector<uint32_t>{0, 30023};
  profiles.since = 100;
  profiles.limit = 7; // not carried: the batch sets its own
  nostr::filter tagged;
  tagged.tags.push_back({'t', {"ferry"}});
  opts.within = {profiles, tagged};
  id_fetcher fetcher{opts};
  fetcher.add(ids(0, 2));
  auto frames = fetcher.fill();
  REQUIRE(frames.size() == 1);
  simdjson::dom::parser parser;
  simdjson::dom::array msg;
  REQUIRE_FALSE(parser.parse(frames[0]).get(msg));
  REQUIRE(msg.size() == 4);
  std::vector<nostr::filter> sent;
  for (size_t i = 2; i < 4; ++i) {
    nostr::filter f;
    REQUIRE(nostr::parse_filter(simdjson::to_string(msg.at(i)), f).empty());
    REQUIRE(f.ids);
    CHECK(*f.ids == ids(0, 2));
    CHECK(f.limit == std::optional<uint64_t>{2});
    sent.push_back(std::move(f));
  }
  CHECK(sent[0].kinds == profiles.kinds);
  CHECK(sent[0].since == profiles.since);
  CHECK(sent[0].tags.empty());
  CHECK_FALSE(sent[1].kinds);
  REQUIRE(sent[1].tags.size() == 1);
  CHECK(sent[1].tags[0].values == std::vector<std::string>{"ferry"});
}

TEST_CASE("id fetchers sharing claims ask for each id once, and one waits for "
          "what the other is fetching",
          "[id_fetcher]") {
  auto claims = std::make_shared<fetch_claims>();
  std::set<bytes32> stored;
  auto options_for = [&](std::string prefix) {
    id_fetcher::options o;
    o.batch_size = 10;
    o.max_requests = 2;
    o.sub_prefix = std::move(prefix);
    o.claims = claims;
    o.held = [&stored](const bytes32& id) { return stored.count(id) != 0; };
    return o;
  };
  id_fetcher a{options_for("a-")};
  id_fetcher c{options_for("c-")};
  // Both remotes lack the same 40 ids (two reconciliations at once).
  a.add(ids(0, 40));
  c.add(ids(0, 40));
  auto a_reqs = a.fill();
  auto c_reqs = c.fill();
  REQUIRE(a_reqs.size() == 2);
  REQUIRE(c_reqs.size() == 2);
  std::set<bytes32> asked_a, asked_c;
  for (auto& frame : a_reqs)
    for (auto& id : parse_req(frame).ids)
      asked_a.insert(id);
  for (auto& frame : c_reqs)
    for (auto& id : parse_req(frame).ids)
      asked_c.insert(id);
  CHECK(asked_a.size() == 20);
  CHECK(asked_c.size() == 20);
  for (auto& id : asked_a)
    CHECK(asked_c.count(id) == 0);
  CHECK(claims->size() == 40);

  // C's REQs end with every event delivered; everything else C has is A's.
  // Delivered ids stay claimed until C settles them (they may still be on
  // their way to the store).
  std::vector<bytes32> c_delivered;
  for (auto& frame : c_reqs) {
    auto req = parse_req(frame);
    for (auto& id : req.ids) {
      CHECK(c.on_event(req.sub_id, id));
      c_delivered.push_back(id);
    }
    CHECK_FALSE(c.on_eose(req.sub_id).empty());
  }
  CHECK(claims->size() == 40);
  for (auto& id : c_delivered) {
    stored.insert(id);
    c.settled(id);
  }
  CHECK(claims->size() == 20);
  CHECK(c.fill().empty());
  CHECK(c.waiting_for_others());
  CHECK_FALSE(c.done());

  // A's first REQ delivers all but one id; the other comes back without any
  // of its events.
  auto first = parse_req(a_reqs[0]);
  for (size_t i = 1; i < first.ids.size(); ++i) {
    CHECK(a.on_event(first.sub_id, first.ids[i]));
    stored.insert(first.ids[i]);
    a.settled(first.ids[i]);
  }
  a.on_eose(first.sub_id); // the undelivered id goes back to A's queue
  auto second = parse_req(a_reqs[1]);
  CHECK_FALSE(a.on_eose(second.sub_id).empty());
  // A skips the ids C stored and claims its undelivered id again at once:
  // C leaves it to A.
  auto a_again = a.fill();
  REQUIRE(a_again.size() == 1);
  CHECK(parse_req(a_again[0]).ids == std::vector<bytes32>{first.ids[0]});
  CHECK(a.fetched_elsewhere == 20);

  // C looks again: the ids A stored are done, those A's empty REQ gave up
  // are fetched by C itself, the one A asks for again still waits.
  auto c_again = c.fill();
  REQUIRE(c_again.size() == 1);
  auto recovered = parse_req(c_again[0]);
  CHECK(std::set<bytes32>(recovered.ids.begin(), recovered.ids.end())
        == std::set<bytes32>(second.ids.begin(), second.ids.end()));
  CHECK(c.fetched_elsewhere == first.ids.size() - 1);
  CHECK_FALSE(c.done());

  // A's last REQ ends delivered; C's own REQ too: both are done.
  auto last = parse_req(a_again[0]);
  CHECK(a.on_event(last.sub_id, last.ids[0]));
  a.on_eose(last.sub_id);
  stored.insert(last.ids[0]);
  a.settled(last.ids[0]);
  for (auto& id : recovered.ids) {
    CHECK(c.on_event(recovered.sub_id, id));
    c.settled(id);
  }
  c.on_eose(recovered.sub_id);
  CHECK(c.fill().empty());
  CHECK(a.done());
  CHECK(c.done());
  CHECK(c.fetched_elsewhere == first.ids.size());
  CHECK(claims->size() == 0);
}

TEST_CASE("an id fetcher that goes away gives its claims back", "[id_fetcher]") {
  auto claims = std::make_shared<fetch_claims>();
  id_fetcher::options o;
  o.batch_size = 5;
  o.claims = claims;
  {
    id_fetcher a{o};
    a.add(ids(0, 5));
    auto reqs = a.fill();
    REQUIRE(reqs.size() == 1);
    CHECK(claims->size() == 5);
    // One delivered and not settled, the REQ over: still claimed.
    auto req = parse_req(reqs[0]);
    CHECK(a.on_event(req.sub_id, req.ids[0]));
    a.on_eose(req.sub_id);
    CHECK(claims->size() == 1);
  }
  CHECK(claims->size() == 0);
  // Another fetcher now asks for all of them itself.
  id_fetcher c{o};
  c.add(ids(0, 5));
  auto reqs = c.fill();
  REQUIRE(reqs.size() == 1);
  CHECK(parse_req(reqs[0]).ids.size() == 5);
}

TEST_CASE("an id fetcher asks for ids another one claims once it has waited "
          "longer than its patience",
          "[id_fetcher]") {
  auto claims = std::make_shared<fetch_claims>();
  id_fetcher::options o;
  o.batch_size = 10;
  o.claims = claims;
  o.held = [](const bytes32&) { return false; };
  id_fetcher stuck{o}; // its remote never answers
  stuck.add(ids(0, 10));
  REQUIRE(stuck.fill().size() == 1);
  o.patience = std::chrono::milliseconds{0};
  id_fetcher c{o};
  c.add(ids(0, 10));
  CHECK(c.fill().empty()); // all claimed: left to the other
  CHECK(c.waiting_for_others());
  auto reqs = c.fill(); // waited long enough: asks itself
  REQUIRE(reqs.size() == 1);
  CHECK(parse_req(reqs[0]).ids.size() == 10);
  // The claims stay the stuck fetcher's.
  CHECK(claims->size() == 10);
}
