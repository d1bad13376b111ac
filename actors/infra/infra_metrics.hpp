#pragma once

#include <cstddef>

/// Metrics of the infra reconciler in the node's registry
/// (`ferry::metrics::registry()`). Thread-safe.
namespace ferry::metrics::infra {

/// ferry_infra_syncs_total{result="ok"|"failed"}: one per sync of a hosted
/// relay to the management API.
void sync_finished(bool ok);

/// ferry_infra_retries_scheduled_total: one per retry put on the clock.
void retry_scheduled();

/// ferry_infra_relays_given_up (gauge): relays that failed
/// `infra.max_attempts` times in a row and wait for a change.
void set_given_up(size_t relays);

} // namespace ferry::metrics::infra
