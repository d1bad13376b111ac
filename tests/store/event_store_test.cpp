#include "messages/error.hpp"
#include "store/keys.hpp"
#include "tests/store/store_fixture.hpp"

#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <rocksdb/table_properties.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

using namespace ferry;
using namespace ferry::store;
using namespace ferry::store::test;
using nostr::bytes32;

namespace {

std::string hex(const bytes32& x) {
  return nostr::to_hex(x);
}

std::string address_of(uint32_t kind, const bytes32& pubkey, const std::string& d) {
  return std::to_string(kind) + ":" + hex(pubkey) + ":" + d;
}

/// Every index family is empty (the store holds no events); `replaceable`
/// holds the `slots` records of erased versions that keep older ones out.
void require_no_index_keys(const store_fixture& fx, size_t slots = 0) {
  for (auto family : {cf::events, cf::by_created, cf::by_kind, cf::by_author,
                      cf::by_author_kind, cf::by_tag, cf::by_expiration}) {
    CAPTURE(cf_name(family));
    CHECK(fx.keys_in(family) == 0);
  }
  CHECK(fx.keys_in(cf::replaceable) == slots);
}

/// Nothing of kind `kind` is served: no scan, count or NIP-77 item set finds
/// one.
void require_none_served(const store_fixture& fx, uint32_t kind) {
  CAPTURE(kind);
  CHECK(fx.scan_ids(kinds_filter({kind})).empty());
  CHECK(fx.store->count({kinds_filter({kind})}, default_now) == 0);
  auto items = fx.store->negentropy_items(kinds_filter({kind}), default_now, 100);
  REQUIRE(items);
  CHECK(items->items.empty());
}

} // namespace

TEST_CASE_METHOD(store_fixture, "an event is stored once", "[store]") {
  auto keys = nostr::generate_keypair();
  auto ev = make_event(keys, 1, 100, {{"t", "ferry"}}, "hello");
  auto first = write(ev);
  CHECK(first.outcome == write_outcome::stored);
  CHECK(first.message.empty());
  CHECK(store->contains(ev.ev.id));
  CHECK(store->get_json(ev.ev.id) == ev.json);
  auto second = write(ev);
  CHECK(second.outcome == write_outcome::duplicate);
  CHECK(second.accepted());
  CHECK(second.message == "duplicate: already have this event");
  CHECK(scan_ids(kinds_filter({1})).size() == 1);
}

TEST_CASE_METHOD(store_fixture, "replaceable events keep only the newest",
                 "[store]") {
  auto keys = nostr::generate_keypair();
  auto v1 = make_event(keys, 0, 100, {}, "v1");
  auto v2 = make_event(keys, 0, 200, {}, "v2");
  auto older = make_event(keys, 0, 150, {}, "older");
  REQUIRE(write(v1).outcome == write_outcome::stored);
  REQUIRE(write(v2).outcome == write_outcome::stored);
  CHECK_FALSE(store->contains(v1.ev.id));
  auto r = write(older);
  CHECK(r.outcome == write_outcome::duplicate);
  CHECK(r.message == "duplicate: have a newer version of this event");
  CHECK_FALSE(store->contains(older.ev.id));
  CHECK(scan_ids(kinds_filter({0})) == std::vector<bytes32>{v2.ev.id});
  // The replaced version left no index entry behind.
  nostr::filter by_author;
  by_author.authors = std::vector<bytes32>{keys.pubkey};
  CHECK(store->count({by_author}, default_now) == 1);
  CHECK(keys_in(cf::by_created) == 1);
  CHECK(keys_in(cf::replaceable) == 1);
}

TEST_CASE_METHOD(store_fixture, "an older version that replaces newer ones "
                 "takes the slot and leaves no trace of ours",
                 "[store]") {
  auto keys = nostr::generate_keypair();
  auto ours = make_event(keys, 30023, 200, {{"d", "post"}}, "ours");
  auto theirs = make_event(keys, 30023, 100, {{"d", "post"}}, "theirs");
  theirs.replaces_newer = true;
  REQUIRE(write(ours).outcome == write_outcome::stored);
  CHECK(write(theirs).outcome == write_outcome::stored);
  CHECK_FALSE(store->contains(ours.ev.id));
  CHECK(scan_ids(kinds_filter({30023})) == std::vector<bytes32>{theirs.ev.id});
  CHECK(keys_in(cf::by_created) == 1);
  CHECK(keys_in(cf::replaceable) == 1);
  // Without the flag the newest rule is back: the older one stays out.
  auto older = make_event(keys, 30023, 50, {{"d", "post"}}, "older");
  CHECK(write(older).outcome == write_outcome::duplicate);
  CHECK(scan_ids(kinds_filter({30023})) == std::vector<bytes32>{theirs.ev.id});
}

TEST_CASE_METHOD(store_fixture, "a replaceable tie keeps the lowest id", "[store]") {
  auto keys = nostr::generate_keypair();
  auto a = make_event(keys, 10002, 100, {}, "a");
  auto b = make_event(keys, 10002, 100, {}, "b");
  auto& low = a.ev.id < b.ev.id ? a : b;
  auto& high = a.ev.id < b.ev.id ? b : a;
  SECTION("lower id first") {
    CHECK(write(low).outcome == write_outcome::stored);
    CHECK(write(high).outcome == write_outcome::duplicate);
  }
  SECTION("higher id first") {
    CHECK(write(high).outcome == write_outcome::stored);
    CHECK(write(low).outcome == write_outcome::stored);
    CHECK_FALSE(store->contains(high.ev.id));
  }
  CHECK(scan_ids(kinds_filter({10002})) == std::vector<bytes32>{low.ev.id});
}

