#include "actors/relay/subscription_index.hpp"

#include "messages/nostr/hex.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>

using namespace ferry;

namespace {

/// What one `match` call reported: session -> subscription ids.
using matches = std::map<caf::actor_id, std::vector<std::string>>;

matches match(subscription_index& index, const nostr::event& ev) {
  matches result;
  index.match(ev, [&](caf::actor_id session, std::vector<std::string> sub_ids) {
    CHECK(result.count(session) == 0);
    result[session] = std::move(sub_ids);
  });
  return result;
}

filter_set_ptr filters(const std::vector<std::string>& json) {
  auto fs = std::make_shared<std::vector<nostr::filter>>();
  for (const auto& text : json) {
    nostr::filter f;
    auto reason = nostr::parse_filter(std::string_view{text}, f);
    INFO(text);
    REQUIRE(reason.empty());
    fs->push_back(std::move(f));
  }
  return fs;
}

nostr::bytes32 key_of(uint8_t n) {
  nostr::bytes32 x{};
  x.fill(n);
  return x;
}

std::string hex_of(uint8_t n) {
  return nostr::to_hex(key_of(n));
}

nostr::event event_of(uint8_t id, uint8_t author, uint32_t kind, int64_t created_at,
                      std::vector<nostr::tag> tags = {}) {
  nostr::event ev;
  ev.id = key_of(id);
  ev.pubkey = key_of(author);
  ev.kind = kind;
  ev.created_at = created_at;
  ev.tags = std::move(tags);
  return ev;
}

} // namespace

