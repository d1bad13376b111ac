#pragma once

// The RELAY CONNECTION's down cursor and the rule that moves it: a cursor
// moves only below a point where everything is stored (advance_cursor).
// Every event handed to the ingest path is numbered in the order received;
// answers come back out of order (verifiers run in parallel), so the cursor
// follows the oldest event still unanswered. Barriers (GRASP-driven mode)
// wait on the same numbering. Internal to actors/sync/relay_*.

#include "actors/sync/relay_connection_self.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// The cursor part of a RELAY CONNECTION's state.
struct relay_cursor {
  /// Every event handed to the ingest path gets the next number here, in
  /// the order received; `unanswered` keeps the numbers not folded into
  /// `stored_through` yet, the last of them `next_ingest - 1`: nullopt while
  /// in flight, then the created_at the answer lets the cursor cover (0 for
  /// an event refused for good). Numbers are handed out and folded in
  /// order: a queue, not a map (a node allocated per event in a catch-up).
  uint64_t next_ingest = 0;
  std::deque<std::optional<int64_t>> unanswered;

  /// The number of `unanswered.front()`; `next_ingest` when none waits.
  uint64_t oldest_unanswered() const {
    return next_ingest - unanswered.size();
  }
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
  /// Driven: what waits until every event received before it is answered
  /// by the writer: an EOSE to report (`sub`), a flush (`serial`), or the
  /// deletion follower's cursor to move (`cursor`).
  struct barrier {
    /// It waits for every ingest numbered below this (`next_ingest` then).
    uint64_t before = 0;
    std::string sub;
    uint64_t serial = 0;
    int64_t cursor = 0;
  };
  std::vector<barrier> barriers;
};

namespace relay_conn {

/// Numbers an event handed to the ingest path, in the order received.
uint64_t number_ingest(self_pointer self);

/// Records the answer to ingest number `seq` (`covers`: the created_at it
/// lets the cursor cover, 0 for none) and folds every answered one before
/// the oldest still in flight into `stored_through`.
void settle_ingest(self_pointer self, uint64_t seq, int64_t covers);

/// Hands the writer a new down cursor, within the rule (see the .cpp).
void advance_cursor(self_pointer self, int64_t to);

/// The store did not take an event (`created_at`): the cursor stays below
/// it, and the next catch-up starts no later than it.
void note_unstored(self_pointer self, int64_t created_at);

/// Driven: reports EOSE `sub` (or flush `serial`, when `sub` is empty) once
/// every event received before now is stored.
void add_barrier(self_pointer self, std::string sub, uint64_t serial);

/// Driven: moves the cursor to `to` once every event received before now is
/// stored (the deletion follower's, see relay_deletions.hpp).
void add_cursor_barrier(self_pointer self, int64_t to);

} // namespace relay_conn

} // namespace ferry
