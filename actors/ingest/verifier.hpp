#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/owed_answers.hpp"
#include "messages/ingest.hpp"
#include "messages/policy.hpp"
#include "store/event_store.hpp"

#include <caf/typed_response_promise.hpp>

namespace ferry {

/// A batch's answers while some of its events are still with the policy or
/// the writer; delivered once the last of them is answered.
struct batch_answers {
  caf::typed_response_promise<ingest_results> promise;
  /// One per event; those still out read `verifier_stopped` until answered.
  ingest_results results;
  size_t outstanding = 0;

  void settle(size_t n);
  /// Whether the sender still waits for it.
  bool pending() const {
    return promise.pending();
  }
};

struct verifier_state {
  /// The store, to skip events it already holds (or refused before, from
  /// the same source) without verifying them.
  store::event_store* store = nullptr;
  /// Remember events with bad signatures from sources other than clients
  /// (`[policy.remember_refused]`).
  bool remember_refused = false;
  /// Where valid events go (the writer's current incarnation)...
  handle_slot_ptr<writer_actor> writer;
  /// ...through the write policy first, unless this is null (no policy).
  handle_slot_ptr<policy_actor> policy;
  uint64_t verified = 0;
  uint64_t invalid = 0;
  uint64_t skipped_duplicates = 0;
  uint64_t skipped_refused = 0;
  /// Batches whose events are still with the policy or the writer.
  owed_answers<batch_answers> open_batches;

  /// Answers the open batches as they stand: what came back, and an error
  /// for each event still out.
  ~verifier_state();

  static inline constexpr const char* name = "verifier";
};

/// A VERIFIER: checks id and BIP-340 signature, then delegates to the
/// policy (or, without one, to the writer), whose answer goes straight to
/// the original sender. A batch's valid events go to the writer in one
/// message (to the policy one by one); their answers come back here and
/// go to the sender as one. Spawn it detached: a signature check is ~70 µs of
/// CPU.
verifier_actor::behavior_type
verifier(verifier_actor::stateful_pointer<verifier_state> self,
         store::event_store* store, handle_slot_ptr<writer_actor> writer,
         handle_slot_ptr<policy_actor> policy, bool remember_refused);

} // namespace ferry
