#include "actors/runtime/metrics.hpp"

#include "actors/sync/sync_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <caf/config_value.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <string_view>
#include <unordered_map>

namespace ferry::metrics {

namespace {

/// Client verbs that get their own label value; anything else is "other".
constexpr std::array<std::string_view, 7> verbs = {
  "EVENT", "REQ", "CLOSE", "COUNT", "NEG-OPEN", "NEG-MSG", "NEG-CLOSE"};

/// A gauge set from the inspector's `stats` at each scrape.
struct stats_gauge {
  std::string_view key;
  std::string_view name;
  std::string_view help;
};

/// The stats that are levels worth a gauge. Counts that only grow have
/// counters of their own (ferry_events_total, ferry_sync_events_total,
/// ferry_infra_syncs_total), the relay's connections are
/// ferry_client_connections, and hosted relays given up are
/// ferry_infra_relays_given_up.
constexpr stats_gauge stats_gauges[] = {
  {"store.events", "ferry_store_events",
   "Events in the store (RocksDB's estimate)."},
  {"store.disk_bytes", "ferry_store_disk_bytes",
   "Bytes the store takes on disk: tables, write-ahead log and manifest."},
  {"store.memtable_bytes", "ferry_store_memtable_bytes",
   "Bytes of events in memory not yet flushed to tables (they are in the "
   "write-ahead log)."},
  {"store.compactions_running", "ferry_store_compactions_running",
   "RocksDB compactions running now."},
  {"store.compaction_pending_bytes", "ferry_store_compaction_pending_bytes",
   "Bytes RocksDB estimates it must still rewrite to bring every level within "
   "its target size. A backlog that keeps growing means writes outpace the "
   "disk, and RocksDB will soon slow them down."},
  {"store.block_cache_bytes", "ferry_store_block_cache_bytes",
   "Bytes in the block cache (store.block_cache_mb caps it)."},
  {"store.block_cache_pinned_bytes", "ferry_store_block_cache_pinned_bytes",
   "Bytes of the block cache in use by reads right now: they cannot be "
   "evicted."},
  {"ingest.pending", "ferry_ingest_pending",
   "Events waiting for the writer's next commit; a level that keeps "
   "growing means the disk cannot keep up."},
  {"relay.subscriptions", "ferry_relay_subscriptions",
   "Open REQ subscriptions of relay clients."},
  {"relay.queued_bytes", "ferry_relay_outbound_queued_bytes",
   "Bytes queued for relay clients and not yet written to their sockets, "
   "all connections together (relay.limits.max_outbound_total_mb is their "
   "budget)."},
  {"relay.inbound_bytes", "ferry_relay_inbound_held_bytes",
   "Bytes of relay clients' messages read and not yet processed, all "
   "connections together (relay.limits.max_inbound_total_mb is their "
   "budget)."},
  {"sync.configured", "ferry_sync_servers",
   "Sync servers configured on this node."},
  {"sync.live", "ferry_sync_servers_live",
   "Sync servers caught up and tailing new events."},
  {"sync.catching_up", "ferry_sync_servers_catching_up",
   "Sync servers connecting or catching up."},
  {"sync.failing", "ferry_sync_servers_failing",
   "Sync servers waiting to retry after a failure."},
  {"sync.given_up", "ferry_sync_servers_given_up",
   "Sync servers given up or disabled: they need an operator."},
  {"grasp.repos", "ferry_grasp_repos",
   "GRASP repositories whose events this node fetches."},
  {"grasp.relays", "ferry_grasp_relays",
   "Relays GRASP sync holds a connection to."},
  {"grasp.failing", "ferry_grasp_relays_failing",
   "GRASP relays waiting to retry after a failure."},
};

/// Every family, built once. prometheus-cpp metrics are thread-safe, so the
/// hot paths touch them without a lock of ours.
struct families {
  prometheus::Registry registry;

  prometheus::Gauge& client_connections
    = prometheus::BuildGauge()
        .Name("ferry_client_connections")
        .Help("Open client WebSocket connections on the relay port.")
        .Register(registry)
        .Add({});

