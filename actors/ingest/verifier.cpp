#include "actors/ingest/verifier.hpp"

#include "actors/runtime/metrics.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/nip42.hpp"
#include "net/thread_name.hpp"
#include "store/refused_store.hpp"

#include <optional>

namespace ferry {

namespace {

using self_pointer = verifier_actor::stateful_pointer<verifier_state>;

void remember(self_pointer self, const ingest_item& item, const std::string& reason) {
  if (auto err = store::remember_refused(*self->state.store, item.source,
                                         item.data.ev.id, unix_now(), reason))
    log::warn("{} could not remember a refused event: {}", self->name(),
              render(err));
}

/// Checks one event. @returns its answer when it goes no further (invalid,
/// already stored, refused before), nothing when it passed: then its stored
/// JSON is set.
std::optional<ingest_result> check(self_pointer self, ingest_item& item) {
  auto& st = self->state;
  auto& ev = item.data.ev;
  // The id is a cheap hash; it must match before the id means anything.
  // The JSON to store comes with it (what the canonical form escaped).
  std::string json;
  const bool needs_json = item.data.json.empty();
  auto id = needs_json ? nostr::compute_id(ev, json) : nostr::compute_id(ev);
  if (id != ev.id) {
    ++st.invalid;
    metrics::event_ingested(ev.kind, item.source, "invalid");
    return ingest_result{ingest_status::invalid,
                         "invalid: event id does not match its content"};
  }
  // NIP-42: relays must not broadcast AUTH events, and one is worth
  // nothing to anyone but the relay it authenticated to.
  if (ev.kind == nostr::client_auth_kind) {
    ++st.invalid;
    metrics::event_ingested(ev.kind, item.source, "invalid");
    return ingest_result{ingest_status::invalid,
                         "invalid: kind 22242 authenticates with AUTH and is "
                         "never published"};
  }
  // A stored id needs no signature check: a Get is ~50x cheaper.
  if (st.store->contains(ev.id)) {
    ++st.skipped_duplicates;
    metrics::event_ingested(ev.kind, item.source, "duplicate");
    return ingest_result{ingest_status::duplicate,
                         "duplicate: already have this event"};
  }
  // What a remote sent us before and we refused gets the same answer
  // without a signature check: per source, so only that source's copy
  // is affected (store/refused_store.hpp).
  auto remembers = item.source != "client";
  if (remembers) {
    if (auto refused = store::find_refused(*st.store, item.source, ev.id)) {
      ++st.skipped_refused;
      metrics::event_ingested(ev.kind, item.source, "refused");
      return ingest_result{ingest_status::refused, refused->reason};
    }
  }
  if (!nostr::verify_signature(ev)) {
    ++st.invalid;
    metrics::signature_checked(false);
    metrics::event_ingested(ev.kind, item.source, "invalid");
    ingest_result result{ingest_status::invalid, "invalid: bad signature"};
    if (remembers && st.remember_refused)
      remember(self, item, result.message);
    return result;
  }
  ++st.verified;
  metrics::signature_checked(true);
  if (needs_json)
    item.data.json = std::move(json);
  return std::nullopt;
}

const ingest_result policy_restarting{ingest_status::error,
                                      "error: the write policy is restarting; "
                                      "try again"};
const ingest_result writer_restarting{ingest_status::error,
                                      "error: the writer is restarting; try again"};
const ingest_result verifier_stopped{ingest_status::error,
                                     "error: the verifier stopped before this "
                                     "event was answered; try again"};

/// An answer for an event of a batch that the next step did not give.
ingest_result lost_answer(const caf::error& err) {
  return {ingest_status::error, "error: could not store the event: " + render(err)};
}

/// Hands a batch's passed events on: to the policy one by one (its steps
/// judge single events), else to the writer in one message.
caf::result<ingest_results> pass_on(self_pointer self, ingest_results results,
                                    ingest_batch passed, std::vector<size_t> positions) {
  auto& st = self->state;
  for (auto at : positions)
    results[at] = verifier_stopped;
  auto answers = st.open_batches.owe(
    {self->make_response_promise<ingest_results>(), std::move(results),
     passed.size()});
  if (st.policy) {
    auto policy = st.policy->get();
    for (size_t i = 0; i < passed.size(); ++i) {
      auto at = positions[i];
      if (!policy) {
        answers->results[at] = policy_restarting;
        answers->settle(1);
        continue;
      }
      self->request(policy, caf::infinite, atom::write_v, std::move(passed[i]))
        .then(
          [answers, at](ingest_result& r) {
            answers->results[at] = std::move(r);
            answers->settle(1);
          },
          [answers, at](caf::error& err) {
            answers->results[at] = lost_answer(err);
            answers->settle(1);
          });
    }
    return answers->promise;
  }
  auto writer = st.writer->get();
  if (!writer) {
    for (auto at : positions)
      answers->results[at] = writer_restarting;
    answers->settle(positions.size());
    return answers->promise;
  }
  self->request(writer, caf::infinite, atom::write_v, std::move(passed))
    .then(
      [answers, positions](ingest_results& written) {
        // The writer answers every event it was given, in order.
        const bool whole = written.size() == positions.size();
        for (size_t i = 0; i < positions.size(); ++i)
          answers->results[positions[i]]
            = whole ? std::move(written[i])
                    : ingest_result{ingest_status::error,
                                    "error: the writer answered another batch"};
        answers->settle(positions.size());
      },
      [answers, positions](caf::error& err) {
        for (auto at : positions)
          answers->results[at] = lost_answer(err);
        answers->settle(positions.size());
      });
  return answers->promise;
}

} // namespace

void batch_answers::settle(size_t n) {
  outstanding -= n;
  if (outstanding == 0)
    promise.deliver(std::move(results));
}

verifier_state::~verifier_state() {
  open_batches.pay_all([](batch_answers& open) {
    open.promise.deliver(std::move(open.results));
  });
}

verifier_actor::behavior_type
verifier(self_pointer self, store::event_store* store,
         handle_slot_ptr<writer_actor> writer, handle_slot_ptr<policy_actor> policy,
         bool remember_refused) {
  if (self->getf(caf::abstract_actor::is_detached_flag))
    net::name_this_thread("verifier");
  self->state.store = store;
  self->state.remember_refused = remember_refused;
  self->state.writer = std::move(writer);
  self->state.policy = std::move(policy);
  return {
    [self](atom::ingest, ingest_item_ptr& item) -> caf::result<ingest_result> {
      auto& st = self->state;
      if (auto answer = check(self, *item))
        return std::move(*answer);
      if (st.policy) {
        auto policy = st.policy->get();
        if (!policy)
          return policy_restarting;
        return self->delegate(policy, atom::write_v, std::move(item));
      }
      auto writer = st.writer->get();
      if (!writer)
        return writer_restarting;
      return self->delegate(writer, atom::write_v, std::move(item));
    },
    [self](atom::ingest, ingest_batch& batch) -> caf::result<ingest_results> {
      ingest_results results(batch.size());
      ingest_batch passed;
      std::vector<size_t> positions;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (auto answer = check(self, *batch[i])) {
          results[i] = std::move(*answer);
          continue;
        }
        passed.push_back(std::move(batch[i]));
        positions.push_back(i);
      }
      if (passed.empty())
        return results;
      return pass_on(self, std::move(results), std::move(passed), std::move(positions));
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
