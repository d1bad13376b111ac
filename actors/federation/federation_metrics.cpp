#include "actors/federation/federation_metrics.hpp"

#include "actors/runtime/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <string>

namespace ferry::metrics::federation {

namespace {

/// The federation families, registered on first use.
struct families {
  prometheus::Family<prometheus::Counter>& handshakes
    = prometheus::BuildCounter()
        .Name("ferry_federation_handshakes_total")
        .Help("Answers to our registrations with peers, by result.")
        .Register(registry());

  prometheus::Family<prometheus::Counter>& registrations
    = prometheus::BuildCounter()
        .Name("ferry_federation_registrations_total")
        .Help("Registrations peers made with us, by HTTP status answered.")
        .Register(registry());

  prometheus::Counter& pin_mismatches
    = prometheus::BuildCounter()
        .Name("ferry_federation_pin_mismatches_total")
        .Help("Peers that proved a node key other than their pin.")
        .Register(registry())
        .Add({});

  prometheus::Family<prometheus::Counter>& notices
    = prometheus::BuildCounter()
        .Name("ferry_federation_notices_total")
        .Help("Status and delete notifications to peers, delivered or "
              "put back for a retry.")
        .Register(registry());

  prometheus::Family<prometheus::Counter>& pulled
    = prometheus::BuildCounter()
        .Name("ferry_federation_pulled_events_total")
        .Help("Events of collection pulls from peers, by peer and result.")
        .Register(registry());

  prometheus::Family<prometheus::Gauge>& peers
    = prometheus::BuildGauge()
        .Name("ferry_federation_peers")
        .Help("Federation links by status; refused: pin mismatches.")
        .Register(registry());
};

families& all() {
  static families instance;
  return instance;
}

} // namespace

void handshake(std::string_view result) {
  all().handshakes.Add({{"result", std::string{result}}}).Increment();
}

void registration_answered(unsigned status) {
  all().registrations.Add({{"status", std::to_string(status)}}).Increment();
}

void pin_mismatch() {
  all().pin_mismatches.Increment();
}

void notice(std::string_view kind, bool delivered) {
  all()
    .notices
    .Add({{"kind", std::string{kind}},
          {"result", delivered ? "delivered" : "retry"}})
    .Increment();
}

void pulled(std::string_view peer, uint64_t imported, uint64_t skipped,
            uint64_t replaced, uint64_t refused) {
  auto& f = all().pulled;
  std::string name{peer};
  f.Add({{"peer", name}, {"result", "imported"}})
    .Increment(static_cast<double>(imported));
  f.Add({{"peer", name}, {"result", "skipped"}})
    .Increment(static_cast<double>(skipped));
  f.Add({{"peer", name}, {"result", "replaced"}})
    .Increment(static_cast<double>(replaced));
  f.Add({{"peer", name}, {"result", "refused"}})
    .Increment(static_cast<double>(refused));
}

void set_peers(size_t active, size_t pending, size_t suspended,
               size_t revoked, size_t refused) {
  auto& f = all().peers;
  f.Add({{"status", "active"}}).Set(static_cast<double>(active));
  f.Add({{"status", "pending"}}).Set(static_cast<double>(pending));
  f.Add({{"status", "suspended"}}).Set(static_cast<double>(suspended));
  f.Add({{"status", "revoked"}}).Set(static_cast<double>(revoked));
  f.Add({{"status", "refused"}}).Set(static_cast<double>(refused));
}

} // namespace ferry::metrics::federation
