#pragma once

#include "actors/relay/item_set_cache.hpp"
#include "messages/nostr/flat_id_set.hpp"
#include "messages/nostr/negentropy.hpp"
#include "messages/relay.hpp"
#include "net/ws_server.hpp"
#include "store/event_store.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <string>

namespace ferry {

/// One REQ's stored part (or one COUNT), with its progress between slices.
struct query_job {
  /// Where EVENT frames go, directly from the worker's thread.
  std::shared_ptr<net::ws_connection> conn;
  /// Who hears about the end (EOSE) or the count.
  client_session_actor session;
  std::string sub_id;
  /// Tells answers for a replaced subscription from the current one.
  uint64_t job_id = 0;
  filter_set_ptr filters;
  bool count_only = false;
  /// `limit` for filters without one, and the cap on any filter's limit.
  size_t default_limit = 500;
  size_t max_limit = 5000;
  /// Unix time the query runs at (for NIP-40).
  int64_t now = 0;
  /// Set by the session on CLOSE, replacement or disconnect.
  std::atomic<bool> cancelled{false};

  // -- progress ---------------------------------------------------------------
  size_t filter_index = 0;
  std::optional<store::scan_position> resume;
  uint64_t delivered_in_filter = 0;
  /// Time spent waiting for the socket since the last slice went out.
  caf::timespan stalled{0};
  /// Ids sent: several filters may match one event, and a live event that
  /// arrived during the query may already have been sent from the store.
  nostr::flat_id_set sent;
};

/// One open negentropy session of a client, shared by its CLIENT SESSION
/// (which only flags it closed) and its QUERY WORKER (which alone touches the
/// engine). A connection's jobs all go to one worker, in order, so the engine
/// is never used from two threads.
struct neg_session {
  /// Built by the worker on NEG-OPEN; empty when that failed.
  std::optional<nostr::negentropy::server> engine;
  /// The engine's item set and its share of the node's negentropy memory
  /// budget, both given back when the session is destroyed.
  item_set_lease_ptr lease;
  /// NEG-CLOSE, a replacing NEG-OPEN, a timeout or the disconnect.
  std::atomic<bool> closed{false};
};

/// One negentropy round: the client's message in, the relay's frame out.
struct neg_job {
  /// Who gets the job back with its reply.
  client_session_actor session;
  std::string sub_id;
  std::shared_ptr<neg_session> state;
  /// NEG-OPEN only: the item set to reconcile (from the node's cache), and
  /// the largest reply.
  item_set_lease_ptr lease;
  size_t frame_size_limit = 0;
  /// The client's negentropy message (binary).
  std::string query;

  // -- filled in by the worker ---------------------------------------------
  /// The frame for the client: NEG-MSG, or NEG-ERR when `failed`.
  std::string reply;
  /// The session is over (the reply is a NEG-ERR).
  bool failed = false;
};

/// Tunables of the query workers.
struct query_worker_config {
  /// Events per slice; between slices other jobs get their turn.
  size_t slice_events = 1000;
  /// Events handed to the socket in the first chunk of a slice; each later
  /// chunk doubles, up to `max_chunk_events`.
  size_t first_chunk_events = 8;
  size_t max_chunk_events = 256;
  /// When a connection has more bytes queued than this, its job waits; a
  /// slice also stops at this many bytes. Keep it well below the relay's
  /// outbound cap, so a query alone never disconnects a reader.
  size_t high_water_bytes = 4 * 1024 * 1024;
  /// How long a job waits for a slow socket before looking again.
  caf::timespan backoff = std::chrono::milliseconds{2};
  /// A reader that takes nothing for this long is disconnected.
  caf::timespan stall_limit = std::chrono::seconds{60};
};

/// The worker config that fits a relay whose outbound cap is `cap` bytes.
query_worker_config query_worker_config_for(size_t cap);

/// What one slice of a query did.
struct slice_result {
  /// The job is finished; its EOSE is queued unless it was cancelled.
  bool done = false;
  /// EVENT frames handed to the socket.
  size_t events = 0;
};

/// Runs one slice of `job` on the calling thread: reads at most `max_events`
/// events (and at most `config.high_water_bytes`) and hands their EVENT
/// frames to the job's connection; the last slice ends with the EOSE frame
/// (unless the job was cancelled).
slice_result run_slice(const store::event_store& store,
                       const query_worker_config& config, query_job& job,
                       size_t max_events);

struct query_worker_state {
  const store::event_store* store = nullptr;
  query_worker_config config;
  uint64_t jobs = 0;
  uint64_t events_sent = 0;

  uint64_t neg_rounds = 0;

  /// Answers one negentropy round, filling in `job.reply` and `job.failed`.
  void answer(neg_job& job);

  static inline constexpr const char* name = "query-worker";
};

/// A QUERY WORKER: reads the store and writes EVENT frames to the client's
/// socket, a slice at a time. Spawn it detached (RocksDB reads block).
query_worker_actor::behavior_type
query_worker(query_worker_actor::stateful_pointer<query_worker_state> self,
             const store::event_store* store, query_worker_config config);

} // namespace ferry
