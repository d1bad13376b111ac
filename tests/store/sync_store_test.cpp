#include "store/sync_store.hpp"

#include "messages/error.hpp"
#include "store/column_families.hpp"
#include "store_fixture.hpp"

#include <catch2/catch.hpp>

#include <rocksdb/db.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>

#include <set>
#include <stdexcept>
#include <utility>

using namespace ferry;
using namespace ferry::store;
using namespace ferry::store::test;

namespace {

sync_server make_server(const std::string& id, uint32_t kind = 1) {
  auto parsed = parse_sync_server(R"({"id":")" + id
                                  + R"(","url":"wss://relay.example.com/)" + id
                                  + R"(","filters":[{"kinds":[)"
                                  + std::to_string(kind) + "]}]}");
  REQUIRE(parsed);
  return *parsed;
}

sync_runtime_state make_runtime(uint64_t received) {
  sync_runtime_state st;
  st.received = received;
  st.accepted = 1;
  st.last_connected = 42;
  return st;
}

std::vector<std::string> ids_of(const std::vector<sync_server>& servers) {
  std::vector<std::string> ids;
  for (const auto& s : servers)
    ids.push_back(s.id);
  return ids;
}

/// Records which (family id, key) pairs each committed WriteBatch put.
struct put_recorder : rocksdb::WriteBatch::Handler {
  std::set<std::pair<uint32_t, std::string>> puts;
  rocksdb::Status PutCF(uint32_t family, const rocksdb::Slice& key,
                        const rocksdb::Slice&) override {
    puts.emplace(family, key.ToString());
    return rocksdb::Status::OK();
  }
};

} // namespace

TEST_CASE_METHOD(store_fixture, "sync server definitions are stored by id",
                 "[store][sync]") {
  auto missing = get_sync_server(*store, "nope");
  REQUIRE(missing);
  CHECK_FALSE(*missing);
  auto none = list_sync_servers(*store);
  REQUIRE(none);
  CHECK(none->empty());

  REQUIRE_FALSE(put_sync_server(*store, make_server("b")));
  REQUIRE_FALSE(put_sync_server(*store, make_server("a")));
  REQUIRE_FALSE(put_sync_server(*store, make_server("c.1")));
  auto b = get_sync_server(*store, "b");
  REQUIRE(b);
  REQUIRE(*b);
  CHECK(**b == make_server("b"));
  auto all = list_sync_servers(*store);
  REQUIRE(all);
  CHECK(ids_of(*all) == std::vector<std::string>{"a", "b", "c.1"});

  SECTION("a put replaces the definition") {
    REQUIRE_FALSE(put_sync_server(*store, make_server("b", 7)));
    auto replaced = get_sync_server(*store, "b");
    REQUIRE(replaced);
    CHECK(**replaced == make_server("b", 7));
    CHECK(list_sync_servers(*store)->size() == 3);
  }
  SECTION("the stored value is the canonical JSON") {
    std::string value;
    REQUIRE(store->db()
              ->Get(rocksdb::ReadOptions{}, store->handle(cf::sync_servers), "b",
                    &value)
              .ok());
    CHECK(value == to_json(make_server("b")));
  }
  SECTION("a delete removes the definition and its runtime state") {
    REQUIRE_FALSE(put_sync_runtime(*store, "b", make_runtime(5)));
    REQUIRE_FALSE(put_sync_runtime(*store, "a", make_runtime(6)));
    rocksdb::WriteBatch batch;
    put_sync_cursor(batch, *store, "b", sync_cursor{7, {}});
    REQUIRE(store->db()->Write(rocksdb::WriteOptions{}, &batch).ok());
    REQUIRE_FALSE(delete_sync_server(*store, "b"));
    CHECK_FALSE(*get_sync_cursor(*store, "b"));
    CHECK_FALSE(*get_sync_server(*store, "b"));
    CHECK(ids_of(*list_sync_servers(*store)) == std::vector<std::string>{"a", "c.1"});
    CHECK(*get_sync_runtime(*store, "b") == sync_runtime_state{});
    CHECK(get_sync_runtime(*store, "a")->received == 6);
    CHECK_FALSE(delete_sync_server(*store, "never-existed"));
  }
}

TEST_CASE_METHOD(store_fixture, "runtime state defaults and stands alone",
                 "[store][sync]") {
  auto fresh = get_sync_runtime(*store, "s");
  REQUIRE(fresh);
  CHECK(*fresh == sync_runtime_state{});

  auto st = make_runtime(3);
  st.last_error = "timeout";
  REQUIRE_FALSE(put_sync_runtime(*store, "s", st));
  auto back = get_sync_runtime(*store, "s");
  REQUIRE(back);
  CHECK(*back == st);
}

TEST_CASE_METHOD(store_fixture, "a cursor commits in the same batch as its events",
                 "[store][sync]") {
  auto keys = nostr::generate_keypair();
  auto ev = make_event(keys, 1, 100);
  sync_cursor cursor{ev.ev.created_at, ev.ev.id};
  auto before = store->db()->GetLatestSequenceNumber();
  auto results = store->write({&ev}, default_now, [&](rocksdb::WriteBatch& batch, const auto&) {
    put_sync_cursor(batch, *store, "s", cursor);
  });
  REQUIRE(results);
  CHECK(results->front().outcome == write_outcome::stored);
  CHECK(store->contains(ev.ev.id));
  auto stored = get_sync_cursor(*store, "s");
  REQUIRE(stored);
  REQUIRE(*stored);
  CHECK((*stored)->created_at == cursor.created_at);
  CHECK((*stored)->id == cursor.id);

  // The WAL holds one record per committed WriteBatch: both puts must sit in
  // the first record after `before`, which is what makes them atomic.
  std::unique_ptr<rocksdb::TransactionLogIterator> wal;
  REQUIRE(store->db()->GetUpdatesSince(before + 1, &wal).ok());
  REQUIRE(wal->Valid());
  auto record = wal->GetBatch();
  CHECK(record.sequence == before + 1);
  put_recorder recorder;
  REQUIRE(record.writeBatchPtr->Iterate(&recorder).ok());
  std::string raw_id(ev.ev.id.begin(), ev.ev.id.end());
  CHECK(recorder.puts.count({store->handle(cf::events)->GetID(), raw_id}) == 1);
  CHECK(recorder.puts.count({store->handle(cf::sync_runtime)->GetID(),
                             std::string{"s\x1f" "cursor"}})
        == 1);
}

TEST_CASE_METHOD(store_fixture, "a cursor is its server's only under the era "
                               "it was made under",
                 "[store][sync]") {
  auto put_cursor = [&](const sync_cursor& cursor) {
    rocksdb::WriteBatch batch;
    put_sync_cursor(batch, *store, "s", cursor);
    REQUIRE(store->db()->Write(rocksdb::WriteOptions{}, &batch).ok());
  };
  auto created_at = [&]() -> int64_t {
    auto c = get_sync_cursor(*store, "s");
    REQUIRE(c);
    return *c ? (*c)->created_at : -1;
  };
  SECTION("a cursor and a definition from before eras have none") {
    REQUIRE_FALSE(put_sync_server(*store, make_server("s")));
    CHECK(*get_sync_era(*store, "s") == 0);
    // The 40-byte value cursors had before.
    std::string old_value(8 + 32, '\0');
    old_value[7] = 100;
    REQUIRE(store->db()
              ->Put(rocksdb::WriteOptions{}, store->handle(cf::sync_runtime),
                    std::string{"s\x1f" "cursor"}, old_value)
              .ok());
    CHECK(created_at() == 100);
  }
  SECTION("a definition that syncs something else starts its cursor over") {
    REQUIRE_FALSE(put_sync_server(*store, make_server("s"), 5));
    CHECK(*get_sync_era(*store, "s") == 5);
    put_cursor(sync_cursor{100, {}, 5});
    CHECK(created_at() == 100);
    // The same era again keeps it (a PUT of the same filters, say).
    REQUIRE_FALSE(put_sync_server(*store, make_server("s")));
    CHECK(created_at() == 100);
    REQUIRE_FALSE(put_sync_server(*store, make_server("s"), 6));
    CHECK(created_at() == -1);
    // Committed late by a connection of the old definition: still none.
    put_cursor(sync_cursor{150, {}, 5});
    CHECK(created_at() == -1);
    put_cursor(sync_cursor{90, {}, 6});
    CHECK(created_at() == 90);
    REQUIRE_FALSE(delete_sync_server(*store, "s"));
    CHECK(*get_sync_era(*store, "s") == 0);
    put_cursor(sync_cursor{150, {}, 6});
    CHECK(created_at() == -1);
  }
}

TEST_CASE_METHOD(store_fixture, "a batch that never commits leaves neither",
                 "[store][sync]") {
  auto ev = make_event(nostr::generate_keypair(), 1, 100);
  // A writer that fails after adding the cursor (here: by throwing) must not
  // have written the cursor or the events anywhere else.
  CHECK_THROWS_AS(store->write({&ev}, default_now,
                               [&](rocksdb::WriteBatch& batch, const auto&) {
                                 put_sync_cursor(batch, *store, "s",
                                                 sync_cursor{100, ev.ev.id});
                                 throw std::runtime_error("writer failed");
                               }),
                  std::runtime_error);
  CHECK_FALSE(store->contains(ev.ev.id));
  CHECK_FALSE(*get_sync_cursor(*store, "s"));
}

TEST_CASE_METHOD(store_fixture, "sync state survives a reopen", "[store][sync]") {
  auto ev = make_event(nostr::generate_keypair(), 1, 100);
  auto st = make_runtime(1);
  REQUIRE_FALSE(put_sync_server(*store, make_server("kept")));
  REQUIRE_FALSE(put_sync_runtime(*store, "kept", st));
  REQUIRE(store->write({&ev}, default_now, [&](rocksdb::WriteBatch& batch, const auto&) {
    put_sync_cursor(batch, *store, "kept", sync_cursor{100, ev.ev.id});
  }));
  reopen();
  auto server = get_sync_server(*store, "kept");
  REQUIRE(server);
  REQUIRE(*server);
  CHECK(**server == make_server("kept"));
  CHECK(*get_sync_runtime(*store, "kept") == st);
  CHECK((*get_sync_cursor(*store, "kept"))->created_at == 100);
  CHECK(store->contains(ev.ev.id));
}

TEST_CASE_METHOD(store_fixture, "a corrupt record is a storage failure naming it",
                 "[store][sync]") {
  REQUIRE(store->db()
            ->Put(rocksdb::WriteOptions{}, store->handle(cf::sync_servers), "bad",
                  "{not json")
            .ok());
  REQUIRE(store->db()
            ->Put(rocksdb::WriteOptions{}, store->handle(cf::sync_runtime), "bad",
                  R"({"received":"many"})")
            .ok());
  auto server = get_sync_server(*store, "bad");
  REQUIRE_FALSE(server);
  CHECK(server.error() == caf::make_error(ec::storage_failure));
  CHECK_THAT(render(server.error()),
             Catch::Matchers::StartsWith("corrupt sync_servers record bad: "));
  auto all = list_sync_servers(*store);
  REQUIRE_FALSE(all);
  CHECK_THAT(render(all.error()),
             Catch::Matchers::StartsWith("corrupt sync_servers record bad: "));
  auto runtime = get_sync_runtime(*store, "bad");
  REQUIRE_FALSE(runtime);
  CHECK(render(runtime.error())
        == "corrupt sync_runtime record bad: received: expected a non-negative "
           "integer");
}
