#pragma once

#include "messages/status.hpp"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace prometheus {
class Counter;
template <typename T>
class Family;
class Registry;
} // namespace prometheus

namespace ferry::metrics {

/// The node's one Prometheus registry (process-wide); `/metrics` serializes it.
prometheus::Registry& registry();

/// The registry in the Prometheus text exposition format.
std::string serialize();

/// A label's name and value.
using label = std::pair<std::string_view, std::string_view>;

/// The series of `family` with `labels`, for counters that move once per
/// event. `Family::Add` builds a label map, hashes it and takes the family's
/// lock on every call (~0.3-0.5 us; per synced event that was ~14% of a sync
/// connection's CPU), so each thread remembers the series it used, by the
/// family's address. `family` must live as long as the process (the node's
/// families are registered once and never destroyed) and no series of it
/// may be removed, so what is remembered stays valid.
prometheus::Counter& counter_series(prometheus::Family<prometheus::Counter>& family,
                                    std::initializer_list<label> labels);

/// ferry_client_connections (gauge).
void connection_opened();
void connection_closed();

/// ferry_relay_tls_handshake_failures_total: TLS handshakes on the relay
/// port that failed or timed out (each closed only its own connection).
void relay_tls_handshake_failed();

/// ferry_relay_refused_connections_total{limit}: WebSocket upgrades refused
/// at `limit` (`max_connections` or `max_connections_per_ip`).
void relay_connection_refused(std::string_view limit);

/// ferry_relay_overflow_disconnects_total{limit}: clients disconnected
/// because their outbound queue overflowed at `limit`
/// (`max_outbound_bytes` or `max_outbound_total_mb`).
void relay_overflow_disconnect(std::string_view limit);

/// ferry_negentropy_memory_bytes, ferry_negentropy_sessions and
/// ferry_negentropy_item_sets (gauges), moved by the given amounts (which
/// may be negative).
void negentropy_memory(int64_t bytes, int64_t sessions, int64_t item_sets);

/// ferry_negentropy_refusals_total: a NEG-OPEN refused for want of memory.
void negentropy_refused();

/// ferry_client_messages_total{verb}: EVENT, REQ, CLOSE, COUNT, NEG-OPEN,
/// NEG-MSG, NEG-CLOSE, or "other".
void message_received(std::string_view verb);

/// ferry_events_total{kind, source, result}: one per ingested event; `kind`
/// is bucketed to keep the label set small, `result` is an ingest_status text.
void event_ingested(uint32_t kind, std::string_view source,
                    std::string_view result);

/// ferry_signatures_checked_total{result="valid"|"invalid"}.
void signature_checked(bool valid);

/// ferry_relay_read_ahead_pages_total{result}: a page read ahead for a
/// paging client, served from memory, or dropped unserved.
enum class read_ahead_result { read, served, dropped };
void read_ahead_page(read_ahead_result result);

/// ferry_relay_read_ahead_bytes (gauge), moved by `bytes` (may be negative).
void read_ahead_memory(int64_t bytes);

/// ferry_writer_batch_events (histogram) and ferry_writer_commit_seconds
/// (histogram): one observation per committed WriteBatch.
void writer_batch(size_t events, double seconds);

/// ferry_actor_mailbox{actor} and ferry_actor_restarts_total{actor} (gauges
/// set from the inspector's view at scrape time).
void actor_observed(const std::string& name, int64_t mailbox, uint32_t restarts);

/// Node-wide gauges from the inspector's `stats`: the levels among them
/// (store size, pending events, subscriptions, sync servers by state, GRASP
/// repositories and relays), each as one named gauge, and each sync server's
/// lag from its `sync.servers` part (ferry_sync_lag_seconds{server}).
void stats_observed(const status_map& stats);

} // namespace ferry::metrics
