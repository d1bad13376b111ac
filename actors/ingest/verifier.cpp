#include "actors/ingest/verifier.hpp"

#include "actors/runtime/metrics.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/nostr/event.hpp"
#include "store/refused_store.hpp"

namespace ferry {

namespace {

void remember(verifier_actor::stateful_pointer<verifier_state> self,
              const ingest_item& item, const std::string& reason) {
  if (auto err = store::remember_refused(*self->state.store, item.source,
                                         item.data.ev.id, unix_now(), reason))
    log::warn("{} could not remember a refused event: {}", self->name(),
              render(err));
}

} // namespace

verifier_actor::behavior_type
verifier(verifier_actor::stateful_pointer<verifier_state> self,
         store::event_store* store, handle_slot_ptr<writer_actor> writer,
         handle_slot_ptr<policy_actor> policy, bool remember_refused) {
  self->state.store = store;
  self->state.remember_refused = remember_refused;
  self->state.writer = std::move(writer);
  self->state.policy = std::move(policy);
  return {
    [self](atom::ingest, ingest_item_ptr& item) -> caf::result<ingest_result> {
      auto& st = self->state;
      auto& ev = item->data.ev;
      // The id is a cheap hash; it must match before the id means anything.
      // The JSON to store comes with it (what the canonical form escaped).
      std::string json;
      const bool needs_json = item->data.json.empty();
      auto id = needs_json ? nostr::compute_id(ev, json) : nostr::compute_id(ev);
      if (id != ev.id) {
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
      // What a remote sent us before and we refused gets the same answer
      // without a signature check: per source, so only that source's copy
      // is affected (store/refused_store.hpp).
      auto remembers = item->source != "client";
      if (remembers) {
        if (auto refused = store::find_refused(*st.store, item->source, ev.id)) {
          ++st.skipped_refused;
          metrics::event_ingested(ev.kind, item->source, "refused");
          return ingest_result{ingest_status::refused, refused->reason};
        }
      }
      if (!nostr::verify_signature(ev)) {
        ++st.invalid;
        metrics::signature_checked(false);
        metrics::event_ingested(ev.kind, item->source, "invalid");
        ingest_result result{ingest_status::invalid, "invalid: bad signature"};
        if (remembers && st.remember_refused)
          remember(self, *item, result.message);
        return result;
      }
      ++st.verified;
      metrics::signature_checked(true);
      if (needs_json)
        item->data.json = std::move(json);
      if (st.policy) {
        auto policy = st.policy->get();
        if (!policy)
          return ingest_result{ingest_status::error,
                               "error: the write policy is restarting; try "
                               "again"};
        return self->delegate(policy, atom::write_v, std::move(item));
      }
      auto writer = st.writer->get();
      if (!writer)
        return ingest_result{ingest_status::error,
                             "error: the writer is restarting; try again"};
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
      caf::put(result, "skipped_refused",
               static_cast<int64_t>(st.skipped_refused));
      return result;
    },
  };
}

} // namespace ferry
