#include "actors/relay/hub.hpp"

#include <caf/send.hpp>

namespace ferry {

void hub_state::fan_out(const ingest_item_ptr& item) {
  ++published;
  const auto& ev = item->data.ev;
  subscriptions.match(ev, [&](caf::actor_id session, std::vector<std::string> sub_ids) {
    auto i = sessions.find(session);
    if (i == sessions.end())
      return;
    ++delivered;
    caf::anon_send(i->second, atom::publish_v, item, std::move(sub_ids));
  });
  for (auto& [id, entry] : feeds)
    if (nostr::matches_any(*entry.filters, ev))
      caf::anon_send(entry.handle, atom::feed_v, item);
}

hub_actor::behavior_type hub(hub_actor::stateful_pointer<hub_state> self) {
  self->set_down_handler([self](const caf::down_msg& msg) {
    auto& st = self->state;
    if (st.sessions.erase(msg.source.id()) > 0)
      st.subscriptions.remove_session(msg.source.id());
    st.feeds.erase(msg.source.id());
  });
  return {
    [self](atom::publish, const ingest_batch& committed) {
      for (const auto& item : committed)
        self->state.fan_out(item);
    },
    [self](atom::subscribe, const client_session_actor& session,
           std::string& sub_id, filter_set_ptr& filters) {
      auto& st = self->state;
      if (st.sessions.emplace(session.id(), session).second)
        self->monitor(session);
      st.subscriptions.add(session.id(), sub_id, std::move(filters));
    },
    [self](atom::unsubscribe, const client_session_actor& session,
           const std::string& sub_id) {
      self->state.subscriptions.remove(session.id(), sub_id);
    },
    [self](atom::unsubscribe, const client_session_actor& session) {
      auto& st = self->state;
      if (st.sessions.erase(session.id()) == 0)
        return;
      st.subscriptions.remove_session(session.id());
      self->demonitor(session.address());
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
      return static_cast<uint64_t>(self->state.subscriptions.size());
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "sessions", static_cast<int64_t>(st.sessions.size()));
      caf::put(result, "subscriptions",
               static_cast<int64_t>(st.subscriptions.size()));
      caf::put(result, "feeds", static_cast<int64_t>(st.feeds.size()));
      caf::put(result, "published", static_cast<int64_t>(st.published));
      caf::put(result, "delivered", static_cast<int64_t>(st.delivered));
      return result;
    },
  };
}

} // namespace ferry
