#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "messages/ingest.hpp"
#include "messages/relay.hpp"
#include "store/event_store.hpp"
#include "config/policy_config.hpp"
#include "store/sync_store.hpp"

#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ferry {

/// Tunables of the WRITER.
struct writer_config {
  /// Most events in one WriteBatch; a batch sent as one message is never
  /// split, so a commit may go over by one such batch.
  size_t batch_max = 4096;
  /// How often expired events are purged, and the change log swept of the
  /// entries of events no longer stored; zero disables both.
  std::chrono::seconds purge_interval{300};
  /// Change-log entries one sweep step looks at; the writer commits what
  /// came meanwhile between steps.
  size_t sweep_step = 10000;
  /// Change-log entries a purge sweeps at most; the next purge goes on from
  /// there, and from the log's start once past its end. A large log is swept
  /// over several purges (10M entries: ~4 h at the default interval) rather
  /// than read whole every five minutes.
  size_t sweep_per_purge = 200000;
  /// While the disk is full, how often the free space is measured again.
  std::chrono::milliseconds space_recheck{500};
  /// The memory of refused events is pruned to this with every purge.
  config::refused_memory_config refused;
};

struct writer_state {
  store::event_store* store = nullptr;
  /// Fan-out target; null when nobody listens (`ferry import`).
  handle_slot_ptr<hub_actor> hub;
  writer_config config;
  /// Events waiting for the next commit.
  std::vector<ingest_item_ptr> pending;
  /// Who waits for the answers of `pending`: a sender of one event, or of a
  /// batch of them (`events` in a row, in `pending` order).
  struct waiter {
    size_t events = 1;
    /// Whether the sender sent a batch (and waits for `batch`) or one event.
    bool sent_batch = false;
    caf::typed_response_promise<ingest_result> one;
    caf::typed_response_promise<ingest_results> batch;
  };
  std::vector<waiter> waiters;
  /// A flush message is already in the mailbox.
  bool flush_scheduled = false;
  uint64_t batches = 0;
  uint64_t committed = 0;
  uint64_t failed_batches = 0;
  /// Events answered with an error (nothing of them was stored).
  uint64_t failed_events = 0;
  uint64_t purged = 0;
  /// A sweep of the change log is under way (its next step is queued).
  bool sweeping = false;
  /// Where the next sweep step starts (after this entry), and the entries
  /// the running sweep may still look at.
  uint64_t sweep_from = 0;
  size_t sweep_left = 0;
  /// Change-log entries deleted because their event is gone.
  uint64_t changes_swept = 0;
  /// Refused events forgotten (past their TTL or beyond the cap).
  uint64_t refused_forgotten = 0;
  /// A space recheck is in the mailbox (the disk is full).
  bool recheck_scheduled = false;
  /// The change-log sequence number of the next stored event.
  uint64_t next_change_seq = 1;
  /// Sync cursors as last committed, loaded on first use.
  std::unordered_map<std::string, sync_cursor> cursors;
  /// Cursors handed over since the last commit; they go into the next one.
  std::unordered_map<std::string, sync_cursor> staged_cursors;

  /// The committed cursor of `server` (zero when it never synced).
  sync_cursor cursor_of(const std::string& server);

  /// Commits `pending` in one WriteBatch (with their change-log entries and
  /// the staged cursors), answers every promise and hands the stored and
  /// ephemeral events to the hub. Below the disk space reserve nothing is
  /// written: every event gets `error: disk full: ...`.
  void commit();

  /// Answers every pending event with the error `text`; stores none.
  void fail_pending(const std::string& text);
  /// Hands each waiter its answers (one per pending event, in order) and
  /// empties `pending`.
  void answer_pending(ingest_results answers);

  /// Writes the staged cursors on their own (no event came to carry them).
  void commit_cursors();

  /// Answers the events still waiting for a commit with an error (nothing
  /// of them was stored): the writer stopped, crashed or is restarting, and
  /// its requesters wait without a timeout (owed_answers.hpp).
  ~writer_state();

  static inline constexpr const char* name = "writer";
};

/// The WRITER: the only actor that writes events. Requests queue up in its
/// mailbox while a commit runs; a self-sent flush behind them commits them all
/// in one batch (like strfry's writer draining its inbox). Spawn it detached.
writer_actor::behavior_type
writer(writer_actor::stateful_pointer<writer_state> self,
       store::event_store* store, handle_slot_ptr<hub_actor> hub,
       writer_config config);

} // namespace ferry
