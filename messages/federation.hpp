#pragma once

// Federation: links between nodes of different operators. The definitions an
// operator writes (`[[federation.peer]]`, `PUT /api/v1/federation/peers/NAME`),
// the link state both sides keep in the `peers` family, the rule that settles
// concurrent status changes, and the FEDERATION MANAGER's interface.

#include "messages/atoms.hpp"
#include "messages/cluster/version_vector.hpp"
#include "messages/federation_call.hpp"
#include "messages/inspector.hpp"
#include "messages/nostr/filter.hpp"
#include "messages/nostr/keys.hpp"
#include "messages/status.hpp"

#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

/// Which way events flow with active peers (`[federation] mode`).
enum class federation_mode : uint8_t {
  /// Both ways.
  sync,
  /// Only send.
  publish,
  /// Only receive.
  subscribe,
};

/// What this node does with a peer that registers with it.
enum class incoming_policy : uint8_t {
  auto_accept,
  require_approval,
  require_password,
  deny,
};

/// The operator's switch on one peer: exchange events, or hold still
/// (keeping cursor and pin).
enum class peer_mode : uint8_t {
  sync,
  paused,
};

/// The status of a link, mirrored on both sides. Ordered from the least to
/// the most restrictive: concurrent changes settle on the greater one.
enum class link_status : uint8_t {
  active,
  pending,
  suspended,
  revoked,
};

std::string to_string(federation_mode x);
std::string to_string(incoming_policy x);
std::string to_string(peer_mode x);
std::string to_string(link_status x);

bool from_string(std::string_view text, federation_mode& out);
bool from_string(std::string_view text, incoming_policy& out);
bool from_string(std::string_view text, peer_mode& out);
bool from_string(std::string_view text, link_status& out);

/// 1 to 48 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit: a
/// peer's name fits the sync server id `federation.NAME`.
bool is_peer_name(std::string_view name);

/// An admin URL as peers call it: http:// or https://, a host, an optional
/// port and nothing after the authority but an optional '/'.
bool is_admin_url(std::string_view url);

/// A peer as its operator defines it.
struct peer_definition {
  std::string name;
  /// The peer's relay: a normalized ws:// or wss:// URL.
  std::string endpoint;
  /// The peer's admin API: an http:// or https:// URL without a trailing
  /// slash, e.g. "https://b.example.com:7448".
  std::string admin_url;
  /// A PEM CA file trusted for the peer's TLS (relay and admin API); empty:
  /// the system store.
  std::string ca;
  peer_mode mode = peer_mode::sync;
  /// What we ask the peer for (and send it, in publish or sync mode).
  std::vector<nostr::filter> filters;
  /// The names of our collections this peer may list, preview and pull.
  std::vector<std::string> collections;
  /// Sent when registering with a peer whose policy asks for a password
  /// (theirs, so kept as given; never shown by the API or the console).
  std::string password;
};

/// Parses a peer definition (a JSON object): `endpoint`, `admin_url` and
/// `filters` are required; `name` must equal `name_from_path` when both are
/// given. @returns an `ec::invalid_input` error naming the field
/// (`"admin_url: expected an http:// or https:// URL"`).
caf::expected<peer_definition> parse_peer_definition(std::string_view json,
                                                     const std::string&
                                                       name_from_path
                                                     = {});

/// The canonical JSON of a definition; parsing it gives it back.
std::string to_json(const peer_definition& def);

bool operator==(const peer_definition& x, const peer_definition& y);

/// A named set of events this node offers its peers.
struct collection_definition {
  std::string name;
  std::vector<nostr::filter> filters;
};

bool operator==(const collection_definition& x,
                const collection_definition& y);

/// What the last handshake with a peer's admin API gave.
struct handshake_result {
  bool success = false;
  /// "registered", "pending", "failed" or "skipped"; empty: never tried.
  std::string status;
  std::string message;
  /// The peer's name for this link.
  std::string remote_link_id;
  /// 0: no HTTP answer.
  uint32_t http_status = 0;
  std::string error;
  int64_t at = 0;
};

/// A notification the peer has not acknowledged yet; retried with backoff
/// until it answers, across restarts.
struct pending_notice {
  /// "status" (mirror our link status) or "delete" (we removed the link).
  std::string kind;
  uint32_t attempts = 0;
  /// Unix time of the next attempt.
  int64_t next_at = 0;
};

