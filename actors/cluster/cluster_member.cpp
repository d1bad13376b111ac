#include "actors/cluster/cluster_member.hpp"

#include "actors/cluster/handshake.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/error.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace ferry {

namespace {

using self_pointer
  = cluster_member_actor::stateful_pointer<cluster_member_state>;
using link = cluster_member_state::link;
using member_list = std::vector<cluster::member_info>;

/// Splits "host:port" or "[v6]:port".
void split_address(const std::string& address, std::string& host,
                   uint16_t& port) {
  auto colon = address.rfind(':');
  host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  port = colon == std::string::npos
           ? 0
           : static_cast<uint16_t>(
             std::strtoul(address.c_str() + colon + 1, nullptr, 10));
}

template <class Handle>
Handle current(const handle_slot_ptr<Handle>& slot) {
  return slot ? slot->get() : Handle{};
}

/// Tells the manager once that the first attempt is over.
void report_first(self_pointer self) {
  if (self->state.reported)
    return;
  self->state.reported = true;
  if (auto manager = current(self->state.manager))
    self->send(manager, atom::done_v, self->state.address);
}

/// CAF keeps one connection per pair of nodes, and a second one dialled
/// while the first is up tears both down. So of two members that know each
/// other, the one with the lower name dials again after a failure, and the
/// other waits this much longer, for the peer to join its gate and hand over
/// its own (adopted in `(join, gate)`); it dials itself only when nobody
/// came by then (the peer cannot reach it, say).
caf::timespan yield_to_peer(const cluster_member_state& st) {
  if (st.peer.empty() || st.identity->self.name < st.peer)
    return caf::timespan{0};
  return st.config.connect_timeout;
}

/// `backoff` and up to half of it again, at random: two members whose
/// attempts failed together (they dialled each other at once and CAF tore
/// both connections down) do not dial each other at the same moment again.
caf::timespan jittered(caf::timespan backoff) {
  static thread_local std::minstd_rand random{std::random_device{}()};
  std::uniform_int_distribution<caf::timespan::rep> extra{0, backoff.count() / 2};
  return backoff + caf::timespan{extra(random)};
}

/// Stops watching the gate of an attempt that ended.
void forget_joining(self_pointer self) {
  auto& st = self->state;
  if (st.joining && st.joining != st.gate)
    self->demonitor(st.joining.address());
  st.joining = cluster_gate_actor{};
}

/// Ends attempt `generation` and dials again after the backoff: the longest
/// one when the peer failed its proof or refused us (an operator has to act
/// first), otherwise a doubling one.
void fail(self_pointer self, uint64_t generation, const std::string& reason,
          bool refused = false) {
  auto& st = self->state;
  // Waiting: this attempt failed already (its gate went down, and now its
  // request times out too).
  if (generation != st.generation || st.state == link::left
      || st.state == link::waiting)
    return;
  forget_joining(self);
  st.state = link::waiting;
  // A dead peer fails the same way on every attempt: say it once.
  if (reason != st.last_error) {
    if (refused)
      log::warn("{} {}: {}", self->name(), st.address, reason);
    else
      log::info("{} {}: {}", self->name(), st.address, reason);
  }
  st.last_error = reason;
  if (refused)
    st.backoff = st.config.backoff_cap;
  else if (st.backoff == caf::timespan{0})
    st.backoff = st.config.backoff;
  else
    st.backoff = std::min(2 * st.backoff, st.config.backoff_cap);
  self->delayed_send(self, jittered(st.backoff) + yield_to_peer(st),
                     atom::connect_v, generation);
  report_first(self);
}

/// The joined link is gone: the peer turns suspect, and we dial again.
void link_lost(self_pointer self, const std::string& reason) {
  auto& st = self->state;
  if (st.state != link::joined)
    return;
  self->demonitor(st.gate.address());
  st.gate = cluster_gate_actor{};
  if (auto membership = current(st.membership))
    self->send(membership, atom::closed_v, st.peer);
  fail(self, st.generation, reason);
}

void join(self_pointer self, uint64_t generation, cluster_gate_actor gate,
          cluster::member_heartbeat peer, const std::string& their_challenge) {
  auto& me = *self->state.identity;
  auto signature = cluster::sign_challenge(their_challenge, me.self, me.keys);
  self
    ->request(gate, self->state.config.connect_timeout, atom::join_v, me.self,
              signature, caf::actor_cast<caf::actor>(me.gate->get()))
    .then(
      [self, generation, gate, peer](member_list& members) {
        auto& st = self->state;
        if (generation != st.generation)
          return;
        // The gate stays monitored: from now on as the joined link's.
        if (st.joining != gate)
          self->monitor(gate);
        st.joining = cluster_gate_actor{};
        st.gate = gate;
        st.peer = peer.name;
        st.state = link::joined;
        st.backoff = caf::timespan{0};
        st.last_error.clear();
        ++st.joins;
        log::info("{} {}: joined {} (incarnation {})", self->name(),
                  st.address, peer.name, peer.incarnation);
        report_first(self);
        if (auto manager = current(st.manager))
          self->send(manager, atom::members_v, std::move(members));
        self->send(self, atom::tick_v, generation);
      },
      [self, generation, peer](caf::error& err) {
        fail(self, generation, peer.name + " refused our join: " + render(err),
             err.category() == caf::atom("ferry"));
      });
}

/// Checks the peer's proof and lets the MEMBERSHIP judge its identity
/// before we prove ours.
void hello(self_pointer self, uint64_t generation, cluster_gate_actor gate) {
  auto& st = self->state;
  if (st.joining != gate) {
    forget_joining(self);
    st.joining = gate;
    self->monitor(gate);
  }
  auto challenge = cluster::make_challenge();
  self
    ->request(gate, self->state.config.connect_timeout, atom::hello_v,
              challenge)
    .then(
      [self, generation, gate, challenge](cluster::member_heartbeat& peer,
                                          std::string& their_challenge,
                                          std::string& signature) {
        auto& st = self->state;
        if (generation != st.generation)
          return;
        auto membership = current(st.membership);
        if (!membership) {
          fail(self, generation, "the membership is restarting");
          return;
        }
        if (auto problem
            = cluster::check_challenge_signature(challenge, peer, signature);
            !problem.empty()) {
          self->send(membership, atom::failed_v, peer, problem);
          fail(self, generation,
               "the peer failed to prove its identity: " + problem, true);
          return;
        }
        self
          ->request(membership, self->state.config.connect_timeout,
                    atom::heartbeat_v, peer)
          .then(
            [self, generation, gate, peer,
             their_challenge](cluster::member_state) {
              // A seed's name, now proven: should this attempt fail, the
              // next one follows the dialling rule (the higher name waits).
              auto& st = self->state;
              if (generation == st.generation && st.peer.empty())
                st.peer = peer.name;
              join(self, generation, gate, peer, their_challenge);
            },
            [self, generation](caf::error& err) {
              fail(self, generation, "refused the peer: " + render(err), true);
            });
      },
      [self, generation](caf::error& err) {
        fail(self, generation, "hello failed: " + render(err));
      });
}

void dial(self_pointer self) {
  auto& st = self->state;
  auto generation = ++st.generation;
  st.state = link::dialing;
  ++st.attempts;
  // The middleman's own remote_actor() blocks and may wait forever for a
  // peer that accepts but never speaks CAF; its actor answers in time. The
  // OpenSSL module is loaded exactly when cluster.tls is set (`ferry node`):
  // then every member is dialled over TLS with the node's certificate.
  auto& sys = self->system();
  auto middleman = sys.has_openssl_manager()
                     ? sys.openssl_manager().actor_handle()
                     : sys.middleman().actor_handle();
  self
    ->request(middleman, st.config.connect_timeout, caf::connect_atom_v,
              st.host, st.port)
    .then(
      [self, generation](caf::node_id& node, caf::strong_actor_ptr& ptr,
                         std::set<std::string>& interface) {
        auto& st = self->state;
        if (generation != st.generation)
          return;
        if (node == self->node()) {
          st.state = link::self;
          log::info("{} {}: that is this node itself; not dialling it",
                    self->name(), st.address);
          report_first(self);
          return;
        }
        if (!ptr) {
          fail(self, generation, "nothing is published there");
          return;
        }
        if (!self->system().assignable<cluster_gate_actor>(interface)) {
          fail(self, generation, "that is not a ferry cluster gate", true);
          return;
        }
        hello(self, generation, caf::actor_cast<cluster_gate_actor>(ptr));
      },
      [self, generation](caf::error& err) {
        fail(self, generation, "cannot connect: " + render(err));
      });
}

} // namespace