TEST_CASE("the subscription index finds exactly the matching subscriptions",
          "[subscription_index]") {
  subscription_index index;
  const caf::actor_id alice = 1;
  const caf::actor_id bob = 2;
  CHECK(index.add(alice, "by-author",
                  filters({R"({"authors":[")" + hex_of(7) + R"("],"limit":0})"})));
  CHECK(index.add(alice, "mentions",
                  filters({R"({"#p":[")" + hex_of(9) + R"("],"limit":0})"})));
  CHECK(index.add(alice, "topic", filters({R"({"#t":["nostr","git"],"kinds":[1]})"})));
  CHECK(index.add(bob, "long-form", filters({R"({"kinds":[30023],"limit":0})"})));
  CHECK(index.add(bob, "window", filters({R"({"since":100,"until":200})"})));
  CHECK(index.add(bob, "one-id", filters({R"({"ids":[")" + hex_of(42) + R"("]})"})));
  CHECK(index.add(bob, "two-filters",
                  filters({R"({"kinds":[7]})", R"({"authors":[")" + hex_of(7)
                                                 + R"("],"kinds":[1]})"})));
  CHECK(index.add(bob, "never", filters({R"({"kinds":[]})", R"({"authors":[]})"})));
  CHECK(index.size() == 8);

  SECTION("authors, with another condition in the same filter") {
    CHECK(match(index, event_of(1, 7, 1, 50))
          == matches{{alice, {"by-author"}}, {bob, {"two-filters"}}});
    CHECK(match(index, event_of(1, 7, 3, 50)) == matches{{alice, {"by-author"}}});
  }
  SECTION("tags: every condition, any of a condition's values") {
    CHECK(match(index, event_of(1, 8, 1, 50, {{"t", "git"}, {"p", hex_of(9)}}))
          == matches{{alice, {"mentions", "topic"}}});
    // #t matches but kinds does not.
    CHECK(match(index, event_of(1, 8, 2, 50, {{"t", "git"}})).empty());
    // Only a tag's first value counts, and only single-letter tag names.
    CHECK(match(index, event_of(1, 8, 1, 50, {{"x", "nostr"}, {"tt", "nostr"}})).empty());
    CHECK(match(index, event_of(1, 8, 1, 50, {{"t", "other", "nostr"}})).empty());
    // The same tag twice names the subscription once.
    CHECK(match(index, event_of(1, 8, 1, 50, {{"t", "nostr"}, {"t", "git"}}))
          == matches{{alice, {"topic"}}});
  }
  SECTION("kinds, since and until, ids") {
    CHECK(match(index, event_of(1, 8, 30023, 50)) == matches{{bob, {"long-form"}}});
    CHECK(match(index, event_of(1, 8, 5, 100)) == matches{{bob, {"window"}}});
    CHECK(match(index, event_of(1, 8, 5, 200)) == matches{{bob, {"window"}}});
    CHECK(match(index, event_of(1, 8, 5, 201)).empty());
    CHECK(match(index, event_of(42, 8, 7, 150))
          == matches{{bob, {"one-id", "two-filters", "window"}}});
  }
  SECTION("a closed subscription gets nothing, the others still do") {
    CHECK(index.remove(alice, "by-author"));
    CHECK_FALSE(index.remove(alice, "by-author"));
    CHECK(index.size() == 7);
    CHECK(match(index, event_of(1, 7, 1, 50)) == matches{{bob, {"two-filters"}}});
  }
  SECTION("a replaced subscription uses its new filters only") {
    CHECK_FALSE(index.add(bob, "long-form", filters({R"({"kinds":[1]})"})));
    CHECK(index.size() == 8);
    CHECK(match(index, event_of(1, 8, 30023, 50)).empty());
    CHECK(match(index, event_of(1, 8, 1, 50)) == matches{{bob, {"long-form"}}});
  }
  SECTION("a session that leaves takes all its subscriptions") {
    CHECK(index.remove_session(bob) == 5);
    CHECK(index.size() == 3);
    CHECK(match(index, event_of(42, 7, 7, 150)) == matches{{alice, {"by-author"}}});
    CHECK(index.remove_session(bob) == 0);
  }
}

TEST_CASE("the subscription index agrees with checking every filter",
          "[subscription_index]") {
  // Small value domains, so that random filters and events often meet.
  std::mt19937 rng{20261203};
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  auto random_filter = [&] {
    std::string json = "{";
    auto field = [&](const std::string& name, auto value_of, int domain) {
      if (json.size() > 1)
        json += ",";
      json += "\"" + name + "\":[";
      std::set<int> values;
      for (int n = pick(3); n > 0; --n) // sometimes empty: matches nothing
        values.insert(pick(domain));
      bool first = true;
      for (auto v : values) {
        json += (first ? "" : ",") + value_of(v);
        first = false;
      }
      json += "]";
    };
    auto hex = [](int v) { return "\"" + hex_of(static_cast<uint8_t>(v)) + "\""; };
    auto text = [](int v) { return "\"v" + std::to_string(v) + "\""; };
    auto number = [](int v) { return std::to_string(v); };
    if (pick(6) == 0)
      field("ids", hex, 6);
    if (pick(3) == 0)
      field("authors", hex, 6);
    if (pick(2) == 0)
      field("kinds", number, 4);
    if (pick(3) == 0)
      field("#e", text, 5);
    if (pick(3) == 0)
      field("#t", text, 5);
    if (pick(4) == 0)
      json += std::string(json.size() > 1 ? "," : "") + "\"since\":" + std::to_string(pick(10));
    if (pick(4) == 0)
      json += std::string(json.size() > 1 ? "," : "") + "\"until\":" + std::to_string(pick(10));
    if (pick(2) == 0)
      json += std::string(json.size() > 1 ? "," : "") + "\"limit\":0";
    return json + "}";
  };
  auto random_event = [&] {
    std::vector<nostr::tag> tags;
    for (int n = pick(4); n > 0; --n)
      tags.push_back({pick(2) ? "e" : "t", "v" + std::to_string(pick(5))});
    return event_of(static_cast<uint8_t>(pick(6)), static_cast<uint8_t>(pick(6)),
                    static_cast<uint32_t>(pick(4)), pick(10), std::move(tags));
  };

  subscription_index index;
  std::map<std::pair<caf::actor_id, std::string>, filter_set_ptr> open;
  size_t deliveries = 0;
  for (int round = 0; round < 2000; ++round) {
    auto session = static_cast<caf::actor_id>(1 + pick(20));
    auto sub_id = "s" + std::to_string(pick(5));
    switch (pick(10)) {
      case 0:
        CHECK(index.remove(session, sub_id) == (open.erase({session, sub_id}) > 0));
        break;
      case 1: {
        size_t n = 0;
        for (auto i = open.begin(); i != open.end();)
          if (i->first.first == session) {
            i = open.erase(i);
            ++n;
          } else {
            ++i;
          }
        CHECK(index.remove_session(session) == n);
        break;
      }
      default: {
        std::vector<std::string> json;
        for (int n = 1 + pick(2); n > 0; --n)
          json.push_back(random_filter());
        auto fs = filters(json);
        CHECK(index.add(session, sub_id, fs) == (open.count({session, sub_id}) == 0));
        open[{session, sub_id}] = fs;
      }
    }
    REQUIRE(index.size() == open.size());
    for (int e = 0; e < 5; ++e) {
      auto ev = random_event();
      matches expected;
      for (const auto& [k, fs] : open)
        if (nostr::matches_any(*fs, ev))
          expected[k.first].push_back(k.second);
      auto got = match(index, ev);
      INFO("round " << round);
      REQUIRE(got == expected);
      for (const auto& [s, subs] : got)
        deliveries += subs.size();
    }
  }
  // The domains were small enough for the check to mean something.
  CHECK(deliveries > 5000);
}
