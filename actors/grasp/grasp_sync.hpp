#pragma once

#include "actors/grasp/grasp_plan.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/live_value.hpp"
#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/grasp.hpp"
#include "messages/pending_batches.hpp"
#include "store/event_store.hpp"

#include <caf/timespan.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace ferry {

/// Tunables of GRASP SYNC.
struct grasp_sync_config {
  grasp::plan_config plan;
  /// Relays always connected and never dropped (normalized URLs).
  std::vector<std::string> bootstrap_relays;
  /// How often the decision loop runs on its own.
  caf::timespan tick = std::chrono::seconds{60};
  /// A batch without every EOSE by then has failed.
  caf::timespan batch_timeout = std::chrono::minutes{5};
  /// Unix seconds: the time base of everything persisted. Tests drive it.
  std::function<int64_t()> clock = unix_now;
  /// Seeds the draw of reconciliation times; 0: a random seed.
  uint64_t seed = 0;
  /// This node's cluster name; empty: no cluster, every relay runs here.
  /// In a cluster a relay runs only on its owner among the live members
  /// (rendezvous hashing of its URL, as for sync servers).
  std::string cluster_node;
  /// `[grasp]` as the last reload left it (null: the tunables above stay).
  /// Read before each decision: the plan's tunables, the bootstrap relays
  /// and the tick follow it; the batch timeout stays as PENDING BATCHES
  /// got it at the start.
  live_value_ptr<config::grasp_config> live;
};

/// The tunables `[grasp]` sets (without `live`, clock and seed).
grasp_sync_config grasp_sync_config_from(const config::grasp_config& cfg);

struct grasp_sync_state {
  /// A batch of subscriptions sent (or about to be sent) to a relay.
  struct open_batch {
    std::string relay;
    /// Assigned by PENDING BATCHES once it answers; 0 until then.
    uint64_t id = 0;
    std::vector<grasp::live_subscription> subscriptions;
    /// What the batch fetches, for the pending part of the decision.
    grasp::item_set items;
    /// It catches up confirmed items (subscriptions with `since`).
    bool catchup = false;
  };

  /// A flush sent to a relay's connection: its number and when.
  struct flush_request {
    uint64_t serial = 0;
    int64_t at = 0;
  };

  grasp_sync_config config;
  /// The snapshot of `config.live` the tunables come from (null: none yet).
  std::shared_ptr<const config::grasp_config> applied;
  store::event_store* store = nullptr;
  handle_slot_ptr<grasp_driver_actor> driver;
  /// Our own tracker; it tells us when a batch settles.
  pending_batches_actor batches;

  /// Wanted, confirmed, pending and connection states: what `decide` reads.
  grasp::plan_state world;

  /// Open batches by our sequence number (their payload at PENDING BATCHES).
  std::map<uint64_t, open_batch> open;
  uint64_t next_seq = 1;

  /// The REQs open on each relay, by relay URL and subscription id.
  std::map<std::string, std::map<std::string, grasp::live_subscription>> live;

  /// The SELF SUBSCRIBER's start-up rebuild is complete: decisions may run.
  bool rebuilt = false;

  /// The live cluster members, once the cluster told; until then a cluster
  /// node runs no relay.
  std::optional<std::vector<std::string>> live_members;

  /// The flush awaited from each connected relay (a newer one replaces it).
  std::map<std::string, flush_request> flushes;
  uint64_t flush_serial = 0;

  std::mt19937_64 random;

  /// Counters since the actor started.
  uint64_t decisions = 0;
  uint64_t connects = 0;
  uint64_t adds = 0;
  uint64_t drops = 0;
  uint64_t releases = 0;
  uint64_t forgets = 0;
  uint64_t full_syncs = 0;
  uint64_t consolidations = 0;
  uint64_t batches_confirmed = 0;
  uint64_t batches_failed = 0;

  /// The relay's record, created when missing.
  grasp::relay_sync_entry& relay(const std::string& url);

  /// Whether this node runs `url`'s connection: always without a cluster,
  /// else when it owns the URL among the live members.
  bool runs_here(const std::string& url) const;

  /// The member that runs `url`: "" without a cluster, "nobody yet" before
  /// the cluster told the live set.
  std::string owner_of(const std::string& url) const;

  /// Recomputes `world.pending` from `open`.
  void refresh_pending();

  /// Every wanted repository as a JSON array.
  std::string repos_json() const;

  /// One repository as a JSON object; empty when it is not wanted.
  std::string repo_json(const std::string& address) const;

  /// Counters, relays and subscriptions, without the mailbox.
  status_map status() const;

  static inline constexpr const char* name = "grasp-sync";
};

/// GRASP SYNC: runs the GRASP-02 decision loop. It holds `repo_sync`
/// (written by the SELF SUBSCRIBER, reloaded on `changed`) and `relay_sync`
/// (its own), decides on every change, on every tick and when a relay
/// connects, but only once the SELF SUBSCRIBER's start-up rebuild is
/// complete, and acts through the relay driver: `connect` with the relay's
/// subscriptions, `subscribe` to add filters on a live connection,
/// `unsubscribe` when consolidating or when a catch-up settles, `drop`.
/// Each set of subscriptions is a batch at its own PENDING BATCHES; what a
/// batch's EOSEs cover becomes confirmed in `relay_sync`, and a relay's
/// `last_connected` moves with its connection's flushes. Without a driver it
/// keeps the indexes and decides, but starts nothing. In a cluster
/// (`config.cluster_node`) it runs only the relays this node owns among the
/// live members the CLUSTER MANAGER tells it (`members`): a relay that moves
/// here is connected, one that moves away released; none before the first
/// live set.
/// @param self The actor handle.
/// @param store The node's store (outlives the actor).
/// @param driver The relay driver (may be empty).
/// @param rebuilder The SELF SUBSCRIBER, asked at start whether its rebuild
///                  is complete (may be empty: it says so itself).
/// @param config Plan, bootstrap relays, tick, clock.
grasp_sync_actor::behavior_type
grasp_sync(grasp_sync_actor::stateful_pointer<grasp_sync_state> self,
           store::event_store* store,
           handle_slot_ptr<grasp_driver_actor> driver,
           handle_slot_ptr<self_subscriber_actor> rebuilder,
           grasp_sync_config config);

} // namespace ferry
