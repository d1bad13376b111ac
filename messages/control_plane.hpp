#pragma once

#include "messages/atoms.hpp"
#include "messages/status.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <memory>

namespace ferry {

/// One admin HTTP request together with the callback that answers it;
/// defined in actors/control_plane.hpp. It holds a callback into the HTTP
/// server, so it never leaves the process.
struct admin_exchange;
using admin_exchange_ptr = std::shared_ptr<admin_exchange>;

} // namespace ferry

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::admin_exchange_ptr)

namespace ferry {

/// The CONTROL PLANE actor interface: the admin HTTP API (/health, /metrics,
/// /api/v1/...).
using control_plane_actor = caf::typed_actor<
  // Returns the actor's status; `port` is the bound admin port.
  caf::replies_to<atom::get, atom::status>::with<status_map>,
  // INTERNAL: one HTTP request, forwarded from the server's I/O thread.
  caf::reacts_to<admin_exchange_ptr>>;

} // namespace ferry
