#include "store/refused_store.hpp"

#include "tests/store/store_fixture.hpp"

#include <catch2/catch.hpp>

using namespace ferry;
using namespace ferry::store;
using namespace std::chrono_literals;

namespace {

nostr::bytes32 id_of(uint8_t n) {
  nostr::bytes32 id{};
  id[0] = n;
  id[31] = n;
  return id;
}

} // namespace

TEST_CASE("a refusal is remembered per source", "[store][refused]") {
  ferry::store::test::store_fixture db;
  REQUIRE_FALSE(remember_refused(*db.store, "sync:a", id_of(1), 1000,
                                 "blocked: no spam here"));
  auto found = find_refused(*db.store, "sync:a", id_of(1));
  REQUIRE(found);
  CHECK(found->reason == "blocked: no spam here");
  CHECK(found->at == 1000);
  CHECK(found->source == "sync:a");
  // Another source sent nothing refused.
  CHECK_FALSE(find_refused(*db.store, "sync:b", id_of(1)));
}

TEST_CASE("the latest refusals come newest first, by source",
          "[store][refused]") {
  ferry::store::test::store_fixture db;
  for (uint8_t i = 1; i <= 5; ++i)
    REQUIRE_FALSE(remember_refused(*db.store, i % 2 ? "sync:odd" : "sync:even",
                                   id_of(i), 100 + i, "blocked: " + std::to_string(i)));
  auto all = latest_refused(*db.store, "", 3);
  REQUIRE(all.size() == 3);
  CHECK(all[0].id == id_of(5));
  CHECK(all[1].id == id_of(4));
  CHECK(all[2].id == id_of(3));
  auto even = latest_refused(*db.store, "sync:even", 10);
  REQUIRE(even.size() == 2);
  CHECK(even[0].reason == "blocked: 4");
  CHECK(even[1].reason == "blocked: 2");
}

TEST_CASE("a second refusal of the same event moves it, not doubles it",
          "[store][refused]") {
  ferry::store::test::store_fixture db;
  REQUIRE_FALSE(remember_refused(*db.store, "sync:a", id_of(1), 100, "blocked: x"));
  REQUIRE_FALSE(remember_refused(*db.store, "sync:a", id_of(1), 200, "blocked: y"));
  auto all = latest_refused(*db.store, "", 10);
  REQUIRE(all.size() == 1);
  CHECK(all[0].at == 200);
  CHECK(all[0].reason == "blocked: y");
}

TEST_CASE("pruning forgets expired refusals, then the oldest beyond the cap",
          "[store][refused]") {
  ferry::store::test::store_fixture db;
  for (uint8_t i = 1; i <= 10; ++i)
    REQUIRE_FALSE(remember_refused(*db.store, "sync:a", id_of(i), 100 * i, "blocked"));
  // At 1000 with a TTL of 750 s, the refusals at 100 and 200 are expired.
  auto n = prune_refused(*db.store, 1000, 750s, 5);
  REQUIRE(n);
  // 2 expired, then 3 more of the oldest to get down to 5.
  CHECK(*n == 5);
  auto left = latest_refused(*db.store, "", 100);
  REQUIRE(left.size() == 5);
  CHECK(left.back().id == id_of(6));
  CHECK_FALSE(find_refused(*db.store, "sync:a", id_of(5)));
  CHECK(find_refused(*db.store, "sync:a", id_of(6)));
  auto again = prune_refused(*db.store, 1000, 750s, 5);
  REQUIRE(again);
  CHECK(*again == 0);
}

TEST_CASE("a new write policy forgets the refusals the old one made, and "
          "keeps the invalid ones",
          "[store][refused]") {
  ferry::store::test::store_fixture db;
  // No fingerprint yet: the first policy is recorded, nothing is forgotten.
  REQUIRE_FALSE(remember_refused(*db.store, "sync:a", id_of(1), 100,
                                 "blocked: kind 4 is not accepted here"));
  auto first = follow_policy(*db.store, "deny kind 4");
  REQUIRE(first);
  CHECK(*first == 0);
  REQUIRE_FALSE(remember_refused(*db.store, "sync:a", id_of(2), 101,
                                 "invalid: bad signature"));
  REQUIRE_FALSE(remember_refused(*db.store, "sync:b", id_of(3), 102,
                                 "blocked: no spam here"));
  auto same = follow_policy(*db.store, "deny kind 4");
  REQUIRE(same);
  CHECK(*same == 0);
  CHECK(latest_refused(*db.store, "", 10).size() == 3);

  auto changed = follow_policy(*db.store, "deny kind 7");
  REQUIRE(changed);
  CHECK(*changed == 2);
  CHECK_FALSE(find_refused(*db.store, "sync:a", id_of(1)));
  CHECK_FALSE(find_refused(*db.store, "sync:b", id_of(3)));
  REQUIRE(find_refused(*db.store, "sync:a", id_of(2)));
  auto left = latest_refused(*db.store, "", 10);
  REQUIRE(left.size() == 1);
  CHECK(left[0].reason == "invalid: bad signature");
  // The fingerprint is not an entry: pruning and listing do not see it.
  auto pruned = prune_refused(*db.store, 200, std::chrono::seconds{1000}, 10);
  REQUIRE(pruned);
  CHECK(*pruned == 0);
}

TEST_CASE("new rules of one source forget that source's refusals alone",
          "[store][refused]") {
  ferry::store::test::store_fixture db;
  // No fingerprint for the source yet: recorded, nothing forgotten.
  REQUIRE_FALSE(remember_refused(*db.store, "sync:a", id_of(1), 100,
                                 "blocked: kind 4 is not accepted here"));
  auto first = follow_source_policy(*db.store, "sync:a", "deny kind 4");
  REQUIRE(first);
  CHECK(*first == 0);
  REQUIRE_FALSE(remember_refused(*db.store, "sync:a", id_of(2), 101,
                                 "invalid: bad signature"));
  // "sync:ab" starts with "sync:a" but is another source.
  REQUIRE_FALSE(remember_refused(*db.store, "sync:ab", id_of(3), 102,
                                 "blocked: kind 4 is not accepted here"));
  REQUIRE_FALSE(remember_refused(*db.store, "sync:b", id_of(4), 103,
                                 "blocked: no spam here"));
  auto same = follow_source_policy(*db.store, "sync:a", "deny kind 4");
  REQUIRE(same);
  CHECK(*same == 0);
  CHECK(find_refused(*db.store, "sync:a", id_of(1)));

  auto changed = follow_source_policy(*db.store, "sync:a", "deny kind 7");
  REQUIRE(changed);
  CHECK(*changed == 1);
  CHECK_FALSE(find_refused(*db.store, "sync:a", id_of(1)));
  CHECK(find_refused(*db.store, "sync:a", id_of(2)));
  CHECK(find_refused(*db.store, "sync:ab", id_of(3)));
  CHECK(find_refused(*db.store, "sync:b", id_of(4)));
  // The age index lost the forgotten entry too, and the node-wide
  // fingerprint is apart: recording it forgets nothing.
  CHECK(latest_refused(*db.store, "", 10).size() == 3);
  auto node_wide = follow_policy(*db.store, "deny kind 7");
  REQUIRE(node_wide);
  CHECK(*node_wide == 0);
  // A source whose rules were never recorded forgets nothing either.
  auto other = follow_source_policy(*db.store, "sync:b", "no rules");
  REQUIRE(other);
  CHECK(*other == 0);
  CHECK(find_refused(*db.store, "sync:b", id_of(4)));
}
