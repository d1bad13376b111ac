#pragma once

#include <cstdint>
#include <string>
#include <string_view>

/// Metrics of the outbound sync, one time series per sync server, in the
/// node's registry (`ferry::metrics::registry()`). Thread-safe.
namespace ferry::metrics::sync {

/// What became of one event received from a sync server.
enum class event_result {
  /// Arrived in an EVENT frame.
  received,
  /// New, valid and stored.
  accepted,
  /// Already stored.
  duplicate,
  /// Failed validation (id, signature, policy).
  rejected,
  /// Valid, but outside what the server is synced for.
  filtered,
};

/// ferry_sync_connected{server} (gauge): 1 while connected, else 0.
void set_connected(const std::string& server, bool connected);

/// ferry_sync_attempts_total{server,result}: `result` is "ok" (once per
/// connection that reached sync) or the error class of a failure.
void attempt(const std::string& server, std::string_view result);

/// ferry_sync_catchup_seconds{server} (gauge): the last catch-up's duration.
void set_catchup_seconds(const std::string& server, double seconds);

/// ferry_sync_events_total{server,result}: adds `n`, so callers can count a
/// whole batch at once.
void events(const std::string& server, event_result result, uint64_t n = 1);

/// ferry_sync_refused_skipped_total{server}: ids and events not fetched or
/// not judged again because this server's copy was refused before (the
/// memory of refused events); fresh refusals count as `rejected` events.
void refused_skipped(const std::string& server, uint64_t n = 1);

/// ferry_sync_sent_total{server,result}: events sent up; `result` is "sent",
/// or the remote's answer "accepted", "duplicate", "refused", or
/// "echo_skipped" for events not sent because they came from that remote.
void sent(const std::string& server, std::string_view result, uint64_t n = 1);

/// ferry_sync_lag_seconds{server} (gauge): how far our copy of the server is
/// behind, as `sync_lag_seconds` measures it; set at each scrape.
void set_lag(const std::string& server, double seconds);

} // namespace ferry::metrics::sync
