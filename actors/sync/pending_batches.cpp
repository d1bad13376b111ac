#include "actors/sync/pending_batches.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/error.hpp"

#include <caf/settings.hpp>

#include <algorithm>
#include <set>

namespace ferry {

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

caf::error invalid(std::string what) {
  return caf::make_error(ec::invalid_input, std::move(what));
}

} // namespace

caf::error validate(const pending_batches_config& config) {
  if (config.timeout <= caf::timespan::zero())
    return caf::make_error(ec::invalid_configuration,
                           "batch timeout must be positive");
  return caf::none;
}

caf::expected<uint64_t>
pending_batches_state::open(std::string relay, std::vector<std::string> subs,
                            std::string payload, time_point now) {
  if (relay.empty())
    return invalid("a batch needs a relay");
  if (subs.empty())
    return invalid("a batch needs at least one subscription");
  std::set<std::string> seen;
  for (const auto& sub : subs) {
    if (!seen.insert(sub).second)
      return invalid("subscription " + sub + " appears twice in the batch");
    // A REQ that reuses an id replaces the subscription at the relay, so
    // the older batch would wait for an EOSE that never comes.
    auto i = by_subscription.find({relay, sub});
    if (i != by_subscription.end())
      return invalid("subscription " + sub + " is already in flight on " + relay
                     + " in batch " + std::to_string(i->second));
  }
  auto id = next_id++;
  auto& b = batches[id];
  b.opened = now;
  b.waiting = subs.size();
  b.info.id = id;
  b.info.relay = std::move(relay);
  b.info.payload = std::move(payload);
  b.info.opened_at = unix_now();
  for (auto& sub : subs) {
    by_subscription.emplace(std::make_pair(b.info.relay, sub), id);
    b.info.subscriptions.push_back({std::move(sub), sub_outcome::pending, {}});
  }
  ++opened;
  return id;
}

std::optional<batch_info> pending_batches_state::eose(const std::string& relay,
                                                      const std::string& sub,
                                                      time_point now) {
  return finish(relay, sub, sub_outcome::eose, {}, now);
}

std::optional<batch_info>
pending_batches_state::closed(const std::string& relay, const std::string& sub,
                              std::string reason, time_point now) {
  return finish(relay, sub, sub_outcome::closed, std::move(reason), now);
}

std::vector<batch_info>
pending_batches_state::relay_lost(const std::string& relay, time_point now) {
  std::vector<batch_info> result;
  for (auto i = batches.begin(); i != batches.end();) {
    if (i->second.info.relay != relay) {
      ++i;
      continue;
    }
    auto next = std::next(i);
    result.push_back(settle(i, sub_outcome::lost, "connection lost", now));
    ++failed_lost;
    i = next;
  }
  return result;
}

std::vector<batch_info>
pending_batches_state::listener_down(const caf::actor_addr& gone,
                                     time_point now) {
  std::vector<batch_info> result;
  for (auto i = listeners.begin(); i != listeners.end();) {
    if (i->second.address() != gone) {
      ++i;
      continue;
    }
    if (auto b = batches.find(i->first); b != batches.end()) {
      result.push_back(settle(b, sub_outcome::lost, "its tracker stopped", now));
      ++failed_lost;
    }
    i = listeners.erase(i);
  }
  monitored.erase(gone);
  return result;
}

std::optional<batch_info> pending_batches_state::expire(uint64_t id,
                                                        time_point now) {
  auto i = batches.find(id);
  if (i == batches.end())
    return std::nullopt;
  ++failed_timeout;
  return settle(i, sub_outcome::timed_out, "no EOSE in time", now);
}

std::vector<batch_info> pending_batches_state::pending(std::string_view relay,
                                                       time_point now) const {
  std::vector<batch_info> result;
  for (const auto& [id, b] : batches) {
    if (!relay.empty() && b.info.relay != relay)
      continue;
    result.push_back(b.info);
    result.back().elapsed = now - b.opened;
  }
  return result;
}

status_map pending_batches_state::status() const {
  // Relay ids may contain dots, which caf::put reads as nesting: each
  // relay's entry goes in under its id as one key.
  std::map<std::string, std::pair<int64_t, int64_t>> per_relay;
  for (const auto& [id, b] : batches) {
    auto& [open_batches, waiting] = per_relay[b.info.relay];
    ++open_batches;
    waiting += static_cast<int64_t>(b.waiting);
  }
  caf::settings relays;
  for (const auto& [relay, counts] : per_relay) {
    status_map entry;
    caf::put(entry, "batches", counts.first);
    caf::put(entry, "waiting", counts.second);
    relays.emplace(relay, caf::config_value{std::move(entry)});
  }
  status_map result;
  caf::put(result, "open.batches", static_cast<int64_t>(batches.size()));
  caf::put(result, "open.subscriptions",
           static_cast<int64_t>(by_subscription.size()));
  caf::put(result, "total.opened", static_cast<int64_t>(opened));
  caf::put(result, "total.confirmed", static_cast<int64_t>(confirmed));
  caf::put(result, "total.lost", static_cast<int64_t>(failed_lost));
  caf::put(result, "total.timed_out", static_cast<int64_t>(failed_timeout));
  caf::put(result, "total.unmatched", static_cast<int64_t>(unmatched));
  caf::put(result, "timeout", config.timeout);
  result.emplace("relays", caf::config_value{std::move(relays)});
  return result;
}

