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
        .Help("Our registrations with peers, by result: registered, "
              "pending (the peer's operator must approve), failed (retried "
              "every interval unless the peer refused us with 400/401/403), "
              "skipped (the peer's federation is off).")
        .Register(registry());

  prometheus::Family<prometheus::Counter>& registrations
    = prometheus::BuildCounter()
        .Name("ferry_federation_registrations_total")
        .Help("Registrations peers made with us, by HTTP status answered.")
        .Register(registry());

  prometheus::Family<prometheus::Counter>& pin_mismatches
    = prometheus::BuildCounter()
        .Name("ferry_federation_pin_mismatches_total")
        .Help("Times a peer proved a node key other than the one pinned for "
              "it (once per new key), by peer. Its link is refused until "
              "`ferry console peer-reset PEER`.")
        .Register(registry());

  prometheus::Family<prometheus::Counter>& events
    = prometheus::BuildCounter()
        .Name("ferry_federation_events_total")
        .Help("Events the link with a peer carried, by peer and direction "
              "(in: received from it, out: sent to it); counted on the side "
              "that defined the peer, every federation interval.")
        .Register(registry());

  prometheus::Family<prometheus::Counter>& bytes
    = prometheus::BuildCounter()
        .Name("ferry_federation_bytes_total")
        .Help("Bytes the link with a peer carried (payloads of the "
              "WebSocket messages of its relay connection), by peer and "
              "direction; counted on the side that defined the peer, every "
              "federation interval.")
        .Register(registry());

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

void pin_mismatch(std::string_view peer) {
  all().pin_mismatches.Add({{"peer", std::string{peer}}}).Increment();
}

void exchanged(std::string_view peer, uint64_t events_in, uint64_t events_out,
               uint64_t bytes_in, uint64_t bytes_out) {
  auto& f = all();
  std::string name{peer};
  f.events.Add({{"peer", name}, {"direction", "in"}})
    .Increment(static_cast<double>(events_in));
  f.events.Add({{"peer", name}, {"direction", "out"}})
    .Increment(static_cast<double>(events_out));
  f.bytes.Add({{"peer", name}, {"direction", "in"}})
    .Increment(static_cast<double>(bytes_in));
  f.bytes.Add({{"peer", name}, {"direction", "out"}})
    .Increment(static_cast<double>(bytes_out));
}

void notice(std::string_view kind, bool delivered) {
  all()
    .notices
    .Add({{"kind", std::string{kind}},
          {"result", delivered ? "delivered" : "retry"}})
    .Increment();
}

void pulled(std::string_view peer, uint64_t imported, uint64_t skipped,
            uint64_t replaced, uint64_t refused, uint64_t failed) {
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
  f.Add({{"peer", name}, {"result", "failed"}})
    .Increment(static_cast<double>(failed));
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
