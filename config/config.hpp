#pragma once

#include "config/policy_config.hpp"
#include "messages/federation.hpp"
#include "messages/sync.hpp"

#include <caf/expected.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::config {

/// Limits a relay applies to its clients (`[relay.limits]`).
struct relay_limits {
  /// Largest WebSocket frame accepted, in bytes.
  size_t max_frame_bytes = 512 * 1024;
  /// Open subscriptions per connection.
  size_t max_subscriptions = 32;
  /// Filters per REQ or COUNT.
  size_t max_filters = 16;
  /// Largest `limit` honoured per filter; bigger limits are clamped to it.
  size_t max_limit = 5000;
  /// `limit` applied to a filter that has none.
  size_t default_limit = 500;
  /// Index entries and stored events one COUNT may examine; a COUNT that
  /// needs more is answered CLOSED "blocked:" (NIP-45). At most this many
  /// COUNTs per connection are answered at once, as `max_subscriptions`.
  size_t max_count_scan = 1000000;
  /// Longest subscription id, in characters.
  size_t max_subscription_id_length = 64;
  /// Events dated further than this into the future are refused, in seconds.
  int64_t max_future_seconds = 900;
  /// Bytes queued for a client beyond which it is disconnected with a NOTICE.
  size_t max_outbound_bytes = 32 * 1024 * 1024;
  /// Client messages being processed at once per connection; reading pauses
  /// beyond it, so a flood of EVENTs slows its sender instead of growing memory.
  size_t max_inflight_messages = 256;
  /// WebSockets served at once; an upgrade beyond it is answered HTTP 503.
  size_t max_connections = 10000;
  /// WebSockets served at once to one IP address, 0 for no cap; an upgrade
  /// beyond it is answered HTTP 429. Behind a reverse proxy every client
  /// has the proxy's address: leave it at 0 there.
  size_t max_connections_per_ip = 0;
  /// Bytes queued for all clients together, in MiB: beyond it, a client
  /// holding more than its share (this divided among the connections) is
  /// disconnected with a NOTICE as it would get more; queries keep each
  /// connection within a quarter of its share, or a part of the room below
  /// a quarter of the budget when larger, so they fill at most half of it.
  /// With `max_connections` it bounds the memory clients can take.
  size_t max_outbound_total_mb = 512;
  /// Bytes of client messages held for all clients together, in MiB (read
  /// and not yet processed): beyond it, a client holding more than its
  /// share stops being read until its messages are processed, where
  /// `max_inflight_messages` alone let each client hold that many.
  size_t max_inbound_total_mb = 32;
};

/// NIP-77 negentropy sessions the relay serves (`[relay.negentropy]`).
struct negentropy_config {
  /// Serve NEG-OPEN / NEG-MSG / NEG-CLOSE and list 77 in NIP-11.
  bool enabled = true;
  /// Events one session may reconcile; a filter matching more is refused
  /// with NEG-ERR "blocked:".
  size_t max_items = 1000000;
  /// Open sessions per connection.
  size_t max_sessions_per_connection = 8;
  /// A session without a message for this long is closed (NEG-ERR "closed:").
  std::chrono::seconds idle_timeout{60};
  /// Largest negentropy message the relay sends, in bytes before hex encoding
  /// (nostr::negentropy::default_relay_frame_size_limit says why so large).
  size_t frame_size_limit = 250000;
  /// Memory for all sessions' item sets together (shared sets counted once)
  /// and their bookkeeping, in MiB; a NEG-OPEN that would exceed it is
  /// refused with NEG-ERR "blocked:".
  size_t max_memory_mb = 256;
};

/// TLS on the relay port (`[relay.tls]`): with a certificate the port speaks
/// only TLS (wss://, and https:// for NIP-11); without one, only plain TCP.
struct relay_tls_config {
  /// PEM certificate chain, server certificate first; empty: no TLS.
  std::string certfile;
  /// PEM private key of that certificate (unencrypted).
  std::string keyfile;
  /// PEM CA certificates; set: clients must present a certificate they
  /// signed (mutual TLS). Empty: no client certificate is asked for.
  std::string client_ca_file;

  bool enabled() const {
    return !certfile.empty();
  }
};

