#include "actors/infra/infra_metrics.hpp"

#include "actors/runtime/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace ferry::metrics::infra {

namespace {

/// The infra families, registered on first use.
struct families {
  prometheus::Family<prometheus::Counter>& syncs
    = prometheus::BuildCounter()
        .Name("ferry_infra_syncs_total")
        .Help("Syncs of hosted relays to the management API, by result.")
        .Register(registry());

  prometheus::Counter& syncs_ok = syncs.Add({{"result", "ok"}});

  prometheus::Counter& syncs_failed = syncs.Add({{"result", "failed"}});

  prometheus::Counter& retries
    = prometheus::BuildCounter()
        .Name("ferry_infra_retries_scheduled_total")
        .Help("Retries of failed hosted relay syncs put on the clock.")
        .Register(registry())
        .Add({});

  prometheus::Gauge& given_up
    = prometheus::BuildGauge()
        .Name("ferry_infra_relays_given_up")
        .Help("Hosted relays whose sync failed infra.max_attempts times in "
              "a row; they wait for a change.")
        .Register(registry())
        .Add({});
};

families& all() {
  static families instance;
  return instance;
}

} // namespace

void sync_finished(bool ok) {
  auto& f = all();
  (ok ? f.syncs_ok : f.syncs_failed).Increment();
}

void retry_scheduled() {
  all().retries.Increment();
}

void set_given_up(size_t relays) {
  all().given_up.Set(static_cast<double>(relays));
}

} // namespace ferry::metrics::infra
