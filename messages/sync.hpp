#pragma once

#include "messages/event_rules.hpp"
#include "messages/nostr/filter.hpp"
#include "messages/nostr/hex.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

/// Which way events flow between this node and a remote relay.
enum class sync_direction : uint8_t {
  /// Remote → here.
  down,
  /// Here → remote.
  up,
  both,
};

/// How a catch-up finds what is missing.
enum class sync_mode : uint8_t {
  /// REQ with `since` (minus the overlap window), then stay subscribed.
  req_stream,
  /// NIP-77 set reconciliation, then stay subscribed.
  negentropy,
};

/// What the remote relay's NIP-11 document must say before syncing.
enum class relay_info_mode : uint8_t {
  /// Fetched and checked (identity against `auth_pubkey`); no sync without it.
  required,
  /// Fetched and checked when available; a missing document does not block.
  best_effort,
  /// Not fetched.
  disabled,
};

/// When this node authenticates (NIP-42) to the remote relay.
enum class auth_mode : uint8_t {
  /// Answer the relay's AUTH challenge when it sends one.
  on_challenge,
  /// Authentication is required: a relay that never challenges, or refuses
  /// the AUTH, is a failed connection.
  always,
  /// Never answer a challenge.
  never,
};

std::string to_string(sync_direction x);
std::string to_string(sync_mode x);
std::string to_string(relay_info_mode x);
std::string to_string(auth_mode x);

/// Parses the names `to_string` produces. @returns false for any other text.
bool from_string(std::string_view text, sync_direction& out);
bool from_string(std::string_view text, sync_mode& out);
bool from_string(std::string_view text, relay_info_mode& out);
bool from_string(std::string_view text, auth_mode& out);

/// A TLS public key pin: the certificate chain must hold a key whose SPKI
/// SHA-256 digest equals the pin.
struct tls_pin {
  /// Only "spki_sha256".
  std::string type = "spki_sha256";
  /// The digest as 64 lowercase hex characters or as base64 of 32 bytes,
  /// kept as written.
  std::string value;
};

/// The digest of a valid pin; nullopt for an invalid one.
std::optional<nostr::bytes32> pin_digest(const tls_pin& pin);

/// TLS towards a remote relay.
struct sync_tls {
  /// "required" (the URL must be wss://) or "disabled" (ws://); when not
  /// given, the URL's scheme decides.
  std::string mode = "required";
  /// Name to verify the certificate against (and send as SNI) instead of the
  /// URL's host; empty: the URL's host.
  std::string hostname;
  /// PEM CA bundle trusted in addition to the system store; empty: the
  /// system store alone.
  std::string ca_certfile;
  /// PEM client certificate and key for mutual TLS; both or neither.
  std::string client_certfile;
  std::string client_keyfile;
  /// When non-empty, the remote must present one of these keys.
  std::vector<tls_pin> pins;
};

/// Built-in write-policy rules one sync server adds to `[policy]` for what
/// it sends (JSON `policy`, TOML `[sync.server.policy]`): its connection
/// applies them before the ingest path, so an event from that server must
/// pass both. Every rule is off by default; the names and meanings are those
/// of `[policy]`.
struct sync_policy : event_rules {
  /// `rate_limit`: events per second this server may deliver, refilling a
  /// bucket of `burst`; 0: no limit. Over it: `rate-limited:`, and the cursor
  /// stays below the event, so a later catch-up asks again.
  ferry::rate_limit rate_limit;

  /// No rule is set.
  bool empty() const;
};

/// One remote relay to sync with: what the admin API accepts and returns,
/// what `[[sync.server]]` in ferry.toml holds, and what `sync_servers` stores.
struct sync_server {
  /// `[a-z0-9][a-z0-9._-]{0,63}`; the key everywhere (API path, store, stats).
  std::string id;
  /// Normalized ws:// or wss:// URL (see `nostr::relay_url`).
  std::string url;
  bool enabled = true;
  /// The remote relay's expected identity: 64 lowercase hex, compared with
  /// its NIP-11 `self` (else `pubkey`); empty: not checked.
  std::string auth_pubkey;
  /// What to sync; at least one filter.
  std::vector<nostr::filter> filters;
  sync_direction direction = sync_direction::down;
  sync_mode mode = sync_mode::req_stream;
  /// A catch-up restarts this far before the cursor, in 0..86400 seconds, to
  /// pick up events a relay stored late or with a skewed clock.
  int64_t overlap_window_seconds = 300;
  /// When the filters leave out kind 5: also fetch the NIP-09 deletions by
  /// the authors of what was synced (actors/sync/relay_deletions.hpp).
  bool follow_deletions = true;
  /// Mode negentropy, one filter: a catch-up whose local set is empty pages
  /// the remote with REQ instead of reconciling, unless this is set (every
  /// id would be fetched either way; actors/sync/neg_catchup.hpp).
  bool reconcile_when_empty = false;
  sync_policy policy;
  relay_info_mode relay_info = relay_info_mode::best_effort;
  /// JSON: `"auth": {"type": "nip42", "mode": "..."}`.
  auth_mode auth = auth_mode::on_challenge;
  sync_tls tls;
  /// The operator's own notes: a JSON object, kept as serialized text.
  std::string metadata_json = "{}";
};