TEST_CASE_METHOD(store_fixture, "addressable events have one slot per d tag",
                 "[store]") {
  auto keys = nostr::generate_keypair();
  auto a1 = make_event(keys, 30023, 100, {{"d", "a"}});
  auto b1 = make_event(keys, 30023, 110, {{"d", "b"}});
  auto a2 = make_event(keys, 30023, 120, {{"d", "a"}});
  auto other = make_event(nostr::generate_keypair(), 30023, 90, {{"d", "a"}});
  REQUIRE(write(a1).outcome == write_outcome::stored);
  REQUIRE(write(b1).outcome == write_outcome::stored);
  REQUIRE(write(other).outcome == write_outcome::stored);
  REQUIRE(write(a2).outcome == write_outcome::stored);
  CHECK_FALSE(store->contains(a1.ev.id));
  CHECK(store->contains(b1.ev.id));
  CHECK(store->contains(other.ev.id));
  CHECK(write(a1).outcome == write_outcome::duplicate);
  CHECK(scan_ids(kinds_filter({30023}))
        == std::vector<bytes32>{a2.ev.id, b1.ev.id, other.ev.id});
}

TEST_CASE_METHOD(store_fixture, "ephemeral events are not stored", "[store]") {
  auto ev = make_event(nostr::generate_keypair(), 20001, 100);
  auto r = write(ev);
  CHECK(r.outcome == write_outcome::ephemeral);
  CHECK(r.message.empty());
  CHECK(r.accepted());
  CHECK_FALSE(store->contains(ev.ev.id));
  require_no_index_keys(*this);
}

TEST_CASE_METHOD(store_fixture, "kind 5 deletes its author's events by id",
                 "[store]") {
  auto alice = nostr::generate_keypair();
  auto bob = nostr::generate_keypair();
  auto mine = make_event(alice, 1, 100, {{"t", "x"}, {"p", hex(bob.pubkey)}});
  auto theirs = make_event(bob, 1, 101);
  REQUIRE(write(mine).outcome == write_outcome::stored);
  REQUIRE(write(theirs).outcome == write_outcome::stored);
  auto deletion = make_event(alice, 5, 200,
                             {{"e", hex(mine.ev.id)}, {"e", hex(theirs.ev.id)}});
  REQUIRE(write(deletion).outcome == write_outcome::stored);
  CHECK_FALSE(store->contains(mine.ev.id));
  CHECK(store->contains(theirs.ev.id));
  CHECK(store->contains(deletion.ev.id));
  CHECK(scan_ids(kinds_filter({1})) == std::vector<bytes32>{theirs.ev.id});
  nostr::filter by_tag;
  by_tag.tags = {{'t', {"x"}}};
  CHECK(store->count({by_tag}, default_now) == 0);

  SECTION("re-publication is blocked") {
    auto r = write(mine);
    CHECK(r.outcome == write_outcome::refused);
    CHECK_FALSE(r.accepted());
    CHECK(r.message == "blocked: this event was deleted by its author");
  }
  SECTION("a deletion is blocked before its target arrives") {
    auto later = make_event(alice, 1, 300, {}, "later");
    REQUIRE(write(make_event(alice, 5, 250, {{"e", hex(later.ev.id)}})).outcome
            == write_outcome::stored);
    CHECK(write(later).outcome == write_outcome::refused);
  }
  SECTION("someone else's deletion blocks nothing") {
    auto later = make_event(alice, 1, 300, {}, "later");
    REQUIRE(write(make_event(bob, 5, 250, {{"e", hex(later.ev.id)}})).outcome
            == write_outcome::stored);
    CHECK(write(later).outcome == write_outcome::stored);
  }
  SECTION("a deletion of a deletion has no effect") {
    auto undo = make_event(alice, 5, 300, {{"e", hex(deletion.ev.id)}});
    REQUIRE(write(undo).outcome == write_outcome::stored);
    CHECK(store->contains(deletion.ev.id));
    CHECK(write(mine).outcome == write_outcome::refused);
  }
}