  prometheus::Counter& tls_handshake_failures
    = prometheus::BuildCounter()
        .Name("ferry_relay_tls_handshake_failures_total")
        .Help("TLS handshakes on the relay port that failed or timed out.")
        .Register(registry)
        .Add({});

  prometheus::Family<prometheus::Counter>& connections_refused
    = prometheus::BuildCounter()
        .Name("ferry_relay_refused_connections_total")
        .Help("WebSocket upgrades on the relay port refused at a limit: "
              "max_connections (answered 503) or max_connections_per_ip "
              "(answered 429).")
        .Register(registry);

  prometheus::Counter& refused_at_max
    = connections_refused.Add({{"limit", "max_connections"}});

  prometheus::Counter& refused_at_max_per_ip
    = connections_refused.Add({{"limit", "max_connections_per_ip"}});

  prometheus::Family<prometheus::Counter>& overflow_disconnects
    = prometheus::BuildCounter()
        .Name("ferry_relay_overflow_disconnects_total")
        .Help("Relay clients disconnected because they read too slowly: "
              "beyond their own queue cap (max_outbound_bytes) or their "
              "share of the budget for all (max_outbound_total_mb).")
        .Register(registry);

  prometheus::Counter& overflow_at_own_cap
    = overflow_disconnects.Add({{"limit", "max_outbound_bytes"}});

  prometheus::Counter& overflow_at_shared_budget
    = overflow_disconnects.Add({{"limit", "max_outbound_total_mb"}});

  prometheus::Gauge& negentropy_memory_bytes
    = prometheus::BuildGauge()
        .Name("ferry_negentropy_memory_bytes")
        .Help("Bytes held by the relay's negentropy item sets (each shared "
              "set once) and sessions, counted against "
              "relay.negentropy.max_memory_mb.")
        .Register(registry)
        .Add({});

  prometheus::Gauge& negentropy_sessions
    = prometheus::BuildGauge()
        .Name("ferry_negentropy_sessions")
        .Help("Open negentropy sessions on the relay that hold an item set.")
        .Register(registry)
        .Add({});

  prometheus::Gauge& negentropy_item_sets
    = prometheus::BuildGauge()
        .Name("ferry_negentropy_item_sets")
        .Help("Distinct negentropy item sets in memory (shared by sessions "
              "with the same filter over the same store snapshot).")
        .Register(registry)
        .Add({});

  prometheus::Counter& negentropy_refusals
    = prometheus::BuildCounter()
        .Name("ferry_negentropy_refusals_total")
        .Help("NEG-OPENs refused because the negentropy memory budget was "
              "full.")
        .Register(registry)
        .Add({});

  prometheus::Family<prometheus::Counter>& client_messages
    = prometheus::BuildCounter()
        .Name("ferry_client_messages_total")
        .Help("Messages received from relay clients, by verb.")
        .Register(registry);

  /// One counter per entry of `verbs`, then "other": resolved once, so a
  /// message costs no label lookup.
  std::array<prometheus::Counter*, verbs.size() + 1> verb_counters{};

  prometheus::Family<prometheus::Counter>& events
    = prometheus::BuildCounter()
        .Name("ferry_events_total")
        .Help("Events through the ingest path, by kind (bucketed), source "
              "and result.")
        .Register(registry);

  prometheus::Family<prometheus::Counter>& signatures
    = prometheus::BuildCounter()
        .Name("ferry_signatures_checked_total")
        .Help("Event signatures checked, by result.")
        .Register(registry);

  prometheus::Counter& signatures_valid = signatures.Add({{"result", "valid"}});

  prometheus::Counter& signatures_invalid
    = signatures.Add({{"result", "invalid"}});

  prometheus::Family<prometheus::Counter>& read_ahead_pages
    = prometheus::BuildCounter()
        .Name("ferry_relay_read_ahead_pages_total")
        .Help("Pages read ahead for clients paging with limit + until: read, "
              "served (a REQ answered from memory) or dropped (a write came "
              "in between, another REQ came, or none within a second).")
        .Register(registry);

  prometheus::Counter& read_ahead_read = read_ahead_pages.Add({{"result", "read"}});

