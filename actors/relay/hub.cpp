#include "actors/relay/hub.hpp"

#include <caf/send.hpp>

namespace ferry {

void hub_state::fan_out(const ingest_item_ptr& item) {
  ++published;
  const auto& ev = item->data.ev;
  std::vector<std::string> matched;
  for (auto& [id, entry] : sessions) {
    for (auto& [sub_id, filters] : entry.subscriptions)
      if (nostr::matches_any(*filters, ev))
        matched.push_back(sub_id);
    if (!matched.empty()) {
      ++delivered;
      caf::anon_send(entry.handle, atom::publish_v, item, std::move(matched));
      matched = {};
    }
  }
  for (auto& [id, entry] : feeds)
    if (nostr::matches_any(*entry.filters, ev))
      caf::anon_send(entry.handle, atom::feed_v, item);
}

hub_actor::behavior_type hub(hub_actor::stateful_pointer<hub_state> self) {
  self->set_down_handler([self](const caf::down_msg& msg) {
    auto& st = self->state;
    auto i = st.sessions.find(msg.source.id());
    if (i != st.sessions.end()) {
      st.subscription_count -= i->second.subscriptions.size();
      st.sessions.erase(i);
    }
    st.feeds.erase(msg.source.id());
  });
  return {
    [self](atom::publish, const ingest_item_ptr& item) {
      self->state.fan_out(item);
    },
    [self](atom::subscribe, const client_session_actor& session,
           std::string& sub_id, filter_set_ptr& filters) {
      auto& st = self->state;
      auto [i, added] = st.sessions.try_emplace(session.id());
      if (added) {
        i->second.handle = session;
        self->monitor(session);
      }
      auto [j, fresh] = i->second.subscriptions.insert_or_assign(
        std::move(sub_id), std::move(filters));
      if (fresh)
        ++st.subscription_count;
    },
    [self](atom::unsubscribe, const client_session_actor& session,
           const std::string& sub_id) {
      auto& st = self->state;
      auto i = st.sessions.find(session.id());
      if (i != st.sessions.end() && i->second.subscriptions.erase(sub_id) > 0)
        --st.subscription_count;
    },
    [self](atom::unsubscribe, const client_session_actor& session) {
      auto& st = self->state;
      auto i = st.sessions.find(session.id());
      if (i == st.sessions.end())
        return;
      st.subscription_count -= i->second.subscriptions.size();
      self->demonitor(session.address());
      st.sessions.erase(i);
    },
    [self](atom::subscribe, atom::feed, const feed_listener_actor& listener,
           filter_set_ptr& filters) {
      auto& st = self->state;
      auto [i, added] = st.feeds.try_emplace(listener.id());
      if (added) {
        i->second.handle = listener;
        // A session and a feed listener are never the same actor, so one
        // monitor per listener is enough.
        self->monitor(listener);
      }
      i->second.filters = std::move(filters);
    },
    [self](atom::unsubscribe, atom::feed, const feed_listener_actor& listener) {
      auto& st = self->state;
      if (st.feeds.erase(listener.id()) > 0)
        self->demonitor(listener.address());
    },
    [self](atom::get, atom::count) -> uint64_t {
      return self->state.subscription_count;
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "sessions", static_cast<int64_t>(st.sessions.size()));
      caf::put(result, "subscriptions",
               static_cast<int64_t>(st.subscription_count));
      caf::put(result, "feeds", static_cast<int64_t>(st.feeds.size()));
      caf::put(result, "published", static_cast<int64_t>(st.published));
      caf::put(result, "delivered", static_cast<int64_t>(st.delivered));
      return result;
    },
  };
}

} // namespace ferry
