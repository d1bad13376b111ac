#include "actors/sync/relay_catchup.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/relay_connection_context.hpp"
#include "actors/sync/sync_metrics.hpp"
#include "messages/clock.hpp"
#include "messages/cluster/replication.hpp"
#include "messages/error.hpp"
#include "store/sync_store.hpp"

#include <algorithm>
#include <utility>

namespace ferry::relay_conn {

namespace {

pending_batches_actor batches_of(self_pointer self) {
  auto& slot = self->state.deps.batches;
  return slot ? slot->get() : pending_batches_actor{};
}

std::string catchup_payload(const relay_connection_state& st) {
  return "catchup:" + std::to_string(st.catchup.round);
}

} // namespace

/// Where a catch-up starts. REQ: the overlap window before the cursor,
/// after any outage: a remote may receive back-dated events while we are
/// away, and events we already hold cost only a lookup (the verifier skips
/// stored ids before checking signatures). `since` is inclusive, so events
/// sharing the cursor's second are asked for again. NIP-77, by the
/// 15-minute rule: a short outage reconciles from the overlap window before
/// the cursor, a long one everything. A first sync (no cursor) takes
/// everything either way, and so does replication from a cluster member.
int64_t catchup_since(const relay_connection_state& st, resume_mode mode) {
  auto cursor = store::get_sync_cursor(*st.deps.store, st.def.id);
  if (!cursor || !*cursor)
    return 0;
  auto before = std::max<int64_t>(
    0, (*cursor)->created_at - st.def.overlap_window_seconds);
  if (uses_negentropy(st) && mode == resume_mode::full_catchup)
    return 0;
  // The last reconciliation left ids the remote lacks for a later one.
  if (uses_negentropy(st) && st.neg.have_overflow)
    return 0;
  // A member's store gains events of any age (its own catch-ups of remote
  // relays), so replication from it reconciles everything, every time.
  if (uses_negentropy(st) && cluster::replicated_member(st.def.id))
    return 0;
  return before;
}

void start_any_catchup(self_pointer self, int64_t since) {
  auto& st = self->state;
  // Events the store failed to take are fetched again.
  if (since > 0 && st.cursor.unstored_since != INT64_MAX)
    since = std::min(since, st.cursor.unstored_since);
  st.cursor.unstored_in_catchup = false;
  st.catchup.from_beginning = since == 0;
  if (uses_negentropy(st))
    start_neg_catchup(self, since);
  else
    start_req_catchup(self, since);
}

void catch_up_again(self_pointer self, int64_t since) {
  forget_reqs(self);
  drop_catchup_batches(self);
  end_fetches(self);
  start_any_catchup(self, since);
}

void begin_catchup(self_pointer self) {
  auto& st = self->state;
  st.reqs.reopening = false;
  st.state = phase::catching_up;
  st.catchup.partial = false;
  st.catchup.complete = false;
  st.catchup.started = self->clock().now();
  st.catchup.started_ms = unix_now_ms();
  report(self, atom::report_v, atom::catchup_v, st.def.id);
}

bool track_catchup_sub(self_pointer self, const std::string& sub_id) {
  auto& st = self->state;
  auto batches = batches_of(self);
  if (!batches)
    return false;
  if (batches.address() != st.catchup.watched_batches) {
    self->monitor(batches);
    st.catchup.watched_batches = batches.address();
  }
  ++st.catchup.batches_open;
  self
    ->request(batches, std::chrono::seconds{10}, atom::open_v,
              caf::actor_cast<batch_listener_actor>(self), st.def.id,
              std::vector<std::string>{sub_id}, catchup_payload(st))
    .then([](uint64_t) {},
          [self, round = st.catchup.round](caf::error& err) {
            if (round == self->state.catchup.round)
              fail(self, error_class::protocol,
                   "could not track the catch-up: " + render(err));
          });
  return true;
}

void drop_catchup_batches(self_pointer self) {
  auto& st = self->state;
  ++st.catchup.round;
  st.catchup.batches_open = 0;
  if (auto batches = batches_of(self))
    self->send(batches, atom::lost_v, st.def.id);
}

void close_tracked_sub(self_pointer self, const std::string& sub_id) {
  if (auto batches = batches_of(self))
    self->send(batches, atom::eose_v, self->state.def.id, sub_id);
}

/// The catch-up ends once every page had its EOSE and every event of it has
/// an answer from the writer; only then may the cursor move.
void maybe_finish_catchup(self_pointer self) {
  auto& st = self->state;
  if (st.state != phase::catching_up || st.ingest.in_flight > 0
      || st.catchup.batches_open > 0 || negentropy_open(st)
      || !all_reqs_answered(st))
    return;
  // Nothing is in flight: every event received so far is answered, and
  // every page (or reconciled window) from the catch-up's `since` on is done.
  auto through = st.cursor.stored_through;
  // Everything a reconciliation covered is here now.
  if (auto reconciled = take_reconciled_through(self))
    through = std::max(through, *reconciled);
  // The catch-up started no later than any event the store failed to take
  // before it, and fetched them again, unless it read only a first page
  // that did not reach back to them: then the cursor stays below them
  // still, and the next catch-up starts from them.
  if (!st.cursor.unstored_in_catchup && !st.catchup.partial)
    st.cursor.unstored_since = INT64_MAX;
  advance_cursor(self, through);
  mark_caught_up(self);
  log::info("{} caught up ({} received, {} accepted, {} duplicate)", st.label,
            st.ingest.received, st.ingest.accepted, st.ingest.duplicate);
  // The live tail closed to make room for the pages: a catch-up from here
  // opens it again, and its stored part brings what the remote took
  // meanwhile, back-dated events within the overlap window included
  // (req_subscriptions::reopening). It starts from this one's end, not the
  // persisted cursor, which the writer has not committed yet.
  if (std::exchange(st.reqs.live_yielded, false)) {
    auto since = std::max<int64_t>(0, through - st.def.overlap_window_seconds);
    log::info("{} opens the live tail again: a catch-up from {}", st.label, since);
    start_any_catchup(self, since);
    st.reqs.reopening = true;
  }
  maybe_reconcile_again(self);
}

void mark_caught_up(self_pointer self) {
  auto& st = self->state;
  st.state = phase::live;
  st.catchup.complete = true;
  auto took = self->clock().now() - st.catchup.started;
  st.catchup.last_took = took;
  // Everything the remote held when it started is stored here only after a
  // catch-up from the beginning that read all of it and left nothing
  // unstored: other members' cursor claims are confirmed by this
  // (cluster_manager's reconciled_from), so it may not say more.
  if (st.catchup.from_beginning && !st.catchup.partial
      && st.cursor.unstored_since == INT64_MAX && syncs_down(st.def))
    st.catchup.full_started_ms = st.catchup.started_ms;
  report(self, atom::report_v, atom::caughtup_v, st.def.id,
         caf::timespan{took});
  metrics::sync::set_catchup_seconds(
    st.def.id, std::chrono::duration<double>(took).count());
  persist_runtime(self);
}

void on_batch_confirmed(self_pointer self, const batch_info& batch) {
  auto& st = self->state;
  if (batch.payload != catchup_payload(st) || st.catchup.batches_open == 0)
    return;
  --st.catchup.batches_open;
  maybe_finish_catchup(self);
}

void on_batch_failed(self_pointer self, const batch_info& batch) {
  if (batch.payload != catchup_payload(self->state))
    return;
  std::string why;
  for (const auto& sub : batch.subscriptions)
    if (sub.outcome != sub_outcome::eose)
      why += (why.empty() ? "" : ", ") + sub.id + " " + to_string(sub.outcome);
  fail(self, error_class::protocol, "catch-up incomplete: " + why);
}

void on_down(self_pointer self, const caf::down_msg& msg) {
  auto& st = self->state;
  if (msg.source != st.catchup.watched_batches)
    return;
  st.catchup.watched_batches = caf::actor_addr{};
  if (st.state == phase::catching_up && st.catchup.batches_open > 0)
    fail(self, error_class::protocol,
         "the pending-batch tracker restarted during the catch-up");
}

} // namespace ferry::relay_conn
