#pragma once

#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

/// Whether a hosted relay serves (`active`) or is switched off on the
/// management API (`inactive` by the operator, `delinquent` by billing).
enum class hosted_status : uint8_t {
  active,
  inactive,
  delinquent,
};

/// What happened to a hosted relay; every change appends one entry to its
/// activity log.
enum class activity_type : uint8_t {
  create_relay,
  update_relay,
  activate_relay,
  deactivate_relay,
  complete_relay_sync,
  fail_relay_sync,
  /// A reload changed what every pushed relay looks like (`infra.api_url`,
  /// `relay_domain`, `roles_json`, `[infra.blossom]`, `[infra.livekit]`).
  reconfigure_relay,
};

std::string to_string(hosted_status x);
std::string to_string(activity_type x);

/// Parses the names `to_string` produces. @returns false for any other text.
bool from_string(std::string_view text, hosted_status& out);
bool from_string(std::string_view text, activity_type& out);

/// True for the types that change a relay's configuration or how it is
/// pushed (and so make it pending sync); false for the two sync outcomes.
bool is_change(activity_type x);

/// What a relay says about itself (NIP-11 on the management side).
struct hosted_relay_info {
  std::string name;
  std::string icon;
  std::string description;
  /// The owner: 64 lowercase hex characters.
  std::string pubkey;
};

/// @relates hosted_relay_info
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hosted_relay_info& x) {
  return f(caf::meta::type_name("hosted_relay_info"), x.name, x.icon,
           x.description, x.pubkey);
}

/// One relay this node hosts on a zooid-style management API: what the admin
/// API accepts and returns and what the `hosted_relays` family stores.
struct hosted_relay {
  /// `[a-z0-9][a-z0-9._-]{0,63}`: the key in the API paths and the store.
  std::string id;
  /// One DNS label; the relay's host is `subdomain.<infra.relay_domain>`.
  std::string subdomain;
  /// The relay's database schema (and blossom key prefix) on the management
  /// side: `[a-z_][a-z0-9_]{0,62}`. Immutable once a sync completed.
  std::string schema;
  hosted_status status = hosted_status::active;
  hosted_relay_info info;
  /// Zooid's policy, groups, management and push sections: JSON objects,
  /// kept as compact serialized text and passed through unchanged.
  std::string policy_json = "{}";
  std::string groups_json = "{}";
  std::string management_json = "{}";
  std::string push_json = "{}";
  bool blossom_enabled = false;
  bool livekit_enabled = false;
  /// Set by the node: the management API has the latest change.
  bool synced = false;
  /// Set by the node: why the last sync failed; empty after a change or a
  /// success.
  std::string sync_error;
  /// Set by the node: Unix times of creation and of the last change.
  int64_t created_at = 0;
  int64_t updated_at = 0;
  /// Set by the node: sequence number of the last change; a sync pushes that
  /// version, and only its success marks the relay synced.
  uint64_t changed_seq = 0;
};

/// @relates hosted_relay
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hosted_relay& x) {
  return f(caf::meta::type_name("hosted_relay"), x.id, x.subdomain, x.schema,
           x.status, x.info, x.policy_json, x.groups_json, x.management_json,
           x.push_json, x.blossom_enabled, x.livekit_enabled, x.synced,
           x.sync_error, x.created_at, x.updated_at, x.changed_seq);
}

/// One entry of a relay's activity log.
struct activity_entry {
  /// Node-wide, strictly increasing across restarts.
  uint64_t seq = 0;
  /// The relay's id.
  std::string relay;
  activity_type type = activity_type::create_relay;
  /// Unix time.
  int64_t at = 0;
  /// `fail_relay_sync`: what went wrong (HTTP status and body, or the
  /// transport failure).
  std::string error;
  /// `fail_relay_sync`: consecutive failures up to and including this one.
  uint32_t failures = 0;
};

/// @relates activity_entry
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, activity_entry& x) {
  return f(caf::meta::type_name("activity_entry"), x.seq, x.relay, x.type,
           x.at, x.error, x.failures);
}

/// A relay as the INFRA RECONCILER needs it to decide and to sync.
struct relay_sync_job {
  hosted_relay relay;
  /// Consecutive trailing `fail_relay_sync` entries of its log (any success
  /// or change resets the count): the retry attempt number.
  uint32_t failures = 0;
  /// A `complete_relay_sync` was ever recorded: the management API knows the
  /// relay, so it is updated (PATCH), not created (POST).
  bool ever_synced = false;
};

/// @relates relay_sync_job
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, relay_sync_job& x) {
  return f(caf::meta::type_name("relay_sync_job"), x.relay, x.failures,
           x.ever_synced);
}

/// Parses and validates a hosted relay (a JSON object with the editable
/// fields: id, subdomain, schema, status, info, policy, groups, management,
/// push, blossom_enabled, livekit_enabled). Unknown and duplicate keys are
/// rejected, and so are the fields the node sets (synced, sync_error, ...).
/// `id_from_path` (may be empty) must equal the body's "id" when both are
/// present and stands in for it when the body has none.
/// @returns the relay, or an `ec::invalid_input` error whose text names the
///          field: `"<field path>: <reason>"`, e.g.
///          `subdomain: expected one DNS label (...)`.
caf::expected<hosted_relay> parse_hosted_relay(std::string_view json,
                                               const std::string& id_from_path
                                               = {});

/// Applies a JSON merge patch to the editable fields of `base` (objects merge
/// key by key, `null` removes a key so it takes its default, anything else
/// replaces) and validates the result as `parse_hosted_relay` does. The
/// node-set fields of `base` are kept.
caf::expected<hosted_relay> patch_hosted_relay(const hosted_relay& base,
                                               std::string_view patch_json);

/// Every field (the editable ones, then the node's), keys in a fixed order,
/// compact: what the admin API returns and what the store keeps.
std::string to_json(const hosted_relay& relay);

/// The editable fields only, keys in the same fixed order, compact: the
/// definition a cluster replicates (what the node sets stays each node's
/// own) and what `parse_hosted_relay` reads back.
std::string to_editable_json(const hosted_relay& relay);

/// Reads what `to_json(const hosted_relay&)` wrote (the store's records).
caf::expected<hosted_relay> parse_stored_hosted_relay(std::string_view json);

/// Compact JSON of one activity entry: `seq`, `relay`, `type`, `at`, and for
/// `fail_relay_sync` also `error` and `failures`.
std::string to_json(const activity_entry& entry);

/// Reads what `to_json(const activity_entry&)` wrote.
caf::expected<activity_entry> parse_activity_entry(std::string_view json);

/// True for a valid relay id: 1 to 64 of a-z, 0-9, '.', '_', '-', starting
/// with a letter or digit.
bool valid_hosted_relay_id(std::string_view id);

} // namespace ferry
