// Deletions follow what was synced (issue 16): node B syncs kind 1 from node
// A with filters that leave out kind 5, and a NIP-09 deletion the author
// publishes on A afterwards still removes the event from B — live, and after
// B was down when it was published. Both catch-up methods.

#include "tests/integration/sync_helpers.hpp"

#include <catch2/catch.hpp>

using namespace ferry;
using namespace ferry::sync_test;
using namespace std::chrono_literals;

namespace {

/// Waits until `holder` no longer returns `ev` for a REQ by its id.
void require_gone(node& holder, const nostr::event& ev, node& other,
                  const std::string& what) {
  wait_for_ids(holder, ids_filter({hex_id(ev)}), {}, true, what, &other);
}

server_options kind1_only(const std::string& mode) {
  server_options o;
  o.mode = mode;
  return o;
}

} // namespace

TEST_CASE_METHOD(two_nodes,
                 "a deletion published on the remote after the sync removes the "
                 "synced event although the filters leave out kind 5",
                 "[integration][sync][deletions]") {
  auto mode = GENERATE(std::string{"req_stream"}, std::string{"negentropy"});
  INFO("mode " << mode);
  auto other = nostr::generate_keypair();
  node a{test::node_config(dir_a)};
  auto mine = make_events(keys, 10, test::unix_now() - 100, 1, "mine");
  auto theirs = make_events(other, 5, test::unix_now() - 100, 1, "theirs");
  publish(a.port, mine);
  publish(a.port, theirs);
  node b{b_config(dir_b, sync_server_toml(a.port, kind1_only(mode)))};
  require_mirrored(a, b, kind1_all);

  // Live: the author deletes one of its events on A.
  publish(a.port, {deletion_of(keys, mine[0])});
  require_gone(b, mine[0], a, "B after a live deletion");
  // Only that one: the store applies NIP-09, not the follower.
  CHECK(count_of(b.port, kind1_all) == 14);
  CHECK(count_of(b.port, R"({"kinds":[5]})") == 1);
  check_clean_shutdown(b, a);
}

TEST_CASE_METHOD(two_nodes,
                 "a deletion published while the node was down removes the synced "
                 "event after its restart",
                 "[integration][sync][deletions]") {
  auto mode = GENERATE(std::string{"req_stream"}, std::string{"negentropy"});
  INFO("mode " << mode);
  node a{test::node_config(dir_a)};
  auto mine = make_events(keys, 10, test::unix_now() - 100, 1, "mine");
  publish(a.port, mine);
  auto b_cfg = b_config(dir_b, sync_server_toml(a.port, kind1_only(mode)));
  {
    node b{b_cfg};
    require_mirrored(a, b, kind1_all);
    stop(b);
  }
  publish(a.port, {deletion_of(keys, mine[3])});
  node b{b_cfg};
  require_gone(b, mine[3], a, "B after a deletion made while it was down");
  CHECK(count_of(b.port, kind1_all) == 9);
  check_clean_shutdown(b, a);
}

TEST_CASE_METHOD(two_nodes,
                 "follow_deletions = false leaves a deletion outside the filters "
                 "on the remote",
                 "[integration][sync][deletions]") {
  node a{test::node_config(dir_a)};
  auto mine = make_events(keys, 5, test::unix_now() - 100, 1, "mine");
  publish(a.port, mine);
  auto options = kind1_only("req_stream");
  options.follow_deletions = false;
  node b{b_config(dir_b, sync_server_toml(a.port, options))};
  require_mirrored(a, b, kind1_all);

  publish(a.port, {deletion_of(keys, mine[0])});
  // An event published after the deletion reaches B: by then the deletion
  // would have too, had B asked for it.
  auto later = make_events(keys, 1, test::unix_now(), 1, "later");
  publish(a.port, later);
  require_holds(a, b, ids_filter(id_set(later)), "B after the later event");
  CHECK(ids_of(b.port, ids_filter({hex_id(mine[0])})).size() == 1);
  CHECK(count_of(b.port, R"({"kinds":[5]})") == 0);
  check_clean_shutdown(b, a);
}
