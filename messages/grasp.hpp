#pragma once

#include "messages/atoms.hpp"
#include "messages/nostr/event.hpp"
#include "messages/pending_batches.hpp"
#include "messages/relay.hpp"
#include "messages/status.hpp"

#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// GRASP-02 proactive sync: the NIP-34 events it reads, the records of the
/// `repo_sync` and `relay_sync` families, and the actor interfaces between
/// the SELF SUBSCRIBER, GRASP SYNC and the relay driver.
namespace ferry::grasp {

// -- NIP-34 -------------------------------------------------------------------

/// Repository announcement (addressable): lists the repository's relays.
inline constexpr uint32_t kind_announcement = 30617;
/// Repository state (addressable): branches and tags.
inline constexpr uint32_t kind_state = 30618;
/// Root events of a repository's threads; replies tag them with `e`/`E`.
inline constexpr uint32_t kind_patch = 1617;
inline constexpr uint32_t kind_pull_request = 1618;
inline constexpr uint32_t kind_pull_request_update = 1619;
inline constexpr uint32_t kind_issue = 1621;
inline constexpr std::array<uint32_t, 4> root_kinds{
  kind_patch, kind_pull_request, kind_pull_request_update, kind_issue};

/// True for 1617, 1618, 1619 and 1621.
bool is_root_kind(uint32_t kind);

/// The address `30617:<pubkey hex>:<d>` of an announcement.
std::string address_of(const nostr::event& announcement);

/// True when `text` reads `30617:<64 lowercase hex>:<d>` (d may be empty).
bool is_repo_address(std::string_view text);

/// Every relay URL an announcement lists in its `relays` tags (a tag may
/// carry several), normalized; invalid URLs are left out, duplicates once,
/// sorted.
std::vector<std::string> announced_relays(const nostr::event& announcement);

/// Who this service is, as announcements name it.
struct service_identity {
  /// "host" or "host:port" (config `grasp.service_domain`); a relay URL on
  /// this host (and port, when given) is this service.
  std::string domain;
  /// The relay's public URL (config `relay.public_url`), normalized; may be
  /// empty.
  std::string url;
};

/// True when the normalized relay URL `relay` names this service.
bool is_service(const service_identity& service, const std::string& relay);

// -- records ------------------------------------------------------------------

/// What we want for one repository: the `repo_sync` record, keyed by its
/// address.
struct repo_sync_entry {
  /// `30617:<pubkey>:<d>`.
  std::string address;
  /// The relays its announcement lists besides this service: normalized,
  /// sorted, unique.
  std::vector<std::string> relays;
  /// Ids (64 hex) of its root events (1617/1618/1619/1621): sorted, unique.
  std::vector<std::string> roots;
  /// The announcement version this entry follows.
  std::string announcement_id;
  int64_t announcement_created_at = 0;
};

/// Whether a connection to a relay is up, as `relay_sync` remembers it.
enum class link_status : uint8_t {
  disconnected,
  connected,
};

/// @relates link_status
std::string to_string(link_status x);

/// What is confirmed for one relay: the `relay_sync` record, keyed by its
/// URL. "Confirmed" means every event the relay held for the item when it
/// sent EOSE is here, and a live subscription kept it current while the
/// relay stayed connected.
struct relay_sync_entry {
  /// Normalized URL.
  std::string url;
  /// Confirmed repository addresses and root ids: sorted, unique.
  std::vector<std::string> repos;
  std::vector<std::string> roots;
  /// Listed in `grasp.bootstrap_relays`: always connected, never dropped.
  bool is_bootstrap = false;
  link_status status = link_status::disconnected;
  /// Unix time (s) the relay was last seen connected (refreshed while it
  /// is); 0: never.
  int64_t last_connected = 0;
  /// Unix time (s) its last connection ended; 0: none ended yet.
  int64_t disconnected_at = 0;
  /// Unix time (s) its announcements (layer 1) were last synced from the
  /// beginning; 0: never, so the next connection syncs the relay fully.
  int64_t full_sync_at = 0;
  /// Unix time (s) the next daily full reconciliation is due; 0: none set.
  int64_t reconcile_at = 0;
};

/// Compact JSON of the value (the address / URL is the key).
std::string to_json(const repo_sync_entry& x);
std::string to_json(const relay_sync_entry& x);

/// Reads what `to_json` wrote; `key` fills the address / URL. Unknown keys
/// are ignored, missing ones keep their defaults. @returns an
/// `ec::invalid_input` error naming the field for a wrong type.
caf::expected<repo_sync_entry> parse_repo_sync(std::string_view key,
                                               std::string_view json);
caf::expected<relay_sync_entry> parse_relay_sync(std::string_view key,
                                                 std::string_view json);

bool operator==(const repo_sync_entry& x, const repo_sync_entry& y);
bool operator==(const relay_sync_entry& x, const relay_sync_entry& y);

// -- messages -----------------------------------------------------------------

/// One REQ for the relay driver: its subscription id and its filters, each
/// a NIP-01 filter object as JSON text (sent as they are).
struct subscription {
  std::string id;
  std::vector<std::string> filters;
};

/// @relates subscription
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subscription& x) {
  return f(caf::meta::type_name("grasp_subscription"), x.id, x.filters);
}

} // namespace ferry::grasp

