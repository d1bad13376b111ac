#include "actors/sync/sync_metrics.hpp"

#include "actors/runtime/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace ferry::metrics::sync {

namespace {

const char* to_label(event_result x) {
  switch (x) {
    case event_result::received:
      return "received";
    case event_result::accepted:
      return "accepted";
    case event_result::duplicate:
      return "duplicate";
    case event_result::rejected:
      return "rejected";
    case event_result::filtered:
      return "filtered";
  }
  return "unknown";
}

/// The sync families, registered on first use. `Family::Add` returns the
/// existing series for known labels; the per-event counters go through
/// `counter_series`, which spares them the label map and the lock.
struct families {
  prometheus::Family<prometheus::Gauge>& connected
    = prometheus::BuildGauge()
        .Name("ferry_sync_connected")
        .Help("1 while connected to the sync server (or GRASP relay), "
              "else 0.")
        .Register(registry());

  prometheus::Family<prometheus::Counter>& attempts
    = prometheus::BuildCounter()
        .Name("ferry_sync_attempts_total")
        .Help("Sync connection outcomes by server: ok, or the error class "
              "of a failure.")
        .Register(registry());

  prometheus::Family<prometheus::Gauge>& catchup_seconds
    = prometheus::BuildGauge()
        .Name("ferry_sync_catchup_seconds")
        .Help("Duration of the last finished catch-up with the sync server.")
        .Register(registry());

  prometheus::Family<prometheus::Counter>& events
    = prometheus::BuildCounter()
        .Name("ferry_sync_events_total")
        .Help("Events from the sync server by result: received, accepted, "
              "duplicate, rejected, filtered.")
        .Register(registry());

  prometheus::Family<prometheus::Counter>& refused_skipped
    = prometheus::BuildCounter()
        .Name("ferry_sync_refused_skipped_total")
        .Help("Ids not fetched and events not judged again because the sync "
              "server's copy was refused before.")
        .Register(registry());

  prometheus::Family<prometheus::Counter>& sent
    = prometheus::BuildCounter()
        .Name("ferry_sync_sent_total")
        .Help("Events sent up to the sync server by result: sent, accepted, "
              "duplicate, refused, echo_skipped.")
        .Register(registry());

  prometheus::Family<prometheus::Gauge>& lag_seconds
    = prometheus::BuildGauge()
        .Name("ferry_sync_lag_seconds")
        .Help("How far our copy of the sync server (or GRASP relay) is "
              "behind: 0 while caught up and tailing, else seconds since it "
              "was last caught up (since it was first tried, if never).")
        .Register(registry());
};

families& all() {
  static families instance;
  return instance;
}

/// Makes a server's event series exist at 0 from its first connection
/// attempt on, so dashboards see a rate of 0 rather than no series.
void ensure_event_series(const std::string& server) {
  for (auto result : {event_result::received, event_result::accepted,
                      event_result::duplicate, event_result::rejected,
                      event_result::filtered})
    all().events.Add({{"server", server}, {"result", to_label(result)}});
  all().refused_skipped.Add({{"server", server}});
}

} // namespace

void set_connected(const std::string& server, bool connected) {
  all().connected.Add({{"server", server}}).Set(connected ? 1.0 : 0.0);
}

void attempt(const std::string& server, std::string_view result) {
  ensure_event_series(server);
  all()
    .attempts.Add({{"server", server}, {"result", std::string{result}}})
    .Increment();
}

void set_catchup_seconds(const std::string& server, double seconds) {
  all().catchup_seconds.Add({{"server", server}}).Set(seconds);
}

void events(const std::string& server, event_result result, uint64_t n) {
  counter_series(all().events, {{"server", server}, {"result", to_label(result)}})
    .Increment(static_cast<double>(n));
}

void refused_skipped(const std::string& server, uint64_t n) {
  all()
    .refused_skipped.Add({{"server", server}})
    .Increment(static_cast<double>(n));
}

void sent(const std::string& server, std::string_view result, uint64_t n) {
  counter_series(all().sent, {{"server", server}, {"result", result}})
    .Increment(static_cast<double>(n));
}

void set_lag(const std::string& server, double seconds) {
  all().lag_seconds.Add({{"server", server}}).Set(seconds);
}

} // namespace ferry::metrics::sync