TEST_CASE_METHOD(store_fixture, "kind 5 deletes addressable events by address",
                 "[store]") {
  auto alice = nostr::generate_keypair();
  auto article = make_event(alice, 30023, 100, {{"d", "post"}});
  auto other_slot = make_event(alice, 30023, 100, {{"d", "keep"}});
  REQUIRE(write(article).outcome == write_outcome::stored);
  REQUIRE(write(other_slot).outcome == write_outcome::stored);
  auto deletion = make_event(alice, 5, 150,
                             {{"a", address_of(30023, alice.pubkey, "post")}});
  REQUIRE(write(deletion).outcome == write_outcome::stored);
  CHECK_FALSE(store->contains(article.ev.id));
  CHECK(store->contains(other_slot.ev.id));
  CHECK(write(make_event(alice, 30023, 120, {{"d", "post"}})).outcome
        == write_outcome::refused);
  CHECK(write(make_event(alice, 30023, 150, {{"d", "post"}})).outcome
        == write_outcome::refused);
  auto newer = make_event(alice, 30023, 200, {{"d", "post"}});
  CHECK(write(newer).outcome == write_outcome::stored);

  SECTION("a deletion older than the current version keeps it") {
    auto stale = make_event(alice, 5, 180,
                            {{"a", address_of(30023, alice.pubkey, "post")}});
    REQUIRE(write(stale).outcome == write_outcome::stored);
    CHECK(store->contains(newer.ev.id));
  }
  SECTION("someone else's address is ignored") {
    auto bob = nostr::generate_keypair();
    auto forged = make_event(bob, 5, 300,
                             {{"a", address_of(30023, alice.pubkey, "post")}});
    REQUIRE(write(forged).outcome == write_outcome::stored);
    CHECK(store->contains(newer.ev.id));
  }
  SECTION("replaceable kinds are addressed with an empty d") {
    auto profile = make_event(alice, 0, 100);
    REQUIRE(write(profile).outcome == write_outcome::stored);
    REQUIRE(write(make_event(alice, 5, 160, {{"a", address_of(0, alice.pubkey, "")}}))
              .outcome
            == write_outcome::stored);
    CHECK_FALSE(store->contains(profile.ev.id));
    // "keep", the newer "post" and the deleted profile's record.
    CHECK(keys_in(cf::replaceable) == 3);
  }
}

// The slot of an address outlives its newest version: deleted by id or
// expired, that version leaves its (created_at, id) behind, so the versions
// it replaced are not stored again (a sync keeps offering them from remotes
// that never saw the newer one), while newer versions still are.
TEST_CASE_METHOD(store_fixture, "a deleted newest version keeps older versions "
                                "out",
                 "[store]") {
  auto alice = nostr::generate_keypair();
  auto v1 = make_event(alice, 0, 100, {}, "v1");
  auto v2 = make_event(alice, 0, 200, {}, "v2");
  REQUIRE(write(v1).outcome == write_outcome::stored);
  REQUIRE(write(v2).outcome == write_outcome::stored);
  REQUIRE(write(make_event(alice, 5, 300, {{"e", hex(v2.ev.id)}})).outcome
          == write_outcome::stored);
  REQUIRE_FALSE(store->contains(v2.ev.id));
  reopen();
  auto again = write(v1);
  CHECK(again.outcome == write_outcome::duplicate);
  CHECK(again.message == "duplicate: have a newer version of this event");
  CHECK(write(v2).outcome == write_outcome::refused);
  CHECK_FALSE(store->contains(v1.ev.id));
  CHECK_FALSE(store->contains(v2.ev.id));
  require_none_served(*this, 0);

  SECTION("a newer version is stored") {
    auto v3 = make_event(alice, 0, 250, {}, "v3");
    CHECK(write(v3).outcome == write_outcome::stored);
    CHECK(scan_ids(kinds_filter({0})) == std::vector<bytes32>{v3.ev.id});
    CHECK(write(v1).outcome == write_outcome::duplicate);
  }
  SECTION("a version of the same second is ordered by id, as NIP-01 says") {
    std::optional<incoming_event> lower;
    std::optional<incoming_event> higher;
    for (int i = 0; !lower || !higher; ++i) {
      auto candidate = make_event(alice, 0, 200, {}, "tie " + std::to_string(i));
      (candidate.ev.id < v2.ev.id ? lower : higher) = candidate;
    }
    CHECK(write(*higher).outcome == write_outcome::duplicate);
    CHECK(write(*lower).outcome == write_outcome::stored);
    CHECK(scan_ids(kinds_filter({0})) == std::vector<bytes32>{lower->ev.id});
  }
}

TEST_CASE_METHOD(store_fixture, "an expired newest version keeps older versions "
                                "out",
                 "[store]") {
  auto alice = nostr::generate_keypair();
  auto now = default_now;
  auto s1 = make_event(alice, 30023, 100, {{"d", "s"}}, "s1");
  auto s2 = make_event(alice, 30023, 200,
                       {{"d", "s"}, {"expiration", std::to_string(now + 10)}},
                       "s2");
  REQUIRE(write(s1, now).outcome == write_outcome::stored);
  REQUIRE(write(s2, now).outcome == write_outcome::stored);
  auto purged = store->purge_expired(now + 10);
  REQUIRE(purged);
  REQUIRE(*purged == 1);
  reopen();
  auto again = write(s1, now + 10);
  CHECK(again.outcome == write_outcome::duplicate);
  CHECK(again.message == "duplicate: have a newer version of this event");
  CHECK_FALSE(store->contains(s1.ev.id));
  CHECK_FALSE(store->contains(s2.ev.id));
  require_none_served(*this, 30023);
  // The slot of another d is another address.
  auto other = make_event(alice, 30023, 100, {{"d", "t"}});
  CHECK(write(other, now + 10).outcome == write_outcome::stored);

  auto s3 = make_event(alice, 30023, 300, {{"d", "s"}}, "s3");
  CHECK(write(s3, now + 10).outcome == write_outcome::stored);
  nostr::filter address = kinds_filter({30023});
  address.tags = {{'d', {"s"}}};
  CHECK(scan_ids(address, now + 10) == std::vector<bytes32>{s3.ev.id});
  CHECK(store->count({address}, now + 10) == 1);
}

