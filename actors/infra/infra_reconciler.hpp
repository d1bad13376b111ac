#pragma once

#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/live_value.hpp"
#include "actors/runtime/signed_http.hpp"
#include "config/config.hpp"
#include "messages/infra.hpp"
#include "messages/nostr/keys.hpp"
#include "net/io_runtime.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

// -- talking to the management API ---------------------------------------------

/// Requests to the management API are signed HTTP calls (actors/runtime/
/// signed_http.hpp); tests swap the transport.
using infra_request = signed_http_request;
using infra_response = signed_http_response;
using infra_transport = signed_http_transport;

// -- decisions (exposed for tests) ---------------------------------------------

/// The JSON body the management API gets for `relay`: `host`, `schema`,
/// `secret` (only when `secret` is not empty: a create), `inactive`, `info`,
/// `policy`, `groups`, `management`, `push`, `roles`, `blossom` and
/// `livekit`, from the relay and the `[infra]` settings.
std::string management_body(const hosted_relay& relay,
                            const config::infra_config& settings,
                            const std::string& secret);

/// A fresh relay secret: 64 hex characters of a valid secp256k1 key from
/// the OS's secure random source.
std::string generate_relay_secret();

// -- the actor -------------------------------------------------------------------

/// What the INFRA RECONCILER needs.
struct infra_reconciler_deps {
  /// `[infra]` as the last reload left it, read at each use: a new
  /// `api_url` or retry setting applies to the next request or retry.
  live_value_ptr<config::infra_config> settings;
  /// Signs every request (NIP-98).
  nostr::keypair keys;
  /// Where relays are read and outcomes recorded; the slot follows restarts.
  handle_slot_ptr<relay_registry_actor> registry;
  /// How requests travel (`http_transport` in the node).
  infra_transport transport;
  /// More activities than this waiting in the mailbox: they are dropped for
  /// one reconcile, which covers them all.
  size_t backlog_limit = 1000;
  /// This node's cluster name; empty: no cluster, every relay is ours.
  std::string cluster_node;
};

struct infra_reconciler_state {
  /// What the reconciler keeps per relay it acts on.
  struct track {
    /// Bumped by every new sync or retry; a timer or an answer of an older
    /// generation is stale.
    uint64_t generation = 0;
    /// A request is out; changes meanwhile set `rerun`.
    bool in_flight = false;
    bool rerun = false;
    /// A retry timer is set.
    bool retry_due = false;
    /// The request out (POST may fall back to PATCH on 409; DELETE once
    /// the relay was deleted here).
    std::string method;
    /// The relay was deleted: what is out or due is its DELETE.
    bool deleting = false;
    /// Consecutive failed DELETEs (they have no activity log to count in).
    uint32_t delete_failures = 0;
    /// The version being pushed.
    hosted_relay relay;
  };

  infra_reconciler_deps deps;
  /// The live members, once the cluster told; until then a cluster node
  /// owns no relay.
  std::optional<std::vector<std::string>> live;
  /// Whether this node pushes relay `id`: always without a cluster, else
  /// when it is the owner of the id among the live members (rendezvous
  /// hashing, as for the sync servers).
  bool owns(const std::string& id) const;
  /// The snapshot of `deps.settings` read last; held so that what refers to
  /// it stays valid until the next read.
  std::shared_ptr<const config::infra_config> settings;
  std::map<std::string, track> relays;
  /// Relays given up, with why.
  std::map<std::string, std::string> given_up;
  /// The last activity seen; a gap means some were missed.
  uint64_t last_seq = 0;
  /// A reconcile is asked for or running: activities until its answer are
  /// covered by it.
  bool reconcile_due = false;
  /// A `members` request waiting for the management API: the relay it is
  /// for (errors name it) and who waits.
  struct member_request {
    std::string id;
    caf::typed_response_promise<std::string> promise;
  };
  /// `members` requests waiting for the management API, by token.
  std::map<uint64_t, member_request> member_requests;
  uint64_t next_token = 0;
  uint64_t syncs_ok = 0;
  uint64_t syncs_failed = 0;
  uint64_t retries_scheduled = 0;
  uint64_t reconciles = 0;
  static inline constexpr const char* name = "infra-reconciler";
};

/// The INFRA RECONCILER pushes hosted relays to a zooid-style management
/// API. It acts on the RELAY REGISTRY's activities: a create, update,
/// activate or deactivate syncs the relay now; a `fail_relay_sync` only
/// schedules a retry after `retry_delay(failures)` (never an immediate sync),
/// and after `max_attempts` consecutive failures the relay is given up (in
/// /health) until it changes. At start, and whenever it may have missed
/// activities (a gap in their sequence numbers, or more than
/// `backlog_limit` waiting), it reconciles: every pending relay is synced now
/// if its `sync_error` is empty, otherwise its retry is scheduled from the
/// failures in its log. A relay never synced is created (`POST
/// /relay/{id}`, with a fresh secret that only that body carries), any
/// other is updated (`PATCH`); a POST answered 409 (the API has it already)
/// is followed by a PATCH. A relay deleted here is deleted on the API
/// (`DELETE /relay/{id}`; 404 counts as done), retried like a push; the
/// store keeps the deletion until the API answered, so a reconcile after a
/// restart, or on a member that took the relay over, sends it again.
/// Timers go through CAF's clock.
///
/// In a cluster (`deps.cluster_node` set) every member holds every hosted
/// relay, and only the owner of a relay's id among the live members
/// (rendezvous hashing) pushes or deletes it: nothing until the cluster
/// tells the live set, then a reconcile at each change of it, so a new
/// owner pushes what it now owns and is not yet synced from here.
/// With `settings.active()` false it stays idle.
infra_reconciler_actor::behavior_type
infra_reconciler(
  infra_reconciler_actor::stateful_pointer<infra_reconciler_state> self,
  infra_reconciler_deps deps);

} // namespace ferry
