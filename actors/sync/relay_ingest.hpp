#pragma once

// The RELAY CONNECTION's way into the node's ingest path: what the remote
// sends is checked against what we asked for, handed to a verifier as
// `sync:<id>` (or `grasp:<url>`), counted by its answer, and read no faster
// than the ingest path takes it. Internal to actors/sync/relay_*.

#include "actors/ingest/policy_rules.hpp"
#include "actors/sync/relay_connection_self.hpp"
#include "messages/ingest.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace ferry {

/// What the answer to a gathered event needs from it.
struct gathered_event {
  nostr::bytes32 id{};
  nostr::bytes32 pubkey{};
  int64_t created_at = 0;
  uint32_t kind = 0;
  /// Its place in the cursor's order (relay_cursor).
  uint64_t seq = 0;
};

/// The ingest part of a RELAY CONNECTION's state.
struct relay_ingest {
  /// Events sent into the ingest path (or gathered for it), not answered yet.
  uint64_t in_flight = 0;
  /// Numbered events not handed to a verifier yet, and what their answers
  /// need: the events of one burst of frames go to a verifier as one batch
  /// (hand_over_gathered).
  ingest_batch gathered;
  std::vector<gathered_event> gathered_info;
  /// The `ingest` message that hands them over is in this actor's mailbox.
  bool hand_over_due = false;
  /// Reading from the remote is paused until the ingest path catches up.
  bool reading_paused = false;
  size_t next_verifier = 0;
  /// The server's own `policy` rules, judged before the ingest path (the
  /// node-wide `[policy]` judges after the verifiers); none when it sets
  /// none.
  std::optional<policy_rules> server_rules;
  // counters
  uint64_t received = 0;
  uint64_t accepted = 0;
  uint64_t duplicate = 0;
  uint64_t rejected = 0;
  /// Of `rejected`: refused by the write policy or the store's rules
  /// (blocked, rate-limited, shadow-rejected, deleted, expired).
  uint64_t refused = 0;
  /// Events the store could not write (disk full, store error).
  uint64_t failed = 0;
  uint64_t filtered = 0;
};

namespace relay_conn {

/// Ingest requests in flight below which fetches by id are opened.
inline constexpr uint64_t in_flight_low = 1024;

/// Builds the server's own policy rules from its definition (at start).
void load_server_policy(self_pointer self);

/// The refused events' memory follows the server's own rules: when they
/// changed since the connection last started (a reload, a PUT), the
/// refusals of this source are forgotten, so the next catch-up fetches
/// those events and the new rules judge them (`store::follow_source_policy`).
/// At start, before any catch-up can read the memory.
void follow_server_policy(self_pointer self);

/// Counts an event from the remote; false when it is outside `filters`
/// (a remote may only give us what we asked for).
bool admit(self_pointer self, const std::vector<nostr::filter>& filters,
           const nostr::event& ev);

/// Sends one event from the remote into the node's ingest path, numbered in
/// the order received (the cursor follows that order, see relay_cursor).
/// It is gathered with the others of its burst of frames and handed over
/// by the `ingest` message this sends the actor itself at a burst's first
/// event, or at once when the batch is full.
/// @returns false when it was refused here by the server's own rules: no
///          ingest answer will come.
bool ingest(self_pointer self, nostr::event ev);

/// Hands the events gathered since the last hand-over to one verifier in
/// one message. Per event, the messages, the verifier and writer threads'
/// wake-ups and the writer's commits cost as much as an index insert; a
/// batch shares them.
void hand_over_gathered(self_pointer self);

} // namespace relay_conn

} // namespace ferry