/// The Nostr relay the node serves (`[relay]`).
struct relay_config {
  std::string address = "127.0.0.1";
  uint16_t port = 7447;
  /// NIP-11 fields.
  std::string name = "ferry";
  std::string description = "A Ferry Nostr sync node";
  std::string contact;
  std::string icon;
  /// Hex pubkey of the operator (NIP-11 `pubkey`); empty for none.
  std::string operator_pubkey;
  /// The URL clients use to reach this relay (NIP-42 `relay` tags are checked
  /// against it); empty: the tag is not checked.
  std::string public_url;
  /// Clients must authenticate (NIP-42) before REQ, COUNT or EVENT.
  bool auth_required = false;
  /// Offer permessage-deflate (RFC 7692) to clients that ask for it.
  bool compression = false;
  /// Memory for pages read ahead for clients paging with `limit` + `until`
  /// (all connections together), in MiB; 0: no read-ahead.
  size_t read_ahead_mb = 32;
  relay_limits limits;
  negentropy_config negentropy;
  relay_tls_config tls;
};

/// The admin HTTP API (`[admin]`).
struct admin_config {
  std::string address = "127.0.0.1";
  uint16_t port = 7448;
  /// Accepted as `Authorization: Bearer <token>` on /api/; empty: none.
  std::string token;
  /// Hex pubkeys whose NIP-98 `Authorization: Nostr` events are accepted.
  std::vector<std::string> nip98_pubkeys;
  /// Serve /health and /metrics without auth on a non-loopback address too
  /// (on loopback they are always open).
  bool public_health = false;
};

/// The actor inspection port (`[console]`).
struct console_config {
  std::string address = "127.0.0.1";
  uint16_t port = 7449;
  /// Shared secret a console must present; required on a non-loopback address.
  std::string secret;
  /// Allow the `fault` command, which crashes an actor on purpose (drills, tests).
  bool fault_injection = false;
};

/// When `/health` says degraded besides a failed actor or a full disk
/// (`[health]`): thresholds per subsystem.
struct health_config {
  /// A sync server failing this many attempts in a row (TLS, pin and
  /// authentication failures count at once; given up always counts).
  int64_t sync_failing_attempts = 5;
  /// A sync server whose copy is behind by more than this many seconds
  /// (see ferry_sync_lag_seconds); 0: no lag check.
  int64_t sync_max_lag_seconds = 3600;
  /// The same for the relays GRASP sync fetches repositories from.
  int64_t grasp_failing_attempts = 5;
  /// GRASP relays are dropped when no repository needs them: 0 by default.
  int64_t grasp_max_lag_seconds = 0;
  /// A hosted relay whose syncs to the management API failed this many
  /// times in a row (given up always counts).
  int64_t infra_failing_attempts = 3;
};

/// How supervisors restart failed actors (`[supervision]`).
struct supervision_config {
  /// First restart delay, in milliseconds; it doubles per restart.
  int64_t base_ms = 100;
  /// Longest restart delay, in milliseconds.
  int64_t cap_ms = 30000;
  /// Random spread of each delay, as a fraction (0.2 = ±20%).
  double jitter = 0.2;
  /// An actor up this long has its delay reset, in seconds.
  int64_t stable_after_seconds = 60;
  /// More restarts than this within `window_seconds` escalate to the parent.
  int64_t max_restarts = 10;
  int64_t window_seconds = 60;
};

/// RocksDB (`[store]`).
struct store_config {
  std::string path = "./ferry-data";
  size_t block_cache_mb = 256;
  size_t write_buffer_mb = 64;
  bool sync_writes = false;
  /// How often expired events (NIP-40) are purged.
  std::chrono::seconds purge_interval{300};
  /// Free space (MiB) kept on the store's filesystem: below it new events
  /// are refused with `error: disk full`; 0 turns the reserve off.
  uint64_t reserve_mb = 64;
};

/// The ingest pipeline (`[ingest]`).
struct ingest_config {
  /// Signature-verifying workers; 0 = one per core.
  size_t verifiers = 0;
  /// Most events the writer commits in one WriteBatch.
  size_t writer_batch_max = 4096;
};

/// Logging (`[log]`).
struct log_config {
  /// trace, debug, info, warn, error, critical or off.
  std::string level = "info";
};

/// The node's own identity (`[node]`).
struct node_config {
  /// File holding the node's secret key (64 hex); created by `ferry keygen`,
  /// or generated on first start. Relative paths are under `store.path`.
  std::string key_file = "node.key";
};

/// Remote relays to sync with (`[[sync.server]]`, one table per server).
/// Each table has exactly the keys of the admin API's JSON body and passes
/// the same validator (`parse_sync_server`).
struct sync_config {
  std::vector<sync_server> servers;
};

