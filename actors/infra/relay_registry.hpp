#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/live_value.hpp"
#include "config/config.hpp"
#include "messages/infra.hpp"
#include "store/event_store.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <cstdint>

namespace ferry {

/// The hosted relay actors, for those who relay requests to them (the
/// control plane and the inspector); each slot follows restarts.
struct infra_handles {
  handle_slot_ptr<relay_registry_actor> registry;
  handle_slot_ptr<infra_reconciler_actor> reconciler;
};

struct relay_registry_state {
  store::event_store* store = nullptr;
  /// Where activities are told; the slot follows restarts.
  handle_slot_ptr<infra_reconciler_actor> reconciler;
  /// `[infra]` as the last reload left it: `max_attempts` (shown by `get
  /// relay`; the INFRA RECONCILER acts on the same number) and whether
  /// `[infra.blossom]` and `[infra.livekit]` offer what relays may enable.
  live_value_ptr<config::infra_config> settings;
  /// The last activity sequence number handed out.
  uint64_t last_seq = 0;
  /// Activities recorded by this incarnation.
  uint64_t recorded = 0;
  static inline constexpr const char* name = "relay-registry";
};

/// The RELAY REGISTRY: the one writer of the `hosted_relays` and `activity`
/// families. Each change is validated, written with its activity entry in
/// one synced commit, and then sent to the INFRA RECONCILER as
/// `(activity, entry)` (its sequence numbers follow each other, so the
/// reconciler sees a gap when it missed one). Store writes are synced to
/// disk, so spawn it `caf::detached`.
/// @param self The actor handle.
/// @param store The node's store (must outlive the actor).
/// @param reconciler Where activities go (may be null or empty).
/// @param settings `[infra]`, read at each use (a reload replaces it).
relay_registry_actor::behavior_type
relay_registry(relay_registry_actor::stateful_pointer<relay_registry_state> self,
               store::event_store* store,
               handle_slot_ptr<infra_reconciler_actor> reconciler,
               live_value_ptr<config::infra_config> settings);

} // namespace ferry