TEST_CASE_METHOD(store_fixture, "NIP-40 expiration", "[store]") {
  auto keys = nostr::generate_keypair();
  auto now = default_now;
  SECTION("an expired event is refused on arrival") {
    auto ev = make_event(keys, 1, 100, {{"expiration", std::to_string(now)}});
    auto r = write(ev, now);
    CHECK(r.outcome == write_outcome::refused);
    CHECK(r.message == "invalid: this event has expired");
    CHECK_FALSE(store->contains(ev.ev.id));
  }
  SECTION("scans skip expired events, purge removes them with their indexes") {
    auto soon = make_event(keys, 1, 100,
                           {{"expiration", std::to_string(now + 10)}, {"t", "x"}});
    auto later = make_event(keys, 1, 101, {{"expiration", std::to_string(now + 100)}});
    auto never = make_event(keys, 1, 102);
    for (auto* ev : {&soon, &later, &never})
      REQUIRE(write(*ev, now).outcome == write_outcome::stored);
    CHECK(scan_ids(kinds_filter({1}), now).size() == 3);
    CHECK(scan_ids(kinds_filter({1}), now + 10)
          == std::vector<bytes32>{never.ev.id, later.ev.id});
    CHECK(store->count({kinds_filter({1})}, now + 10) == 2);
    CHECK(store->count({nostr::filter{}}, now + 10) == 2);
    auto purged = store->purge_expired(now + 10);
    REQUIRE(purged);
    CHECK(*purged == 1);
    CHECK_FALSE(store->contains(soon.ev.id));
    CHECK(store->contains(later.ev.id));
    CHECK(keys_in(cf::by_expiration) == 1);
    CHECK(keys_in(cf::by_tag) == 0);
    CHECK(keys_in(cf::by_created) == 2);
    purged = store->purge_expired(now + 1000);
    REQUIRE(purged);
    CHECK(*purged == 1);
    CHECK(keys_in(cf::by_expiration) == 0);
    CHECK(scan_ids(nostr::filter{}, now) == std::vector<bytes32>{never.ev.id});
  }
  SECTION("purging everything leaves no index entry") {
    auto ev = make_event(keys, 30001, 100,
                         {{"d", "x"}, {"expiration", std::to_string(now + 1)}});
    REQUIRE(write(ev, now).outcome == write_outcome::stored);
    auto purged = store->purge_expired(now + 1);
    REQUIRE(purged);
    CHECK(*purged == 1);
    require_no_index_keys(*this, 1);
  }
}

TEST_CASE_METHOD(store_fixture, "events of one batch see each other", "[store]") {
  auto alice = nostr::generate_keypair();
  SECTION("the same id twice") {
    auto ev = make_event(alice, 1, 100);
    auto r = write({&ev, &ev});
    CHECK(r[0].outcome == write_outcome::stored);
    CHECK(r[1].outcome == write_outcome::duplicate);
    CHECK(keys_in(cf::by_created) == 1);
  }
  SECTION("two versions of a replaceable event, older first") {
    auto v1 = make_event(alice, 3, 100);
    auto v2 = make_event(alice, 3, 200);
    auto r = write({&v1, &v2});
    CHECK(r[0].outcome == write_outcome::stored);
    CHECK(r[1].outcome == write_outcome::stored);
    CHECK_FALSE(store->contains(v1.ev.id));
    CHECK(scan_ids(kinds_filter({3})) == std::vector<bytes32>{v2.ev.id});
    CHECK(keys_in(cf::by_created) == 1);
  }
  SECTION("two versions of a replaceable event, newer first") {
    auto v1 = make_event(alice, 3, 100);
    auto v2 = make_event(alice, 3, 200);
    auto r = write({&v2, &v1});
    CHECK(r[0].outcome == write_outcome::stored);
    CHECK(r[1].outcome == write_outcome::duplicate);
    CHECK(scan_ids(kinds_filter({3})) == std::vector<bytes32>{v2.ev.id});
  }
  SECTION("an event and its deletion") {
    auto ev = make_event(alice, 1, 100, {{"t", "x"}});
    auto del = make_event(alice, 5, 101, {{"e", hex(ev.ev.id)}});
    auto r = write({&ev, &del});
    CHECK(r[0].outcome == write_outcome::stored);
    CHECK(r[1].outcome == write_outcome::stored);
    CHECK_FALSE(store->contains(ev.ev.id));
    CHECK(keys_in(cf::by_created) == 1);
    CHECK(keys_in(cf::by_tag) == 1); // the deletion's own `e` tag
  }
  SECTION("a deletion before its target") {
    auto ev = make_event(alice, 1, 100);
    auto del = make_event(alice, 5, 101, {{"e", hex(ev.ev.id)}});
    auto r = write({&del, &ev});
    CHECK(r[0].outcome == write_outcome::stored);
    CHECK(r[1].outcome == write_outcome::refused);
    CHECK_FALSE(store->contains(ev.ev.id));
  }
  SECTION("an addressable event and its deletion by address") {
    auto ev = make_event(alice, 30000, 100, {{"d", "list"}});
    auto del = make_event(alice, 5, 100,
                          {{"a", address_of(30000, alice.pubkey, "list")}});
    auto r = write({&ev, &del});
    CHECK(r[1].outcome == write_outcome::stored);
    CHECK_FALSE(store->contains(ev.ev.id));
    require_none_served(*this, 30000);
  }
}

