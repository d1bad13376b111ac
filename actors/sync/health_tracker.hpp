#pragma once

#include "messages/health.hpp"

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace ferry {

/// Tunables of the HEALTH TRACKER.
struct health_tracker_config {
  /// First delay after a transient failure (tcp, auth, protocol, closed);
  /// each further one doubles, up to `backoff_cap`.
  caf::timespan backoff_base = std::chrono::seconds{1};
  caf::timespan backoff_cap = std::chrono::minutes{5};
  /// The slow lane, for failures a quick retry cannot fix (dns, tls, pin).
  caf::timespan slow_base = std::chrono::seconds{60};
  caf::timespan slow_cap = std::chrono::hours{1};
  /// Cooldown after the relay says rate-limited; doubles per consecutive
  /// one, up to `rate_limit_cap`.
  caf::timespan rate_limit_base = std::chrono::seconds{60};
  caf::timespan rate_limit_cap = std::chrono::hours{1};
  /// Each delay is scaled by a random factor in [1 - jitter, 1 + jitter],
  /// so relays failing together do not retry together.
  double jitter = 0.2;
  /// A relay that was caught up and away for less than this resumes from
  /// its cursor; otherwise it catches up again.
  caf::timespan resume_window = std::chrono::minutes{15};
  /// After this many failed attempts in a row the relay is dead; 0 retries
  /// forever.
  uint32_t max_attempts = 0;
  /// Seeds the jitter; 0 draws a random seed.
  uint64_t seed = 0;
};

/// Checks that every delay is positive, every cap at least its base, and
/// the jitter in [0, 1).
/// @relates health_tracker_config
caf::error validate(const health_tracker_config& config);

struct health_tracker_state {
  using time_point = caf::actor_clock::time_point;

  /// What the tracker keeps per relay.
  struct relay {
    relay_status status = relay_status::stopped;
    /// Failures since the last success, over all lanes.
    uint32_t attempts = 0;
    /// Consecutive failures per lane: the exponent of that lane's backoff.
    uint32_t fast_streak = 0;
    uint32_t slow_streak = 0;
    uint32_t rate_limit_streak = 0;
    error_class last_error_class = error_class::none;
    std::string last_error;
    int64_t last_error_at = 0;
    std::string dead_reason;
    /// The relay may be contacted again from here on.
    time_point next_attempt_at{};
    /// A connection is up.
    bool connected = false;
    int64_t connected_since = 0;
    int64_t disconnected_at = 0;
    /// Set when the relay lost sync (first failure or stop after being in
    /// sync); cleared once in sync again. The 15-minute rule measures from
    /// here, so a relay that keeps failing does not restart the clock.
    std::optional<time_point> down_since;
    /// Reached live or finished a catch-up, and no catch-up is unfinished.
    bool caught_up = false;
    /// The current connection already counted as attempt result "ok".
    bool counted_ok = false;
    caf::timespan last_catchup{0};
    uint64_t connects = 0;
    uint64_t failures = 0;
    /// Unix time the relay was last known caught up when it left the live
    /// state (0: never caught up yet).
    int64_t in_sync_at = 0;
    /// Unix time of its first report.
    int64_t tracked_since = 0;
  };

  health_tracker_state();

  /// Copy of the configuration the actor was spawned with.
  health_tracker_config config;

  /// Every relay that reported at least once, sorted by server id.
  std::map<std::string, relay> relays;

  /// Draws the jitter factors.
  std::mt19937_64 rng;

  /// Applies `cfg` and seeds the jitter from it.
  void configure(const health_tracker_config& cfg);

  // -- reports ----------------------------------------------------------------

  /// The entry of relay `id`, made on its first report.
  relay& track(const std::string& id);

  /// A connection attempt begins; revives a dead relay with fresh counters.
  void connecting(const std::string& id);

  /// The connection is up. This and the reports below leave a dead relay
  /// dead: they may come from a connection that was under way when it died.
  void connected(const std::string& id);

  /// The catch-up began: until it finishes, a reconnect catches up again.
  void catchup_started(const std::string& id);

  /// The catch-up finished: the relay is live.
  void catchup_done(const std::string& id, caf::timespan duration);

  /// The relay is live: counters and backoff reset.
  void live(const std::string& id);

  /// Records a failure and schedules the next attempt.
  /// @returns the delay before it, or nothing when the relay is (now) dead.
  std::optional<caf::timespan> failed(const std::string& id, error_class cls,
                                      std::string reason, time_point now);

  /// The connection was closed on purpose.
  void stopped(const std::string& id, time_point now);

  /// No attempts until the next `connecting`.
  void disabled(const std::string& id, std::string reason, time_point now);

  // -- queries ----------------------------------------------------------------

  /// Time left before the relay may be contacted (zero for an unknown one).
  /// @returns ec::relay_unreachable when the relay is dead.
  caf::expected<caf::timespan> reconnect_delay(const std::string& id,
                                               time_point now) const;

  /// The 15-minute rule: resume from the cursor only if the relay was caught
  /// up and has been out of sync for less than `resume_window`.
  resume_mode resume(const std::string& id, time_point now) const;

  /// The value type for one relay.
  relay_health health(const std::string& id, const relay& r,
                      time_point now) const;

  /// Every relay, sorted by server id.
  std::vector<relay_health> all_health(time_point now) const;

  /// The reply to `(get, status)` without the mailbox.
  status_map status(time_point now) const;

  // -- helpers ----------------------------------------------------------------

  /// The jittered delay for a failure of class `cls`; advances that lane's
  /// streak.
  caf::timespan next_delay(relay& r, error_class cls);

  /// Ends the current connection, if any.
  void disconnect(const std::string& id, relay& r);

  /// Counts the first success of the current connection, resets counters;
  /// a dead relay stays as it is.
  void in_sync(const std::string& id, relay& r);

  /// The actor's name, as shown by the inspection console and in logs.
  static inline constexpr const char* name = "health-tracker";
};

/// How far our copy of a relay is behind what it holds, in seconds: 0
/// while it is live (caught up, tailing), else the time since it was last
/// caught up (`in_sync_at`), or, never caught up yet, since it was first
/// tracked. The age of the newest event says nothing here: an idle relay is
/// not behind.
int64_t sync_lag_seconds(relay_status status, int64_t in_sync_at,
                         int64_t tracked_since, int64_t now);

/// Failed attempts in a row after which a sync server that keeps failing
/// for a passing reason (DNS, TCP, a closed connection, ...) makes the node
/// degraded, unless `[health]` says otherwise; with the default backoff
/// that is about a minute of failing.
inline constexpr uint32_t failing_attempts_for_health = 5;

/// The `[health]` thresholds `sync_health_reasons` applies.
struct sync_health_limits {
  /// For sync servers.
  uint32_t sync_failing_attempts = failing_attempts_for_health;
  /// For GRASP relays (server ids "grasp:URL").
  uint32_t grasp_failing_attempts = failing_attempts_for_health;
};

/// Why the node is degraded by its sync servers and GRASP relays, one line
/// per relay that fails for good: given up (dead), failing on a reason that
/// does not pass by itself (TLS verification, a pin mismatch, refused
/// authentication), or failing its threshold of `limits` times in a row.
/// Catch-ups in progress and single failures are normal life and say
/// nothing here.
std::vector<std::string>
sync_health_reasons(const std::vector<relay_health>& relays,
                    const sync_health_limits& limits = {});

/// The HEALTH TRACKER: keeps per-relay sync state from the RELAY
/// CONNECTIONs' reports, decides how long each waits before reconnecting
/// and whether it resumes or catches up again, and exports sync metrics.
/// @param self The actor handle.
/// @param config Backoff lanes, resume window and jitter; must validate.
health_tracker_actor::behavior_type health_tracker(
  health_tracker_actor::stateful_pointer<health_tracker_state> self,
  health_tracker_config config);

} // namespace ferry