  prometheus::Counter& read_ahead_served
    = read_ahead_pages.Add({{"result", "served"}});

  prometheus::Counter& read_ahead_dropped
    = read_ahead_pages.Add({{"result", "dropped"}});

  prometheus::Gauge& read_ahead_bytes
    = prometheus::BuildGauge()
        .Name("ferry_relay_read_ahead_bytes")
        .Help("Bytes held by pages read ahead, counted against "
              "relay.read_ahead_mb.")
        .Register(registry)
        .Add({});

  prometheus::Histogram& batch_events
    = prometheus::BuildHistogram()
        .Name("ferry_writer_batch_events")
        .Help("Events per committed write batch.")
        .Register(registry)
        .Add({}, prometheus::Histogram::BucketBoundaries{
                   1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
                   8192});

  prometheus::Histogram& commit_seconds
    = prometheus::BuildHistogram()
        .Name("ferry_writer_commit_seconds")
        .Help("Time to commit one write batch, in seconds.")
        .Register(registry)
        .Add({}, prometheus::Histogram::BucketBoundaries{
                   0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                   0.05, 0.1, 0.25, 0.5, 1});

  prometheus::Family<prometheus::Gauge>& actor_mailbox
    = prometheus::BuildGauge()
        .Name("ferry_actor_mailbox")
        .Help("Messages waiting in an actor's mailbox (-1: it did not "
              "answer in time), as of the last scrape.")
        .Register(registry);

  prometheus::Family<prometheus::Gauge>& actor_restarts
    = prometheus::BuildGauge()
        .Name("ferry_actor_restarts_total")
        .Help("Times the supervisor restarted an actor.")
        .Register(registry);

  /// One gauge per entry of `stats_gauges`, built once.
  std::map<std::string_view, prometheus::Gauge*> stats;

  families() {
    for (size_t i = 0; i < verbs.size(); ++i)
      verb_counters[i]
        = &client_messages.Add({{"verb", std::string{verbs[i]}}});
    verb_counters.back() = &client_messages.Add({{"verb", "other"}});
    for (auto& gauge : stats_gauges)
      stats[gauge.key] = &prometheus::BuildGauge()
                            .Name(std::string{gauge.name})
                            .Help(std::string{gauge.help})
                            .Register(registry)
                            .Add({});
  }
};
families& all() {
  static families instance;
  return instance;
}

/// Regular kinds (64 and above) that NIPs define, sorted: each keeps its own
/// `kind` label.
constexpr std::array<uint32_t, 31> named_regular_kinds{
  1018, 1021, 1022, 1040, 1059, 1063, 1068, 1111, 1222, 1244, 1311,
  1617, 1618, 1619, 1621, 1622, 1630, 1631, 1632, 1633, 1971, 1984,
  1985, 2003, 2004, 4550, 7000, 9041, 9734, 9735, 9802};

/// Keeps the `kind` label bounded whatever kinds clients sign: exact below 64
/// and for the regular kinds NIPs define, one bucket per range otherwise.
/// (An exact label for every kind below 10000 let one client add 10,000
/// series that never go away.)
std::string kind_label(uint32_t kind) {
  if (kind < 64
      || std::binary_search(named_regular_kinds.begin(), named_regular_kinds.end(),
                            kind))
    return std::to_string(kind);
  if (kind >= 5000 && kind < 7000)
    return kind < 6000 ? "5000-5999" : "6000-6999";
  if (kind < 10000)
    return "other-0-9999";
  if (kind < 20000)
    return "10000-19999";
  if (kind < 30000)
    return "20000-29999";
  if (kind < 40000)
    return "30000-39999";
  return "40000+";
}

/// Sets the lag gauge of every relay in the stats' `sync.servers` (by id:
/// status, lag_seconds, ...).
void observe_lag(const status_map& stats) {
  auto servers = caf::get_if<caf::settings>(&stats, "sync.servers");
  if (!servers)
    return;
  for (const auto& [id, value] : *servers)
    if (auto entry = caf::get_if<caf::settings>(&value))
      if (auto lag = caf::get_if<int64_t>(entry, "lag_seconds"))
        sync::set_lag(id, static_cast<double>(*lag));
}

// -- text exposition format ---------------------------------------------------
//
// prometheus-cpp's TextSerializer writes a histogram's _count and _sum before
// its buckets. The format allows that, but common consumers expect the
// reference clients' order (buckets, _sum, _count); the npm
// parse-prometheus-text-format crashes otherwise (its issue #14). So Ferry
// writes the format itself, in that order.

/// `s` with backslashes and newlines escaped; label values also escape `"`.
void append_escaped(std::string& out, const std::string& s, bool quotes) {
  for (auto c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quotes)
      out += "\\\"";
    else
      out += c;
  }
}

/// `x` as the reference clients write it: whole numbers without exponent,
/// others in the shortest form that reads back exactly ("0.00025"), and
/// +Inf, -Inf and NaN as the format spells them.
void append_number(std::string& out, double x) {
  if (std::isnan(x)) {
    out += "NaN";
  } else if (std::isinf(x)) {
    out += x > 0 ? "+Inf" : "-Inf";
  } else if (x == std::floor(x) && std::fabs(x) < 1e15) {
    out += std::to_string(static_cast<int64_t>(x));
  } else {
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof(buf), x,
                             std::chars_format::general);
    out.append(buf, res.ptr);
  }
}