namespace {

/// Every key and value of every family, in order.
std::vector<std::string> dump(const store_fixture& fx) {
  std::vector<std::string> out;
  for (size_t i = 0; i < cf_count; ++i) {
    std::unique_ptr<rocksdb::Iterator> it(fx.store->db()->NewIterator(
      rocksdb::ReadOptions{}, fx.store->handle(static_cast<cf>(i))));
    for (it->SeekToFirst(); it->Valid(); it->Next())
      out.push_back(std::string(cf_names[i]) + " " + it->key().ToString(true) + " "
                    + it->value().ToString(true));
  }
  return out;
}

/// 400 signed events of three authors at few distinct times, so that
/// replaceable versions tie and deletions (by id and address) race.
std::vector<incoming_event> mixed_events(uint64_t seed) {
  std::mt19937_64 rng{seed};
  auto pick = [&rng](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  std::vector<nostr::keypair> authors;
  for (int i = 0; i < 3; ++i)
    authors.push_back(nostr::generate_keypair());
  std::vector<incoming_event> events;
  events.reserve(400);
  while (events.size() < 400) {
    const auto& who = authors[pick(authors.size())];
    auto at = static_cast<int64_t>(100 + pick(20));
    std::vector<nostr::tag> tags{{"t", "topic" + std::to_string(pick(4))}};
    uint32_t kind = 1;
    switch (pick(6)) {
      case 0:
        kind = pick(2) == 0 ? 3 : 10002;
        break;
      case 1:
        kind = 30617;
        tags.push_back({"d", pick(2) == 0 ? "a" : "b"});
        break;
      case 2:
        if (!events.empty()) {
          kind = 5;
          const auto& target = events[pick(events.size())].ev;
          tags.push_back({"e", hex(target.id)});
          tags.push_back({"a", address_of(30617, who.pubkey, pick(2) == 0 ? "a" : "b")});
        }
        break;
      default:
        if (!events.empty())
          tags.push_back({"e", hex(events[pick(events.size())].ev.id)});
        break;
    }
    events.push_back(make_event(who, kind, at, std::move(tags)));
  }
  return events;
}

} // namespace

// The writer hands a batch's keys to RocksDB sorted (event_store_write.cpp);
// within one batch an event may be stored, replaced and deleted again, so the
// order of the operations on one key must survive the sort.
TEST_CASE_METHOD(store_fixture, "one batch stores exactly what one write per event "
                                "stores",
                 "[store]") {
  auto events = mixed_events(42);
  std::vector<const incoming_event*> batch;
  for (const auto& in : events)
    batch.push_back(&in);
  auto batched = write(batch);
  store_fixture one_by_one;
  std::vector<write_outcome> batched_outcomes;
  std::vector<write_outcome> single_outcomes;
  for (size_t i = 0; i < events.size(); ++i) {
    batched_outcomes.push_back(batched[i].outcome);
    single_outcomes.push_back(one_by_one.write(events[i]).outcome);
  }
  CHECK(batched_outcomes == single_outcomes);
  auto stored = std::count(batched_outcomes.begin(), batched_outcomes.end(),
                           write_outcome::stored);
  // The mix must exercise replacements and deletions, not only plain puts.
  CHECK(stored < static_cast<long>(events.size()));
  CHECK(keys_in(cf::by_created) < static_cast<size_t>(stored));
  CHECK(keys_in(cf::deleted) > 0);
  CHECK(dump(*this) == dump(one_by_one));
}

// `ferry import` keeps the index families in memtables sorted only at their
// flush (store_options::bulk_import, store/index_memtable.hpp) and hands their keys to the batch unsorted, in
// the order they were made: the same batches must leave the same keys and
// values as a node's store, read from memory and once flushed.
TEST_CASE_METHOD(store_fixture, "a bulk import store holds exactly what a node's "
                                "store holds",
                 "[store]") {
  store_fixture bulk;
  bulk.bulk_import = true;
  bulk.reopen();
  const std::vector<cf> index_families{cf::by_created, cf::by_kind,
                                       cf::by_author,  cf::by_author_kind,
                                       cf::by_tag,     cf::by_expiration};
  for (size_t i = 0; i < cf_count; ++i) {
    auto family = static_cast<cf>(i);
    CAPTURE(cf_names[i]);
    auto options = bulk.store->db()->GetOptions(bulk.store->handle(family));
    bool sorted_at_flush = std::string{options.memtable_factory->Name()} == "FerryIndexMemtable";
    CHECK(sorted_at_flush
          == (std::find(index_families.begin(), index_families.end(), family)
              != index_families.end()));
  }
  auto events = mixed_events(7);
  // Batches as the writer commits them, each seeing what the earlier stored.
  constexpr size_t batch_size = 50;
  for (size_t begin = 0; begin < events.size(); begin += batch_size) {
    std::vector<const incoming_event*> batch;
    for (size_t i = begin; i < begin + batch_size; ++i)
      batch.push_back(&events[i]);
    auto in_bulk = bulk.write(batch);
    auto here = write(batch);
    for (size_t i = 0; i < batch.size(); ++i)
      CHECK(in_bulk[i].outcome == here[i].outcome);
  }
  CHECK(keys_in(cf::deleted) > 0);
  CHECK(dump(bulk) == dump(*this));
  REQUIRE_FALSE(bulk.store->flush());
  bulk.bulk_import = false;
  bulk.reopen();
  CHECK(dump(bulk) == dump(*this));
}

// A bulk import's flush merges `by_created` (every flush of the import left
// one more L0 file spanning all of time) into one sorted run, which the item
// set of `{}` reads without merging files key by key; nothing is lost or
// doubled on the way.
TEST_CASE("a bulk import's flush leaves the created_at index in one sorted run",
          "[store]") {
  store_fixture bulk;
  bulk.bulk_import = true;
  bulk.reopen();
  auto alice = nostr::generate_keypair();
  std::mt19937 rng{7};
  std::vector<incoming_event> events;
  for (int i = 0; i < 200; ++i)
    events.push_back(make_event(alice, 1, 1000 + static_cast<int64_t>(rng() % 5000), {},
                                "note " + std::to_string(i)));
  auto* by_created = bulk.store->handle(cf::by_created);
  auto files_at_level = [&](int level) {
    std::string n;
    REQUIRE(bulk.store->db()->GetProperty(
      by_created, "rocksdb.num-files-at-level" + std::to_string(level), &n));
    return std::stoull(n);
  };
  // Two halves of random times, each flushed: two overlapping L0 files.
  for (size_t half = 0; half < 2; ++half) {
    std::vector<const incoming_event*> batch;
    for (size_t i = half * 100; i < half * 100 + 100; ++i)
      batch.push_back(&events[i]);
    bulk.write(batch);
    REQUIRE(bulk.store->db()->Flush(rocksdb::FlushOptions{}, by_created).ok());
  }
  REQUIRE(files_at_level(0) == 2);

  REQUIRE_FALSE(bulk.store->flush());
  uint64_t files = 0;
  for (int level = 0; level < 7; ++level)
    files += files_at_level(level);
  CHECK(files_at_level(0) == 0);
  CHECK(files == 1);
  auto scanned = bulk.store->negentropy_items(nostr::filter{}, default_now, 1000);
  REQUIRE(scanned);
  std::vector<nostr::negentropy::item> expected;
  for (const auto& in : events)
    expected.push_back({static_cast<uint64_t>(in.ev.created_at), in.ev.id});
  std::sort(expected.begin(), expected.end());
  CHECK(scanned->items == expected);
}

// The events' JSON is written to L0 as it is (a flush compresses nothing)
// and compressed when a compaction moves it down; the index families are
// never compressed.
TEST_CASE_METHOD(store_fixture, "event JSON is compressed below L0 only",
                 "[store]") {
  auto alice = nostr::generate_keypair();
  std::vector<incoming_event> events;
  for (int i = 0; i < 50; ++i)
    events.push_back(make_event(alice, 1, 100 + i, {{"t", "compression"}},
                                std::string(400, static_cast<char>('a' + i % 26))));
  std::vector<const incoming_event*> batch;
  for (const auto& in : events)
    batch.push_back(&in);
  write(batch);
  auto* db = store->db();
  // Compression of each table file of `family`, by the level it lies in.
  auto compression_by_level = [&](cf family) {
    rocksdb::TablePropertiesCollection tables;
    REQUIRE(db->GetPropertiesOfAllTables(store->handle(family), &tables).ok());
    rocksdb::ColumnFamilyMetaData meta;
    db->GetColumnFamilyMetaData(store->handle(family), &meta);
    std::map<int, std::set<std::string>> found;
    for (const auto& level : meta.levels)
      for (const auto& file : level.files)
        for (const auto& [path, props] : tables)
          if (std::filesystem::path{path}.filename()
              == std::filesystem::path{file.name}.filename())
            found[level.level].insert(props->compression_name);
    return found;
  };
  REQUIRE_FALSE(store->flush());
  using levels = std::map<int, std::set<std::string>>;
  CHECK(compression_by_level(cf::events) == levels{{0, {"NoCompression"}}});
  CHECK(compression_by_level(cf::by_tag) == levels{{0, {"NoCompression"}}});

  rocksdb::CompactRangeOptions down;
  down.change_level = true;
  down.target_level = 1;
  for (auto family : {cf::events, cf::by_tag})
    REQUIRE(db->CompactRange(down, store->handle(family), nullptr, nullptr).ok());
  CHECK(compression_by_level(cf::events) == levels{{1, {"Snappy"}}});
  CHECK(compression_by_level(cf::by_tag) == levels{{1, {"NoCompression"}}});
  nostr::filter all;
  CHECK(scan_ids(all).size() == events.size());
  for (const auto& in : events) {
    auto json = store->get_json(in.ev.id);
    REQUIRE(json);
    CHECK(*json == in.json);
  }
}

// flush() starts every family's flush before it waits (event_store.cpp): it
// must still return only once all of them are on disk.
TEST_CASE_METHOD(store_fixture, "flush leaves no family in memory", "[store]") {
  auto alice = nostr::generate_keypair();
  std::vector<incoming_event> events;
  for (int i = 0; i < 50; ++i)
    events.push_back(make_event(alice, i % 2 == 0 ? 1 : 30617, 100 + i,
                                {{"t", "x"}, {"d", std::to_string(i)}}));
  std::vector<const incoming_event*> batch;
  for (const auto& in : events)
    batch.push_back(&in);
  write(batch);
  REQUIRE_FALSE(store->flush());
  for (size_t i = 0; i < cf_count; ++i) {
    CAPTURE(cf_names[i]);
    auto* family = store->handle(static_cast<cf>(i));
    uint64_t active = 1;
    uint64_t immutable = 1;
    REQUIRE(store->db()->GetIntProperty(family, "rocksdb.num-entries-active-mem-table",
                                        &active));
    REQUIRE(store->db()->GetIntProperty(family, "rocksdb.num-immutable-mem-table",
                                        &immutable));
    CHECK(active == 0);
    CHECK(immutable == 0);
  }
  CHECK(keys_in(cf::by_created) == events.size());
}

// Each flush records in the MANIFEST the oldest write-ahead log the store
// still needs. Two flush threads installing their results at once each
// computed it before the other's was in, so a store could close naming a
// log all its families had flushed: that whole log stayed on disk, replayed
// at every open, until a later flush (`ferry import` left one in ~1 run of 6).
TEST_CASE_METHOD(store_fixture, "after a flush no write-ahead log holds what the tables hold",
                 "[store]") {
  auto alice = nostr::generate_keypair();
  auto log_bytes_on_disk = [this] {
    uintmax_t bytes = 0;
    for (const auto& entry : std::filesystem::directory_iterator{dir})
      if (entry.path().extension() == ".log")
        bytes += entry.file_size();
    return bytes;
  };
  for (int round = 0; round < 24; ++round) {
    CAPTURE(round);
    std::vector<incoming_event> events;
    for (int i = 0; i < 40; ++i)
      events.push_back(make_event(alice, i % 2 == 0 ? 1 : 30617, 100 + round * 40 + i,
                                  {{"t", "wal"}, {"d", std::to_string(i)}},
                                  std::string(200, 'w')));
    write_all(events);
    REQUIRE_FALSE(store->flush());
    reopen();
    REQUIRE(log_bytes_on_disk() == 0);
  }
}

// The backlog ferry_store_compaction_pending_bytes shows (and bench_scale
// waits out before it sizes a store): L0 files past RocksDB's trigger are
// work pending, and once they are compacted nothing is.
TEST_CASE_METHOD(store_fixture, "the compaction backlog is reported until it is compacted",
                 "[store]") {
  auto* db = store->db();
  for (size_t i = 0; i < cf_count; ++i)
    REQUIRE(db->SetOptions(store->handle(static_cast<cf>(i)),
                           {{"disable_auto_compactions", "true"}})
              .ok());
  CHECK(store->compaction().pending_bytes == 0);
  auto alice = nostr::generate_keypair();
  std::vector<incoming_event> events;
  // One L0 file per flush in each family written; RocksDB's trigger is 4.
  for (int round = 0; round < 6; ++round) {
    std::vector<incoming_event> written;
    for (int i = 0; i < 20; ++i)
      written.push_back(make_event(alice, 1, 100 + round * 20 + i, {{"t", "backlog"}},
                                   std::string(300, 'x')));
    write_all(written);
    REQUIRE_FALSE(store->flush());
    for (auto& in : written)
      events.push_back(std::move(in));
  }
  auto backlog = store->compaction();
  CHECK(backlog.running == 0);
  CHECK(backlog.pending_bytes > 0);

  for (size_t i = 0; i < cf_count; ++i)
    REQUIRE(db->CompactRange({}, store->handle(static_cast<cf>(i)), nullptr, nullptr).ok());
  // CompactRange returns once its work is done, a moment before the
  // background thread that ran it counts itself out.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (store->compaction().running > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  backlog = store->compaction();
  CHECK(backlog.running == 0);
  CHECK(backlog.pending_bytes == 0);
  CHECK(scan_ids(nostr::filter{}).size() == events.size());
}

TEST_CASE_METHOD(store_fixture, "extra operations commit with the events",
                 "[store]") {
  auto ev = make_event(nostr::generate_keypair(), 1, 100);
  auto* meta = store->handle(cf::sync_runtime);
  auto results = store->write({&ev}, default_now, [meta](rocksdb::WriteBatch& b, const auto&) {
    b.Put(meta, "cursor", "100");
  });
  REQUIRE(results);
  std::string value;
  REQUIRE(store->db()->Get(rocksdb::ReadOptions{}, meta, "cursor", &value).ok());
  CHECK(value == "100");
  CHECK(store->contains(ev.ev.id));
}

TEST_CASE_METHOD(store_fixture, "each commit's batch holds only that commit",
                 "[store]") {
  // The writing thread keeps its batch between commits (reused_batch).
  auto keys = nostr::generate_keypair();
  auto first = make_event(keys, 1, 100);
  auto second = make_event(keys, 1, 200);
  auto count_of = [this](const incoming_event& ev) {
    uint32_t count = 0;
    auto results = store->write({&ev}, default_now,
                                [&count](rocksdb::WriteBatch& b, const auto&) {
                                  count = b.Count();
                                });
    REQUIRE(results);
    return count;
  };
  auto first_count = count_of(first);
  CHECK(first_count > 0);
  CHECK(count_of(second) == first_count);
  SECTION("after a commit larger than the batch may keep") {
    auto big = make_event(keys, 1, 300, {}, std::string(9u << 20, 'x'));
    CHECK(write(big).outcome == write_outcome::stored);
    auto third = make_event(keys, 1, 400);
    CHECK(count_of(third) == first_count);
    CHECK(scan_ids(kinds_filter({1})).size() == 4);
  }
}

TEST_CASE_METHOD(store_fixture, "a write made while a commit is built commits "
                                "on its own",
                 "[store]") {
  auto keys = nostr::generate_keypair();
  auto outer = make_event(keys, 1, 100);
  auto inner = make_event(keys, 1, 200);
  uint32_t outer_count = 0;
  auto results = store->write({&outer}, default_now,
                              [&](rocksdb::WriteBatch& b, const auto&) {
                                REQUIRE(store->write({&inner}, default_now));
                                outer_count = b.Count();
                              });
  REQUIRE(results);
  CHECK(outer_count > 0);
  CHECK(store->contains(outer.ev.id));
  CHECK(store->contains(inner.ev.id));
  CHECK(keys_in(cf::by_created) == 2);
}

TEST_CASE_METHOD(store_fixture, "a reopened store keeps everything", "[store]") {
  auto alice = nostr::generate_keypair();
  auto note = make_event(alice, 1, 100, {{"t", "x"}});
  auto profile = make_event(alice, 0, 100);
  auto gone = make_event(alice, 1, 90);
  auto del = make_event(alice, 5, 110, {{"e", hex(gone.ev.id)}});
  for (auto* ev : {&note, &profile, &gone, &del})
    REQUIRE(write(*ev).outcome == write_outcome::stored);
  auto before = scan_ids(nostr::filter{});
  REQUIRE(!store->flush());
  reopen();
  CHECK(scan_ids(nostr::filter{}) == before);
  CHECK(store->get_json(note.ev.id) == note.json);
  CHECK(write(gone).outcome == write_outcome::refused);
  CHECK(write(make_event(alice, 0, 50)).outcome == write_outcome::duplicate);
  CHECK(store->approximate_event_count() >= 1);
}

TEST_CASE_METHOD(store_fixture,
                 "a store left with the default family alone opens whole",
                 "[store]") {
  // A new store is opened with its default family, then gets the others in
  // one call; a crash in between leaves this.
  store.reset();
  std::filesystem::remove_all(dir);
  rocksdb::Options bare;
  bare.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::Open(bare, dir.string(), &raw).ok());
  delete raw;
  std::vector<std::string> before;
  REQUIRE(rocksdb::DB::ListColumnFamilies(bare, dir.string(), &before).ok());
  REQUIRE(before == std::vector<std::string>{"default"});
  open();
  auto alice = nostr::generate_keypair();
  auto note = make_event(alice, 1, 100, {{"t", "x"}});
  REQUIRE(write(note).outcome == write_outcome::stored);
  REQUIRE(!store->flush());
  reopen();
  CHECK(store->get_json(note.ev.id) == note.json);
  CHECK(scan_ids(nostr::filter{}).size() == 1);
  std::vector<std::string> after;
  REQUIRE(rocksdb::DB::ListColumnFamilies(bare, dir.string(), &after).ok());
  CHECK(after.size() == cf_count);
}

