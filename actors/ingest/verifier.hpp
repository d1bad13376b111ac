#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "messages/ingest.hpp"
#include "store/event_store.hpp"

namespace ferry {

struct verifier_state {
  /// The store, to skip events it already holds without verifying them.
  const store::event_store* store = nullptr;
  /// Where valid events go (the writer's current incarnation).
  handle_slot_ptr<writer_actor> writer;
  uint64_t verified = 0;
  uint64_t invalid = 0;
  uint64_t skipped_duplicates = 0;
  static inline constexpr const char* name = "verifier";
};

/// A VERIFIER: checks id and BIP-340 signature, then delegates to the writer,
/// whose answer goes straight to the original sender. Spawn it detached: a
/// signature check is ~70 µs of CPU.
verifier_actor::behavior_type
verifier(verifier_actor::stateful_pointer<verifier_state> self,
         const store::event_store* store, handle_slot_ptr<writer_actor> writer);

} // namespace ferry
