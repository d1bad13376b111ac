#include "actors/cluster/membership.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/cluster/rendezvous.hpp"
#include "messages/nostr/hex.hpp"

#include <caf/settings.hpp>

#include <algorithm>
#include <chrono>
#include <utility>

namespace ferry {

namespace {

using cluster::member_state;

using self_pointer = membership_actor::stateful_pointer<membership_state>;

int64_t milliseconds(caf::timespan x) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(x).count();
}

bool valid_pubkey(const std::string& hex) {
  nostr::bytes32 key;
  return nostr::from_hex(hex, key);
}

bool owns_relays(member_state x) {
  return x == member_state::alive || x == member_state::suspect;
}

} // namespace

caf::error validate(const membership_config& config) {
  auto invalid = [](std::string what) {
    return caf::make_error(ec::invalid_configuration, std::move(what));
  };
  if (config.self.name.empty())
    return invalid("cluster node name must not be empty");
  if (!valid_pubkey(config.self.pubkey))
    return invalid("cluster node pubkey must be 64 lowercase hex characters");
  if (config.heartbeat <= caf::timespan::zero())
    return invalid("cluster heartbeat interval must be positive");
  if (config.failure_timeout <= config.heartbeat)
    return invalid(
      "cluster failure timeout must exceed the heartbeat interval");
  if (config.forget_after <= config.failure_timeout)
    return invalid("cluster forget period must exceed the failure timeout");
  for (const auto& key : config.allowed_pubkeys)
    if (!valid_pubkey(key))
      return invalid("cluster member key " + key
                     + " is not 64 lowercase hex characters");
  if (!config.allowed_pubkeys.empty()
      && std::find(config.allowed_pubkeys.begin(), config.allowed_pubkeys.end(),
                   config.self.pubkey)
           == config.allowed_pubkeys.end())
    return invalid("this node's own key is not among the cluster members");
  return caf::none;
}

void membership_state::configure(const membership_config& cfg,
                                 time_point now) {
  config = cfg;
  auto& me = members[cfg.self.name];
  me.info.name = cfg.self.name;
  me.info.pubkey = cfg.self.pubkey;
  me.info.incarnation = cfg.self.incarnation;
  me.info.relay_url = cfg.self.relay_url;
  me.info.admin_url = cfg.self.admin_url;
  me.info.address = cfg.self.address;
  me.info.state = member_state::alive;
  me.last_seen = now;
}

// -- inputs -------------------------------------------------------------------

caf::expected<member_state>
membership_state::heartbeat(const cluster::member_heartbeat& hb,
                            time_point now) {
  if (hb.name.empty())
    return refuse(hb, ec::invalid_input, "empty node name");
  if (!valid_pubkey(hb.pubkey))
    return refuse(hb, ec::invalid_input,
                  "pubkey is not 64 lowercase hex characters");
  if (hb.name == config.self.name)
    return refuse(hb, ec::conflict, "claims this node's own name");
  if (!allowed(hb.pubkey))
    return refuse(hb, ec::invalid_input,
                  "pubkey is not among the cluster members");
  auto [i, joined] = members.try_emplace(hb.name);
  auto& m = i->second;
  if (joined) {
    m.info.name = hb.name;
    m.info.pubkey = hb.pubkey;
    log::info("{}: {} joined (incarnation {}, relay {})", name, hb.name,
              hb.incarnation, hb.relay_url);
  } else if (m.info.pubkey != hb.pubkey) {
    return refuse(hb, ec::conflict,
                  "name is known with pubkey " + m.info.pubkey);
  } else if (hb.incarnation < m.info.incarnation) {
    log::debug("{}: ignored a heartbeat of {} from old incarnation {} (now {})",
               name, hb.name, hb.incarnation, m.info.incarnation);
    return m.info.state;
  } else if (hb.incarnation == m.info.incarnation
             && m.info.state == member_state::left) {
    // A heartbeat still in flight when the member said goodbye.
    return m.info.state;
  } else if (hb.incarnation > m.info.incarnation) {
    log::info("{}: {} rejoined with incarnation {} (was {}, {})", name,
              hb.name, hb.incarnation, m.info.incarnation,
              to_string(m.info.state));
  } else if (m.info.state == member_state::dead
             || m.info.state == member_state::forgotten) {
    log::info("{}: {} is back ({})", name, hb.name, to_string(m.info.state));
  }
  m.info.incarnation = hb.incarnation;
  m.info.relay_url = hb.relay_url;
  m.info.admin_url = hb.admin_url;
  m.info.address = hb.address;
  m.info.state = member_state::alive;
  m.info.last_heartbeat = unix_now_ms();
  m.last_seen = now;
  return member_state::alive;
}

