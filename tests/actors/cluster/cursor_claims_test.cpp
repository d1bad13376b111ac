// A member's own cursor claims are stamped with the digest of the
// definition its sync manager runs. Before, the stamp was the newest record
// the replica held: a definition merged in from another member and not yet
// applied here (in flight, or refused and retried) stamped the old
// definition's cursor with the new definition's digest, and the other
// members took that cursor as true of the new filters.

#include "actors/cluster/cursor_claims.hpp"
#include "messages/cluster/cursor_claim.hpp"
#include "messages/nostr/hex.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>

using namespace ferry;

namespace {

const std::string server_kind{sync_server_kind};
const std::string claim_kind{cluster::sync_cursor_kind};
const std::string old_definition = R"({"id":"s1","url":"ws://a"})";
const std::string new_definition = R"({"id":"s1","url":"ws://b"})";

/// Cursors as a store would hold them (none for a server not listed).
stored_cursor_reader cursors(std::map<std::string, int64_t> held) {
  return [held](const std::string& server)
           -> std::optional<std::optional<int64_t>> {
    auto i = held.find(server);
    if (i == held.end())
      return std::optional<int64_t>{};
    return std::optional<int64_t>{i->second};
  };
}

std::string digest_of(const control_replica& replica, const std::string& id) {
  auto record = replica.find(server_kind, id);
  REQUIRE(record);
  return nostr::to_hex(record->version.digest);
}

cluster::cursor_claim claim_in(const std::map<std::string, std::string>& claims,
                               const std::string& id) {
  auto i = claims.find(id);
  REQUIRE(i != claims.end());
  auto claim = cluster::parse_cursor_claim(i->second);
  REQUIRE(claim);
  return *claim;
}

struct two_members {
  control_replica a{"node-a"};
  control_replica b{"node-b"};

  two_members() {
    a.observe_local(server_kind, {{"s1", old_definition}});
    b.merge(a.all(), 1000);
  }

  /// node-b edits s1; node-a merges the edit (its sync manager has not
  /// applied it yet).
  void edit_at_b() {
    auto changed = b.observe_local(server_kind, {{"s1", new_definition}});
    REQUIRE(changed.size() == 1);
    a.merge(changed, 1001);
    REQUIRE(a.find(server_kind, "s1")->body == new_definition);
  }
};

} // namespace

TEST_CASE_METHOD(two_members, "a member claims its cursor under the "
                              "definition it runs",
                 "[cluster][cursor_claims]") {
  auto claims = own_cursor_claims(a, {{"s1", old_definition}},
                                  cursors({{"s1", 500}}));
  REQUIRE(claims);
  auto claim = claim_in(*claims, "node-a/s1");
  CHECK(claim.member == "node-a");
  CHECK(claim.server == "s1");
  CHECK(claim.cursor == 500);
  CHECK(claim.definition == digest_of(a, "s1"));
  // No cursor in the store: no claim.
  claims = own_cursor_claims(a, {{"s1", old_definition}}, cursors({}));
  REQUIRE(claims);
  CHECK(claims->empty());
  // The store could not be read: no answer at all (the tick looks again).
  CHECK_FALSE(own_cursor_claims(
    a, {{"s1", old_definition}},
    [](const std::string&) -> std::optional<std::optional<int64_t>> {
      return std::nullopt;
    }));
}

TEST_CASE_METHOD(two_members, "a definition merged in but not applied "
                              "leaves the claim as it was",
                 "[cluster][cursor_claims]") {
  auto before = own_cursor_claims(a, {{"s1", old_definition}},
                                  cursors({{"s1", 500}}));
  REQUIRE(before);
  a.observe_local(claim_kind, *before);
  auto old_digest = digest_of(a, "s1");
  edit_at_b();
  REQUIRE(digest_of(a, "s1") != old_digest);
  // The sync manager still runs the old definition, whose cursor moved on.
  auto claims = own_cursor_claims(a, {{"s1", old_definition}},
                                  cursors({{"s1", 900}}));
  REQUIRE(claims);
  auto claim = claim_in(*claims, "node-a/s1");
  CHECK(claim.definition == old_digest);
  CHECK(claim.cursor == 500);
  // Not claimed before: still none (no tombstone either: nothing to delete).
  control_replica fresh{"node-c"};
  fresh.merge(a.all(), 1002);
  claims = own_cursor_claims(fresh, {{"s1", old_definition}},
                             cursors({{"s1", 900}}));
  REQUIRE(claims);
  CHECK(claims->count("node-c/s1") == 0);
  // Applied (the era changed with it, so the store's cursor is the new
  // definition's): claimed under the new digest.
  claims = own_cursor_claims(a, {{"s1", new_definition}},
                             cursors({{"s1", 40}}));
  REQUIRE(claims);
  claim = claim_in(*claims, "node-a/s1");
  CHECK(claim.definition == digest_of(a, "s1"));
  CHECK(claim.cursor == 40);
}

TEST_CASE_METHOD(two_members, "the other members' claims pass unchanged",
                 "[cluster][cursor_claims]") {
  auto theirs = own_cursor_claims(b, {{"s1", old_definition}},
                                  cursors({{"s1", 700}}));
  REQUIRE(theirs);
  a.merge(b.observe_local(claim_kind, *theirs), 1001);
  auto claims = own_cursor_claims(a, {{"s1", old_definition}},
                                  cursors({{"s1", 500}}));
  REQUIRE(claims);
  CHECK(claims->size() == 2);
  CHECK(claims->at("node-b/s1") == theirs->at("node-b/s1"));
  CHECK(claim_in(*claims, "node-a/s1").cursor == 500);
  // A server deleted here (no longer running) has no claim of this member.
  claims = own_cursor_claims(a, {}, cursors({{"s1", 500}}));
  REQUIRE(claims);
  CHECK(claims->size() == 1);
  CHECK(claims->count("node-b/s1") == 1);
}
