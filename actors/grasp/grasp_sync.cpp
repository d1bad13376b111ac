#include "actors/grasp/grasp_sync.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/pending_batches.hpp"
#include "messages/error.hpp"
#include "store/repo_sync_store.hpp"

#include <algorithm>
#include <set>

namespace ferry {

namespace {

using self_pointer = grasp_sync_actor::stateful_pointer<grasp_sync_state>;

/// Merges the sorted `xs` into the sorted, unique `into`.
void merge_sorted(std::vector<std::string>& into,
                  const std::set<std::string>& xs) {
  std::vector<std::string> merged;
  merged.reserve(into.size() + xs.size());
  std::set_union(into.begin(), into.end(), xs.begin(), xs.end(),
                 std::back_inserter(merged));
  into = std::move(merged);
}

/// Removes the `xs` from the sorted `from`.
void remove_sorted(std::vector<std::string>& from,
                   const std::set<std::string>& xs) {
  from.erase(std::remove_if(from.begin(), from.end(),
                            [&](const auto& x) { return xs.count(x) > 0; }),
             from.end());
}

grasp_driver_actor current_driver(self_pointer self) {
  return self->state.driver ? self->state.driver->get() : grasp_driver_actor{};
}

void persist(self_pointer self, const grasp::relay_sync_entry& entry) {
  if (auto err = store::put_relay_sync(*self->state.store, entry)) {
    log::error("{}: {}", self->name(), render(err));
    self->quit(std::move(err));
  }
}

/// The relay's connection ended (or was dropped) now. `last_connected`
/// stays where the last flush put it: events received since may not be
/// stored.
void mark_disconnected(self_pointer self, const std::string& url) {
  auto& st = self->state;
  st.flushes.erase(url);
  auto& entry = st.relay(url);
  if (entry.status != grasp::link_status::connected)
    return;
  entry.status = grasp::link_status::disconnected;
  entry.disconnected_at = st.config.clock();
  persist(self, entry);
}

/// Asks the connection of `url` to say when everything it received so far
/// is stored; the answer moves `last_connected` to now (see `flushed`).
void request_flush(self_pointer self, const std::string& url) {
  auto& st = self->state;
  auto driver = current_driver(self);
  auto link = st.world.links.find(url);
  if (!driver || link == st.world.links.end()
      || link->second != grasp::link_state::connected)
    return;
  auto serial = ++st.flush_serial;
  st.flushes[url] = {serial, st.config.clock()};
  self->send(driver, atom::flush_v, url, serial);
}

/// A catch-up of the relay's confirmed items is still open.
bool catching_up(const grasp_sync_state& st, const std::string& url) {
  return std::any_of(st.open.begin(), st.open.end(), [&](const auto& x) {
    return x.second.relay == url && x.second.catchup;
  });
}

/// The answer to flush `serial`: everything received before it is stored.
void flushed(self_pointer self, const std::string& url, uint64_t serial) {
  auto& st = self->state;
  auto i = st.flushes.find(url);
  if (i == st.flushes.end() || i->second.serial != serial)
    return;
  auto at = i->second.at;
  st.flushes.erase(i);
  // Invariant: last_connected moves only over what is stored: every event
  // received before the flush (the connection vouches for it) and, once a
  // catch-up has settled, everything the confirmed items had before it.
  // A lost connection or an open catch-up leaves it where it is.
  auto link = st.world.links.find(url);
  if (link == st.world.links.end()
      || link->second != grasp::link_state::connected || catching_up(st, url))
    return;
  auto& entry = st.relay(url);
  if (at <= entry.last_connected)
    return;
  entry.last_connected = at;
  persist(self, entry);
}

/// Subscriptions for one fetch: layer 1 alone (it is never consolidated),
/// layers 2 and 3 in REQs of at most `max_filters_per_subscription`. A
/// catch-up (a fetch with `since`) is split: each REQ's live tail (no
/// `since`, `limit` 0) comes first and stays, the REQ with `since` fetches
/// what is stored and closes once its batch settles. Invariant: no live
/// subscription has a `since`, so a back-dated event published later
/// always gets through.
void add_subscriptions(self_pointer self, uint64_t seq, const grasp::fetch& f,
                       std::vector<grasp::live_subscription>& out) {
  auto& st = self->state;
  auto filters = grasp::build_filters(f, st.config.plan);
  auto add = [seq, &out, catchup = f.since.has_value()](
               grasp::sub_layer layer, std::vector<nostr::filter> group) {
    auto next_id = [seq, &out] {
      return "grasp-" + std::to_string(seq) + "-"
             + std::to_string(out.size() + 1);
    };
    grasp::live_subscription sub;
    sub.layer = layer;
    if (catchup) {
      sub.id = next_id();
      sub.role = grasp::sub_role::tail;
      sub.filters = grasp::live_tail(group);
      out.push_back(sub);
      sub.role = grasp::sub_role::catchup;
    }
    sub.id = next_id();
    sub.filters = std::move(group);
    out.push_back(std::move(sub));
  };
  if (f.announcements) {
    add(grasp::sub_layer::announcements, {std::move(filters.front())});
    filters.erase(filters.begin());
  }
  for (auto& group : grasp::split_filters(std::move(filters), st.config.plan))
    add(grasp::sub_layer::tagged, std::move(group));
}

std::vector<grasp::subscription>
to_wire(const std::vector<grasp::live_subscription>& subs) {
  std::vector<grasp::subscription> result;
  for (const auto& sub : subs) {
    grasp::subscription x;
    x.id = sub.id;
    for (const auto& f : sub.filters)
      x.filters.push_back(nostr::to_json(f));
    result.push_back(std::move(x));
  }
  return result;
}

/// Merges the settled layer 2/3 subscriptions of `url` when `incoming` more
/// filters would not fit.
void consolidate_if_needed(self_pointer self, const grasp_driver_actor& driver,
                           uint64_t seq, const std::string& url,
                           size_t incoming) {
  auto& st = self->state;
  auto& subs = st.live[url];
  std::vector<grasp::live_subscription> current;
  for (const auto& [id, sub] : subs)
    current.push_back(sub);
  auto plan = grasp::consolidate(current, incoming, st.config.plan);
  if (!plan)
    return;
  ++st.consolidations;
  log::info("{}: consolidating {} subscriptions on {} into {} filters{}",
            self->name(), plan->close.size(), url, plan->open.size(),
            plan->broad ? " (broad fallback)" : "");
  if (!plan->open.empty()) {
    grasp::live_subscription merged;
    merged.id = "grasp-" + std::to_string(seq) + "-live";
    merged.layer = plan->broad ? grasp::sub_layer::broad
                               : grasp::sub_layer::tagged;
    merged.filters = std::move(plan->open);
    merged.settled = true;
    // Open the replacement first, so no live event slips between the two.
    self->send(driver, atom::subscribe_v, url, to_wire({merged}));
    subs.emplace(merged.id, std::move(merged));
  }
  for (const auto& id : plan->close)
    subs.erase(id);
  self->send(driver, atom::unsubscribe_v, url, plan->close);
}

/// Opens a batch for the fetches of `action` and hands its subscriptions to
/// the driver once PENDING BATCHES has it.
void send_fetches(self_pointer self, const grasp_driver_actor& driver,
                  const grasp::relay_action& action) {
  auto& st = self->state;
  const auto& url = action.relay;
  auto connect = action.kind == grasp::action_kind::connect;
  auto& entry = st.relay(url);
  if (action.full) {
    ++st.full_syncs;
    entry.repos.clear();
    entry.roots.clear();
    entry.full_sync_at = 0;
    entry.reconcile_at = 0;
    persist(self, entry);
    // A reconciliation on a live connection starts from a clean slate.
    if (auto i = st.live.find(url); i != st.live.end() && !i->second.empty()) {
      std::vector<std::string> ids;
      for (const auto& [id, sub] : i->second)
        ids.push_back(id);
      self->send(driver, atom::unsubscribe_v, url, std::move(ids));
      i->second.clear();
    }
  }
  auto seq = st.next_seq++;
  grasp_sync_state::open_batch batch;
  batch.relay = url;
  for (const auto& f : action.fetches)
    add_subscriptions(self, seq, f, batch.subscriptions);
  if (batch.subscriptions.empty())
    return;
  size_t incoming = 0;
  std::vector<std::string> ids;
  std::vector<nostr::filter> all;
  for (const auto& sub : batch.subscriptions) {
    if (sub.role != grasp::sub_role::catchup)
      incoming += sub.filters.size();
    else
      batch.catchup = true;
    ids.push_back(sub.id);
    all.insert(all.end(), sub.filters.begin(), sub.filters.end());
  }
  batch.items = grasp::items_of(all);
  if (!connect && !action.full)
    consolidate_if_needed(self, driver, seq, url, incoming);
  auto wire = to_wire(batch.subscriptions);
  for (const auto& sub : batch.subscriptions)
    st.live[url].emplace(sub.id, sub);
  st.open.emplace(seq, std::move(batch));
  if (connect) {
    ++st.connects;
    st.world.links[url] = grasp::link_state::connecting;
  } else {
    ++st.adds;
  }
  self
    ->request(st.batches, caf::infinite, atom::open_v, url, std::move(ids),
              std::to_string(seq))
    .then(
      [self, driver, seq, url, connect,
       wire = std::move(wire)](uint64_t id) mutable {
        auto i = self->state.open.find(seq);
        if (i == self->state.open.end())
          return;
        i->second.id = id;
        if (connect)
          self->send(driver, atom::connect_v, url, std::move(wire));
        else
          self->send(driver, atom::subscribe_v, url, std::move(wire));
      },
      [self, seq, url, connect](caf::error& err) {
        auto& st = self->state;
        log::error("{}: cannot open a batch on {}: {}", self->name(), url,
                   render(err));
        if (auto i = st.open.find(seq); i != st.open.end()) {
          for (const auto& sub : i->second.subscriptions)
            st.live[url].erase(sub.id);
          st.open.erase(i);
        }
        if (connect)
          st.world.links.erase(url);
      });
}

void execute(self_pointer self, const grasp::relay_action& action) {
  auto& st = self->state;
  const auto& url = action.relay;
  if (action.kind == grasp::action_kind::forget) {
    ++st.forgets;
    log::info("{}: forgetting {}: no repository wants it", self->name(), url);
    st.world.relays.erase(url);
    if (auto err = store::erase_relay_sync(*st.store, url)) {
      log::error("{}: {}", self->name(), render(err));
      self->quit(std::move(err));
    }
    return;
  }
  auto driver = current_driver(self);
  if (!driver)
    return;
  // Closes the relay's connection; what it confirmed stays, and its open
  // batches fail.
  auto disconnect = [&] {
    self->send(driver, atom::drop_v, url);
    st.world.links.erase(url);
    st.live.erase(url);
    mark_disconnected(self, url);
    self->send(st.batches, atom::lost_v, url);
  };
  switch (action.kind) {
    case grasp::action_kind::drop:
      ++st.drops;
      log::info("{}: dropping {}: no repository wants it", self->name(), url);
      disconnect();
      return;
    case grasp::action_kind::release:
      ++st.releases;
      log::info("{}: releasing {}: its owner is now {}", self->name(), url,
                st.owner_of(url));
      disconnect();
      return;
    case grasp::action_kind::connect:
      log::info("{}: connecting to {} ({})", self->name(), url,
                action.full ? "full sync" : "catch-up");
      send_fetches(self, driver, action);
      return;
    case grasp::action_kind::add:
      send_fetches(self, driver, action);
      return;
    case grasp::action_kind::forget:
      return;
  }
}

/// Marks the relays `config.bootstrap_relays` names as bootstrap relays
/// (creating their records) and the others as not.
void mark_bootstrap(self_pointer self) {
  auto& st = self->state;
  auto& wanted = st.config.bootstrap_relays;
  for (auto& [url, entry] : st.world.relays) {
    auto bootstrap = std::find(wanted.begin(), wanted.end(), url)
                     != wanted.end();
    if (entry.is_bootstrap != bootstrap) {
      entry.is_bootstrap = bootstrap;
      persist(self, entry);
    }
  }
  for (const auto& url : wanted) {
    auto& entry = st.relay(url);
    if (!entry.is_bootstrap) {
      entry.is_bootstrap = true;
      persist(self, entry);
    }
  }
}

/// Takes `[grasp]` as a reload left it, when it changed since the last
/// look: the plan's tunables, the tick (from the next one) and the
/// bootstrap relays (the decision connects new ones and may drop old ones).
void follow_reload(self_pointer self) {
  auto& st = self->state;
  if (!st.config.live)
    return;
  auto current = st.config.live->get();
  if (current == st.applied)
    return;
  st.applied = current;
  auto next = grasp_sync_config_from(*current);
  st.config.plan = next.plan;
  st.config.tick = next.tick;
  if (st.config.bootstrap_relays != next.bootstrap_relays) {
    log::info("{}: a reload sets {} bootstrap relay(s)", self->name(),
              next.bootstrap_relays.size());
    st.config.bootstrap_relays = std::move(next.bootstrap_relays);
    mark_bootstrap(self);
  }
}

void decide(self_pointer self) {
  auto& st = self->state;
  follow_reload(self);
  // Invariant: no decision before the SELF SUBSCRIBER's start-up rebuild is
  // complete. Until then `repo_sync` may lack what the store holds (root
  // events committed in a window that never closed), and a catch-up
  // decided on it would leave confirmed items without a live subscription.
  if (!st.rebuilt)
    return;
  ++st.decisions;
  st.refresh_pending();
  std::function<bool(const std::string&)> runs_here;
  if (!st.config.cluster_node.empty())
    runs_here = [&st](const std::string& url) { return st.runs_here(url); };
  for (const auto& action : grasp::decide(st.world, st.config.clock(),
                                          st.config.plan, runs_here))
    execute(self, action);
}

/// Confirms what the EOSEs of a settled batch cover; subscriptions that
/// ended otherwise are closed and their items fetched again later.
void settle(self_pointer self, const batch_info& info, bool confirmed) {
  auto& st = self->state;
  auto i = st.open.end();
  try {
    i = st.open.find(std::stoull(info.payload));
  } catch (const std::exception&) {
    // Not one of ours: nothing to settle.
  }
  if (i == st.open.end())
    return;
  auto batch = std::move(i->second);
  st.open.erase(i);
  if (confirmed)
    ++st.batches_confirmed;
  else
    ++st.batches_failed;
  auto now = st.config.clock();
  auto& entry = st.relay(batch.relay);
  auto& live = st.live[batch.relay];
  std::vector<std::string> to_close;
  // Confirmed: what a fetch or catch-up had EOSE for, unless one of the
  // batch's subscriptions for it failed (a catch-up without its live tail
  // leaves the item unfollowed). A tail confirms nothing by itself.
  grasp::item_set done;
  grasp::item_set failed;
  auto full_sync = false;
  for (const auto& outcome : info.subscriptions) {
    auto sub = std::find_if(batch.subscriptions.begin(),
                            batch.subscriptions.end(),
                            [&](const auto& x) { return x.id == outcome.id; });
    if (sub == batch.subscriptions.end())
      continue;
    auto items = grasp::items_of(sub->filters);
    if (sub->role == grasp::sub_role::catchup) {
      // Its `since` would hide back-dated arrivals: the tail follows live.
      if (outcome.outcome != sub_outcome::lost)
        to_close.push_back(outcome.id);
      live.erase(outcome.id);
    }
    if (outcome.outcome != sub_outcome::eose) {
      if (outcome.outcome != sub_outcome::lost)
        log::warn("{}: subscription {} on {} ended without EOSE ({}): {}",
                  self->name(), outcome.id, batch.relay,
                  to_string(outcome.outcome), outcome.reason);
      if (outcome.outcome == sub_outcome::timed_out
          && sub->role != grasp::sub_role::catchup)
        to_close.push_back(outcome.id);
      live.erase(outcome.id);
      // A lost connection keeps what was confirmed: the next one catches
      // up from last_connected, which did not move.
      if (outcome.outcome != sub_outcome::lost) {
        failed.repos.insert(items.repos.begin(), items.repos.end());
        failed.roots.insert(items.roots.begin(), items.roots.end());
        failed.announcements |= items.announcements;
      }
      continue;
    }
    if (sub->role == grasp::sub_role::tail) {
      if (auto j = live.find(outcome.id); j != live.end())
        j->second.settled = true;
      continue;
    }
    done.repos.insert(items.repos.begin(), items.repos.end());
    done.roots.insert(items.roots.begin(), items.roots.end());
    if (items.announcements && sub->role == grasp::sub_role::fetch)
      full_sync = true;
    if (auto j = live.find(outcome.id); j != live.end())
      j->second.settled = true;
  }
  // Failed on a live connection: fetched afresh by the next decision.
  for (const auto& x : failed.repos)
    done.repos.erase(x);
  for (const auto& x : failed.roots)
    done.roots.erase(x);
  remove_sorted(entry.repos, failed.repos);
  remove_sorted(entry.roots, failed.roots);
  if (failed.announcements)
    entry.full_sync_at = 0;
  merge_sorted(entry.repos, done.repos);
  merge_sorted(entry.roots, done.roots);
  if (full_sync) {
    entry.full_sync_at = now;
    entry.reconcile_at = grasp::next_reconcile_at(now, st.random(),
                                                  st.config.plan);
  }
  persist(self, entry);
  if (!to_close.empty())
    if (auto driver = current_driver(self))
      self->send(driver, atom::unsubscribe_v, batch.relay, std::move(to_close));
  // A batch that timed out on a live connection is asked for again at once
  // (the timeout paces it); a lost relay waits for the next tick.
  auto link = st.world.links.find(batch.relay);
  auto connected = link != st.world.links.end()
                   && link->second == grasp::link_state::connected;
  if (confirmed)
    request_flush(self, batch.relay);
  else if (connected)
    decide(self);
}

/// Reads both indexes; a relay still marked connected was left when the
/// node stopped. @returns false when the store failed (the actor quit).
bool load(self_pointer self) {
  auto& st = self->state;
  auto repos = store::list_repo_sync(*st.store);
  auto relays = repos ? store::list_relay_sync(*st.store)
                      : caf::expected<std::vector<grasp::relay_sync_entry>>{
                        repos.error()};
  if (!relays) {
    log::error("{}: {}", self->name(), render(relays.error()));
    self->quit(relays.error());
    return false;
  }
  for (auto& entry : *repos)
    st.world.wanted.emplace(entry.address, std::move(entry));
  for (auto& entry : *relays) {
    auto changed = false;
    // Still "connected" means the node stopped without closing it: it was
    // last seen connected at last_connected.
    if (entry.status == grasp::link_status::connected) {
      entry.status = grasp::link_status::disconnected;
      entry.disconnected_at = entry.last_connected;
      changed = true;
    }
    if (changed)
      persist(self, entry);
    auto url = entry.url;
    st.world.relays.emplace(std::move(url), std::move(entry));
  }
  mark_bootstrap(self);
  return true;
}

/// The SELF SUBSCRIBER's start-up rebuild is complete: `repo_sync` is read
/// again whole (a `changed` sent while this actor restarted is lost), and
/// decisions may start.
void on_rebuilt(self_pointer self) {
  auto& st = self->state;
  auto repos = store::list_repo_sync(*st.store);
  if (!repos) {
    log::error("{}: {}", self->name(), render(repos.error()));
    self->quit(repos.error());
    return;
  }
  st.world.wanted.clear();
  for (auto& entry : *repos)
    st.world.wanted.emplace(entry.address, std::move(entry));
  if (!st.rebuilt)
    log::info("{}: repo_sync is rebuilt ({} repositories); deciding",
              self->name(), st.world.wanted.size());
  st.rebuilt = true;
  decide(self);
}

} // namespace

grasp_sync_config grasp_sync_config_from(const config::grasp_config& cfg) {
  grasp_sync_config result;
  result.plan.resync_after = cfg.resync_after;
  result.plan.overlap = cfg.overlap_window;
  result.plan.reconcile_min = cfg.reconcile_min;
  result.plan.reconcile_max = cfg.reconcile_max;
  result.plan.group_size = cfg.group_size;
  result.plan.max_filters_per_subscription = cfg.max_filters_per_subscription;
  result.plan.max_filters_per_relay = cfg.max_filters_per_relay;
  result.bootstrap_relays = cfg.bootstrap_relays;
  result.tick = cfg.tick;
  result.batch_timeout = cfg.batch_timeout;
  return result;
}

grasp_sync_actor::behavior_type
grasp_sync(grasp_sync_actor::stateful_pointer<grasp_sync_state> self,
           store::event_store* store,
           handle_slot_ptr<grasp_driver_actor> driver,
           handle_slot_ptr<self_subscriber_actor> rebuilder,
           grasp_sync_config config) {
  auto& st = self->state;
  st.store = store;
  st.driver = std::move(driver);
  st.config = std::move(config);
  st.random.seed(st.config.seed != 0 ? st.config.seed
                                     : std::random_device{}());
  pending_batches_config batches_config;
  batches_config.timeout = st.config.batch_timeout;
  if (auto err = validate(batches_config)) {
    self->quit(std::move(err));
    return grasp_sync_actor::behavior_type::make_empty_behavior();
  }
  if (!load(self))
    return grasp_sync_actor::behavior_type::make_empty_behavior();
  st.batches = self->spawn<caf::linked>(
    pending_batches, batches_config, caf::actor_cast<batch_listener_actor>(self));
  // A restart finds the SELF SUBSCRIBER running: it answers once its
  // rebuild is complete (at once when it is). At node start it is not
  // running yet and says `rebuild done` when it is through.
  if (auto subscriber = rebuilder ? rebuilder->get() : self_subscriber_actor{})
    self->request(subscriber, caf::infinite, atom::get_v, atom::rebuild_v)
      .then([self](bool done) {
              if (done)
                on_rebuilt(self);
            },
            [](caf::error&) {
              // It went down: its next incarnation says `rebuild done`.
            });
  self->send(self, atom::tick_v);
  return {
    [self](atom::rebuild, atom::done) { on_rebuilt(self); },
    [self](atom::members, std::vector<std::string>& live) {
      auto& st = self->state;
      if (st.config.cluster_node.empty()
          || (st.live_members && *st.live_members == live))
        return;
      std::string names;
      for (const auto& name : live)
        names += (names.empty() ? "" : ", ") + name;
      log::info("{}: live cluster members {}: running the relays {} owns",
                self->name(), names.empty() ? "(none)" : names,
                st.config.cluster_node);
      st.live_members = std::move(live);
      decide(self);
    },
    [self](atom::done, const std::string& url, uint64_t serial) {
      flushed(self, url, serial);
    },
    [self](atom::changed, const std::vector<std::string>& addresses) {
      auto& st = self->state;
      for (const auto& address : addresses) {
        auto entry = store::get_repo_sync(*st.store, address);
        if (!entry) {
          log::error("{}: {}", self->name(), render(entry.error()));
          self->quit(entry.error());
          return;
        }
        if (*entry)
          st.world.wanted.insert_or_assign(address, std::move(**entry));
        else
          st.world.wanted.erase(address);
      }
      decide(self);
    },
    [self](atom::connected, const std::string& url) {
      auto& st = self->state;
      auto link = st.world.links.find(url);
      if (link == st.world.links.end()) {
        // A connection we no longer want (dropped meanwhile).
        if (auto driver = current_driver(self))
          self->send(driver, atom::drop_v, url);
        return;
      }
      link->second = grasp::link_state::connected;
      // last_connected waits for a flush: nothing is stored yet.
      auto& entry = st.relay(url);
      entry.status = grasp::link_status::connected;
      persist(self, entry);
      log::info("{}: connected to {}", self->name(), url);
      decide(self);
    },
    [self](atom::lost, const std::string& url, const std::string& reason) {
      auto& st = self->state;
      if (st.world.links.erase(url) == 0)
        return;
      log::warn("{}: lost {}: {}", self->name(), url, reason);
      st.flushes.erase(url);
      st.live.erase(url);
      mark_disconnected(self, url);
      // Its open batches fail; the next tick reconnects (the driver waits
      // out the relay's backoff), so a relay that fails at once is not
      // hammered.
      self->send(st.batches, atom::lost_v, url);
    },
    [self](atom::eose, const std::string& url, const std::string& sub) {
      self->send(self->state.batches, atom::eose_v, url, sub);
    },
    [self](atom::closed, const std::string& url, const std::string& sub,
           const std::string& message) {
      self->send(self->state.batches, atom::closed_v, url, sub, message);
    },
    [self](atom::confirmed, const batch_info& info) {
      settle(self, info, true);
    },
    [self](atom::failed, const batch_info& info) {
      settle(self, info, false);
    },
    [self](atom::tick) {
      auto& st = self->state;
      // Keeps last_connected current, so a node that stops without closing
      // its connections catches up from about now.
      for (const auto& [url, link] : st.world.links)
        if (link == grasp::link_state::connected)
          request_flush(self, url);
      decide(self);
      self->delayed_send(self, st.config.tick, atom::tick_v);
    },
    [self](atom::get, atom::connected) {
      std::vector<std::string> urls;
      for (const auto& [url, link] : self->state.world.links)
        if (link == grasp::link_state::connected)
          urls.push_back(url);
      return urls;
    },
    [self](atom::get, atom::repos) {
      self->state.refresh_pending();
      return self->state.repos_json();
    },
    [self](atom::get, atom::repo,
           const std::string& address) -> caf::result<std::string> {
      self->state.refresh_pending();
      auto text = self->state.repo_json(address);
      if (text.empty())
        return caf::make_error(ec::not_found,
                               "no repository " + address
                                 + " is synced here (its announcement must "
                                   "list this service)");
      return text;
    },
    [self](atom::get, atom::status) {
      auto result = self->state.status();
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      return result;
    },
  };
}

} // namespace ferry