std::optional<batch_info>
pending_batches_state::finish(const std::string& relay, const std::string& sub,
                              sub_outcome outcome, std::string reason,
                              time_point now) {
  auto i = by_subscription.find({relay, sub});
  if (i == by_subscription.end()) {
    ++unmatched;
    return std::nullopt;
  }
  auto j = batches.find(i->second);
  by_subscription.erase(i);
  auto& b = j->second;
  for (auto& s : b.info.subscriptions) {
    if (s.id == sub) {
      s.outcome = outcome;
      s.reason = std::move(reason);
      break;
    }
  }
  if (--b.waiting > 0)
    return std::nullopt;
  ++confirmed;
  // Nothing is waiting any more, so the outcome passed here marks nothing.
  return settle(j, sub_outcome::pending, {}, now);
}

batch_info pending_batches_state::settle(std::map<uint64_t, batch>::iterator i,
                                         sub_outcome outcome,
                                         const std::string& reason,
                                         time_point now) {
  auto result = std::move(i->second.info);
  result.elapsed = now - i->second.opened;
  for (auto& s : result.subscriptions) {
    if (s.outcome != sub_outcome::pending)
      continue;
    by_subscription.erase({result.relay, s.id});
    s.outcome = outcome;
    s.reason = reason;
  }
  batches.erase(i);
  return result;
}

batch_listener_actor pending_batches_state::take_listener(uint64_t id) {
  auto i = listeners.find(id);
  if (i == listeners.end())
    return listener;
  auto result = std::move(i->second);
  listeners.erase(i);
  return result;
}

pending_batches_actor::behavior_type pending_batches(
  pending_batches_actor::stateful_pointer<pending_batches_state> self,
  pending_batches_config config, batch_listener_actor listener) {
  if (auto err = validate(config)) {
    self->quit(std::move(err));
    return pending_batches_actor::behavior_type::make_empty_behavior();
  }
  self->state.config = config;
  self->state.listener = std::move(listener);
  self->set_down_handler([self](const caf::down_msg& dm) {
    for (auto& b : self->state.listener_down(dm.source, self->clock().now()))
      log::debug("{}: batch {} on {} failed: its tracker stopped",
                 self->name(), b.id, b.relay);
  });
  auto tell = [self](auto what, batch_info b) {
    if (auto to = self->state.take_listener(b.id))
      self->send(to, what, std::move(b));
  };
  auto confirm = [tell](std::optional<batch_info> done) {
    if (done)
      tell(atom::confirmed_v, std::move(*done));
  };
  auto open = [self](std::string& relay, std::vector<std::string>& subs,
                     std::string& payload) -> caf::expected<uint64_t> {
    auto id = self->state.open(std::move(relay), std::move(subs),
                               std::move(payload), self->clock().now());
    if (id)
      self->delayed_send(self, self->state.config.timeout, atom::timeout_v,
                         *id);
    return id;
  };
  return {
    [open](atom::open, std::string& relay, std::vector<std::string>& subs,
           std::string& payload) -> caf::result<uint64_t> {
      auto id = open(relay, subs, payload);
      if (!id)
        return std::move(id.error());
      return *id;
    },
    [self, open](atom::open, batch_listener_actor& listener, std::string& relay,
                 std::vector<std::string>& subs,
                 std::string& payload) -> caf::result<uint64_t> {
      auto id = open(relay, subs, payload);
      if (!id)
        return std::move(id.error());
      if (listener) {
        if (self->state.monitored.insert(listener.address()).second)
          self->monitor(listener);
        self->state.listeners.emplace(*id, std::move(listener));
      }
      return *id;
    },
    [self, confirm](atom::eose, const std::string& relay,
                    const std::string& sub) {
      confirm(self->state.eose(relay, sub, self->clock().now()));
    },
    [self, confirm](atom::closed, const std::string& relay,
                    const std::string& sub, std::string& reason) {
      confirm(
        self->state.closed(relay, sub, std::move(reason), self->clock().now()));
    },
    [self, tell](atom::lost, const std::string& relay) {
      for (auto& b : self->state.relay_lost(relay, self->clock().now())) {
        log::debug("{}: batch {} on {} failed: connection lost", self->name(),
                   b.id, b.relay);
        tell(atom::failed_v, std::move(b));
      }
    },
    [self](atom::get, atom::pending, const std::string& relay) {
      return self->state.pending(relay, self->clock().now());
    },
    [self](atom::get, atom::pending) {
      return self->state.pending({}, self->clock().now());
    },
    [self](atom::get, atom::status) {
      auto result = self->state.status();
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      return result;
    },
    [self, tell](atom::timeout, uint64_t id) {
      auto b = self->state.expire(id, self->clock().now());
      if (!b)
        return;
      auto waiting = std::count_if(b->subscriptions.begin(),
                                   b->subscriptions.end(), [](const auto& s) {
                                     return s.outcome == sub_outcome::timed_out;
                                   });
      log::warn("{}: batch {} on {} timed out with {} of {} subscriptions "
                "without EOSE",
                self->name(), b->id, b->relay, waiting,
                b->subscriptions.size());
      tell(atom::failed_v, std::move(*b));
    },
  };
}

} // namespace ferry
