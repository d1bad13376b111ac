#include "actors/cluster/cluster_gate.hpp"

#include "actors/cluster/handshake.hpp"
#include "actors/cluster/membership.hpp"
#include "messages/error.hpp"
#include "messages/nostr/hex.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/fixtures/quiet_log.hpp"

#include <caf/after.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <tuple>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using cluster::member_state;
using Catch::Matchers::Contains;

namespace {

using member_list = std::vector<cluster::member_info>;

struct node_key {
  nostr::keypair keys = nostr::generate_keypair();
  cluster::member_heartbeat hb;

  explicit node_key(std::string name) {
    hb.name = std::move(name);
    hb.pubkey = nostr::to_hex(keys.pubkey);
    hb.incarnation = 7;
    hb.address = "127.0.0.1:7450";
  }
};

} // namespace

TEST_CASE("a challenge signature proves one key for one challenge and name",
          "[cluster][handshake]") {
  node_key a{"node-a"};
  auto challenge = cluster::make_challenge();
  REQUIRE(challenge.size() == 64);
  CHECK(challenge != cluster::make_challenge());
  auto sig = cluster::sign_challenge(challenge, a.hb, a.keys);
  CHECK(sig.size() == 128);
  CHECK(cluster::check_challenge_signature(challenge, a.hb, sig).empty());
  // Another challenge, another name or another key: no proof.
  CHECK_THAT(cluster::check_challenge_signature(cluster::make_challenge(),
                                                a.hb, sig),
             Contains("does not prove the key"));
  auto renamed = a.hb;
  renamed.name = "node-b";
  CHECK_FALSE(cluster::check_challenge_signature(challenge, renamed, sig)
                .empty());
  node_key b{"node-a"};
  auto stolen = a.hb;
  stolen.pubkey = b.hb.pubkey;
  CHECK_FALSE(cluster::check_challenge_signature(challenge, stolen, sig)
                .empty());
  CHECK(cluster::check_challenge_signature(challenge, a.hb, "zz")
        == "signature is not 128 lowercase hex characters");
  auto bad_key = a.hb;
  bad_key.pubkey = "nope";
  CHECK(cluster::check_challenge_signature(challenge, bad_key, sig)
        == "pubkey is not 64 lowercase hex characters");
}

namespace {

struct fixture : test::deterministic_actor_system {
  fixture() : me("node-a") {
    // nop
  }

  ~fixture() {
    for (auto& x : {caf::actor_cast<caf::actor>(gate),
                    caf::actor_cast<caf::actor>(view)})
      if (x)
        self->send_exit(x, caf::exit_reason::user_shutdown);
    run();
  }

  void launch(std::vector<std::string> allowed = {}) {
    membership_config mcfg;
    mcfg.self = me.hb;
    mcfg.allowed_pubkeys = std::move(allowed);
    view = sys.spawn(membership, mcfg);
    auto identity = std::make_shared<cluster_identity>();
    identity->self = me.hb;
    identity->keys = me.keys;
    auto view_slot = std::make_shared<handle_slot<membership_actor>>(view);
    gate = sys.spawn(cluster_gate, identity, view_slot,
                     std::make_shared<handle_slot<cluster_manager_actor>>());
    run();
  }

  /// Sends hello with a fresh challenge; checks the gate's proof and
  /// returns the gate's challenge.
  std::string hello() {
    auto challenge = cluster::make_challenge();
    self->send(gate, atom::hello_v, challenge);
    run();
    std::string theirs;
    self->receive(
      [&](cluster::member_heartbeat& gate_hb, std::string& gate_challenge,
          std::string& sig) {
        CHECK(gate_hb.name == "node-a");
        CHECK(cluster::check_challenge_signature(challenge, gate_hb, sig)
                .empty());
        theirs = std::move(gate_challenge);
      },
      [&](caf::error& err) { FAIL("hello refused: " << render(err)); },
      caf::after(0s) >> [] { FAIL("no answer to hello"); });
    return theirs;
  }

  caf::expected<member_list> join(const cluster::member_heartbeat& hb,
                                  const std::string& sig) {
    return reply_of<member_list>(gate, "the gate", atom::join_v, hb, sig,
                                 caf::actor{});
  }

  caf::error heartbeat_error(const cluster::member_heartbeat& hb) {
    self->send(gate, atom::heartbeat_v, hb);
    run();
    caf::error result;
    self->receive(
      [&](cluster::member_heartbeat&, member_list&) {},
      [&](caf::error& err) { result = std::move(err); },
      caf::after(0s) >> [] { FAIL("no answer to the heartbeat"); });
    return result;
  }

  cluster::cluster_view members() {
    auto x = reply_of<cluster::cluster_view>(view, "the membership",
                                             atom::get_v, atom::members_v);
    REQUIRE(x);
    return *x;
  }

  ferry::test::quiet_log quiet;
  node_key me;
  membership_actor view;
  cluster_gate_actor gate;
};

} // namespace

TEST_CASE_METHOD(fixture,
                 "a node that proves its key joins, learns the members and "
                 "heartbeats",
                 "[cluster][gate]") {
  launch();
  node_key b{"node-b"};
  auto challenge = hello();
  auto joined = join(b.hb, cluster::sign_challenge(challenge, b.hb, b.keys));
  REQUIRE(joined);
  std::vector<std::string> names;
  for (auto& m : *joined)
    names.push_back(m.name);
  CHECK(names == std::vector<std::string>{"node-a", "node-b"});
  CHECK(joined->back().address == "127.0.0.1:7450");
  CHECK_FALSE(heartbeat_error(b.hb));
  auto status = reply_of<status_map>(gate, "the gate", atom::get_v,
                                     atom::status_v);
  REQUIRE(status);
  CHECK(caf::get<int64_t>(*status, "joins") == 1);
  CHECK(caf::get<int64_t>(*status, "joined_nodes") == 1);
}

