#pragma once

#include "messages/atoms.hpp"
#include "messages/config_reload.hpp"
#include "messages/hosted_relay.hpp"
#include "messages/inspector.hpp"
#include "messages/status.hpp"

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ferry {

/// Every relay pending sync, and the last activity sequence number they
/// reflect: what the INFRA RECONCILER reconciles from.
struct pending_relays {
  std::vector<relay_sync_job> jobs;
  uint64_t last_seq = 0;
  /// Relays deleted here whose DELETE the management API has yet to answer.
  std::vector<std::string> deletions;
};

/// @relates pending_relays
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pending_relays& x) {
  return f(caf::meta::type_name("pending_relays"), x.jobs, x.last_seq,
           x.deletions);
}

/// The INFRA RECONCILER pushes hosted relays to the management API. The
/// RELAY REGISTRY tells it about every activity it records.
using infra_reconciler_actor = caf::typed_actor<
  // An activity was recorded (from the RELAY REGISTRY).
  caf::reacts_to<atom::activity, activity_entry>,
  // A relay and its log were deleted: forget its retries, and delete it on
  // the management API when this node owns it.
  caf::reacts_to<atom::erase, std::string>,
  // CLUSTER: the live members' names; in a cluster, the reconciler pushes
  // only the relays this node owns among them.
  caf::reacts_to<atom::members, std::vector<std::string>>,
  // The relay's members as the management API lists them (its JSON text);
  // ec::not_found for an unknown relay, ec::upstream_failure when the API
  // fails.
  caf::replies_to<atom::members, std::string>::with<std::string>,
  // "degraded" with one reason per hosted relay given up, else "ok".
  caf::replies_to<atom::health>::with<health_report>,
  // Counters, relays in flight and scheduled, and the mailbox size.
  caf::replies_to<atom::get, atom::status>::with<status_map>,
  // Sync every pending relay (at start, after missed activities, and when a
  // reload turns the reconciler on).
  caf::reacts_to<atom::reconcile>,
  // INTERNAL: a retry is due (relay, generation).
  caf::reacts_to<atom::retry, std::string, uint64_t>,
  // INTERNAL: a request to the management API finished (relay, generation,
  // HTTP status or 0, response body or transport failure).
  caf::reacts_to<atom::done, std::string, uint64_t, uint32_t, std::string>,
  // INTERNAL: the management API answered a members request (token, HTTP
  // status or 0, response body or transport failure).
  caf::reacts_to<atom::members, uint64_t, uint32_t, std::string>>;

/// The RELAY REGISTRY owns the hosted relays and their activity logs (the
/// `hosted_relays` and `activity` families): every change goes through it,
/// is recorded with an activity entry in one synced commit, and is then
/// told to the INFRA RECONCILER. Bodies and answers are JSON text, so the
/// admin API and the console relay them as they are. Failures:
/// ec::invalid_input (names the field), ec::not_found, ec::conflict (an id,
/// subdomain or schema in use; a schema change after a sync).
using relay_registry_actor = caf::typed_actor<
  // Creates a relay from a JSON body; returns its JSON.
  caf::replies_to<atom::create, std::string>::with<std::string>,
  // Replaces the editable fields of a relay (id, JSON body).
  caf::replies_to<atom::put, std::string, std::string>::with<std::string>,
  // Merges a JSON patch into a relay (id, JSON body).
  caf::replies_to<atom::patch, std::string, std::string>::with<std::string>,
  // Sets a relay's status to active / inactive.
  caf::replies_to<atom::activate, std::string>::with<std::string>,
  caf::replies_to<atom::deactivate, std::string>::with<std::string>,
  // Deletes a relay and its log from this node.
  caf::replies_to<atom::erase, std::string>::with<std::string>,
  // The management API deleted the relay (from the INFRA RECONCILER): its
  // DELETE is no longer due.
  caf::reacts_to<atom::erase, atom::done, std::string>,
  // One relay with `failed_attempts` and `given_up`.
  caf::replies_to<atom::get, atom::relay, std::string>::with<std::string>,
  // Every relay, as a JSON array.
  caf::replies_to<atom::get, atom::relays>::with<std::string>,
  // A relay's activity log, oldest first, as a JSON array.
  caf::replies_to<atom::get, atom::activity, std::string>::with<std::string>,
  // Every relay pending sync, and every deletion pending (for the INFRA
  // RECONCILER).
  caf::replies_to<atom::get, atom::pending>::with<pending_relays>,
  // One relay as a sync job (ec::not_found when deleted).
  caf::replies_to<atom::pending, std::string>::with<relay_sync_job>,
  // Records a successful sync of the version `changed_seq` (relay id,
  // changed_seq); the relay is synced only if it did not change since.
  caf::replies_to<atom::complete, std::string, uint64_t>::with<activity_entry>,
  // Records a failed sync (relay id, changed_seq, error).
  caf::replies_to<atom::failed, std::string, uint64_t,
                  std::string>::with<activity_entry>,
  // Relays, activities recorded, and the mailbox size.
  caf::replies_to<atom::get, atom::status>::with<status_map>,
  // A reload changed what every pushed relay looks like: records
  // `reconfigure_relay` for each, so each is pushed again; the number of
  // relays.
  caf::replies_to<atom::reload>::with<uint64_t>>;

} // namespace ferry