/// One sample line: `name{labels,extra} value [timestamp]`.
void append_sample(std::string& out, const std::string& name,
                   const prometheus::ClientMetric& m, double value,
                   const char* extra_label = nullptr, double extra_value = 0) {
  out += name;
  if (!m.label.empty() || extra_label != nullptr) {
    out += '{';
    auto first = true;
    for (const auto& l : m.label) {
      if (!first)
        out += ',';
      first = false;
      out += l.name;
      out += "=\"";
      append_escaped(out, l.value, true);
      out += '"';
    }
    if (extra_label != nullptr) {
      if (!first)
        out += ',';
      out += extra_label;
      out += "=\"";
      append_number(out, extra_value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  if (m.timestamp_ms != 0) {
    out += ' ';
    out += std::to_string(m.timestamp_ms);
  }
  out += '\n';
}

const char* type_name(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter:
      return "counter";
    case prometheus::MetricType::Gauge:
      return "gauge";
    case prometheus::MetricType::Summary:
      return "summary";
    case prometheus::MetricType::Histogram:
      return "histogram";
    case prometheus::MetricType::Untyped:
      break;
  }
  return "untyped";
}

void append_family(std::string& out, const prometheus::MetricFamily& f) {
  out += "# HELP ";
  out += f.name;
  out += ' ';
  append_escaped(out, f.help, false);
  out += "\n# TYPE ";
  out += f.name;
  out += ' ';
  out += type_name(f.type);
  out += '\n';
  for (const auto& m : f.metric) {
    switch (f.type) {
      case prometheus::MetricType::Counter:
        append_sample(out, f.name, m, m.counter.value);
        break;
      case prometheus::MetricType::Gauge:
        append_sample(out, f.name, m, m.gauge.value);
        break;
      case prometheus::MetricType::Untyped:
        append_sample(out, f.name, m, m.untyped.value);
        break;
      case prometheus::MetricType::Summary:
        for (const auto& q : m.summary.quantile)
          append_sample(out, f.name, m, q.value, "quantile", q.quantile);
        append_sample(out, f.name + "_sum", m, m.summary.sample_sum);
        append_sample(out, f.name + "_count", m,
                      static_cast<double>(m.summary.sample_count));
        break;
      case prometheus::MetricType::Histogram:
        for (const auto& b : m.histogram.bucket)
          append_sample(out, f.name + "_bucket", m,
                        static_cast<double>(b.cumulative_count), "le",
                        b.upper_bound);
        append_sample(out, f.name + "_sum", m, m.histogram.sample_sum);
        append_sample(out, f.name + "_count", m,
                      static_cast<double>(m.histogram.sample_count));
        break;
    }
  }
}

} // namespace

prometheus::Registry& registry() {
  return all().registry;
}

std::string serialize() {
  std::string out;
  for (const auto& family : registry().Collect())
    append_family(out, family);
  return out;
}

void connection_opened() {
  all().client_connections.Increment();
}

void connection_closed() {
  all().client_connections.Decrement();
}

void relay_tls_handshake_failed() {
  all().tls_handshake_failures.Increment();
}

void relay_connection_refused(std::string_view limit) {
  auto& f = all();
  (limit == "max_connections_per_ip" ? f.refused_at_max_per_ip
                                     : f.refused_at_max)
    .Increment();
}

void relay_overflow_disconnect(std::string_view limit) {
  auto& f = all();
  (limit == "max_outbound_total_mb" ? f.overflow_at_shared_budget
                                    : f.overflow_at_own_cap)
    .Increment();
}

void negentropy_memory(int64_t bytes, int64_t sessions, int64_t item_sets) {
  auto& f = all();
  f.negentropy_memory_bytes.Increment(static_cast<double>(bytes));
  f.negentropy_sessions.Increment(static_cast<double>(sessions));
  f.negentropy_item_sets.Increment(static_cast<double>(item_sets));
}

void negentropy_refused() {
  all().negentropy_refusals.Increment();
}

void message_received(std::string_view verb) {
  auto& f = all();
  for (size_t i = 0; i < verbs.size(); ++i) {
    if (verbs[i] == verb) {
      f.verb_counters[i]->Increment();
      return;
    }
  }
  f.verb_counters.back()->Increment();
}

prometheus::Counter& counter_series(prometheus::Family<prometheus::Counter>& family,
                                    std::initializer_list<label> labels) {
  // Keyed by the family's address and each label name and value with its
  // length before it (no two label sets make the same key); the key's
  // buffer is reused, so a series seen before costs a hash and a compare.
  thread_local std::unordered_map<std::string, prometheus::Counter*> known;
  thread_local std::string key;
  auto append = [](std::string_view bytes) {
    auto size = static_cast<uint32_t>(bytes.size());
    key.append(reinterpret_cast<const char*>(&size), sizeof(size));
    key.append(bytes);
  };
  auto* family_address = &family;
  key.assign(reinterpret_cast<const char*>(&family_address), sizeof(family_address));
  for (const auto& [name, value] : labels) {
    append(name);
    append(value);
  }
  if (auto it = known.find(key); it != known.end())
    return *it->second;
  std::map<std::string, std::string> map;
  for (const auto& [name, value] : labels)
    map.emplace(name, value);
  auto& series = family.Add(map);
  known.emplace(key, &series);
  return series;
}

void event_ingested(uint32_t kind, std::string_view source,
                    std::string_view result) {
  counter_series(all().events, {{"kind", kind_label(kind)},
                                {"source", source},
                                {"result", result}})
    .Increment();
}

void signature_checked(bool valid) {
  auto& f = all();
  (valid ? f.signatures_valid : f.signatures_invalid).Increment();
}

void read_ahead_page(read_ahead_result result) {
  auto& f = all();
  switch (result) {
    case read_ahead_result::read:
      f.read_ahead_read.Increment();
      break;
    case read_ahead_result::served:
      f.read_ahead_served.Increment();
      break;
    case read_ahead_result::dropped:
      f.read_ahead_dropped.Increment();
      break;
  }
}

void read_ahead_memory(int64_t bytes) {
  all().read_ahead_bytes.Increment(static_cast<double>(bytes));
}

void writer_batch(size_t events, double seconds) {
  auto& f = all();
  f.batch_events.Observe(static_cast<double>(events));
  f.commit_seconds.Observe(seconds);
}

void actor_observed(const std::string& name, int64_t mailbox,
                    uint32_t restarts) {
  auto& f = all();
  f.actor_mailbox.Add({{"actor", name}}).Set(static_cast<double>(mailbox));
  f.actor_restarts.Add({{"actor", name}}).Set(restarts);
}

void stats_observed(const status_map& stats) {
  auto& f = all();
  for (auto& gauge : stats_gauges)
    if (auto value = caf::get_if<int64_t>(&stats, gauge.key))
      f.stats[gauge.key]->Set(static_cast<double>(*value));
  observe_lag(stats);
}

} // namespace ferry::metrics
