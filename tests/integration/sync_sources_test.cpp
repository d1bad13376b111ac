// A node syncing from several relays that hold the same events: each event
// is downloaded from one of them (actors/sync/fetch_claims.hpp), and every
// connection still ends its catch-up holding everything its remote has.

#include "tests/integration/sync_helpers.hpp"

#include <catch2/catch.hpp>

using namespace ferry;
using namespace ferry::sync_test;

TEST_CASE("a node catching up from two relays that hold the same events "
          "downloads each event once",
          "[integration][sync][negentropy]") {
  test::temp_dir dir_a1, dir_a2, dir_b;
  auto keys = nostr::generate_keypair();
  constexpr size_t n = 3000;
  auto events = make_events(keys, n, test::unix_now() - 5000, 1, "shared");
  auto a1_cfg = test::node_config(dir_a1);
  auto a2_cfg = test::node_config(dir_a2);
  import_into(dir_a1, a1_cfg, events);
  import_into(dir_a2, a2_cfg, events);
  node a1{a1_cfg};
  node a2{a2_cfg};
  server_options o1, o2;
  o1.id = "a1";
  o2.id = "a2";
  o1.mode = o2.mode = "negentropy";
  node b{b_config(dir_b, sync_server_toml(a1.port, o1) + sync_server_toml(a2.port, o2))};
  auto b_admin = b.admin_port();

  wait_for_ids(b, kind1_all, id_set(events), true, "B", &a1, 30s);
  bool caught_up = test::poll_until(
    [&] {
      return stat_flag(b_admin, "a1", "catchup_complete")
             && stat_flag(b_admin, "a2", "catchup_complete");
    },
    20s);
  INFO(sync_reports(b_admin, "a1") << sync_reports(b_admin, "a2"));
  REQUIRE(caught_up);
  auto received = stat_of(b_admin, "a1", "received") + stat_of(b_admin, "a2", "received");
  auto elsewhere = stat_of(b_admin, "a1", "fetched_elsewhere")
                   + stat_of(b_admin, "a2", "fetched_elsewhere");
  CAPTURE(received, elsewhere);
  // Both reconciliations find all 3,000 missing; fetched apart, each event
  // comes once (a few may come twice: an id looked at again between its
  // delivery by the other connection and its commit).
  CHECK(received >= static_cast<int64_t>(n));
  CHECK(received <= static_cast<int64_t>(n + n / 10));
  // What one connection left to the other and found stored is counted.
  CHECK(elsewhere >= 0);
  CHECK(received + elsewhere >= static_cast<int64_t>(n));
  check_clean_shutdown(b, a1, a2);
}
