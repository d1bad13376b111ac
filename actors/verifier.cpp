#include "actors/verifier.hpp"

#include "messages/nostr/event.hpp"

namespace ferry {

verifier_actor::behavior_type
verifier(verifier_actor::stateful_pointer<verifier_state> self,
         const store::event_store* store, writer_actor writer) {
  self->state.store = store;
  self->state.writer = std::move(writer);
  return {
    [self](atom::ingest, ingest_item_ptr& item) -> caf::result<ingest_result> {
      auto& st = self->state;
      auto& ev = item->data.ev;
      // A stored id needs no signature check: a Get is ~50x cheaper.
      if (st.store->contains(ev.id)) {
        ++st.skipped_duplicates;
        return ingest_result{ingest_status::duplicate,
                             "duplicate: already have this event"};
      }
      if (auto reason = nostr::check_event(ev); !reason.empty()) {
        ++st.invalid;
        return ingest_result{ingest_status::invalid, "invalid: " + reason};
      }
      ++st.verified;
      if (item->data.json.empty())
        item->data.json = nostr::to_json(ev);
      return self->delegate(st.writer, atom::write_v, std::move(item));
    },
  };
}

} // namespace ferry
