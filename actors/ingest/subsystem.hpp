#pragma once

#include "actors/ingest/plugin_host.hpp"
#include "actors/runtime/node_wiring.hpp"

namespace ferry {

/// Verifiers the node runs: `ingest.verifiers`, or one per core when 0.
size_t verifier_count(const config::ingest_config& ingest);

/// The plugin host's settings from `[policy.plugin]`.
plugin_host_config plugin_host_config_from(const config::policy_plugin_config& cfg);

/// Whether `cfg` asks for the POLICY step between verifiers and writer
/// (built-in rules or a plugin); without it no rule can be reloaded in.
bool runs_policy_step(const config::policy_config& cfg);

/// The INGEST subsystem: the writer (the only writer of events), the
/// verifier pool and the write policy (with its plugin host). Every event
/// from anywhere passes here, so it restarts alone: no other subsystem's
/// crash loop ever reaches it.
child_spec ingest_subsystem(const node_wiring& wiring, restart_policy policy);

} // namespace ferry