/// One link as this node keeps it in the `peers` family.
struct peer_record {
  peer_definition def;
  /// The peer registered with us (we answer it) rather than we with it (we
  /// register, verify and run the sync connection).
  bool incoming = false;
  link_status status = link_status::pending;
  /// Counts each side's status changes, keyed by node pubkey.
  cluster::version_vector version;
  /// The peer's node pubkey, pinned at the first good handshake; empty:
  /// never contacted.
  std::string pinned;
  /// A pubkey other than the pin the peer proved last; empty: none. While
  /// set, nothing is exchanged.
  std::string pin_mismatch;
  /// A link a peer registered with us whose pin our operator reset: the key
  /// pinned before, refused by the relay until the peer's next registration
  /// pins a key to this link again.
  std::string released_pin;
  int64_t last_seen = 0;
  handshake_result handshake;
  std::vector<pending_notice> pending;
  /// Removed by its operator; kept only until the peer is told.
  bool removed = false;
};

/// Compact JSON of the whole record, as the store keeps it.
std::string to_json(const peer_record& record);

/// Reads what `to_json(const peer_record&)` wrote.
caf::expected<peer_record> parse_peer_record(std::string_view json);

/// The version vector as a JSON object of counters by pubkey.
std::string to_json(const cluster::version_vector& version);

/// Reads a version vector object (`{"<pubkey>": n, ...}`); the text in an
/// error names `field`.
caf::expected<cluster::version_vector>
parse_version(std::string_view json, const std::string& field);

/// A link's status with its history.
struct versioned_status {
  link_status status = link_status::pending;
  cluster::version_vector version;
};

/// Settles our status against the peer's: the newer one wins; concurrent
/// changes settle on the more restrictive status with both histories merged,
/// so both sides reach the same result whichever hears of the other first.
/// A revoked link stays revoked.
versioned_status settle(const versioned_status& ours,
                        const versioned_status& theirs);

// -- passwords ----------------------------------------------------------------

/// `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>` of `password` with a
/// fresh random salt.
std::string hash_password(std::string_view password);

/// Whether `hash` has the form `hash_password` writes.
bool is_password_hash(std::string_view hash);

/// Whether `password` hashes to `hash` (compared in constant time).
bool password_matches(std::string_view password, std::string_view hash);

// -- proofs of identity -------------------------------------------------------

/// The proof a node puts in its answer to a peer's NIP-98 signed call: its
/// own NIP-98 signature, with the caller's Authorization header as payload,
/// for the URL the caller signed (its `u` tag: behind a TLS-terminating
/// proxy that is https:// while we serve http://) or `fallback_url` when the
/// header names none.
std::string answer_proof(const nostr::keypair& keys,
                         std::string_view authorization,
                         std::string_view fallback_url,
                         std::string_view method, int64_t now);

/// The node key (hex) that proved itself in a peer's answer to our call to
/// `url` with `method` and our `authorization`; "" when `proof` proves
/// nothing. Either scheme of `url` is taken: a peer behind a proxy may know
/// only the http:// URL it serves, and the proof is bound to our one
/// Authorization header anyway.
std::string proven_key(std::string_view proof, std::string_view url,
                       std::string_view method, std::string_view authorization,
                       int64_t now);

// -- the actor ----------------------------------------------------------------

/// The answer of a peer's admin API to one of our calls.
struct federation_answer {
  std::string peer;
  /// "register", "verify", "status", "delete".
  std::string op;
  /// Bumped per call: an answer from before a reset or redefinition is
  /// stale.
  uint64_t generation = 0;
  /// 0: no HTTP answer (then `body` says why).
  uint32_t status = 0;
  std::string body;
  /// What we signed and where we sent it, to check the peer's proof.
  std::string authorization;
  std::string url;
  std::string method;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, federation_answer& x) {
  return f(caf::meta::type_name("federation_answer"), x.peer, x.op,
           x.generation, x.status, x.body, x.authorization, x.url, x.method);
}

/// The FEDERATION MANAGER: keeps the links with other operators' nodes,
/// answers their handshakes, and runs each active peer's events through a
/// sync server `federation.NAME`.
using federation_actor = caf::typed_actor<
  // One admin API request (an operator's or a peer's).
  caf::replies_to<federation_call>::with<federation_reply>,
  // Pin mismatches and peers that refuse us, for /health.
  caf::replies_to<atom::health>::with<health_report>,
  // Counters and the peers' states.
  caf::replies_to<atom::get, atom::status>::with<status_map>,
  // INTERNAL: time to verify peers and deliver what is pending.
  caf::reacts_to<atom::tick>,
  // INTERNAL: a peer's admin API answered (or did not).
  caf::reacts_to<federation_answer>>;

} // namespace ferry