/// Parses and validates a sync server definition (a JSON object). Unknown
/// and duplicate keys are rejected. `id_from_path` (the admin API's path
/// segment; may be empty) must equal the body's "id" when both are present,
/// and stands in for it when the body has none.
/// @returns the normalized definition, or an `ec::invalid_input` error whose
///          text names the field: `"<field path>: <reason>"`, e.g.
///          `filters[1].kinds: must be a list of integers in [0, 65535]` or
///          `url: expected a ws:// or wss:// URL`.
caf::expected<sync_server> parse_sync_server(std::string_view json,
                                             const std::string& id_from_path
                                             = {});

/// The canonical JSON of a definition: every field, keys in a fixed order,
/// no whitespace. What the API returns and what the store keeps; parsing it
/// gives the same definition back.
std::string to_json(const sync_server& server);

/// Equal canonical JSON.
bool operator==(const sync_server& x, const sync_server& y);
bool operator!=(const sync_server& x, const sync_server& y);

/// Whether what the cursors of `from` say holds for `to` too: the same
/// remote, the same filters and the same lasting rules of the server's own
/// policy. Otherwise `to` syncs something else, and its cursors start over
/// (a new era, store/sync_store.hpp): a cursor made for kinds [1] says
/// nothing of the kind-7 events below it. Direction, mode, TLS, auth, the
/// overlap window and the rate limit change no cursor's meaning (a
/// direction switched off and on again is an outage of that half).
bool keeps_cursors(const sync_server& from, const sync_server& to);

/// A position in the event order a catch-up walks: every event the server's
/// filters match below `created_at` that the remote gave us is stored. It
/// advances only after the events it covers are committed (`id` is unused:
/// zero). `era`: the definition's era it was made under; it is the server's
/// cursor only while the server has that era (store/sync_store.hpp).
struct sync_cursor {
  int64_t created_at = 0;
  nostr::bytes32 id{};
  uint64_t era = 0;
};

/// What this node remembers per sync server between runs. The cursor is not
/// here: it has a key of its own that only the writer writes, after the
/// events it covers are committed (store/sync_store.hpp).
struct sync_runtime_state {
  /// Events from the remote: received, stored, already held, refused by
  /// validation or policy, and dropped for not matching the filters.
  uint64_t received = 0;
  uint64_t accepted = 0;
  uint64_t duplicate = 0;
  uint64_t rejected = 0;
  uint64_t filtered = 0;
  /// Of `rejected`: refused by the write policy or the store's rules.
  uint64_t refused = 0;
  /// Ids a NIP-77 catch-up did not fetch: this remote's copy was refused
  /// before (store/refused_store.hpp).
  uint64_t neg_need_refused = 0;
  /// Events sent up, and how many the remote answered OK true / false.
  uint64_t sent = 0;
  uint64_t sent_ok = 0;
  uint64_t sent_refused = 0;
  /// Events not sent up because they came from the remote itself.
  uint64_t echoes_skipped = 0;
  /// The up stream's position in the change log: every entry up to it was
  /// answered by the remote (or is not for it), so a restart resends only
  /// what may not have arrived.
  uint64_t up_cursor = 0;
  /// The definition's era `up_cursor` was made under: a position of an
  /// earlier definition (other filters, another remote) is none of this one.
  uint64_t up_era = 0;
  /// Unix times; 0: never.
  int64_t last_connected = 0;
  int64_t disconnected_at = 0;
  int64_t last_catchup_completed = 0;
  /// Empty when the last attempt succeeded.
  std::string last_error;
};

/// Compact JSON; an unset cursor is `null`.
std::string to_json(const sync_runtime_state& state);

/// Reads what `to_json(const sync_runtime_state&)` wrote. Missing keys keep
/// their defaults and unknown keys are ignored, so state written by another
/// version still loads. @returns an `ec::invalid_input` error for a wrong type.
caf::expected<sync_runtime_state> parse_sync_runtime(std::string_view json);

bool operator==(const sync_runtime_state& x, const sync_runtime_state& y);

} // namespace ferry
