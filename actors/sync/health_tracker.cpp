#include "actors/sync/health_tracker.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/sync_metrics.hpp"
#include "messages/error.hpp"

#include <caf/settings.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <string_view>
#include <utility>

namespace ferry {

namespace {

using self_pointer
  = health_tracker_actor::stateful_pointer<health_tracker_state>;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

double seconds(caf::timespan x) {
  return std::chrono::duration<double>(x).count();
}

/// Whole seconds as "60s", anything finer as "1500ms".
std::string to_text(caf::timespan x) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(x).count();
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

/// Errors that a retry within seconds will not fix: the name, the
/// certificate or the pin has to change first.
bool slow_lane(error_class x) {
  return x == error_class::dns || x == error_class::tls
         || x == error_class::pin;
}

} // namespace

caf::error validate(const health_tracker_config& config) {
  auto invalid = [](std::string what) {
    return caf::make_error(ec::invalid_configuration, std::move(what));
  };
  auto lane = [&](const char* what, caf::timespan base,
                  caf::timespan cap) -> caf::error {
    if (base <= caf::timespan::zero())
      return invalid(std::string{what} + " base delay must be positive");
    if (cap < base)
      return invalid(std::string{what}
                     + " delay cap must not be below the base delay");
    return caf::none;
  };
  if (auto err = lane("backoff", config.backoff_base, config.backoff_cap))
    return err;
  if (auto err = lane("slow-lane", config.slow_base, config.slow_cap))
    return err;
  if (auto err = lane("rate-limit", config.rate_limit_base,
                      config.rate_limit_cap))
    return err;
  if (!(config.jitter >= 0.0 && config.jitter < 1.0))
    return invalid("backoff jitter must be in [0, 1)");
  if (config.resume_window <= caf::timespan::zero())
    return invalid("resume window must be positive");
  return caf::none;
}

health_tracker_state::health_tracker_state() {
  configure(config);
}

void health_tracker_state::configure(const health_tracker_config& cfg) {
  config = cfg;
  rng.seed(cfg.seed != 0 ? cfg.seed : std::random_device{}());
}

// -- reports ------------------------------------------------------------------

health_tracker_state::relay& health_tracker_state::track(const std::string& id) {
  auto& r = relays[id];
  if (r.tracked_since == 0)
    r.tracked_since = unix_now();
  return r;
}

int64_t sync_lag_seconds(relay_status status, int64_t in_sync_at,
                         int64_t tracked_since, int64_t now) {
  if (status == relay_status::live)
    return 0;
  auto since = in_sync_at != 0 ? in_sync_at : tracked_since;
  return since != 0 ? std::max<int64_t>(0, now - since) : 0;
}

void health_tracker_state::connecting(const std::string& id) {
  auto& r = track(id);
  disconnect(id, r);
  if (r.status == relay_status::dead) {
    // Someone chose to try again (an operator re-enabled it): start afresh
    // rather than dying again after one more failure.
    r.attempts = 0;
    r.fast_streak = r.slow_streak = r.rate_limit_streak = 0;
    r.dead_reason.clear();
  }
  r.status = relay_status::connecting;
  r.counted_ok = false;
}

void health_tracker_state::connected(const std::string& id) {
  auto& r = track(id);
  r.connected = true;
  r.connected_since = unix_now();
  r.counted_ok = false;
  ++r.connects;
  // Only `connecting` revives a dead relay: a connection that was already
  // under way when the relay was disabled must not.
  if (r.status == relay_status::backing_off
      || r.status == relay_status::stopped)
    r.status = relay_status::connecting;
  metrics::sync::set_connected(id, true);
}

void health_tracker_state::catchup_started(const std::string& id) {
  auto& r = track(id);
  if (r.status == relay_status::dead)
    return;
  if (r.status == relay_status::live)
    r.in_sync_at = unix_now();
  r.status = relay_status::syncing;
  r.caught_up = false;
}

void health_tracker_state::catchup_done(const std::string& id,
                                        caf::timespan duration) {
  auto& r = track(id);
  r.last_catchup = duration;
  metrics::sync::set_catchup_seconds(id, seconds(duration));
  in_sync(id, r);
}

void health_tracker_state::live(const std::string& id) {
  in_sync(id, track(id));
}

std::optional<caf::timespan>
health_tracker_state::failed(const std::string& id, error_class cls,
                             std::string reason, time_point now) {
  auto& r = track(id);
  disconnect(id, r);
  if (!r.down_since)
    r.down_since = now;
  ++r.attempts;
  ++r.failures;
  r.last_error_class = cls;
  r.last_error = std::move(reason);
  r.last_error_at = unix_now();
  metrics::sync::attempt(id, to_string(cls));
  if (r.status == relay_status::dead)
    return std::nullopt;
  if (config.max_attempts > 0 && r.attempts >= config.max_attempts) {
    r.status = relay_status::dead;
    r.dead_reason = "gave up after " + std::to_string(r.attempts)
                    + " failed attempts";
    r.next_attempt_at = time_point{};
    return std::nullopt;
  }
  auto delay = next_delay(r, cls);
  r.status = relay_status::backing_off;
  r.next_attempt_at = now + delay;
  return delay;
}

void health_tracker_state::stopped(const std::string& id, time_point now) {
  auto& r = track(id);
  disconnect(id, r);
  if (!r.down_since)
    r.down_since = now;
  if (r.status != relay_status::dead)
    r.status = relay_status::stopped;
  r.next_attempt_at = time_point{};
}

void health_tracker_state::disabled(const std::string& id, std::string reason,
                                    time_point now) {
  auto& r = track(id);
  disconnect(id, r);
  if (!r.down_since)
    r.down_since = now;
  r.status = relay_status::dead;
  r.dead_reason = "disabled: " + reason;
  r.next_attempt_at = time_point{};
}

// -- node health --------------------------------------------------------------

std::vector<std::string>
sync_health_reasons(const std::vector<relay_health>& relays,
                    const sync_health_limits& limits) {
  std::vector<std::string> reasons;
  static constexpr std::string_view grasp_prefix = "grasp:";
  for (auto& r : relays) {
    auto grasp = r.server.compare(0, grasp_prefix.size(), grasp_prefix) == 0;
    auto name = grasp ? "GRASP relay " + r.server.substr(grasp_prefix.size())
                      : "sync server " + r.server;
    auto threshold = grasp ? limits.grasp_failing_attempts
                           : limits.sync_failing_attempts;
    auto last_error = r.last_error_class == error_class::none
                        ? std::string{}
                        : to_string(r.last_error_class) + ": " + r.last_error;
    if (r.status == relay_status::dead) {
      auto reason = name + " gave up";
      if (!r.dead_reason.empty())
        reason += " (" + r.dead_reason + ")";
      if (!last_error.empty())
        reason += "; last error " + last_error;
      reasons.push_back(std::move(reason));
      continue;
    }
    if (r.status != relay_status::backing_off)
      continue;
    auto lasting = r.last_error_class == error_class::tls
                   || r.last_error_class == error_class::pin
                   || r.last_error_class == error_class::auth;
    if (lasting || r.attempts >= threshold)
      reasons.push_back(name + " fails: " + last_error + " ("
                        + std::to_string(r.attempts)
                        + " attempt(s) in a row)");
  }
  return reasons;
}

// -- queries ------------------------------------------------------------------

caf::expected<caf::timespan>
health_tracker_state::reconnect_delay(const std::string& id,
                                      time_point now) const {
  auto i = relays.find(id);
  if (i == relays.end())
    return caf::timespan::zero();
  const auto& r = i->second;
  if (r.status == relay_status::dead)
    return caf::make_error(ec::relay_unreachable,
                           id + " is dead: " + r.dead_reason);
  return std::max(
    caf::timespan::zero(),
    std::chrono::duration_cast<caf::timespan>(r.next_attempt_at - now));
}

resume_mode health_tracker_state::resume(const std::string& id,
                                         time_point now) const {
  auto i = relays.find(id);
  if (i == relays.end() || !i->second.caught_up)
    return resume_mode::full_catchup;
  const auto& r = i->second;
  if (!r.down_since || now - *r.down_since < config.resume_window)
    return resume_mode::resume;
  return resume_mode::full_catchup;
}

relay_health health_tracker_state::health(const std::string& id, const relay& r,
                                          time_point now) const {
  relay_health result;
  result.server = id;
  result.status = r.status;
  result.attempts = r.attempts;
  result.last_error_class = r.last_error_class;
  result.last_error = r.last_error;
  result.last_error_at = r.last_error_at;
  result.dead_reason = r.dead_reason;
  if (auto delay = reconnect_delay(id, now))
    result.next_attempt_in = *delay;
  result.connected_since = r.connected_since;
  result.disconnected_at = r.disconnected_at;
  result.last_catchup = r.last_catchup;
  result.resume = resume(id, now);
  result.connects = r.connects;
  result.failures = r.failures;
  return result;
}

std::vector<relay_health>
health_tracker_state::all_health(time_point now) const {
  std::vector<relay_health> result;
  result.reserve(relays.size());
  for (const auto& [id, r] : relays)
    result.push_back(health(id, r, now));
  return result;
}

status_map health_tracker_state::status(time_point now) const {
  std::map<relay_status, int64_t> counts;
  // Server ids may contain dots, which caf::put reads as nesting: each
  // relay's entry goes in under its id as one key.
  caf::settings servers;
  for (const auto& x : all_health(now)) {
    ++counts[x.status];
    status_map entry;
    caf::put(entry, "status", to_string(x.status));
    caf::put(entry, "attempts", static_cast<int64_t>(x.attempts));
    caf::put(entry, "last_error_class", to_string(x.last_error_class));
    caf::put(entry, "last_error", x.last_error);
    caf::put(entry, "last_error_at", x.last_error_at);
    if (!x.dead_reason.empty())
      caf::put(entry, "dead_reason", x.dead_reason);
    caf::put(entry, "next_attempt_in", x.next_attempt_in);
    caf::put(entry, "connected_since", x.connected_since);
    caf::put(entry, "disconnected_at", x.disconnected_at);
    caf::put(entry, "last_catchup", x.last_catchup);
    caf::put(entry, "resume", to_string(x.resume));
    caf::put(entry, "connects", static_cast<int64_t>(x.connects));
    caf::put(entry, "failures", static_cast<int64_t>(x.failures));
    auto& r = relays.at(x.server);
    caf::put(entry, "in_sync_at", r.in_sync_at);
    caf::put(entry, "lag_seconds",
             sync_lag_seconds(r.status, r.in_sync_at, r.tracked_since,
                              unix_now()));
    servers.emplace(x.server, caf::config_value{std::move(entry)});
  }
  status_map result;
  caf::put(result, "relays.total", static_cast<int64_t>(relays.size()));
  for (auto s :
       {relay_status::connecting, relay_status::syncing, relay_status::live,
        relay_status::backing_off, relay_status::dead, relay_status::stopped})
    caf::put(result, "relays." + to_string(s), counts[s]);
  result.emplace("servers", caf::config_value{std::move(servers)});
  return result;
}

// -- helpers ------------------------------------------------------------------

caf::timespan health_tracker_state::next_delay(relay& r, error_class cls) {
  auto base = config.backoff_base;
  auto cap = config.backoff_cap;
  auto* streak = &r.fast_streak;
  if (cls == error_class::rate_limited) {
    base = config.rate_limit_base;
    cap = config.rate_limit_cap;
    streak = &r.rate_limit_streak;
  } else if (slow_lane(cls)) {
    base = config.slow_base;
    cap = config.slow_cap;
    streak = &r.slow_streak;
  }
  // Doubling stops at the cap, so a long streak cannot overflow.
  auto delay = base;
  for (uint32_t i = 0; i < *streak && delay < cap; ++i)
    delay *= 2;
  delay = std::min(delay, cap);
  ++*streak;
  if (config.jitter > 0.0) {
    std::uniform_real_distribution<double> factor{1.0 - config.jitter,
                                                  1.0 + config.jitter};
    delay = std::chrono::duration_cast<caf::timespan>(delay * factor(rng));
  }
  return delay;
}

void health_tracker_state::disconnect(const std::string& id, relay& r) {
  // Caught up until now: the lag counts from here.
  if (r.status == relay_status::live)
    r.in_sync_at = unix_now();
  if (!r.connected)
    return;
  r.connected = false;
  r.connected_since = 0;
  r.disconnected_at = unix_now();
  metrics::sync::set_connected(id, false);
}

void health_tracker_state::in_sync(const std::string& id, relay& r) {
  if (r.status == relay_status::dead)
    return;
  if (!r.counted_ok) {
    r.counted_ok = true;
    metrics::sync::attempt(id, "ok");
  }
  r.status = relay_status::live;
  r.attempts = 0;
  r.fast_streak = r.slow_streak = r.rate_limit_streak = 0;
  r.caught_up = true;
  r.down_since.reset();
  r.next_attempt_at = time_point{};
}

// -- behavior -----------------------------------------------------------------

health_tracker_actor::behavior_type health_tracker(
  health_tracker_actor::stateful_pointer<health_tracker_state> self,
  health_tracker_config config) {
  if (auto err = validate(config)) {
    self->quit(std::move(err));
    return health_tracker_actor::behavior_type::make_empty_behavior();
  }
  self->state.configure(config);
  return {
    [self](atom::report, atom::connecting, const std::string& id) {
      self->state.connecting(id);
    },
    [self](atom::report, atom::connected, const std::string& id) {
      self->state.connected(id);
    },
    [self](atom::report, atom::catchup, const std::string& id) {
      self->state.catchup_started(id);
    },
    [self](atom::report, atom::caughtup, const std::string& id,
           caf::timespan duration) {
      log::info("{}: caught up with {} in {}", self->name(), id,
                to_text(duration));
      self->state.catchup_done(id, duration);
    },
    [self](atom::report, atom::live, const std::string& id) {
      self->state.live(id);
    },
    [self](atom::report, atom::failed, const std::string& id, error_class cls,
           std::string& reason) {
      auto text = reason;
      auto delay = self->state.failed(id, cls, std::move(reason),
                                      self->clock().now());
      if (delay)
        log::warn("{}: {} failed ({}): {}; next attempt in {}", self->name(),
                  id, to_string(cls), text, to_text(*delay));
      else
        log::error("{}: {} failed ({}): {}; {}", self->name(), id,
                   to_string(cls), text, self->state.relays[id].dead_reason);
    },
    [self](atom::report, atom::ratelimit, const std::string& id,
           std::string& reason) {
      auto text = reason;
      auto delay = self->state.failed(id, error_class::rate_limited,
                                      std::move(reason), self->clock().now());
      if (delay)
        log::warn("{}: {} rate-limited us: {}; cooling down for {}",
                  self->name(), id, text, to_text(*delay));
    },
    [self](atom::report, atom::stopped, const std::string& id) {
      self->state.stopped(id, self->clock().now());
    },
    [self](atom::report, atom::disabled, const std::string& id,
           std::string& reason) {
      log::info("{}: {} disabled: {}", self->name(), id, reason);
      self->state.disabled(id, std::move(reason), self->clock().now());
    },
    [self](atom::get, atom::delay,
           const std::string& id) -> caf::result<caf::timespan> {
      auto delay = self->state.reconnect_delay(id, self->clock().now());
      if (!delay)
        return std::move(delay.error());
      return *delay;
    },
    [self](atom::get, atom::resume, const std::string& id) {
      return self->state.resume(id, self->clock().now());
    },
    [self](atom::get, atom::health,
           const std::string& id) -> caf::result<relay_health> {
      auto& st = self->state;
      auto i = st.relays.find(id);
      if (i == st.relays.end())
        return caf::make_error(ec::invalid_input, "no sync server " + id);
      return st.health(id, i->second, self->clock().now());
    },
    [self](atom::get, atom::health) {
      return self->state.all_health(self->clock().now());
    },
    [self](atom::get, atom::status) {
      auto result = self->state.status(self->clock().now());
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      return result;
    },
  };
}

} // namespace ferry
