#include "actors/cluster/cluster_gate.hpp"

#include "actors/cluster/handshake.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/error.hpp"
#include "messages/nostr/hex.hpp"

#include <caf/typed_response_promise.hpp>

#include <utility>
#include <vector>

namespace ferry {

namespace {

using self_pointer = cluster_gate_actor::stateful_pointer<cluster_gate_state>;
using member_list = std::vector<cluster::member_info>;

/// The node the current message came from (a default id in a process
/// without the middleman).
caf::node_id sender_node(self_pointer self) {
  auto& sender = self->current_sender();
  return sender ? sender->node() : caf::node_id{};
}

/// Refuses a message that does not fit the protocol: the node is forgotten,
/// so it has to start over with hello.
caf::error out_of_protocol(self_pointer self, const caf::node_id& node,
                           const std::string& what) {
  ++self->state.out_of_protocol;
  auto i = self->state.peers.find(node);
  auto who = i != self->state.peers.end() && !i->second.name.empty()
               ? i->second.name + " (node " + to_string(node) + ")"
               : "node " + to_string(node);
  log::warn("{}: out-of-protocol message from {}: {}; dropped it", self->name(),
            who, what);
  if (i != self->state.peers.end())
    self->state.peers.erase(i);
  return caf::make_error(ec::invalid_input, "out of protocol: " + what);
}

membership_actor current_membership(self_pointer self) {
  auto& slot = self->state.membership;
  return slot ? slot->get() : membership_actor{};
}

/// Asks the membership for the members it knows and delivers them.
template <class Promise, class Then>
void with_members(self_pointer self, const membership_actor& membership,
                  Promise rp, Then then) {
  self
    ->request(membership, cluster_gate_ask_timeout, atom::get_v,
              atom::members_v)
    .then([rp, then](cluster::cluster_view& view) mutable {
      then(rp, std::move(view.members));
    },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

cluster::member_info info_of(const cluster::member_heartbeat& hb) {
  cluster::member_info info;
  info.name = hb.name;
  info.pubkey = hb.pubkey;
  info.incarnation = hb.incarnation;
  info.relay_url = hb.relay_url;
  info.admin_url = hb.admin_url;
  info.address = hb.address;
  return info;
}

} // namespace

cluster_gate_actor::behavior_type
cluster_gate(cluster_gate_actor::stateful_pointer<cluster_gate_state> self,
             cluster_identity_ptr identity,
             handle_slot_ptr<membership_actor> membership,
             handle_slot_ptr<cluster_manager_actor> manager) {
  self->state.identity = std::move(identity);
  self->state.membership = std::move(membership);
  self->state.manager = std::move(manager);
  return {
    [self](atom::hello, const std::string& challenge)
      -> caf::result<cluster::member_heartbeat, std::string, std::string> {
      auto node = sender_node(self);
      nostr::bytes32 raw;
      if (!self->current_sender())
        return caf::make_error(ec::invalid_input, "hello needs a sender");
      if (!nostr::from_hex(challenge, raw))
        return out_of_protocol(self, node,
                               "hello with a challenge that is not 64 hex");
      ++self->state.hellos;
      auto& peer = self->state.peers[node];
      peer.challenge = cluster::make_challenge();
      peer.name.clear();
      auto& me = *self->state.identity;
      return {me.self, peer.challenge,
              cluster::sign_challenge(challenge, me.self, me.keys)};
    },
    [self](atom::join, const cluster::member_heartbeat& hb,
           const std::string& signature,
           const caf::actor& their_gate) -> caf::result<member_list> {
      auto node = sender_node(self);
      auto i = self->state.peers.find(node);
      if (i == self->state.peers.end() || i->second.challenge.empty())
        return out_of_protocol(self, node, "join before hello");
      // Our link to the dialler will talk to this gate: it must be on the
      // dialler's own node, not an actor elsewhere it points us at.
      if (their_gate && their_gate.node() != node)
        return out_of_protocol(self, node, "join naming a gate on another node");
      auto challenge = std::move(i->second.challenge);
      i->second.challenge.clear();
      auto membership = current_membership(self);
      if (!membership)
        return caf::make_error(ec::network_failure,
                               "the membership is restarting; try again");
      if (auto problem
          = cluster::check_challenge_signature(challenge, hb, signature);
          !problem.empty()) {
        ++self->state.refused;
        self->state.peers.erase(i);
        self->send(membership, atom::failed_v, hb, problem);
        return caf::make_error(ec::invalid_input,
                               "refused " + hb.name + ": " + problem);
      }
      auto rp = self->make_response_promise<member_list>();
      self
        ->request(membership, cluster_gate_ask_timeout, atom::heartbeat_v, hb)
        .then(
          [self, rp, node, hb, membership,
           their_gate](cluster::member_state) mutable {
            auto j = self->state.peers.find(node);
            if (j == self->state.peers.end()) {
              rp.deliver(caf::make_error(ec::invalid_input,
                                         "out of protocol: hello again"));
              return;
            }
            j->second.name = hb.name;
            // A member that restarted joins from a new node: drop what its
            // previous run left here after its goodbye.
            auto& peers = self->state.peers;
            for (auto k = peers.begin(); k != peers.end();)
              if (k->first != node && k->second.departed
                  && k->second.name == hb.name)
                k = peers.erase(k);
              else
                ++k;
            ++self->state.joins;
            log::info("{}: {} joined (incarnation {}, cluster port {})",
                      self->name(), hb.name, hb.incarnation, hb.address);
            if (auto& slot = self->state.manager; slot && slot->get()) {
              if (their_gate)
                self->send(slot->get(), atom::join_v, info_of(hb),
                           caf::actor_cast<cluster_gate_actor>(their_gate));
              else
                self->send(slot->get(), atom::members_v,
                           member_list{info_of(hb)});
            }
            with_members(self, membership, rp,
                         [](auto& promise, member_list members) {
                           promise.deliver(std::move(members));
                         });
          },
          [self, rp, node](caf::error& err) mutable {
            ++self->state.refused;
            self->state.peers.erase(node);
            rp.deliver(std::move(err));
          });
      return rp;
    },
    [self](atom::heartbeat, const cluster::member_heartbeat& hb)
      -> caf::result<cluster::member_heartbeat, member_list> {
      auto node = sender_node(self);
      auto i = self->state.peers.find(node);
      if (i == self->state.peers.end() || !i->second.joined())
        return out_of_protocol(self, node, "heartbeat before join or after "
                                           "leave");
      if (i->second.name != hb.name)
        return out_of_protocol(self, node,
                               "heartbeat as " + hb.name + " after joining as "
                                 + i->second.name);
      auto membership = current_membership(self);
      if (!membership)
        return caf::make_error(ec::network_failure,
                               "the membership is restarting");
      auto rp
        = self->make_response_promise<cluster::member_heartbeat, member_list>();
      self
        ->request(membership, cluster_gate_ask_timeout, atom::heartbeat_v, hb)
        .then(
          [self, rp, membership](cluster::member_state) mutable {
            with_members(self, membership, rp,
                         [self](auto& promise, member_list members) {
                           promise.deliver(self->state.identity->self,
                                           std::move(members));
                         });
          },
          [self, rp, node](caf::error& err) mutable {
            // A key change under a known name, say: the node has to prove
            // itself again.
            self->state.peers.erase(node);
            rp.deliver(std::move(err));
          });
      return rp;
    },
    [self](atom::leave, const std::string& member_name,
           uint64_t incarnation) -> caf::result<bool> {
      auto node = sender_node(self);
      auto i = self->state.peers.find(node);
      if (i == self->state.peers.end() || !i->second.joined()
          || i->second.name != member_name)
        return out_of_protocol(self, node, "leave as " + member_name
                                             + " without having joined as it");
      auto membership = current_membership(self);
      if (!membership)
        return caf::make_error(ec::network_failure,
                               "the membership is restarting");
      // The goodbye is in the membership's mailbox when the leaver hears
      // back: its relays move with the next live set.
      self->send(membership, atom::leave_v, member_name, incarnation);
      i->second.departed = true;
      log::info("{}: {} said goodbye", self->name(), member_name);
      return true;
    },
    [self](atom::get, atom::connected, std::vector<std::string>& ids)
      -> caf::result<std::vector<std::string>> {
      auto node = sender_node(self);
      auto i = self->state.peers.find(node);
      if (i == self->state.peers.end() || i->second.name.empty())
        return out_of_protocol(self, node,
                               "asked for connected relays before join");
      auto manager = self->state.manager ? self->state.manager->get()
                                         : cluster_manager_actor{};
      if (!manager)
        return caf::make_error(ec::network_failure,
                               "the cluster manager is restarting");
      return self->delegate(manager, atom::get_v, atom::connected_v,
                            std::move(ids));
    },
    [self](atom::put, std::string& records) {
      auto node = sender_node(self);
      auto i = self->state.peers.find(node);
      if (i == self->state.peers.end() || !i->second.joined()) {
        out_of_protocol(self, node, "control-plane records before join or "
                                    "after leave");
        return;
      }
      ++self->state.records_received;
      if (auto manager = self->state.manager ? self->state.manager->get()
                                             : cluster_manager_actor{})
        self->send(manager, atom::put_v, std::move(records));
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "address", st.identity->self.address);
      caf::put(result, "records_received",
               static_cast<int64_t>(st.records_received));
      caf::put(result, "hellos", static_cast<int64_t>(st.hellos));
      caf::put(result, "joins", static_cast<int64_t>(st.joins));
      caf::put(result, "refused", static_cast<int64_t>(st.refused));
      caf::put(result, "out_of_protocol",
               static_cast<int64_t>(st.out_of_protocol));
      int64_t joined = 0;
      for (auto& [node, peer] : st.peers)
        if (peer.joined())
          ++joined;
      caf::put(result, "joined_nodes", joined);
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      return result;
    },
  };
}

} // namespace ferry