namespace ferry {

/// Told by the SELF SUBSCRIBER which repositories changed in `repo_sync`.
using grasp_listener_actor = caf::typed_actor<
  // These addresses were added, updated (relays, root ids) or removed.
  caf::reacts_to<atom::changed, std::vector<std::string>>,
  // The start-up rebuild is complete: `repo_sync` holds everything the
  // store does.
  caf::reacts_to<atom::rebuild, atom::done>>;

/// What a relay driver reports about the relays GRASP SYNC asked it for.
/// Relays are named by their normalized URL.
using grasp_driver_listener_actor = caf::typed_actor<
  // The connection to the relay is up (after NIP-42, when asked for); the
  // subscriptions of its `connect` are being sent.
  caf::reacts_to<atom::connected, std::string>,
  // The connection is gone or could not be made, with the reason. The
  // driver forgets the relay: the next `connect` starts over.
  caf::reacts_to<atom::lost, std::string, std::string>,
  // The relay sent EOSE for subscription `id`, and every event received
  // before it is stored.
  caf::reacts_to<atom::eose, std::string, std::string>,
  // The relay sent CLOSED for subscription `id`, with its message.
  caf::reacts_to<atom::closed, std::string, std::string, std::string>,
  // Every event received from the relay before `flush` number `serial` is
  // stored (answered by the writer).
  caf::reacts_to<atom::done, std::string, uint64_t>>;

/// The relay driver port: how GRASP SYNC acts on remote relays. The real
/// driver opens relay connections and ingests what they receive with source
/// `grasp:<relay>`; it reports back to a `grasp_driver_listener_actor`.
using grasp_driver_actor = caf::typed_actor<
  // Connects to the relay (waiting out its backoff first) and, once up,
  // sends one REQ per subscription. Sent only for a relay the driver does
  // not hold.
  caf::reacts_to<atom::connect, std::string, std::vector<grasp::subscription>>,
  // Adds REQs on the live connection, without reconnecting (AddFilters).
  // For a relay it does not hold, the driver answers with `lost`.
  caf::reacts_to<atom::subscribe, std::string,
                 std::vector<grasp::subscription>>,
  // Sends CLOSE for these subscription ids (consolidation, timed-out batches).
  caf::reacts_to<atom::unsubscribe, std::string, std::vector<std::string>>,
  // Closes the connection and forgets the relay; no `lost` follows.
  caf::reacts_to<atom::drop, std::string>,
  // Answers `done` with `serial` once every event received from the live
  // relay so far is stored; nothing when it is not connected (a `lost`
  // comes instead).
  caf::reacts_to<atom::flush, std::string, uint64_t>>;

/// The real relay driver: the port, plus what its relay connections tell it.
using grasp_relay_driver_actor = grasp_driver_actor::extend<
  // INTERNAL: a connection ended (relay, reason, backoff before the relay
  // may be dialled again).
  caf::reacts_to<atom::lost, std::string, std::string, caf::timespan>,
  // Relays held, waiting out a backoff, and the mailbox.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

/// The GRASP SYNC actor interface: owns the decision loop of GRASP-02.
using grasp_sync_actor = grasp_listener_actor::extend_with<
  grasp_driver_listener_actor>::extend_with<batch_listener_actor>::extend<
  // INTERNAL: periodic tick (refresh last_connected, decide, reconcile).
  caf::reacts_to<atom::tick>,
  // The live cluster members (sorted names), from the CLUSTER MANAGER: in
  // a cluster, only the relays this node owns among them run here.
  caf::reacts_to<atom::members, std::vector<std::string>>,
  // Every wanted repository with where it is confirmed and pending (JSON
  // array).
  caf::replies_to<atom::get, atom::repos>::with<std::string>,
  // The relays connected here (URLs): a leaving cluster member waits until
  // another member reports each of its own connected.
  caf::replies_to<atom::get, atom::connected>::with<std::vector<std::string>>,
  // One repository in detail (JSON object); ec::not_found when not wanted.
  caf::replies_to<atom::get, atom::repo, std::string>::with<std::string>,
  // Relays, batches, subscriptions, counters and mailbox.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

/// The SELF SUBSCRIBER actor interface: a change-feed listener of the hub.
using self_subscriber_actor = feed_listener_actor::extend<
  // INTERNAL: look for the hub again (it was not running yet).
  caf::reacts_to<atom::subscribe>,
  // INTERNAL: the batch window closed.
  caf::reacts_to<atom::flush>,
  // INTERNAL: continue the start-up rebuild from the store.
  caf::reacts_to<atom::rebuild>,
  // Answers true once the start-up rebuild is complete (at once when it
  // is): how a restarted GRASP SYNC learns it may decide.
  caf::replies_to<atom::get, atom::rebuild>::with<bool>,
  // Counters, rebuild progress and mailbox.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

} // namespace ferry