TEST_CASE_METHOD(store_fixture,
                 "a new store makes its directory, families and all",
                 "[store]") {
  store.reset();
  std::filesystem::remove_all(dir);
  auto top = dir;
  auto nested = dir / "not" / "yet";
  dir = nested;
  open();
  CHECK(std::filesystem::is_directory(nested));
  std::vector<std::string> families;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::Options{}, nested.string(),
                                          &families)
            .ok());
  CHECK(families.size() == cf_count);
  auto alice = nostr::generate_keypair();
  auto note = make_event(alice, 1, 100);
  REQUIRE(write(note).outcome == write_outcome::stored);
  CHECK(store->get_json(note.ev.id) == note.json);
  store.reset();
  std::filesystem::remove_all(top);
}

TEST_CASE_METHOD(store_fixture, "a newer schema version is refused", "[store]") {
  REQUIRE(store->db()
            ->Put(rocksdb::WriteOptions{}, store->handle(cf::meta),
                  std::string(schema_version_key),
                  std::to_string(schema_version + 1))
            .ok());
  store.reset();
  auto opened = event_store::open(options());
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code() == static_cast<uint8_t>(ec::storage_failure));
  CHECK(caf::to_string(opened.error()).find("newer") != std::string::npos);
}

TEST_CASE_METHOD(store_fixture, "scans stop at the sink and max_events", "[store]") {
  auto keys = nostr::generate_keypair();
  std::vector<incoming_event> evs;
  for (int i = 0; i < 5; ++i)
    evs.push_back(make_event(keys, 1, 100 + i));
  for (const auto& ev : evs)
    write(ev);
  size_t seen = 0;
  auto counter = [&seen](std::string_view, const scan_position&) {
    ++seen;
    return true;
  };
  CHECK(store->scan(kinds_filter({1}), default_now, std::nullopt, 3, counter));
  CHECK(seen == 3);
  seen = 0;
  CHECK_FALSE(store->scan(kinds_filter({1}), default_now, std::nullopt, 5, counter));
  CHECK(seen == 5);
  seen = 0;
  CHECK(store->scan(kinds_filter({1}), default_now, std::nullopt, 10,
                    [&seen](std::string_view, const scan_position&) {
                      return ++seen < 2;
                    }));
  CHECK(seen == 2);
  CHECK_FALSE(store->scan(kinds_filter({}), default_now, std::nullopt, 10, counter));
}
