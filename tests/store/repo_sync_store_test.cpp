#include "store/repo_sync_store.hpp"

#include "messages/error.hpp"
#include "store/column_families.hpp"
#include "store_fixture.hpp"

#include <catch2/catch.hpp>

#include <rocksdb/db.h>

using namespace ferry;
using namespace ferry::store;
using namespace ferry::store::test;

namespace {

grasp::repo_sync_entry repo(const std::string& d,
                            std::vector<std::string> relays) {
  grasp::repo_sync_entry x;
  x.address = "30617:" + std::string(64, 'a') + ":" + d;
  x.relays = std::move(relays);
  x.announcement_id = std::string(64, 'b');
  x.announcement_created_at = 1700000000;
  return x;
}

std::vector<std::string> addresses(const std::vector<grasp::repo_sync_entry>& xs) {
  std::vector<std::string> result;
  for (const auto& x : xs)
    result.push_back(x.address);
  return result;
}

} // namespace

TEST_CASE_METHOD(store_fixture, "repo_sync records are written, listed and "
                                "erased in one commit",
                 "[store][grasp]") {
  auto a = repo("a", {"wss://r1.example"});
  auto b = repo("b", {"wss://r1.example", "wss://r2.example"});
  REQUIRE_FALSE(write_repo_sync(*store, {a, b}, {}));
  auto listed = list_repo_sync(*store);
  REQUIRE(listed);
  CHECK(addresses(*listed) == std::vector<std::string>{a.address, b.address});
  CHECK((*listed)[1] == b);
  // An update and an erasure land together.
  b.roots = {std::string(64, 'c')};
  REQUIRE_FALSE(write_repo_sync(*store, {b}, {a.address}));
  reopen();
  auto one = get_repo_sync(*store, b.address);
  REQUIRE(one);
  REQUIRE(*one);
  CHECK(**one == b);
  auto gone = get_repo_sync(*store, a.address);
  REQUIRE(gone);
  CHECK_FALSE(*gone);
  CHECK(keys_in(cf::repo_sync) == 1);
}

TEST_CASE_METHOD(store_fixture, "relay_sync records survive a reopen",
                 "[store][grasp]") {
  grasp::relay_sync_entry r1;
  r1.url = "wss://r1.example";
  r1.repos = {repo("a", {}).address};
  r1.status = grasp::link_status::connected;
  r1.last_connected = 1700000100;
  r1.full_sync_at = 1700000000;
  r1.reconcile_at = 1700090000;
  grasp::relay_sync_entry r2;
  r2.url = "wss://r2.example";
  r2.is_bootstrap = true;
  REQUIRE_FALSE(put_relay_sync(*store, r2));
  REQUIRE_FALSE(put_relay_sync(*store, r1));
  reopen();
  auto listed = list_relay_sync(*store);
  REQUIRE(listed);
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0] == r1);
  CHECK((*listed)[1] == r2);
  REQUIRE_FALSE(erase_relay_sync(*store, r1.url));
  REQUIRE_FALSE(erase_relay_sync(*store, "wss://never.example"));
  auto gone = get_relay_sync(*store, r1.url);
  REQUIRE(gone);
  CHECK_FALSE(*gone);
  auto kept = get_relay_sync(*store, r2.url);
  REQUIRE(kept);
  REQUIRE(*kept);
  CHECK((*kept)->is_bootstrap);
}

TEST_CASE_METHOD(store_fixture, "a corrupt record is a storage failure "
                                "naming the family and key",
                 "[store][grasp]") {
  REQUIRE(store->db()
            ->Put(rocksdb::WriteOptions{}, store->handle(cf::relay_sync),
                  "wss://bad.example", R"({"status":7})")
            .ok());
  auto listed = list_relay_sync(*store);
  REQUIRE_FALSE(listed);
  CHECK(render(listed.error())
        == "corrupt relay_sync record wss://bad.example: status: expected a "
           "string");
  auto one = get_relay_sync(*store, "wss://bad.example");
  REQUIRE_FALSE(one);
  CHECK(listed.error().code() == static_cast<uint8_t>(ec::storage_failure));
}
