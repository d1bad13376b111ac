#include "store/peer_store.hpp"

#include "tests/store/store_fixture.hpp"

#include <catch2/catch.hpp>

using namespace ferry;
using namespace ferry::store;

namespace {

peer_record make_peer(const std::string& name) {
  peer_record r;
  auto def = parse_peer_definition(
    R"({"endpoint":"ws://127.0.0.1:1","admin_url":"http://127.0.0.1:2",)"
    R"("filters":[{"kinds":[1]}]})",
    name);
  REQUIRE(def);
  r.def = *def;
  r.status = link_status::active;
  r.pinned = std::string(64, 'c');
  r.version.set(std::string(64, 'd'), 1);
  r.pending.push_back({"delete", 2, 123});
  return r;
}

} // namespace

TEST_CASE("peers survive a restart of the store and can be forgotten",
          "[store][peers]") {
  ferry::store::test::store_fixture db;
  REQUIRE_FALSE(put_peer(*db.store, make_peer("b")));
  REQUIRE_FALSE(put_peer(*db.store, make_peer("a")));
  db.reopen();
  auto all = list_peers(*db.store);
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].def.name == "a");
  CHECK((*all)[1].def.name == "b");
  CHECK(to_json((*all)[1]) == to_json(make_peer("b")));
  auto one = get_peer(*db.store, "b");
  REQUIRE(one);
  REQUIRE(*one);
  CHECK((*one)->pending.size() == 1);
  CHECK((*one)->pending[0].kind == "delete");
  REQUIRE_FALSE(delete_peer(*db.store, "b"));
  REQUIRE_FALSE(delete_peer(*db.store, "never-there"));
  db.reopen();
  auto gone = get_peer(*db.store, "b");
  REQUIRE(gone);
  CHECK_FALSE(*gone);
  CHECK(list_peers(*db.store)->size() == 1);
}
