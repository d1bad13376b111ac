#include "actors/sync/id_fetcher.hpp"

#include <catch2/catch.hpp>

#include <simdjson.h>

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
  id_fetcher fetcher{{3, 2, "f-"}};
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
  id_fetcher fetcher{{4, 1, "f-"}};
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

TEST_CASE("the id fetcher gives up a REQ the relay closes and keeps its reason",
          "[id_fetcher]") {
  id_fetcher fetcher{{2, 2, "f-"}};
  fetcher.add(ids(0, 3));
  auto frames = fetcher.fill();
  REQUIRE(frames.size() == 2);
  auto a = parse_req(frames[0]);
  CHECK(fetcher.on_event(a.sub_id, a.ids[0]));
  CHECK(fetcher.on_closed(a.sub_id, "auth-required: log in first"));
  CHECK_FALSE(fetcher.on_closed(a.sub_id, "again"));
  CHECK_FALSE(fetcher.on_closed("not-ours", "x"));
  CHECK(fetcher.closed_reason() == "auth-required: log in first");
  CHECK(fetcher.missing == 1);
  CHECK(fetcher.open_requests() == 1);
}

TEST_CASE("the id fetcher asks within given filters: one filter each, with "
          "the ids and that filter's conditions",
          "[id_fetcher]") {
  id_fetcher::options opts{2, 1, "w-"};
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