void membership_state::connection_lost(const std::string& member_name) {
  auto i = members.find(member_name);
  if (i == members.end() || member_name == config.self.name)
    return;
  auto& info = i->second.info;
  if (info.state != member_state::alive)
    return;
  info.state = member_state::suspect;
  log::info("{}: lost the connection to {}; suspect until it heartbeats again",
            name, member_name);
}

void membership_state::leave(const std::string& member_name,
                             uint64_t incarnation) {
  auto i = members.find(member_name);
  if (i == members.end() || member_name == config.self.name)
    return;
  auto& info = i->second.info;
  if (incarnation < info.incarnation || info.state == member_state::left
      || info.state == member_state::forgotten)
    return;
  info.incarnation = incarnation;
  info.state = member_state::left;
  log::info("{}: {} left the cluster", name, member_name);
}

void membership_state::tick(time_point now) {
  for (auto& [member_name, m] : members) {
    if (member_name == config.self.name
        || m.info.state == member_state::forgotten)
      continue;
    auto silent = now - m.last_seen;
    if (!owns_relays(m.info.state)) {
      if (silent >= config.forget_after) {
        log::info("{}: {} ({}) silent for {} ms: forgotten", name,
                  member_name, to_string(m.info.state), milliseconds(silent));
        m.info.state = member_state::forgotten;
      }
      continue;
    }
    if (silent >= config.failure_timeout) {
      m.info.state = member_state::dead;
      log::warn("{}: no heartbeat from {} for {} ms: dead", name, member_name,
                milliseconds(silent));
    } else if (m.info.state == member_state::alive
               && silent > 2 * config.heartbeat) {
      m.info.state = member_state::suspect;
      log::info("{}: {} missed two heartbeats: suspect", name, member_name);
    }
  }
}

// -- queries ------------------------------------------------------------------

std::vector<std::string> membership_state::live_set() const {
  std::vector<std::string> result;
  for (const auto& [member_name, m] : members)
    if (owns_relays(m.info.state))
      result.push_back(member_name);
  return result;
}

std::string membership_state::owner(const std::string& key) const {
  // This node is always in its own live set, so there is always an owner.
  return *cluster::rendezvous_owner(key, live_set());
}

cluster::cluster_view membership_state::view(time_point now) const {
  cluster::cluster_view result;
  result.self = config.self.name;
  for (const auto& [member_name, m] : members) {
    auto info = m.info;
    if (member_name == config.self.name)
      info.last_heartbeat = unix_now_ms();
    else
      info.silent_for = now - m.last_seen;
    result.members.push_back(std::move(info));
  }
  result.refused = refused;
  return result;
}

status_map membership_state::status(time_point now) const {
  status_map result;
  caf::put(result, "self", config.self.name);
  caf::put(result, "members.total", static_cast<int64_t>(members.size()));
  caf::put(result, "listeners", static_cast<int64_t>(listeners.size()));
  std::map<member_state, int64_t> counts;
  caf::settings by_name;
  for (const auto& info : view(now).members) {
    ++counts[info.state];
    status_map entry;
    caf::put(entry, "state", to_string(info.state));
    caf::put(entry, "pubkey", info.pubkey);
    caf::put(entry, "incarnation", static_cast<int64_t>(info.incarnation));
    caf::put(entry, "relay_url", info.relay_url);
    caf::put(entry, "admin_url", info.admin_url);
    caf::put(entry, "last_heartbeat", info.last_heartbeat);
    caf::put(entry, "silent_for", info.silent_for);
    // Names may contain dots, which caf::put reads as nesting.
    by_name.emplace(info.name, caf::config_value{std::move(entry)});
  }
  for (auto s : {member_state::alive, member_state::suspect,
                 member_state::dead, member_state::left,
                 member_state::forgotten})
    caf::put(result, "members." + to_string(s), counts[s]);
  result.emplace("view", caf::config_value{std::move(by_name)});
  caf::config_value::list live;
  for (auto& member_name : live_set())
    live.emplace_back(std::move(member_name));
  result.emplace("live", caf::config_value{std::move(live)});
  caf::config_value::list refusals;
  for (const auto& x : refused)
    refusals.emplace_back(x.name + " (" + x.pubkey + "): " + x.reason + ", "
                          + std::to_string(x.times) + "x");
  result.emplace("refused", caf::config_value{std::move(refusals)});
  return result;
}

