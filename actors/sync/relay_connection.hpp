#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "actors/sync/id_fetcher.hpp"
#include "actors/sync/neg_catchup.hpp"
#include "actors/sync/up_stream.hpp"
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

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// What a RELAY CONNECTION needs from the node.
struct relay_connection_deps {
  /// The node's identity, for NIP-42.
  nostr::keypair keys;
  /// Sockets live on these threads.
  std::shared_ptr<net::io_runtime> io;
  /// Cursors and runtime state are read from and persisted here.
  store::event_store* store = nullptr;
  /// The node's one ingest path.
  std::vector<handle_slot_ptr<verifier_actor>> verifiers;
  handle_slot_ptr<writer_actor> writer;
  /// Backoff and the 15-minute rule.
  handle_slot_ptr<health_tracker_actor> health;
  /// The change feed that wakes up streams.
  handle_slot_ptr<hub_actor> hub;
  /// Tracks catch-up subscriptions until their EOSE.
  handle_slot_ptr<pending_batches_actor> batches;
  /// Set for a connection GRASP SYNC drives through the relay driver: its
  /// REQs come from `subscribe` messages (no catch-up, no cursor, no up
  /// stream), it reports connected / EOSE / CLOSED to this listener, and
  /// when it fails it tells the driver (with the backoff) and quits.
  std::function<grasp_driver_listener_actor()> driver_listener;
  grasp_relay_driver_actor driver;
  /// A driven connection dials only after this delay (its relay's backoff).
  caf::timespan start_after{0};
};

struct relay_connection_state {
  /// Where a connection is in its life.
  enum class phase { idle, relay_info, connecting, catching_up, live, backing_off, dead };

  /// One REQ we have open on the remote: the live one, or a page of history.
  struct subscription {
    /// Index of the filter a page covers; the live subscription covers all.
    std::optional<size_t> filter;
    /// The filters as sent (with since / until / limit).
    std::vector<nostr::filter> sent;
    /// Per sent filter: events received and the oldest created_at seen.
    std::vector<uint64_t> received;
    std::vector<int64_t> oldest;
    bool eose = false;
    /// Part of the catch-up, tracked at PENDING BATCHES.
    bool tracked = false;
    /// Asked for by GRASP SYNC; `check` is what a received event must match
    /// (the filters without since / until / limit).
    bool driven = false;
    std::vector<nostr::filter> check;
  };