std::string to_string(cluster_member_state::link x) {
  switch (x) {
    case link::dialing:
      return "dialing";
    case link::joined:
      return "joined";
    case link::waiting:
      return "waiting";
    case link::self:
      return "self";
    case link::left:
      return "left";
  }
  return "unknown";
}

cluster_member_actor::behavior_type
cluster_member(cluster_member_actor::stateful_pointer<cluster_member_state> self,
               std::string address, cluster_member_config config,
               cluster_identity_ptr identity,
               handle_slot_ptr<membership_actor> membership,
               handle_slot_ptr<cluster_manager_actor> manager,
               cluster_gate_actor joined_us, std::string expected_peer) {
  auto& st = self->state;
  st.peer = std::move(expected_peer);
  st.address = std::move(address);
  split_address(st.address, st.host, st.port);
  st.config = config;
  st.identity = std::move(identity);
  st.membership = std::move(membership);
  st.manager = std::move(manager);
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    if (st.gate && dm.source == st.gate.address())
      link_lost(self, "the link to " + st.peer + " went down ("
                        + render(dm.reason) + ")");
    else if (st.joining && dm.source == st.joining.address())
      fail(self, st.generation, "the connection went down while joining ("
                                  + render(dm.reason) + ")");
  });
  if (joined_us) {
    self->send(self, atom::join_v, std::move(joined_us));
  } else if (auto wait = yield_to_peer(st); wait > caf::timespan{0}) {
    // Its own generation: the first one, 0, is `dial_now`, which the
    // manager sends whenever gossip has the peer alive, and would end the
    // yield at once.
    st.state = link::waiting;
    self->delayed_send(self, wait, atom::connect_v, ++st.generation);
  } else {
    dial(self);
  }
  return {
    [self](atom::connect, uint64_t generation) {
      auto& st = self->state;
      if (st.state == link::left)
        return;
      // A peer we yield to is left to dial us, also when it is up.
      if (generation == dial_now
            ? st.state == link::waiting && yield_to_peer(st) == caf::timespan{0}
            : generation == st.generation)
        dial(self);
    },
    [self](atom::join, cluster_gate_actor& gate) {
      auto& st = self->state;
      if (!gate || st.state == link::left || st.state == link::self
          || (st.state == link::joined && st.gate == gate))
        return;
      // Joined to a gate the peer's previous run had: its down message is
      // on the way; the new gate is what counts now.
      if (st.state == link::joined && st.gate) {
        self->demonitor(st.gate.address());
        st.gate = cluster_gate_actor{};
      }
      log::info("{} {}: the peer joined us; joining it back over its "
                "connection", self->name(), st.address);
      auto generation = ++st.generation;
      st.state = link::dialing;
      ++st.attempts;
      hello(self, generation, std::move(gate));
    },
    [self](atom::put, std::string& records) {
      auto& st = self->state;
      // A peer not joined now gets every record with the next round.
      if (st.state == link::joined && st.gate)
        self->send(st.gate, atom::put_v, std::move(records));
    },
    [self](atom::leave) -> caf::result<std::string> {
      auto& st = self->state;
      if (st.state != link::joined)
        return caf::make_error(ec::not_found, "the link to " + st.address
                                                + " is " + to_string(st.state)
                                                + ", not joined");
      // No heartbeat and no dial from now on: the generation moves on. The
      // gate stays, for the hand-over's questions.
      ++st.generation;
      st.state = link::left;
      auto gate = st.gate;
      self->demonitor(gate.address());
      auto rp = self->make_response_promise<std::string>();
      self
        ->request(gate, st.config.connect_timeout, atom::leave_v,
                  st.identity->self.name, st.identity->self.incarnation)
        .then(
          [self, rp](bool) mutable {
            log::info("{} {}: said goodbye to {}", self->name(),
                      self->state.address, self->state.peer);
            rp.deliver(self->state.peer);
          },
          [self, rp](caf::error& err) mutable {
            log::warn("{} {}: {} did not take our goodbye: {}", self->name(),
                      self->state.address, self->state.peer, render(err));
            rp.deliver(std::move(err));
          });
      return rp;
    },
    [self](atom::get, atom::connected, std::vector<std::string>& ids)
      -> caf::result<std::vector<std::string>> {
      auto& st = self->state;
      if (!st.gate || (st.state != link::joined && st.state != link::left))
        return caf::make_error(ec::not_found, "the link to " + st.address
                                                + " is " + to_string(st.state)
                                                + ", not joined");
      auto rp = self->make_response_promise<std::vector<std::string>>();
      self
        ->request(st.gate, st.config.connect_timeout, atom::get_v,
                  atom::connected_v, std::move(ids))
        .then(
          [rp](std::vector<std::string>& connected) mutable {
            rp.deliver(std::move(connected));
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [self](atom::tick, uint64_t generation) {
      auto& st = self->state;
      if (generation != st.generation || st.state != link::joined)
        return;
      ++st.heartbeats;
      self
        ->request(st.gate, 2 * st.config.heartbeat, atom::heartbeat_v,
                  st.identity->self)
        .then(
          [self, generation](cluster::member_heartbeat& peer,
                             member_list& members) {
            auto& st = self->state;
            if (generation != st.generation)
              return;
            ++st.heartbeats_answered;
            if (auto membership = current(st.membership))
              self
                ->request(membership, 2 * st.config.heartbeat,
                          atom::heartbeat_v, peer)
                .then([](cluster::member_state) {},
                      [self, generation](caf::error& err) {
                        if (err.category() == caf::atom("ferry"))
                          link_lost(self, "refused the peer: " + render(err));
                      });
            if (auto manager = current(st.manager))
              self->send(manager, atom::members_v, std::move(members));
          },
          [self, generation](caf::error& err) {
            // A late answer is the membership's business (it times the peer
            // out); a refusal means the peer no longer counts us as joined.
            if (generation == self->state.generation
                && err.category() == caf::atom("ferry"))
              link_lost(self, "the peer refused our heartbeat: " + render(err));
          });
      self->delayed_send(self, st.config.heartbeat, atom::tick_v, generation);
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "address", st.address);
      caf::put(result, "peer", st.peer);
      caf::put(result, "link", to_string(st.state));
      caf::put(result, "attempts", static_cast<int64_t>(st.attempts));
      caf::put(result, "joins", static_cast<int64_t>(st.joins));
      caf::put(result, "heartbeats", static_cast<int64_t>(st.heartbeats));
      caf::put(result, "heartbeats_answered",
               static_cast<int64_t>(st.heartbeats_answered));
      caf::put(result, "last_error", st.last_error);
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      return result;
    },
  };
}

} // namespace ferry
