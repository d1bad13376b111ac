#pragma once

#include "messages/pending_batches.hpp"

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry {

/// Tunables of PENDING BATCHES.
struct pending_batches_config {
  /// A batch not confirmed within this time fails as timed out.
  caf::timespan timeout = std::chrono::minutes{5};
};

/// Checks that the timeout is positive.
/// @relates pending_batches_config
caf::error validate(const pending_batches_config& config);

struct pending_batches_state {
  using time_point = caf::actor_clock::time_point;

  /// An open batch.
  struct batch {
    batch_info info;
    time_point opened;
    /// Subscriptions still waiting for EOSE or CLOSED.
    size_t waiting = 0;
  };

  /// Copy of the configuration the actor was spawned with.
  pending_batches_config config;

  /// Told about every batch that settles, unless the batch has its own.
  batch_listener_actor listener;

  /// Listeners of the batches opened with one.
  std::map<uint64_t, batch_listener_actor> listeners;
  /// The per-batch listeners this actor monitors, each once.
  std::set<caf::actor_addr> monitored;

  /// Who is told about batch `id` (forgets a per-batch listener); may be
  /// invalid when nobody listens.
  batch_listener_actor take_listener(uint64_t id);

  /// Open batches by id; ids grow, so this is oldest first.
  std::map<uint64_t, batch> batches;

  /// The open batch of each (relay, subscription id).
  std::map<std::pair<std::string, std::string>, uint64_t> by_subscription;

  /// The id of the next batch.
  uint64_t next_id = 1;

  /// Counters since the actor started.
  uint64_t opened = 0;
  uint64_t confirmed = 0;
  uint64_t failed_lost = 0;
  uint64_t failed_timeout = 0;
  /// EOSE or CLOSED for a subscription in no open batch (late, or not ours).
  uint64_t unmatched = 0;

  /// Opens a batch.
  /// @returns its id, or ec::invalid_input when `relay` or `subs` is empty,
  ///          an id repeats, or an id is in another open batch of `relay`.
  caf::expected<uint64_t> open(std::string relay, std::vector<std::string> subs,
                               std::string payload, time_point now);

  /// Records EOSE for a subscription.
  /// @returns the batch, if this confirmed it.
  std::optional<batch_info> eose(const std::string& relay,
                                 const std::string& sub, time_point now);

  /// Records CLOSED for a subscription: done, with the relay's reason.
  /// @returns the batch, if this confirmed it.
  std::optional<batch_info> closed(const std::string& relay,
                                   const std::string& sub, std::string reason,
                                   time_point now);

  /// Fails every open batch of `relay`.
  /// @returns the failed batches, oldest first.
  std::vector<batch_info> relay_lost(const std::string& relay, time_point now);

  /// Fails every open batch whose own listener is `gone`: a relay
  /// connection that stopped (its relay now owned by another member, or it
  /// crashed) never reports their EOSE, and until the timeout their
  /// subscription ids stayed taken, so the next connection to that relay
  /// here could not track its catch-up and backed off (a second more of a
  /// cluster failover).
  /// @returns the failed batches, oldest first.
  std::vector<batch_info> listener_down(const caf::actor_addr& gone,
                                        time_point now);

  /// Fails batch `id` if it is still open.
  /// @returns the failed batch, if it was open.
  std::optional<batch_info> expire(uint64_t id, time_point now);

  /// The open batches of `relay` (every relay when empty), oldest first.
  std::vector<batch_info> pending(std::string_view relay, time_point now) const;

  /// The reply to `(get, status)` without the mailbox.
  status_map status() const;

  /// Marks the subscription done; confirms its batch when it was the last.
  std::optional<batch_info> finish(const std::string& relay,
                                   const std::string& sub, sub_outcome outcome,
                                   std::string reason, time_point now);

  /// Removes the open batch `i`, marking its waiting subscriptions with
  /// `outcome` and `reason`.
  /// @returns the settled batch.
  batch_info settle(std::map<uint64_t, batch>::iterator i, sub_outcome outcome,
                    const std::string& reason, time_point now);

  /// The actor's name, as shown by the inspection console and in logs.
  static inline constexpr const char* name = "pending-batches";
};

/// PENDING BATCHES: tracks the subscriptions sent to remote relays until
/// each has its EOSE or CLOSED, then confirms the whole batch to the
/// listener; a batch whose relay is lost, whose own listener stops, or
/// that takes longer than the timeout, fails instead. A confirmation is
/// what marks a catch-up complete.
/// @param self The actor handle.
/// @param config The batch timeout; must validate.
/// @param listener Receives `(confirmed, batch)` and `(failed, batch)` for
///                 batches opened without a listener of their own; may be
///                 invalid.
pending_batches_actor::behavior_type pending_batches(
  pending_batches_actor::stateful_pointer<pending_batches_state> self,
  pending_batches_config config, batch_listener_actor listener);

} // namespace ferry
