#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "actors/sync/relay_catchup.hpp"
#include "actors/sync/relay_cursor.hpp"
#include "actors/sync/relay_deletions.hpp"
#include "actors/sync/relay_driven.hpp"
#include "actors/sync/relay_ingest.hpp"
#include "actors/sync/relay_negentropy.hpp"
#include "actors/sync/relay_session.hpp"
#include "actors/sync/relay_up.hpp"
#include "actors/sync/req_catchup.hpp"
#include "messages/health.hpp"
#include "messages/ingest.hpp"
#include "messages/nostr/keys.hpp"
#include "messages/relay.hpp"
#include "messages/sync.hpp"
#include "messages/sync_manager.hpp"
#include "net/io_runtime.hpp"
#include "net/ws_client.hpp"
#include "store/event_store.hpp"

#include <caf/actor_clock.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

class item_set_cache;

/// What a RELAY CONNECTION needs from the node.
struct relay_connection_deps {
  /// The node's identity, for NIP-42.
  nostr::keypair keys;
  /// Sockets live on these threads.
  std::shared_ptr<net::io_runtime> io;
  /// Cursors and runtime state are read from and persisted here.
  store::event_store* store = nullptr;
  /// Reads a reconciliation's local sets on threads of their own (none:
  /// on the connection's thread, as in-process tests do).
  std::shared_ptr<item_set_cache> item_sets;
  /// The node's one ingest path.
  std::vector<handle_slot_ptr<verifier_actor>> verifiers;
  handle_slot_ptr<writer_actor> writer;
  /// Backoff and the 15-minute rule.
  handle_slot_ptr<health_tracker_actor> health;
  /// The change feed that wakes up streams.
  handle_slot_ptr<hub_actor> hub;
  /// Tracks catch-up subscriptions until their EOSE.
  handle_slot_ptr<pending_batches_actor> batches;
  /// The ids the node's connections are fetching, shared by all of them so
  /// that an event several remotes hold is downloaded from one (none: each
  /// connection fetches on its own).
  std::shared_ptr<fetch_claims> fetching;
  /// Set for a connection GRASP SYNC drives through the relay driver: its
  /// REQs come from `subscribe` messages (no catch-up, no cursor, no up
  /// stream), it reports connected / EOSE / CLOSED to this listener, and
  /// when it fails it tells the driver (with the backoff) and quits.
  std::function<grasp_driver_listener_actor()> driver_listener;
  grasp_relay_driver_actor driver;
  /// A driven connection dials only after this delay (its relay's backoff).
  caf::timespan start_after{0};
  /// The largest local item set of a one-shot sync the manager runs
  /// (`relay.negentropy.max_items`).
  size_t one_shot_max_items = 500000;
  /// Refusals are remembered (`[policy.remember_refused] max_entries > 0`):
  /// the server's own rules add theirs (store/refused_store.hpp).
  bool remember_refused = false;
  /// Ids a NIP-77 reconciliation may leave waiting to be asked for before
  /// its next round waits for them (relay_negentropy.cpp, hold_round).
  size_t max_fetch_backlog = 50'000;
  /// Ids the remote lacks that a NIP-77 reconciliation keeps to send up;
  /// past this many it sends those and reconciles again once the up stream
  /// is drained (relay_negentropy.cpp, keep_have).
  size_t max_have_backlog = 200'000;
};

/// The state of a RELAY CONNECTION: what identifies it, and one part per
/// protocol, each owned by the unit (actors/sync/relay_*.cpp, req_catchup.cpp)
/// that works it.
struct relay_connection_state {
  /// Where a connection is in its life.
  enum class phase { idle, relay_info, connecting, catching_up, live, backing_off, dead };

  sync_server def;
  /// The era of `def` (store::get_sync_era) as the connection started: its
  /// cursors, down and up, are made under it.
  uint64_t era = 0;
  relay_connection_deps deps;
  /// "sync:<id>", the ingest source and the log prefix.
  std::string label;
  /// Tags transport callbacks and timers, so those of an older session are
  /// ignored.
  uint64_t generation = 0;
  phase state = phase::idle;
  /// Socket, NIP-11, NIP-42 (relay_session.cpp).
  relay_session session;
  /// The down cursor and its rule (relay_cursor.cpp).
  relay_cursor cursor;
  /// The way into the ingest path (relay_ingest.cpp).
  relay_ingest ingest;
  /// The catch-up, whatever its method (relay_catchup.cpp).
  relay_catchup catchup;
  /// REQs on the remote: live tail and history pages (req_catchup.cpp).
  req_subscriptions reqs;
  /// NIP-77 catch-up (relay_negentropy.cpp).
  relay_negentropy neg;
  /// Up direction (relay_up.cpp).
  relay_up up;
  /// GRASP-driven mode (relay_driven.cpp).
  relay_driven driven;
  /// NIP-09 deletions of what was synced (relay_deletions.cpp).
  relay_deletions deletions;

  /// The socket goes with the actor (CAF destroys the state when it quits).
  ~relay_connection_state() {
    if (session.conn)
      session.conn->close("stopping");
  }

  static inline constexpr const char* name = "relay-connection";
};

/// A RELAY CONNECTION: mirrors one sync server's relay into the local store
/// (down) and the local store into the relay (up).
/// It checks the relay's identity (NIP-11), answers NIP-42 challenges, runs a
/// catch-up from the cursor (minus the overlap window after a long outage),
/// pages older history with `until` when the remote caps results, then keeps
/// the same subscription as its live tail. Every event goes through the
/// node's ingest path as `sync:<id>`; the cursor advances only past events
/// that are stored (see relay_cursor). Up, it sends the store's change log from a persistent
/// cursor (see up_stream), woken by the hub's change feed, never sending back
/// what came from the remote. Failures go to the health tracker, whose
/// backoff decides when to connect again.
relay_connection_actor::behavior_type
relay_connection(relay_connection_actor::stateful_pointer<relay_connection_state> self,
                 sync_server def, relay_connection_deps deps);

} // namespace ferry
