#pragma once

#include "messages/atoms.hpp"
#include "messages/status.hpp"

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ferry {

/// Where the sync with one remote relay stands.
enum class relay_status : uint8_t {
  /// Opening the connection (DNS, TCP, TLS, WebSocket, auth), or connected
  /// and not yet syncing.
  connecting,
  /// Connected; the catch-up is running.
  syncing,
  /// Caught up; new events arrive as the relay receives them.
  live,
  /// Failed; waiting out its backoff before the next attempt.
  backing_off,
  /// Given up after too many failures, or disabled: no further attempts
  /// until a new connection attempt is reported.
  dead,
  /// Disconnected on purpose (shutdown, server paused or removed).
  stopped,
};

/// @relates relay_status
inline std::string to_string(relay_status x) {
  switch (x) {
    case relay_status::connecting:
      return "connecting";
    case relay_status::syncing:
      return "syncing";
    case relay_status::live:
      return "live";
    case relay_status::backing_off:
      return "backing_off";
    case relay_status::dead:
      return "dead";
    case relay_status::stopped:
      return "stopped";
  }
  return "unknown";
}

/// Why an attempt to sync with a relay failed. The class picks the backoff
/// lane: errors that a retry within seconds cannot fix (dns, tls, pin) wait
/// in the slow lane, and rate_limited waits out a cooldown.
enum class error_class : uint8_t {
  none,
  /// The host name did not resolve. Slow lane.
  dns,
  /// TCP connect failed, or the connection was reset.
  tcp,
  /// TLS handshake or certificate verification failed. Slow lane.
  tls,
  /// The certificate's key does not match the configured pin. Slow lane.
  pin,
  /// NIP-42 authentication was refused or required and impossible.
  auth,
  /// The relay broke the protocol (malformed frames, unexpected replies).
  protocol,
  /// The relay asked us to slow down ("rate-limited:"). Cooldown lane.
  rate_limited,
  /// The relay or the network closed the connection.
  closed,
  /// Our store is out of disk space: the connection waits for space to
  /// return before it dials again.
  disk_full,
  /// Our store failed to write an event for another reason.
  store,
};

/// @relates error_class
inline std::string to_string(error_class x) {
  switch (x) {
    case error_class::none:
      return "none";
    case error_class::dns:
      return "dns";
    case error_class::tcp:
      return "tcp";
    case error_class::tls:
      return "tls";
    case error_class::pin:
      return "pin";
    case error_class::auth:
      return "auth";
    case error_class::protocol:
      return "protocol";
    case error_class::rate_limited:
      return "rate_limited";
    case error_class::closed:
      return "closed";
    case error_class::disk_full:
      return "disk_full";
    case error_class::store:
      return "store";
  }
  return "unknown";
}

/// How a relay connection picks up after a reconnect.
enum class resume_mode : uint8_t {
  /// The relay was caught up and away only briefly: continue from the cursor.
  resume,
  /// Away too long, never caught up, or the last catch-up did not finish:
  /// run the catch-up again from the cursor minus the overlap.
  full_catchup,
};

/// @relates resume_mode
inline std::string to_string(resume_mode x) {
  switch (x) {
    case resume_mode::resume:
      return "resume";
    case resume_mode::full_catchup:
      return "full_catchup";
  }
  return "unknown";
}

/// Everything the HEALTH TRACKER knows about one remote relay. Times for
/// people are unix seconds (0: never); durations come from the actor clock.
struct relay_health {
  /// The sync server's id.
  std::string server;
  relay_status status = relay_status::stopped;
  /// Failed attempts since the last successful catch-up or live state.
  uint32_t attempts = 0;
  /// Class and text of the last failure; kept after recovery.
  error_class last_error_class = error_class::none;
  std::string last_error;
  int64_t last_error_at = 0;
  /// Why the relay is dead (given up or disabled); empty otherwise.
  std::string dead_reason;
  /// Time left before the next attempt may start; zero means now.
  caf::timespan next_attempt_in{0};
  /// Start of the current connection; 0 while disconnected.
  int64_t connected_since = 0;
  /// End of the last connection; 0 if none ended yet.
  int64_t disconnected_at = 0;
  /// Duration of the last finished catch-up; zero if none finished.
  caf::timespan last_catchup{0};
  /// What `(get, resume, server)` would answer now.
  resume_mode resume = resume_mode::full_catchup;
  /// Connections established since the tracker started.
  uint64_t connects = 0;
  /// Failures reported since the tracker started.
  uint64_t failures = 0;
};

/// @relates relay_health
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, relay_health& x) {
  return f(caf::meta::type_name("relay_health"), x.server, x.status, x.attempts,
           x.last_error_class, x.last_error, x.last_error_at, x.dead_reason,
           x.next_attempt_in, x.connected_since, x.disconnected_at,
           x.last_catchup, x.resume, x.connects, x.failures);
}

/// The HEALTH TRACKER actor interface. RELAY CONNECTIONs report what happens
/// to their relay; before reconnecting they ask for the delay and the resume
/// mode, and schedule their own reconnect with `delayed_send`.
using health_tracker_actor = caf::typed_actor<
  // A connection attempt to relay `server` begins (revives a dead relay).
  caf::reacts_to<atom::report, atom::connecting, std::string>,
  // The connection is up (WebSocket open, auth done when asked for).
  caf::reacts_to<atom::report, atom::connected, std::string>,
  // The catch-up began.
  caf::reacts_to<atom::report, atom::catchup, std::string>,
  // The catch-up finished after the given duration; the relay is live.
  caf::reacts_to<atom::report, atom::caughtup, std::string, caf::timespan>,
  // The relay is live (resumed from its cursor, or after a catch-up).
  caf::reacts_to<atom::report, atom::live, std::string>,
  // An attempt or a connection failed; the class picks the backoff.
  caf::reacts_to<atom::report, atom::failed, std::string, error_class,
                 std::string>,
  // The relay asked us to slow down; as `failed` with rate_limited.
  caf::reacts_to<atom::report, atom::ratelimit, std::string, std::string>,
  // The connection was closed on purpose.
  caf::reacts_to<atom::report, atom::stopped, std::string>,
  // The relay is disabled, with the reason: no attempts until `connecting`.
  caf::reacts_to<atom::report, atom::disabled, std::string, std::string>,
  // Time to wait before connecting (zero: now); ec::relay_unreachable when
  // the relay is dead.
  caf::replies_to<atom::get, atom::delay, std::string>::with<caf::timespan>,
  // Whether a reconnect continues from the cursor or catches up again.
  caf::replies_to<atom::get, atom::resume, std::string>::with<resume_mode>,
  // One relay (ec::invalid_input when it never reported).
  caf::replies_to<atom::get, atom::health, std::string>::with<relay_health>,
  // Every relay, sorted by server id.
  caf::replies_to<atom::get, atom::health>::with<std::vector<relay_health>>,
  // Relays per status, one nested entry per relay, and the mailbox.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

} // namespace ferry