/// GRASP-02 proactive sync (`[grasp]`): fetch the events of the
/// repositories whose announcements list this service from the relays they
/// name.
struct grasp_config {
  bool enabled = false;
  /// This service as announcements list it: "host" or "host:port"; a
  /// `relays` URL on that host (and port) means us. Required when enabled.
  std::string service_domain;
  /// Relays always connected and never dropped (normalized ws/wss URLs).
  std::vector<std::string> bootstrap_relays;
  /// Announcements and root events seen within this window are handled
  /// together.
  std::chrono::milliseconds batch_window{5000};
  /// How often the decision loop runs on its own.
  std::chrono::seconds tick{60};
  /// A relay away longer than this is synced fully again.
  std::chrono::seconds resync_after{900};
  /// A catch-up starts this long before the relay was last connected.
  std::chrono::seconds overlap_window{300};
  /// The daily full reconciliation runs at a random time in this range.
  std::chrono::seconds reconcile_min{23 * 3600};
  std::chrono::seconds reconcile_max{25 * 3600};
  /// Most repositories or root ids in one filter.
  size_t group_size = 100;
  /// Most filters in one REQ.
  size_t max_filters_per_subscription = 10;
  /// Most live filters on one relay before its subscriptions consolidate.
  size_t max_filters_per_relay = 100;
  /// A batch of subscriptions without every EOSE by then has failed.
  std::chrono::seconds batch_timeout{300};
};

/// The S3 bucket hosted relays with `blossom_enabled` store media in
/// (`[infra.blossom]`); sent to the management API with the relay's schema
/// as `key_prefix`.
struct infra_blossom_config {
  std::string endpoint;
  std::string region;
  std::string bucket;
  std::string access_key;
  std::string secret_key;
};

/// The LiveKit server hosted relays with `livekit_enabled` use
/// (`[infra.livekit]`).
struct infra_livekit_config {
  std::string server_url;
  std::string api_key;
  std::string api_secret;
};

/// The infra reconciler, which pushes hosted relays to a zooid-style
/// management API (`[infra]`).
struct infra_config {
  /// Push hosted relays to `api_url`; false keeps them pending.
  bool enabled = true;
  /// Base URL of the management API: https://, or http:// to a loopback
  /// address; empty: the reconciler stays idle.
  std::string api_url;
  /// Hosted relays live at `<subdomain>.<relay_domain>`; required with
  /// `api_url`.
  std::string relay_domain;
  /// Zooid roles sent with every relay, as a JSON object
  /// (`{"member": {"pubkeys": [...], "can_invite": false, ...}}`).
  std::string roles_json = "{}";
  /// One request may take this long, in milliseconds.
  int64_t request_timeout_ms = 5000;
  /// Retry n waits retry_base_ms * 2^(n-1), at most retry_cap_ms.
  int64_t retry_base_ms = 30000;
  int64_t retry_cap_ms = 900000;
  /// Consecutive failures after which a relay is given up (until it changes).
  int64_t max_attempts = 6;
  infra_blossom_config blossom;
  infra_livekit_config livekit;

  /// `enabled` and an `api_url`: the reconciler talks to the API.
  bool active() const {
    return enabled && !api_url.empty();
  }
};

/// Mutual TLS on the cluster port (`[cluster.tls]`).
struct cluster_tls_config {
  /// PEM certificate chain of this node; empty: no TLS.
  std::string certfile;
  /// PEM private key of that certificate.
  std::string keyfile;
  /// PEM CA certificates a peer's certificate must chain to.
  std::string cafile;

  bool enabled() const {
    return !certfile.empty();
  }
};

/// This node as a member of a cluster of ferry nodes (`[cluster]`).
struct cluster_config {
  /// Join a cluster; false: the node syncs every relay itself.
  bool enabled = false;
  /// This node's unique name in the cluster; required when enabled.
  std::string name;
  /// Where the cluster port listens (and what the node announces).
  std::string address = "127.0.0.1";
  uint16_t port = 7450;
  /// Other members to join through, as "host:port".
  std::vector<std::string> seeds;
  cluster_tls_config tls;
  /// Node keys allowed to join (64 hex each); empty: any key.
  std::vector<std::string> members;
  /// A member silent this long is dead and its relays move.
  std::chrono::milliseconds failure_timeout{5000};
  /// How often members heartbeat each other.
  std::chrono::milliseconds heartbeat{1000};
  /// A leaving member waits at most this long, after its goodbye, for the
  /// others to report its relays connected before it stops.
  std::chrono::milliseconds handover_timeout{5000};
  /// A member dead or left this long is forgotten: its counters are folded
  /// out of the control plane's version vectors.
  std::chrono::milliseconds forget_after{3600000};
  /// How often each replication link reconciles everything with its member
  /// (NIP-77) to repair what the live tail missed.
  std::chrono::milliseconds reconcile_interval{60000};
};

