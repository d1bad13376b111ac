#pragma once

#include "messages/atoms.hpp"
#include "messages/status.hpp"

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <string>

namespace ferry {

namespace atom {

/// Re-read the config file and apply what can change without a restart.
using reload = caf::atom_constant<caf::atom("reload")>;
constexpr reload reload_v{};

} // namespace atom

/// How long a reload's callers (SIGHUP, `POST /api/v1/config/reload`) wait
/// for its report. The reloader's own waits for the actors it applies to
/// end well within it, so it always answers with what failed.
constexpr auto config_reload_timeout = std::chrono::seconds{15};

/// The CONFIG RELOADER interface: SIGHUP and `POST /api/v1/config/reload`.
using config_reloader_actor = caf::typed_actor<
  // Re-reads the node's config file; answers the JSON report (what was
  // applied, which changed keys wait for a restart). A bad file fails with
  // ec::invalid_configuration naming file, key and expectation, and nothing
  // changes; a node on the embedded default fails with ec::conflict.
  caf::replies_to<atom::reload>::with<std::string>,
  // Reloads so far, failed ones, and the file.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

} // namespace ferry
