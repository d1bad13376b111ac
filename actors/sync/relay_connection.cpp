#include "actors/sync/relay_connection.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/relay_connection_context.hpp"
#include "actors/sync/relay_frames.hpp"
#include "actors/sync/sync_metrics.hpp"
#include "messages/clock.hpp"
#include "messages/cluster/replication.hpp"
#include "messages/error.hpp"
#include "store/sync_store.hpp"

namespace ferry {

namespace relay_conn {

namespace {

std::string to_string(phase x) {
  switch (x) {
    case phase::idle:
      return "idle";
    case phase::relay_info:
      return "relay_info";
    case phase::connecting:
      return "connecting";
    case phase::catching_up:
      return "catching_up";
    case phase::live:
      return "live";
    case phase::backing_off:
      return "backing_off";
    case phase::dead:
      return "dead";
  }
  return "unknown";
}

/// The WebSocket is open: start what the definition asks for.
void on_connected(self_pointer self, uint64_t gen) {
  auto& st = self->state;
  if (gen != st.generation)
    return;
  st.session.last_connected = unix_now();
  st.session.last_error.clear();
  metrics::sync::set_connected(st.def.id, true);
  report(self, atom::report_v, atom::connected_v, st.def.id);
  log::info("{} connected to {}", st.label, st.def.url);
  if (driven(st))
    return on_driven_connected(self);
  if (!uses_negentropy(st)) {
    // A reconciliation decides what goes up; REQ mode sends the log.
    if (sends_up(st.def))
      start_up(self);
    if (!syncs_down(st.def)) {
      persist_runtime(self);
      return;
    }
  }
  ask_health(
    self,
    [self, gen](resume_mode mode) {
      if (gen == self->state.generation)
        start_any_catchup(self, catchup_since(self->state, mode));
    },
    [self, gen](caf::error&) {
      if (gen == self->state.generation)
        start_any_catchup(self, 0);
    },
    resume_mode::full_catchup, atom::get_v, atom::resume_v, st.def.id);
  persist_runtime(self);
}

/// Sync-now: connect if idle; with a connection up, catch up again.
void on_sync_now(self_pointer self) {
  auto& st = self->state;
  auto up_phase = st.state == phase::live || st.state == phase::catching_up;
  if (!syncs_down(st.def) && !uses_negentropy(st) && up_phase)
    return resend_unanswered_up(self);
  if (up_phase)
    return catch_up_again(self, catchup_since(st, resume_mode::full_catchup));
  if (st.state != phase::relay_info && st.state != phase::connecting)
    begin(self);
}

status_map status_of(self_pointer self) {
  auto& st = self->state;
  status_map result;
  caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
  caf::put(result, "state", to_string(st.state));
  caf::put(result, "url", st.def.url);
  caf::put(result, "connected",
           st.state == phase::catching_up || st.state == phase::live);
  caf::put(result, "catchup_complete", st.catchup.complete);
  caf::put(result, "last_catchup_ms",
           static_cast<int64_t>(
             std::chrono::duration_cast<std::chrono::milliseconds>(
               st.catchup.last_took)
               .count()));
  caf::put(result, "full_catchup_started_ms", st.catchup.full_started_ms);
  caf::put(result, "received", static_cast<int64_t>(st.ingest.received));
  caf::put(result, "accepted", static_cast<int64_t>(st.ingest.accepted));
  caf::put(result, "duplicate", static_cast<int64_t>(st.ingest.duplicate));
  caf::put(result, "rejected", static_cast<int64_t>(st.ingest.rejected));
  caf::put(result, "refused", static_cast<int64_t>(st.ingest.refused));
  caf::put(result, "failed", static_cast<int64_t>(st.ingest.failed));
  caf::put(result, "filtered", static_cast<int64_t>(st.ingest.filtered));
  caf::put(result, "in_flight", static_cast<int64_t>(st.ingest.in_flight));
  if (st.deletions.active) {
    caf::put(result, "deletions.authors_followed",
             static_cast<int64_t>(st.deletions.authors.size()));
    caf::put(result, "deletions.received",
             static_cast<int64_t>(st.deletions.received));
  }
  int64_t cursor = 0;
  if (auto c = store::get_sync_cursor(*st.deps.store, st.def.id); c && *c)
    cursor = (*c)->created_at;
  caf::put(result, "cursor", cursor);
  caf::put(result, "direction", to_string(st.def.direction));
  caf::put(result, "mode", to_string(st.def.mode));
  const auto& neg = st.neg;
  if (st.def.mode == sync_mode::negentropy)
    caf::put(result, "negentropy",
             neg.unsupported.empty() ? std::string{"supported"}
                                     : "unsupported: " + neg.unsupported);
  caf::put(result, "neg_rounds",
           static_cast<int64_t>(neg.rounds + (neg.run ? neg.run->rounds : 0)));
  caf::put(result, "neg_paged", static_cast<int64_t>(neg.paged));
  caf::put(result, "neg_rounds_held", static_cast<int64_t>(neg.rounds_held));
  caf::put(result, "neg_need", static_cast<int64_t>(neg.need));
  caf::put(result, "neg_need_refused", static_cast<int64_t>(neg.need_refused));
  caf::put(result, "neg_have", static_cast<int64_t>(neg.have));
  caf::put(result, "neg_have_waiting",
           static_cast<int64_t>(neg.have_ids.size()
                                + (st.up.stream ? st.up.stream->extras_waiting()
                                                : 0)));
  caf::put(result, "neg_have_deferred", static_cast<int64_t>(neg.have_deferred));
  caf::put(result, "neg_reconciled_again",
           static_cast<int64_t>(neg.reconciled_again));
  caf::put(result, "fetch_missing",
           static_cast<int64_t>(neg.fetch_missing
                                + (neg.fetcher ? neg.fetcher->missing : 0)));
  caf::put(result, "fetch_refused",
           static_cast<int64_t>(neg.fetch_refused
                                + (neg.fetcher ? neg.fetcher->refused : 0)));
  caf::put(result, "fetch_unanswered",
           static_cast<int64_t>(neg.fetch_unanswered
                                + (neg.fetcher ? neg.fetcher->unanswered : 0)));
  caf::put(result, "reqs_asked_again", static_cast<int64_t>(st.reqs.asked_again));
  caf::put(result, "fetched_elsewhere",
           static_cast<int64_t>(neg.fetched_elsewhere
                                + (neg.fetcher ? neg.fetcher->fetched_elsewhere : 0)));
  const auto& up = st.up;
  caf::put(result, "sent", static_cast<int64_t>(up.sent()));
  caf::put(result, "sent_ok", static_cast<int64_t>(up.sent_ok()));
  caf::put(result, "sent_refused", static_cast<int64_t>(up.sent_refused()));
  caf::put(result, "echoes_skipped", static_cast<int64_t>(up.echoes_skipped()));
  caf::put(result, "up_cursor", static_cast<int64_t>(
                                  up.stream ? up.stream->cursor() : up.cursor));
  caf::put(result, "up_in_flight",
           static_cast<int64_t>(up.stream ? up.stream->in_flight() : 0));
  caf::put(result, "last_error", st.session.last_error);
  caf::put(result, "last_connected", st.session.last_connected);
  caf::put(result, "disconnected_at", st.session.disconnected_at);
  caf::put(result, "bytes_received",
           static_cast<int64_t>(
             st.session.conn ? st.session.conn->bytes_received() : 0));
  caf::put(result, "bytes_sent",
           static_cast<int64_t>(
             st.session.conn ? st.session.conn->bytes_sent() : 0));
  return result;
}

} // namespace

void persist_runtime(self_pointer self) {
  auto& st = self->state;
  // A driven connection's state lives in GRASP SYNC's relay_sync records.
  if (driven(st))
    return;
  auto runtime = store::get_sync_runtime(*st.deps.store, st.def.id);
  if (!runtime)
    return;
  auto& up = st.up;
  if (up.stream)
    up.cursor = up.stream->cursor();
  runtime->sent = up.sent();
  runtime->sent_ok = up.sent_ok();
  runtime->sent_refused = up.sent_refused();
  runtime->echoes_skipped = up.echoes_skipped();
  runtime->up_cursor = up.cursor;
  runtime->up_era = st.era;
  up.cursor_persisted = up.cursor;
  runtime->received = st.ingest.received;
  runtime->accepted = st.ingest.accepted;
  runtime->duplicate = st.ingest.duplicate;
  runtime->rejected = st.ingest.rejected;
  runtime->refused = st.ingest.refused;
  runtime->neg_need_refused = st.neg.need_refused;
  runtime->filtered = st.ingest.filtered;
  runtime->last_connected = st.session.last_connected;
  runtime->disconnected_at = st.session.disconnected_at;
  runtime->last_error = st.session.last_error;
  if (st.catchup.complete)
    runtime->last_catchup_completed = unix_now();
  if (auto err = store::put_sync_runtime(*st.deps.store, st.def.id, *runtime))
    log::warn("{} could not persist its runtime state: {}", st.label,
              render(err));
}

} // namespace relay_conn

relay_connection_actor::behavior_type
relay_connection(relay_connection_actor::stateful_pointer<relay_connection_state> self,
                 sync_server def, relay_connection_deps deps) {
  using namespace relay_conn;
  auto& st = self->state;
  st.session.tls = tls_options_of(def);
  auto member = cluster::replicated_member(def.id);
  st.label = deps.driver_listener ? "grasp:" + def.url
             : member             ? cluster::peer_source(*member)
                                  : "sync:" + def.id;
  st.def = std::move(def);
  st.deps = std::move(deps);
  load_deletion_authors(self);
  load_server_policy(self);
  follow_server_policy(self);
  // Unreadable, the era stays 0: the writer then drops this connection's
  // cursors (it repeats work, never skips it).
  if (auto era = store::get_sync_era(*st.deps.store, st.def.id))
    st.era = *era;
  else
    log::warn("{} cannot read its definition's era: {}", st.label,
              render(era.error()));
  // The up cursor of an earlier definition (other filters, another remote)
  // skipped log entries that were not for it, and may be for this one: it
  // starts over, as a new server's does.
  if (auto runtime = store::get_sync_runtime(*st.deps.store, st.def.id);
      runtime && runtime->up_era == st.era) {
    st.up.cursor = runtime->up_cursor;
    st.up.cursor_persisted = st.up.cursor;
  }
  self->set_down_handler(
    [self](const caf::down_msg& msg) { on_down(self, msg); });
  if (!driven(st))
    self->send(self, atom::reconnect_v, st.generation);
  else if (st.deps.start_after > caf::timespan::zero()) {
    st.state = phase::backing_off;
    self->delayed_send(self, st.deps.start_after, atom::reconnect_v,
                       st.generation);
  }
  return {
    [self](atom::sync_now) { on_sync_now(self); },
    [self](atom::get, atom::status) { return status_of(self); },
    [self](atom::info, uint64_t gen, uint32_t status, const std::string& body) {
      on_relay_info(self, gen, status, body);
    },
    [self](atom::connected, uint64_t gen) { on_connected(self, gen); },
    [self](atom::frame, uint64_t gen, std::string& frame) {
      if (gen == self->state.generation)
        on_frame(self, frame);
    },
    // Whatever the generation: gathered events are numbered and in flight.
    [self](atom::ingest) {
      self->state.ingest.hand_over_due = false;
      hand_over_gathered(self);
    },
    [self](atom::closed, uint64_t gen, uint8_t kind, const std::string& reason) {
      on_transport_closed(self, gen, kind, reason);
    },
    [self](atom::reconnect, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.generation)
        return;
      // A driven connection dials only when GRASP SYNC wants something.
      if (driven(st) && st.driven.queued.empty()) {
        st.state = phase::idle;
        return;
      }
      begin(self);
    },
    [self](atom::subscribe, std::vector<grasp::subscription>& wanted) {
      on_driven_subscribe(self, wanted);
    },
    [self](atom::flush, uint64_t serial) { on_driven_flush(self, serial); },
    [self](atom::unsubscribe, const std::vector<std::string>& ids) {
      on_driven_unsubscribe(self, ids);
    },
    [self](atom::confirmed, const batch_info& batch) {
      on_batch_confirmed(self, batch);
    },
    [self](atom::failed, const batch_info& batch) {
      on_batch_failed(self, batch);
    },
    [self](atom::timeout, uint64_t gen, uint64_t serial) {
      on_neg_timeout(self, gen, serial);
    },
    [self](atom::timeout, uint64_t gen) { on_fetch_quiet_look(self, gen); },
    [self](atom::pending, uint64_t gen) { on_req_quiet_look(self, gen); },
    [self](atom::neg, uint64_t gen, uint64_t serial,
           const item_scan_result_ptr& scan) {
      on_neg_items(self, gen, serial, scan);
    },
    [self](atom::feed, const ingest_item_ptr&) { pump_up(self); },
    [self](atom::tick, uint64_t gen) { on_up_check(self, gen); },
    [self](atom::retry, uint64_t gen) { on_fetch_look(self, gen); },
    [self](atom::deletions, uint64_t gen) {
      flush_deletion_authors(self, gen);
    },
  };
}

} // namespace ferry
