#pragma once

// A RELAY CONNECTION's catch-up, whatever its method (REQ paging in
// req_catchup, NIP-77 in relay_negentropy): where it starts, its
// subscriptions tracked as batches at PENDING BATCHES, and when it is done
// (the only moment the cursor may jump). Internal to actors/sync/relay_*.

#include "actors/sync/relay_connection_self.hpp"
#include "messages/health.hpp"
#include "messages/pending_batches.hpp"

#include <caf/actor_addr.hpp>
#include <caf/actor_clock.hpp>
#include <caf/system_messages.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace ferry {

/// The catch-up part of a RELAY CONNECTION's state.
struct relay_catchup {
  /// `since` of the current REQ catch-up (0: from the beginning).
  int64_t since = 0;
  caf::actor_clock::time_point started;
  /// The same moment in unix milliseconds, and whether this catch-up runs
  /// from the beginning (since 0).
  int64_t started_ms = 0;
  bool from_beginning = false;
  /// When the last complete catch-up from the beginning started (unix ms;
  /// 0: none yet): everything the remote held then is stored here. A
  /// cluster member confirms the cursors another member claims by it
  /// (messages/cluster/cursor_claim.hpp).
  int64_t full_started_ms = 0;
  /// This catch-up may have read less than everything from its `since`: it
  /// opens the live tail again after a paging that closed it, and that
  /// one's first page, all it reads, came back full or holds several
  /// filters (req_catchup.cpp).
  bool partial = false;
  bool complete = false;
  /// How long the last complete catch-up took, from connect to caught up.
  caf::timespan last_took{0};
  /// Names the batches of one catch-up (payload "catchup:<round>"), so the
  /// settling of an abandoned one is ignored.
  uint64_t round = 0;
  /// Catch-up batches opened at PENDING BATCHES and not confirmed yet.
  size_t batches_open = 0;
  /// The PENDING BATCHES incarnation we watch: if it goes down, the batches
  /// it held never settle.
  caf::actor_addr watched_batches;
};

namespace relay_conn {

/// Where a catch-up after a (re)connect starts, by the health tracker's
/// resume mode (see the .cpp).
int64_t catchup_since(const relay_connection_state& st, resume_mode mode);

/// Starts a catch-up from `since` by the connection's method.
void start_any_catchup(self_pointer self, int64_t since);

/// Abandons what runs of a catch-up and its live tails, and starts another
/// from `since` (sync-now; a reconciliation that left ids for later).
void catch_up_again(self_pointer self, int64_t since);

/// Enters the catching-up phase and tells the health tracker.
void begin_catchup(self_pointer self);

/// Tracks catch-up subscription `sub_id` at PENDING BATCHES, whose
/// confirmation is what completes the catch-up.
/// @returns false when no tracker runs (the subscriptions' own EOSE decide).
bool track_catchup_sub(self_pointer self, const std::string& sub_id);

/// Abandons the batches of the running catch-up (their settling is ignored).
void drop_catchup_batches(self_pointer self);

/// A tracked subscription had its EOSE.
void close_tracked_sub(self_pointer self, const std::string& sub_id);

/// Ends the catch-up if every part of it is done (then the cursor moves).
void maybe_finish_catchup(self_pointer self);

/// Enters the live phase: reports how long the catch-up took and persists.
void mark_caught_up(self_pointer self);

/// PENDING BATCHES settled a batch of ours.
void on_batch_confirmed(self_pointer self, const batch_info& batch);
void on_batch_failed(self_pointer self, const batch_info& batch);

/// A watched actor went down (PENDING BATCHES between incarnations).
void on_down(self_pointer self, const caf::down_msg& msg);

} // namespace relay_conn

} // namespace ferry