TEST_CASE_METHOD(fixture,
                 "a join with a signature over another challenge is refused "
                 "and kept for health",
                 "[cluster][gate]") {
  launch();
  node_key b{"node-b"};
  hello();
  auto joined = join(b.hb, cluster::sign_challenge(cluster::make_challenge(),
                                                   b.hb, b.keys));
  REQUIRE_FALSE(joined);
  CHECK_THAT(render(joined.error()), Contains("does not prove the key"));
  auto view = members();
  REQUIRE(view.refused.size() == 1);
  CHECK(view.refused[0].name == "node-b");
  CHECK_THAT(view.refused[0].reason, Contains("does not prove the key"));
  CHECK(view.members.size() == 1);
}

TEST_CASE_METHOD(fixture,
                 "a key outside the allow-list and a known name with a new "
                 "key are refused with the reason",
                 "[cluster][gate]") {
  node_key b{"node-b"};
  node_key impostor{"node-b"};
  node_key stranger{"node-x"};
  launch({me.hb.pubkey, b.hb.pubkey, impostor.hb.pubkey});
  auto challenge = hello();
  auto refused = join(stranger.hb, cluster::sign_challenge(
                                     challenge, stranger.hb, stranger.keys));
  REQUIRE_FALSE(refused);
  CHECK_THAT(render(refused.error()),
             Contains("pubkey is not among the cluster members"));
  challenge = hello();
  REQUIRE(join(b.hb, cluster::sign_challenge(challenge, b.hb, b.keys)));
  // The same name with another (allowed) key: the name is taken.
  challenge = hello();
  auto taken = join(impostor.hb, cluster::sign_challenge(challenge, impostor.hb,
                                                         impostor.keys));
  REQUIRE_FALSE(taken);
  CHECK_THAT(render(taken.error()),
             Contains("name is known with pubkey " + b.hb.pubkey));
  auto view = members();
  std::vector<std::string> reasons;
  for (auto& r : view.refused)
    reasons.push_back(r.name + ": " + r.reason);
  REQUIRE(reasons.size() == 2);
  CHECK_THAT(reasons[0], Contains("node-x: pubkey is not among"));
  CHECK_THAT(reasons[1], Contains("node-b: name is known with pubkey"));
}

TEST_CASE_METHOD(fixture,
                 "messages out of protocol are refused and the node must "
                 "start over",
                 "[cluster][gate]") {
  launch();
  node_key b{"node-b"};
  // Join and heartbeat before hello.
  auto early = join(b.hb, std::string(128, '0'));
  REQUIRE_FALSE(early);
  CHECK_THAT(render(early.error()), Contains("out of protocol: join before hello"));
  CHECK_THAT(render(heartbeat_error(b.hb)),
             Contains("out of protocol: heartbeat before join"));
  // A malformed challenge.
  auto bad = reply_of<cluster::member_heartbeat>(gate, "the gate",
                                                 atom::hello_v,
                                                 std::string{"xyz"});
  REQUIRE_FALSE(bad);
  // Joined as node-b, heartbeating as someone else: dropped.
  auto challenge = hello();
  REQUIRE(join(b.hb, cluster::sign_challenge(challenge, b.hb, b.keys)));
  auto other = b.hb;
  other.name = "node-c";
  CHECK_THAT(render(heartbeat_error(other)),
             Contains("heartbeat as node-c after joining as node-b"));
  CHECK_THAT(render(heartbeat_error(b.hb)),
             Contains("heartbeat before join"));
  auto status = reply_of<status_map>(gate, "the gate", atom::get_v,
                                     atom::status_v);
  REQUIRE(status);
  CHECK(caf::get<int64_t>(*status, "out_of_protocol") == 5);
}

TEST_CASE_METHOD(fixture,
                 "after its goodbye a member may only ask which relays run "
                 "here",
                 "[cluster][gate]") {
  launch();
  node_key b{"node-b"};
  using ids = std::vector<std::string>;
  auto connected = [&] {
    return reply_of<ids>(gate, "the gate", atom::get_v, atom::connected_v,
                         ids{"r0", "r1"});
  };
  // Not joined yet: out of protocol.
  CHECK(connected().error() == ec::invalid_input);
  auto challenge = hello();
  REQUIRE(join(b.hb, cluster::sign_challenge(challenge, b.hb, b.keys)));
  auto left = reply_of<bool>(gate, "the gate", atom::leave_v,
                             std::string{"node-b"}, uint64_t{7});
  REQUIRE(left);
  CHECK(*left);
  run();
  CHECK(members().members.back().state == member_state::left);
  // The question reaches the cluster manager (none runs here), which is no
  // protocol error.
  CHECK(connected().error() == ec::network_failure);
  auto status = reply_of<status_map>(gate, "the gate", atom::get_v,
                                     atom::status_v);
  REQUIRE(status);
  CHECK(caf::get<int64_t>(*status, "joined_nodes") == 0);
  CHECK(caf::get<int64_t>(*status, "out_of_protocol") == 1);
  // Anything else is: a heartbeat, then the question once more.
  CHECK(heartbeat_error(b.hb) == ec::invalid_input);
  CHECK(connected().error() == ec::invalid_input);
}
