#pragma once

#include "messages/atoms.hpp"

#include <caf/replies_to.hpp>
#include <caf/settings.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace ferry {

/// What an actor reports about itself: counters, settings and state, as typed
/// values (`caf::put(st, "events.stored", n)`). CAF can send it over the
/// network, so the console sees it as the node does.
using status_map = caf::settings;

/// The shared STATUS protocol every long-lived actor answers, so the
/// inspector and the console can look into it.
using status_client_actor = caf::typed_actor<
  // Returns the actor's status; `mailbox` is among the keys.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

} // namespace ferry
