#include "actors/grasp/self_subscriber.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "store/repo_sync_store.hpp"

#include <caf/send.hpp>

#include <algorithm>
#include <limits>

namespace ferry {

namespace {

using self_pointer
  = self_subscriber_actor::stateful_pointer<self_subscriber_state>;

/// Inserts `x` into the sorted, unique `xs`. @returns true when it was new.
bool insert_sorted(std::vector<std::string>& xs, std::string x) {
  auto i = std::lower_bound(xs.begin(), xs.end(), x);
  if (i != xs.end() && *i == x)
    return false;
  xs.insert(i, std::move(x));
  return true;
}

/// What the feed selects: announcements and root events.
/// NIP-09 deletion requests.
constexpr uint32_t kind_deletion = 5;

filter_set_ptr feed_filters() {
  nostr::filter f;
  f.kinds = std::vector<uint32_t>{grasp::kind_announcement, kind_deletion};
  f.kinds->insert(f.kinds->end(), grasp::root_kinds.begin(),
                  grasp::root_kinds.end());
  std::sort(f.kinds->begin(), f.kinds->end());
  return std::make_shared<std::vector<nostr::filter>>(
    std::vector<nostr::filter>{std::move(f)});
}

/// Quits with `err` when it is an error.
bool failed(self_pointer self, caf::error err) {
  if (!err)
    return false;
  log::error("{}: {}", self->name(), render(err));
  self->quit(std::move(err));
  return true;
}

/// Handles the events of the window that just closed.
void close_window(self_pointer self) {
  auto& st = self->state;
  auto items = std::move(st.window);
  st.window.clear();
  if (items.empty())
    return;
  ++st.windows;
  // Announcements first, oldest first, so root events of the same window
  // find their repository and the newest version wins.
  std::stable_sort(items.begin(), items.end(), [](const auto& x, const auto& y) {
    auto xa = x->data.ev.kind == grasp::kind_announcement;
    auto ya = y->data.ev.kind == grasp::kind_announcement;
    if (xa != ya)
      return xa;
    return x->data.ev.created_at < y->data.ev.created_at;
  });
  std::set<std::string> changed;
  for (const auto& item : items) {
    const auto& ev = item->data.ev;
    if (ev.kind == grasp::kind_announcement) {
      if (st.rebuilding)
        st.rebuild_seen.insert(grasp::address_of(ev));
      if (st.apply_announcement(ev))
        changed.insert(grasp::address_of(ev));
    } else if (grasp::is_root_kind(ev.kind)) {
      for (auto& address : st.apply_root(ev))
        changed.insert(std::move(address));
    } else if (ev.kind == kind_deletion) {
      for (auto& address : st.apply_deletion(ev))
        changed.insert(std::move(address));
    }
  }
  failed(self, st.commit(std::move(changed)));
}

/// One step of the start-up rebuild: a slice of the stored announcements,
/// newest first.
void rebuild_step(self_pointer self) {
  auto& st = self->state;
  nostr::filter f;
  f.kinds = std::vector<uint32_t>{grasp::kind_announcement};
  std::set<std::string> changed;
  std::optional<store::scan_position> last;
  auto more = st.store->scan(
    f, unix_now(), st.rebuild_from, st.config.rebuild_slice,
    [&](std::string_view json, const store::scan_position& pos) {
      last = pos;
      nostr::event ev;
      if (!nostr::parse_event(json, ev).empty())
        return true;
      auto address = grasp::address_of(ev);
      st.rebuild_seen.insert(address);
      if (st.apply_announcement(ev))
        changed.insert(address);
      // A crash between a commit and the end of its window loses root
      // events; the store still has them.
      if (auto i = st.repos.find(address); i != st.repos.end()) {
        auto before = i->second.roots.size();
        st.add_stored_roots(i->second);
        if (i->second.roots.size() != before)
          changed.insert(address);
      }
      return true;
    });
  if (last)
    st.rebuild_from = last;
  if (!more) {
    for (auto i = st.repos.begin(); i != st.repos.end();) {
      if (st.rebuild_seen.count(i->first) > 0) {
        ++i;
        continue;
      }
      log::info("{}: {} is no longer announced here; not syncing it",
                self->name(), i->first);
      changed.insert(i->first);
      ++st.repos_removed;
      i = st.repos.erase(i);
    }
    st.rebuilding = false;
    st.rebuild_seen.clear();
    log::info("{}: rebuilt from the store: {} repositories listing this "
              "service",
              self->name(), st.repos.size());
  }
  if (failed(self, st.commit(std::move(changed))))
    return;
  if (more)
    return self->send(self, atom::rebuild_v);
  // GRASP SYNC decides nothing before this (see grasp_sync.cpp, decide).
  if (auto handle = st.listener ? st.listener->get() : grasp_listener_actor{})
    caf::anon_send(handle, atom::rebuild_v, atom::done_v);
  for (auto& promise : st.waiting_for_rebuild)
    promise.deliver(true);
  st.waiting_for_rebuild.clear();
}

/// How long the start-up waits for a hub that is not running yet.
constexpr auto hub_wait_interval = std::chrono::milliseconds{10};
constexpr uint32_t max_hub_waits = 500;

/// Subscribes to the hub's feed, then rebuilds from the store: in that
/// order, so nothing stored meanwhile falls between the two.
void follow_hub(self_subscriber_actor::stateful_pointer<self_subscriber_state> self) {
  auto& st = self->state;
  auto hub_handle = st.hub ? st.hub->get() : hub_actor{};
  if (!hub_handle) {
    if (++st.hub_waits > max_hub_waits) {
      auto failure = caf::make_error(ec::not_found, "the hub is not running");
      log::error("{}: {}", self->name(), render(failure));
      self->quit(std::move(failure));
      return;
    }
    self->delayed_send(self, hub_wait_interval, atom::subscribe_v);
    return;
  }
  // Without the hub there is no feed: quit, and the restart subscribes to
  // the next hub and rebuilds what passed meanwhile.
  self->monitor(hub_handle);
  self->set_down_handler([self](const caf::down_msg&) {
    log::warn("{}: the hub went down; restarting to follow the next one",
              self->name());
    self->quit(caf::make_error(ec::not_found, "the hub went down"));
  });
  self->send(hub_handle, atom::subscribe_v, atom::feed_v,
             caf::actor_cast<feed_listener_actor>(self), feed_filters());
  self->send(self, atom::rebuild_v);
}

} // namespace

bool self_subscriber_state::apply_announcement(const nostr::event& ev) {
  ++announcements;
  auto address = grasp::address_of(ev);
  auto id = nostr::to_hex(ev.id);
  auto i = repos.find(address);
  if (i != repos.end()) {
    const auto& held = i->second;
    // NIP-01: the newest version wins; on a tie, the lowest id.
    if (held.announcement_created_at > ev.created_at
        || (held.announcement_created_at == ev.created_at
            && held.announcement_id <= id))
      return false;
  }
  auto relays = grasp::announced_relays(ev);
  auto ours = std::any_of(relays.begin(), relays.end(),
                          [this](const std::string& url) {
                            return grasp::is_service(config.service, url);
                          });
  if (!ours) {
    ++not_ours;
    if (i == repos.end())
      return false;
    log::info("{}: {} no longer lists this service; not syncing it", name,
              address);
    repos.erase(i);
    ++repos_removed;
    return true;
  }
  relays.erase(std::remove_if(relays.begin(), relays.end(),
                              [this](const std::string& url) {
                                return grasp::is_service(config.service, url);
                              }),
               relays.end());
  if (i == repos.end()) {
    grasp::repo_sync_entry entry;
    entry.address = address;
    entry.relays = std::move(relays);
    entry.announcement_id = std::move(id);
    entry.announcement_created_at = ev.created_at;
    add_stored_roots(entry);
    log::info("{}: syncing {} from {} relays", name, address,
              entry.relays.size());
    repos.emplace(address, std::move(entry));
    ++repos_added;
    return true;
  }
  auto& entry = i->second;
  if (entry.relays != relays)
    log::info("{}: {} now lists {} relays", name, address, relays.size());
  entry.relays = std::move(relays);
  entry.announcement_id = std::move(id);
  entry.announcement_created_at = ev.created_at;
  ++repos_updated;
  return true;
}

std::vector<std::string>
self_subscriber_state::apply_deletion(const nostr::event& ev) {
  std::set<std::string> named;
  for (auto value : nostr::tag_values(ev, "a"))
    if (repos.count(std::string{value}) > 0)
      named.emplace(value);
  for (auto value : nostr::tag_values(ev, "e"))
    for (const auto& [address, entry] : repos)
      if (entry.announcement_id == value)
        named.insert(address);
  std::vector<std::string> changed;
  for (const auto& address : named) {
    // "30617:" + 64 hex + ":" + d, checked when the repository was added.
    nostr::filter f;
    f.kinds = std::vector<uint32_t>{grasp::kind_announcement};
    nostr::bytes32 author;
    if (!nostr::from_hex(std::string_view{address}.substr(6, 64), author))
      continue;
    f.authors = std::vector<nostr::bytes32>{author};
    f.tags.push_back(nostr::tag_condition{'d', {address.substr(71)}});
    bool still_announced = false;
    store->scan(f, unix_now(), std::nullopt, 1,
                [&](std::string_view, const store::scan_position&) {
                  still_announced = true;
                  return false;
                });
    if (still_announced)
      continue;
    log::info("{}: the announcement of {} was deleted; not syncing it", name,
              address);
    repos.erase(address);
    ++repos_removed;
    changed.push_back(address);
  }
  return changed;
}

std::vector<std::string>
self_subscriber_state::apply_root(const nostr::event& ev) {
  std::vector<std::string> changed;
  auto id = nostr::to_hex(ev.id);
  for (auto value : nostr::tag_values(ev, "a")) {
    auto i = repos.find(std::string{value});
    if (i == repos.end())
      continue;
    if (insert_sorted(i->second.roots, id)) {
      ++roots_added;
      changed.push_back(i->first);
    }
  }
  return changed;
}

void self_subscriber_state::add_stored_roots(
  grasp::repo_sync_entry& entry) const {
  nostr::filter f;
  f.kinds = std::vector<uint32_t>(grasp::root_kinds.begin(),
                                  grasp::root_kinds.end());
  std::sort(f.kinds->begin(), f.kinds->end());
  f.tags.push_back({'a', {entry.address}});
  store->scan(f, unix_now(), std::nullopt, std::numeric_limits<size_t>::max(),
              [&entry](std::string_view, const store::scan_position& pos) {
                insert_sorted(entry.roots, nostr::to_hex(pos.id));
                return true;
              });
}

caf::error self_subscriber_state::commit(std::set<std::string> addresses) {
  if (addresses.empty())
    return caf::none;
  std::vector<grasp::repo_sync_entry> upserts;
  std::vector<std::string> erasures;
  for (const auto& address : addresses) {
    auto i = repos.find(address);
    if (i == repos.end())
      erasures.push_back(address);
    else
      upserts.push_back(i->second);
  }
  if (auto err = store::write_repo_sync(*store, upserts, erasures))
    return err;
  if (auto handle = listener ? listener->get() : grasp_listener_actor{})
    caf::anon_send(handle, atom::changed_v,
                   std::vector<std::string>(addresses.begin(),
                                            addresses.end()));
  return caf::none;
}

caf::timespan self_subscriber_state::batch_window() const {
  if (config.live)
    return config.live->get()->batch_window;
  return config.batch_window;
}

status_map self_subscriber_state::status() const {
  status_map result;
  caf::put(result, "repos", static_cast<int64_t>(repos.size()));
  caf::put(result, "rebuilding", rebuilding);
  caf::put(result, "window", static_cast<int64_t>(window.size()));
  caf::put(result, "batch_window", batch_window());
  caf::put(result, "service.domain", config.service.domain);
  caf::put(result, "service.url", config.service.url);
  caf::put(result, "total.events", static_cast<int64_t>(events));
  caf::put(result, "total.windows", static_cast<int64_t>(windows));
  caf::put(result, "total.announcements", static_cast<int64_t>(announcements));
  caf::put(result, "total.not_ours", static_cast<int64_t>(not_ours));
  caf::put(result, "total.roots_added", static_cast<int64_t>(roots_added));
  caf::put(result, "total.repos_added", static_cast<int64_t>(repos_added));
  caf::put(result, "total.repos_updated", static_cast<int64_t>(repos_updated));
  caf::put(result, "total.repos_removed", static_cast<int64_t>(repos_removed));
  return result;
}

self_subscriber_actor::behavior_type
self_subscriber(self_subscriber_actor::stateful_pointer<self_subscriber_state> self,
                store::event_store* store, handle_slot_ptr<hub_actor> hub,
                handle_slot_ptr<grasp_listener_actor> listener,
                self_subscriber_config config) {
  auto& st = self->state;
  st.store = store;
  st.hub = std::move(hub);
  st.listener = std::move(listener);
  st.config = std::move(config);
  auto stored = store::list_repo_sync(*st.store);
  if (!stored) {
    log::error("{}: {}", self->name(), render(stored.error()));
    self->quit(stored.error());
    return self_subscriber_actor::behavior_type::make_empty_behavior();
  }
  for (auto& entry : *stored)
    st.repos.emplace(entry.address, std::move(entry));
  self->send(self, atom::subscribe_v);
  return {
    [self](atom::subscribe) { follow_hub(self); },
    [self](atom::feed, const ingest_item_ptr& item) {
      auto& st = self->state;
      ++st.events;
      if (st.window.empty())
        self->delayed_send(self, st.batch_window(), atom::flush_v);
      st.window.push_back(item);
      if (st.window.size() >= st.config.max_batch)
        close_window(self);
    },
    [self](atom::flush) { close_window(self); },
    [self](atom::rebuild) { rebuild_step(self); },
    [self](atom::get, atom::rebuild) -> caf::result<bool> {
      auto& st = self->state;
      if (!st.rebuilding)
        return true;
      st.waiting_for_rebuild.push_back(self->make_response_promise<bool>());
      return st.waiting_for_rebuild.back();
    },
    [self](atom::get, atom::status) {
      auto result = self->state.status();
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      return result;
    },
  };
}

} // namespace ferry