/// Links with other operators' nodes (`[federation]`).
struct federation_config {
  /// Answer peers and run the configured ones; false: the federation routes
  /// answer 503.
  bool enabled = false;
  /// How this node introduces itself to peers (their name for the link);
  /// empty: "node-" and the first 12 hex of the node pubkey.
  std::string name;
  /// Where peers call our admin API back (behind a proxy, the public URL);
  /// empty: http:// with `admin.address` and the bound admin port.
  std::string public_admin_url;
  /// Which way events flow with active peers.
  federation_mode mode = federation_mode::sync;
  /// How often each peer is verified and reconciled.
  std::chrono::seconds interval{30};
  /// What happens to a peer that registers with us.
  incoming_policy incoming = incoming_policy::require_approval;
  /// Links peers registered that wait for our operator's approval, at most;
  /// a registration beyond it is answered 429 and not stored.
  size_t max_pending_links = 100;
  /// For `auto_accept` and `require_password`: incoming links (active or
  /// suspended) at most before a registration is admitted without our
  /// operator; beyond it one is answered 429 and not stored. Each admitted
  /// link is a peer this node connects to and serves.
  size_t max_incoming_links = 100;
  /// For `require_password`: the hash of the password (`password` in the
  /// file is hashed at load and never kept).
  std::string password_hash;
  /// `[[federation.peer]]`: each table passes `parse_peer_definition`.
  std::vector<peer_definition> peers;
  /// `[[federation.collection]]`: what peers may list, preview and pull.
  std::vector<collection_definition> collections;
};

/// Everything `ferry.toml` can say. Every key has the default shown here.
struct config {
  relay_config relay;
  admin_config admin;
  console_config console;
  health_config health;
  store_config store;
  ingest_config ingest;
  log_config log;
  node_config node;
  supervision_config supervision;
  sync_config sync;
  grasp_config grasp;
  infra_config infra;
  cluster_config cluster;
  federation_config federation;
  policy_config policy;
  /// The file this was read from; empty for the embedded default.
  std::string source;
};

/// Reads and validates `path`. An unknown key, a wrong type or a bad value is
/// an `ec::invalid_configuration` error whose text names the file, the key and
/// what was expected, e.g.
/// `ferry.toml: relay.port: expected an integer in 1..65535, got "abc"`.
caf::expected<config> load_file(const std::string& path);

/// Parses TOML text; `source_name` is used in error messages.
caf::expected<config> load_string(std::string_view toml,
                                  const std::string& source_name);

/// Every key `ferry.toml` accepts, as dotted paths (`relay.limits.max_limit`),
/// sections in file order; lets tests prove `ferry.example.toml` documents the
/// whole schema.
std::vector<std::string> key_paths();

/// Memberwise equality, `source` included.
bool operator==(const relay_limits& x, const relay_limits& y);
bool operator==(const negentropy_config& x, const negentropy_config& y);
bool operator==(const relay_tls_config& x, const relay_tls_config& y);
bool operator==(const relay_config& x, const relay_config& y);
bool operator==(const admin_config& x, const admin_config& y);
bool operator==(const console_config& x, const console_config& y);
bool operator==(const health_config& x, const health_config& y);
bool operator==(const store_config& x, const store_config& y);
bool operator==(const ingest_config& x, const ingest_config& y);
bool operator==(const log_config& x, const log_config& y);
bool operator==(const node_config& x, const node_config& y);
bool operator==(const supervision_config& x, const supervision_config& y);
/// Servers compared by canonical JSON, in order.
bool operator==(const sync_config& x, const sync_config& y);
bool operator==(const grasp_config& x, const grasp_config& y);
bool operator==(const infra_config& x, const infra_config& y);
bool operator==(const cluster_config& x, const cluster_config& y);
bool operator==(const federation_config& x, const federation_config& y);
bool operator==(const config& x, const config& y);

} // namespace ferry::config
