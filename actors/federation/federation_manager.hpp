#pragma once

#include "actors/federation/collections.hpp"
#include "actors/federation/peer_gate.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/signed_http.hpp"
#include "config/config.hpp"
#include "messages/control_plane.hpp"
#include "messages/federation.hpp"
#include "messages/ingest.hpp"
#include "messages/nostr/keys.hpp"
#include "messages/sync_manager.hpp"
#include "store/event_store.hpp"

#include <caf/actor_clock.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace ferry {

/// What the FEDERATION MANAGER needs.
struct federation_manager_deps {
  config::federation_config settings;
  /// The node key: signs our calls and the proofs in our answers.
  nostr::keypair keys;
  store::event_store* store = nullptr;
  /// Where active peers' sync servers go; the slot follows restarts.
  handle_slot_ptr<sync_manager_actor> sync_manager;
  /// Asked for the bound admin port, which a peer calls us back on.
  handle_slot_ptr<control_plane_actor> control_plane;
  /// Where peers reach our relay (`relay.public_url`); empty: built from
  /// `relay_address` and the bound relay port once known. The admin URL is
  /// `[federation] public_admin_url`, else built from the control plane's
  /// bound address and port.
  std::string relay_url;
  std::string relay_address = "127.0.0.1";
  std::atomic<uint16_t>* relay_port = nullptr;
  /// Where the relay learns which peers' node keys to refuse (null: the
  /// relay is not served).
  std::shared_ptr<peer_gate> refused_peers;
  /// How calls travel (`http_transport` in the node).
  signed_http_transport transport;
  /// Where pulled collections are ingested, and the I/O their connections
  /// run on (both empty: pulls are refused).
  std::vector<handle_slot_ptr<verifier_actor>> verifiers;
  std::shared_ptr<net::io_runtime> io;
  /// Notifications a peer did not take are retried after
  /// `retry_delay(attempts, retry_base, retry_cap)`.
  caf::timespan retry_base = std::chrono::seconds{1};
  caf::timespan retry_cap = std::chrono::minutes{5};
};

struct federation_manager_state {
  federation_manager_deps deps;
  /// Our node pubkey (hex): our entry in the links' version vectors.
  std::string self_key;
  /// What peers call us: relay and admin URLs (empty until known).
  std::string self_relay_url;
  std::string self_admin_url;
  /// Every link by peer name, as stored.
  std::map<std::string, peer_record> peers;
  /// Per peer: bumped by a reset, a redefinition or a removal, so answers
  /// to older calls are dropped.
  std::map<std::string, uint64_t> generations;
  /// Calls out, as "peer/op": one of each at a time.
  std::set<std::string> in_flight;
  /// The sync server definition last sent per peer, to skip no-op writes.
  std::map<std::string, std::string> applied;
  /// Peers whose sync server must go, once the sync manager runs.
  std::set<std::string> erase_due;
  /// A collection's size as last measured (a scan of all its events).
  struct measured_collection {
    /// The change log's last sequence number then.
    uint64_t change_seq = 0;
    std::chrono::steady_clock::time_point at;
    collection_size size;
  };
  /// By collection name: reused while no event was stored since, for at
  /// most a minute (deletions and expiry leave no change log entry).
  std::map<std::string, measured_collection> collection_sizes;
  /// Per peer: its sync server's counters as last read, for the traffic
  /// metrics.
  struct traffic_seen {
    uint64_t received = 0;
    uint64_t sent = 0;
    uint64_t bytes_received = 0;
    uint64_t bytes_sent = 0;
  };
  std::map<std::string, traffic_seen> traffic;
  /// Wrong registration passwords are paid for with time: each moves this
  /// on (see `wrong_password_wait` in the manager).
  std::chrono::steady_clock::time_point wrong_passwords_paid_until;
  /// Per exchanging peer: when its next safety-net reconciliation is due.
  std::map<std::string, caf::actor_clock::time_point> reconcile_due;
  uint64_t reconciliations = 0;
  uint64_t registrations_received = 0;
  uint64_t handshakes_ok = 0;
  uint64_t handshakes_failed = 0;
  uint64_t pin_mismatches = 0;
  uint64_t notices_delivered = 0;
  uint64_t links_removed_by_peer = 0;
  static inline constexpr const char* name = "federation-manager";
};

/// The sync server id of peer `name`.
std::string federation_server_id(const std::string& name);

/// The FEDERATION MANAGER keeps the links with other operators' nodes in the
/// `peers` family. On the side that defined a peer (config or PUT) it
/// registers with the peer's admin API, verifies the link every
/// `interval` (404: the peer dropped it, so we drop ours), pins the node key
/// the peer proves at the first good handshake and refuses a different one,
/// and runs the events of an active, unpaused, pinned link through the sync
/// server `federation.NAME` (paused, suspended or revoked: that server is
/// disabled, keeping its cursor). On the side a peer registered with it
/// answers by the incoming policy. Status changes on either side are
/// mirrored with version vectors (`settle`); notifications the peer does not
/// take are retried with backoff, across restarts. It serves our
/// collections to the peers they are offered to (list and preview) and runs
/// an operator's pull of a peer's collection (collection_pull).
federation_actor::behavior_type
federation_manager(
  federation_actor::stateful_pointer<federation_manager_state> self,
  federation_manager_deps deps);

} // namespace ferry
