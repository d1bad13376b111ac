#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/live_value.hpp"
#include "config/config.hpp"
#include "messages/grasp.hpp"
#include "messages/relay.hpp"
#include "store/event_store.hpp"

#include <caf/timespan.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry {

/// Tunables of the SELF SUBSCRIBER.
struct self_subscriber_config {
  /// Who this service is, as announcements name it.
  grasp::service_identity service;
  /// Events seen within this window are handled together.
  caf::timespan batch_window = std::chrono::seconds{5};
  /// `[grasp]` as the last reload left it: its `batch_window` replaces the
  /// one above from the next window (null: the one above stays).
  live_value_ptr<config::grasp_config> live;
  /// A window holding this many events closes early (bounded memory).
  size_t max_batch = 10000;
  /// Stored announcements read per step of the start-up rebuild.
  size_t rebuild_slice = 500;
};

struct self_subscriber_state {
  self_subscriber_config config;
  store::event_store* store = nullptr;
  handle_slot_ptr<hub_actor> hub;
  handle_slot_ptr<grasp_listener_actor> listener;

  /// `repo_sync` as stored: this actor is its only writer.
  std::map<std::string, grasp::repo_sync_entry> repos;

  /// Start-up checks for a hub not running yet (subsystems start
  /// concurrently, so the relay's hub may come up after us).
  uint32_t hub_waits = 0;

  /// Events of the open window, in arrival order.
  std::vector<ingest_item_ptr> window;

  /// The start-up rebuild: where the scan of stored announcements resumes,
  /// and the addresses whose current announcement it (or the feed) has
  /// seen; the others are gone from the store and leave `repo_sync`.
  bool rebuilding = true;
  std::optional<store::scan_position> rebuild_from;
  std::set<std::string> rebuild_seen;
  /// Asked whether the rebuild is complete before it was: answered then.
  std::vector<caf::typed_response_promise<bool>> waiting_for_rebuild;

  /// Counters since the actor started.
  uint64_t events = 0;
  uint64_t windows = 0;
  uint64_t announcements = 0;
  uint64_t not_ours = 0;
  uint64_t roots_added = 0;
  uint64_t repos_added = 0;
  uint64_t repos_updated = 0;
  uint64_t repos_removed = 0;

  /// Applies one announcement (newer than what the entry follows).
  /// @returns true when `repos` changed.
  bool apply_announcement(const nostr::event& ev);

  /// Adds a root event to every wanted repository its `a` tags name.
  /// @returns the addresses that changed.
  std::vector<std::string> apply_root(const nostr::event& ev);

  /// A NIP-09 deletion: every wanted repository it names (by `a` address or
  /// by the announcement's id in `e`) whose announcement the store no longer
  /// holds is no longer wanted. The store has already applied the deletion
  /// (author-only), so it is the judge.
  /// @returns the addresses that changed.
  std::vector<std::string> apply_deletion(const nostr::event& ev);

  /// Adds the stored root events of `entry`'s repository to it.
  void add_stored_roots(grasp::repo_sync_entry& entry) const;

  /// Writes the entries of `addresses` (erasing those no longer wanted) and
  /// tells the listener. @returns the store's error, if any.
  caf::error commit(std::set<std::string> addresses);

  /// Counters, rebuild progress and repositories, without the mailbox.
  status_map status() const;

  /// How long the next window stays open.
  caf::timespan batch_window() const;

  static inline constexpr const char* name = "self-subscriber";
};

/// The SELF SUBSCRIBER: follows the hub's change feed for announcements
/// (30617) and root events (1617/1618/1619/1621), in windows of
/// `batch_window`, and keeps `repo_sync` current: an announcement counts
/// when its `relays` tag names this service; a newer one replaces the wanted
/// relays, and one that no longer names us removes the repository. At start
/// it rebuilds `repo_sync` from the stored announcements, so nothing
/// committed while it was down is missed. It quits with an error when the
/// hub goes down (a restart subscribes to the new hub and rebuilds) or the
/// store fails.
/// @param self The actor handle.
/// @param store The node's store (outlives the actor).
/// @param hub Where the change feed comes from.
/// @param listener Told `(changed, addresses)` after each commit.
/// @param config Service identity and windows.
self_subscriber_actor::behavior_type
self_subscriber(self_subscriber_actor::stateful_pointer<self_subscriber_state> self,
                store::event_store* store, handle_slot_ptr<hub_actor> hub,
                handle_slot_ptr<grasp_listener_actor> listener,
                self_subscriber_config config);

} // namespace ferry
