#include "actors/sync/relay_driven.hpp"

#include "actors/sync/relay_connection_context.hpp"
#include "messages/nostr/wire.hpp"

#include <algorithm>

namespace ferry::relay_conn {

namespace {

/// Sends one REQ GRASP SYNC asked for.
void send_driven(self_pointer self, const grasp::subscription& wanted) {
  auto& st = self->state;
  std::vector<nostr::filter> filters;
  for (const auto& text : wanted.filters) {
    nostr::filter f;
    if (auto why = nostr::parse_filter(std::string_view{text}, f); !why.empty())
      return tell_listener(self, atom::closed_v, st.def.url, wanted.id,
                           "error: invalid filter: " + why);
    filters.push_back(std::move(f));
  }
  std::vector<nostr::filter> check = filters;
  for (auto& f : check) {
    f.since.reset();
    f.until.reset();
    f.limit.reset();
  }
  subscribe(self, wanted.id, std::move(filters), std::nullopt);
  auto& sub = st.reqs.open[wanted.id];
  sub.driven = true;
  sub.check = std::move(check);
}

} // namespace

bool driven(const relay_connection_state& st) {
  return static_cast<bool>(st.deps.driver_listener);
}

void on_driven_connected(self_pointer self) {
  auto& st = self->state;
  st.state = phase::live;
  st.driven.reported_live = false;
  tell_listener(self, atom::connected_v, st.def.url);
  auto queued = std::move(st.driven.queued);
  st.driven.queued.clear();
  for (const auto& wanted : queued)
    send_driven(self, wanted);
  open_driven_deletion_tail(self);
  on_driven_eose_stored(self);
}

void on_driven_eose_stored(self_pointer self) {
  auto& st = self->state;
  if (st.driven.reported_live || st.state != phase::live)
    return;
  for (const auto& [id, sub] : st.reqs.open)
    if (sub.driven && !sub.eose)
      return;
  for (const auto& barrier : st.cursor.barriers)
    if (!barrier.sub.empty())
      return;
  st.driven.reported_live = true;
  report(self, atom::report_v, atom::live_v, st.def.id);
}

void on_driven_subscribe(self_pointer self,
                         std::vector<grasp::subscription>& wanted) {
  auto& st = self->state;
  if (st.state == phase::live) {
    for (const auto& sub : wanted)
      send_driven(self, sub);
    return;
  }
  auto& queued = st.driven.queued;
  queued.insert(queued.end(), wanted.begin(), wanted.end());
  if (st.state == phase::idle)
    begin(self);
}

void on_driven_unsubscribe(self_pointer self,
                           const std::vector<std::string>& ids) {
  auto& st = self->state;
  auto& queued = st.driven.queued;
  for (const auto& id : ids) {
    if (st.reqs.open.erase(id) > 0) {
      std::string close = "[\"CLOSE\",";
      nostr::append_json_string(close, id);
      send_frame(self, close + "]");
    }
    queued.erase(std::remove_if(queued.begin(), queued.end(),
                                [&](const auto& q) { return q.id == id; }),
                 queued.end());
  }
}

void on_driven_flush(self_pointer self, uint64_t serial) {
  // Only a live connection can vouch for what it received.
  if (self->state.state == phase::live)
    add_barrier(self, {}, serial);
}

} // namespace ferry::relay_conn
