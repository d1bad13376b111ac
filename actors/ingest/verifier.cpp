#include "actors/ingest/verifier.hpp"

#include "actors/runtime/metrics.hpp"
#include "messages/nostr/event.hpp"

namespace ferry {

verifier_actor::behavior_type
verifier(verifier_actor::stateful_pointer<verifier_state> self,
         const store::event_store* store, handle_slot_ptr<writer_actor> writer) {
  self->state.store = store;
  self->state.writer = std::move(writer);
  return {
    [self](atom::ingest, ingest_item_ptr& item) -> caf::result<ingest_result> {
      auto& st = self->state;
      auto& ev = item->data.ev;
      // The id is a cheap hash; it must match before the id means anything.
      if (nostr::compute_id(ev) != ev.id) {
        ++st.invalid;
        metrics::event_ingested(ev.kind, item->source, "invalid");
        return ingest_result{ingest_status::invalid,
                             "invalid: event id does not match its content"};
      }
      // A stored id needs no signature check: a Get is ~50x cheaper.
      if (st.store->contains(ev.id)) {
        ++st.skipped_duplicates;
        metrics::event_ingested(ev.kind, item->source, "duplicate");
        return ingest_result{ingest_status::duplicate,
                             "duplicate: already have this event"};
      }
      if (!nostr::verify_signature(ev)) {
        ++st.invalid;
        metrics::signature_checked(false);
        metrics::event_ingested(ev.kind, item->source, "invalid");
        return ingest_result{ingest_status::invalid, "invalid: bad signature"};
      }
      ++st.verified;
      metrics::signature_checked(true);
      auto writer = st.writer->get();
      if (!writer)
        return ingest_result{ingest_status::error,
                             "error: the writer is restarting; try again"};
      if (item->data.json.empty())
        item->data.json = nostr::to_json(ev);
      return self->delegate(writer, atom::write_v, std::move(item));
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "verified", static_cast<int64_t>(st.verified));
      caf::put(result, "invalid", static_cast<int64_t>(st.invalid));
      caf::put(result, "skipped_duplicates",
               static_cast<int64_t>(st.skipped_duplicates));
      return result;
    },
  };
}

} // namespace ferry
