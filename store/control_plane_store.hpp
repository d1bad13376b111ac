#pragma once

#include "messages/cluster/control_record.hpp"
#include "store/event_store.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <vector>

/// The replicated control plane's records with their version vectors, in the
/// `meta` family under `control_plane/KIND/ID` (a one-record JSON array as
/// `to_json(const std::vector<control_record>&)` writes it). The definitions
/// themselves stay where their subsystem keeps them (a sync server in
/// `sync_servers`); these records are their replicated history. Failures are
/// `ec::storage_failure` errors.
namespace ferry::store {

/// Creates or replaces each record's entry in one write, synced unless all
/// of them are cursor claims.
caf::error put_control_records(event_store& store,
                               const std::vector<cluster::control_record>& records);

/// Every record, ordered by kind and id.
caf::expected<std::vector<cluster::control_record>>
list_control_records(const event_store& store);

} // namespace ferry::store