// -- helpers ------------------------------------------------------------------

caf::error membership_state::refuse(const cluster::member_heartbeat& hb,
                                    ec code, std::string reason) {
  auto same = [&](const cluster::refused_member& x) {
    return x.name == hb.name && x.pubkey == hb.pubkey && x.reason == reason;
  };
  cluster::refused_member entry;
  auto i = std::find_if(refused.begin(), refused.end(), same);
  if (i != refused.end()) {
    entry = std::move(*i);
    refused.erase(i);
  } else {
    entry.name = hb.name;
    entry.pubkey = hb.pubkey;
    entry.reason = reason;
    // Logged once per name, key and reason: a refused node keeps
    // heartbeating, and the entry counts the rest.
    log::warn("{}: refused {} (pubkey {}): {}", name, hb.name, hb.pubkey,
              reason);
  }
  entry.last_refused = unix_now_ms();
  ++entry.times;
  refused.push_back(std::move(entry));
  if (refused.size() > config.max_refused)
    refused.erase(refused.begin());
  return caf::make_error(code, "refused " + hb.name + ": " + reason);
}

bool membership_state::allowed(const std::string& pubkey) const {
  const auto& keys = config.allowed_pubkeys;
  return keys.empty()
         || std::find(keys.begin(), keys.end(), pubkey) != keys.end();
}

// -- behavior -----------------------------------------------------------------

namespace {

/// Runs `change` on the state and tells every listener the live set if it
/// changed.
template <class F>
void changing_live_set(self_pointer self, F change) {
  auto before = self->state.live_set();
  change();
  auto after = self->state.live_set();
  if (after == before)
    return;
  for (const auto& listener : self->state.listeners)
    self->send(listener, atom::members_v, after);
}

} // namespace

membership_actor::behavior_type
membership(self_pointer self, membership_config config) {
  if (auto err = validate(config)) {
    self->quit(std::move(err));
    return membership_actor::behavior_type::make_empty_behavior();
  }
  self->state.configure(config, self->clock().now());
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& xs = self->state.listeners;
    xs.erase(std::remove_if(xs.begin(), xs.end(),
                            [&](const membership_listener_actor& x) {
                              return x.address() == dm.source;
                            }),
             xs.end());
  });
  self->delayed_send(self, config.heartbeat, atom::tick_v);
  return {
    [self](atom::heartbeat,
           const cluster::member_heartbeat& hb) -> caf::result<member_state> {
      caf::expected<member_state> result = member_state::alive;
      changing_live_set(self, [&] {
        result = self->state.heartbeat(hb, self->clock().now());
      });
      if (!result)
        return std::move(result.error());
      return *result;
    },
    [self](atom::failed, const cluster::member_heartbeat& hb,
           const std::string& reason) {
      self->state.refuse(hb, ec::invalid_input, reason);
    },
    [self](atom::closed, const std::string& member_name) {
      changing_live_set(self,
                        [&] { self->state.connection_lost(member_name); });
    },
    [self](atom::leave, const std::string& member_name, uint64_t incarnation) {
      changing_live_set(self,
                        [&] { self->state.leave(member_name, incarnation); });
    },
    [self](atom::subscribe, const membership_listener_actor& listener) {
      auto& xs = self->state.listeners;
      if (std::find(xs.begin(), xs.end(), listener) == xs.end()) {
        xs.push_back(listener);
        self->monitor(listener);
      }
      self->send(listener, atom::members_v, self->state.live_set());
    },
    [self](atom::unsubscribe, const membership_listener_actor& listener) {
      auto& xs = self->state.listeners;
      xs.erase(std::remove(xs.begin(), xs.end(), listener), xs.end());
      self->demonitor(listener.address());
    },
    [self](atom::get, atom::members) {
      return self->state.view(self->clock().now());
    },
    [self](atom::get, atom::owner, const std::string& key) {
      return self->state.owner(key);
    },
    [self](atom::get, atom::status) {
      auto result = self->state.status(self->clock().now());
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      return result;
    },
    [self](atom::tick) {
      changing_live_set(self,
                        [&] { self->state.tick(self->clock().now()); });
      self->delayed_send(self, self->state.config.heartbeat, atom::tick_v);
    },
  };
}

} // namespace ferry
