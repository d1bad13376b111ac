#pragma once

// What every unit of the RELAY CONNECTION shares: its full state and the
// ways out to the remote, the health tracker, GRASP SYNC and the store.
// Internal to actors/sync/relay_*.

#include "actors/sync/relay_connection.hpp"

#include <memory>
#include <string>
#include <utility>

namespace ferry::relay_conn {

using phase = relay_connection_state::phase;

/// Tells the health tracker, unless it is between incarnations.
template <class... Ts>
void report(self_pointer self, Ts&&... xs) {
  if (auto health = self->state.deps.health->get())
    self->send(health, std::forward<Ts>(xs)...);
}

/// Asks the health tracker; without one, `fallback` answers at once.
template <class Result, class OnResult, class OnError, class... Ts>
void ask_health(self_pointer self, OnResult on_result, OnError on_error,
                Result fallback, Ts&&... xs) {
  auto health = self->state.deps.health->get();
  if (!health)
    return on_result(fallback);
  self->request(health, std::chrono::seconds{5}, std::forward<Ts>(xs)...)
    .then(std::move(on_result), std::move(on_error));
}

/// Tells GRASP SYNC, unless it is between incarnations.
template <class... Ts>
void tell_listener(self_pointer self, Ts&&... xs) {
  if (auto listener = self->state.deps.driver_listener())
    self->send(listener, std::forward<Ts>(xs)...);
}

inline void send_frame(self_pointer self, std::string frame) {
  if (auto& conn = self->state.session.conn)
    conn->send(std::make_shared<const std::string>(std::move(frame)));
}

inline bool syncs_down(const sync_server& def) {
  return def.direction != sync_direction::up;
}

/// Writes counters, cursors and timestamps to the store's sync runtime
/// record (not for a driven connection: GRASP SYNC keeps its own records).
void persist_runtime(self_pointer self);

} // namespace ferry::relay_conn