  sync_server def;
  relay_connection_deps deps;
  net::tls_options tls;
  /// "sync:<id>", the ingest source and the log prefix.
  std::string label;
  /// Tags transport callbacks, so those of an older connection are ignored.
  uint64_t generation = 0;
  std::shared_ptr<net::ws_client_connection> conn;
  phase state = phase::idle;
  /// Page size: ours, or the remote's NIP-11 max_limit when smaller. Big
  /// pages matter: a catch-up is one round trip per page.
  uint64_t page_size = 5000;
  std::map<std::string, subscription> subscriptions;
  uint64_t next_page = 1;
  /// `since` of the current catch-up (0: from the beginning).
  int64_t catchup_since = 0;
  /// Every event handed to the ingest path gets the next number here, in
  /// the order received; `unanswered` keeps the numbers not folded into
  /// `stored_through` yet: nullopt while in flight, then the created_at the
  /// answer lets the cursor cover (0 for an event refused for good).
  uint64_t next_ingest = 0;
  std::map<uint64_t, std::optional<int64_t>> unanswered;
  /// Newest created_at stored among the events received before the oldest
  /// one still in flight (verifiers answer out of order).
  int64_t stored_through = 0;
  /// The newest cursor handed to the writer.
  int64_t cursor_sent = 0;
  /// Oldest created_at of an event the store failed to take (INT64_MAX:
  /// none): the cursor stays below it until a catch-up fetched it again.
  int64_t unstored_since = INT64_MAX;
  /// The store failed to take an event during the running catch-up.
  bool unstored_in_catchup = false;
  caf::actor_clock::time_point catchup_started;
  bool catchup_complete = false;
  /// How long the last complete catch-up took, from connect to caught up.
  caf::timespan last_catchup{0};
  /// Names the batches of one catch-up (payload "catchup:<round>"), so the
  /// settling of an abandoned one is ignored.
  uint64_t catchup_round = 0;
  /// Catch-up batches opened at PENDING BATCHES and not confirmed yet.
  size_t catchup_batches_open = 0;
  /// The PENDING BATCHES incarnation we watch: if it goes down, the batches
  /// it held never settle.
  caf::actor_addr watched_batches;
  /// Ingest requests not answered yet.
  uint64_t in_flight = 0;
  /// Reading from the remote is paused until the ingest path catches up.
  bool reading_paused = false;
  // NIP-42
  std::string challenge;
  std::string auth_event_id;
  bool authenticated = false;
  /// REQs refused with auth-required:, sent again after AUTH succeeds.
  std::vector<std::string> waiting_for_auth;
  // counters
  uint64_t received = 0;
  uint64_t accepted = 0;
  uint64_t duplicate = 0;
  uint64_t rejected = 0;
  /// Events the store could not write (disk full, store error).
  uint64_t failed = 0;
  uint64_t filtered = 0;
  /// Up: the stream of the current session (none while disconnected) and
  /// the totals of earlier sessions.
  std::optional<up_stream> up;
  uint64_t sent_before = 0;
  uint64_t sent_ok_before = 0;
  uint64_t sent_refused_before = 0;
  uint64_t up_cursor = 0;
  /// The up stream's cursor as last persisted.
  uint64_t up_cursor_persisted = 0;
  /// Events the remote refused with auth-required:, sent again after AUTH.
  bool resend_after_auth = false;
  /// A check for unanswered events is in the mailbox.
  bool up_check_scheduled = false;
  /// Driven: REQs waiting for the connection.
  std::vector<grasp::subscription> queued;
  /// Driven: what waits until every event received before it is answered
  /// by the writer: an EOSE to report (`sub`), or a flush (`serial`).
  struct barrier {
    /// It waits for every ingest numbered below this (`next_ingest` then).
    uint64_t before = 0;
    std::string sub;
    uint64_t serial = 0;
  };
  std::vector<barrier> barriers;
  // NIP-77 (mode negentropy)
  /// The reconciliation of the running catch-up; done once every window is.
  std::optional<neg_catchup> neg;
  bool neg_done = false;
  /// `since` of the reconciliation, for a fallback to REQ.
  int64_t neg_since = 0;
  /// Names the answer we wait for, so a late timeout is ignored.
  uint64_t neg_serial = 0;
  /// The remote failed at NIP-77 (why); REQ catch-ups from then on.
  std::string negentropy_unsupported;
  /// Totals of finished reconciliations.
  uint64_t neg_rounds = 0;
  uint64_t neg_have = 0;
  uint64_t neg_need = 0;
  /// Fetches what a reconciliation found missing (REQ by ids).
  std::optional<id_fetcher> fetcher;
  /// Ids the remote announced but did not deliver, over all catch-ups.
  uint64_t fetch_missing = 0;
  /// Ids the remote lacks, sent once the up stream starts.
  std::vector<nostr::bytes32> neg_have_ids;
  /// After a full reconciliation, the change log up to here is covered.
  uint64_t neg_log_covered = 0;
  size_t next_verifier = 0;
  std::string last_error;
  int64_t last_connected = 0;
  int64_t disconnected_at = 0;

  /// The socket goes with the actor (CAF destroys the state when it quits).
  ~relay_connection_state() {
    if (conn)
      conn->close("stopping");
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
/// that are stored (see advance_cursor). Up, it sends the store's change log from a persistent
/// cursor (see up_stream), woken by the hub's change feed, never sending back
/// what came from the remote. Failures go to the health tracker, whose
/// backoff decides when to connect again.
relay_connection_actor::behavior_type
relay_connection(relay_connection_actor::stateful_pointer<relay_connection_state> self,
                 sync_server def, relay_connection_deps deps);

} // namespace ferry
