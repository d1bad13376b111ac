#include "messages/error.hpp"
#include "actors/writer.hpp"

#include "actors/logging.hpp"

#include <caf/send.hpp>

#include <chrono>

namespace ferry {

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

ingest_status to_ingest_status(store::write_outcome x) {
  switch (x) {
    case store::write_outcome::stored:
      return ingest_status::stored;
    case store::write_outcome::ephemeral:
      return ingest_status::ephemeral;
    case store::write_outcome::duplicate:
      return ingest_status::duplicate;
    case store::write_outcome::refused:
      break;
  }
  return ingest_status::refused;
}

} // namespace

void writer_state::commit() {
  if (pending.empty())
    return;
  std::vector<const store::incoming_event*> events;
  events.reserve(pending.size());
  for (auto& [item, promise] : pending)
    events.push_back(&item->data);
  auto results = store->write(events, unix_now());
  ++batches;
  if (!results) {
    ++failed_batches;
    auto text = "error: could not store the event: " + render(results.error());
    log::error("writer failed to commit {} events: {}", pending.size(), text);
    for (auto& [item, promise] : pending)
      promise.deliver(ingest_result{ingest_status::error, text});
    pending.clear();
    return;
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    auto& [item, promise] = pending[i];
    auto& r = (*results)[i];
    auto status = to_ingest_status(r.outcome);
    if (status == ingest_status::stored || status == ingest_status::ephemeral) {
      ++committed;
      if (hub)
        caf::anon_send(hub, atom::publish_v, item);
    }
    promise.deliver(ingest_result{status, std::move(r.message)});
  }
  pending.clear();
}

writer_actor::behavior_type
writer(writer_actor::stateful_pointer<writer_state> self,
       store::event_store* store, hub_actor hub, writer_config config) {
  auto& st = self->state;
  st.store = store;
  st.hub = std::move(hub);
  st.config = config;
  st.pending.reserve(config.batch_max);
  if (config.purge_interval.count() > 0)
    self->delayed_send(self, config.purge_interval, atom::purge_v);
  return {
    [self](atom::write, ingest_item_ptr& item) -> caf::result<ingest_result> {
      auto& st = self->state;
      auto promise = self->make_response_promise<ingest_result>();
      st.pending.emplace_back(std::move(item), promise);
      if (st.pending.size() >= st.config.batch_max) {
        st.commit();
      } else if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        self->send(self, atom::flush_v);
      }
      return promise;
    },
    [self](atom::flush) {
      self->state.flush_scheduled = false;
      self->state.commit();
    },
    [self](atom::purge) {
      auto& st = self->state;
      st.commit();
      if (auto n = st.store->purge_expired(unix_now())) {
        st.purged += *n;
        if (*n > 0)
          log::info("writer purged {} expired events", *n);
      } else {
        log::error("writer could not purge expired events: {}",
                   render(n.error()));
      }
      self->delayed_send(self, st.config.purge_interval, atom::purge_v);
    },
  };
}

} // namespace ferry
