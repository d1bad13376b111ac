#pragma once

#include "actors/runtime/node_wiring.hpp"

namespace ferry {

/// Verifiers the node runs: `ingest.verifiers`, or one per core when 0.
size_t verifier_count(const config::ingest_config& ingest);

/// The INGEST subsystem: the writer (the only writer of events) and the
/// verifier pool. Every event from anywhere passes here, so it restarts
/// alone: no other subsystem's crash loop ever reaches it.
child_spec ingest_subsystem(const node_wiring& wiring, restart_policy policy);

} // namespace ferry
