#include "actors/sync/relay_up.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/relay_connection_context.hpp"
#include "actors/sync/sync_metrics.hpp"
#include "messages/clock.hpp"

namespace ferry {

uint64_t relay_up::sent() const {
  return sent_before + (stream ? stream->sent : 0);
}

uint64_t relay_up::sent_ok() const {
  return sent_ok_before + (stream ? stream->accepted + stream->duplicate : 0);
}

uint64_t relay_up::sent_refused() const {
  return sent_refused_before + (stream ? stream->refused : 0);
}

uint64_t relay_up::echoes_skipped() const {
  return echoes_skipped_before + (stream ? stream->echoes_skipped : 0);
}

namespace relay_conn {

namespace {

/// Events sent up and not answered yet: enough to fill a loopback pipe,
/// few enough that a reconnect resends little.
constexpr size_t up_window = 500;

/// A remote that leaves an event sent up unanswered this long is stuck.
constexpr int64_t up_ok_timeout_seconds = 30;
constexpr auto up_check_interval = std::chrono::seconds{5};

/// The up cursor is written after this many log entries, and when drained.
constexpr uint64_t up_persist_every = 256;

/// Up only: the session is caught up once the log's backlog is answered.
void finish_up_catchup(self_pointer self) {
  mark_caught_up(self);
  auto& st = self->state;
  log::info("{} caught up: {} events sent", st.label, st.up.stream->sent);
}

} // namespace

bool sends_up(const sync_server& def) {
  return def.direction != sync_direction::down;
}

void start_up(self_pointer self) {
  auto& st = self->state;
  auto& up = st.up;
  // What a reconciliation found the remote lacks goes before the log.
  auto extras = std::exchange(st.neg.have_ids, {});
  if (up.stream) {
    // A later reconciliation on the same connection (sync-now).
    up.stream->enqueue(extras);
    return pump_up(self);
  }
  up.stream.emplace(*st.deps.store, st.label, st.def.filters, up.cursor,
                    up_window);
  up.stream->enqueue(extras);
  up.stream->skip_to(st.neg.log_covered);
  up.resend_after_auth = false;
  if (auto hub = st.deps.hub ? st.deps.hub->get() : hub_actor{})
    self->send(hub, atom::subscribe_v, atom::feed_v,
               caf::actor_cast<feed_listener_actor>(self),
               std::make_shared<const std::vector<nostr::filter>>(
                 st.def.filters));
  // Up only by REQ, sending the log's backlog is the catch-up; a
  // reconciliation is one of its own.
  if (st.def.direction == sync_direction::up && !st.neg.run)
    begin_catchup(self);
  pump_up(self);
}

void stop_up(self_pointer self) {
  auto& st = self->state;
  auto& up = st.up;
  if (!up.stream)
    return;
  up.cursor = up.stream->cursor();
  up.sent_before += up.stream->sent;
  up.sent_ok_before += up.stream->accepted + up.stream->duplicate;
  up.sent_refused_before += up.stream->refused;
  up.echoes_skipped_before += up.stream->echoes_skipped;
  up.stream.reset();
  // A check still in the mailbox belongs to the old generation.
  up.check_scheduled = false;
  if (auto hub = st.deps.hub ? st.deps.hub->get() : hub_actor{})
    self->send(hub, atom::unsubscribe_v, atom::feed_v,
               caf::actor_cast<feed_listener_actor>(self));
}

void pump_up(self_pointer self) {
  auto& st = self->state;
  auto& up = st.up;
  if (!up.stream || !st.session.conn)
    return;
  auto skipped = up.stream->echoes_skipped;
  auto frames = up.stream->fill(unix_now());
  if (up.stream->echoes_skipped > skipped)
    metrics::sync::sent(st.def.id, "echo_skipped",
                        up.stream->echoes_skipped - skipped);
  if (!frames.empty()) {
    metrics::sync::sent(st.def.id, "sent", frames.size());
    for (auto& frame : frames)
      send_frame(self, std::move(frame));
    if (!up.check_scheduled) {
      up.check_scheduled = true;
      self->delayed_send(self, up_check_interval, atom::tick_v, st.generation);
    }
  }
  auto cursor = up.stream->cursor();
  if (cursor >= up.cursor_persisted + up_persist_every
      || (up.stream->drained() && cursor != up.cursor_persisted))
    persist_runtime(self);
  if (up.stream->drained() && st.def.direction == sync_direction::up
      && st.state == phase::catching_up)
    finish_up_catchup(self);
  maybe_reconcile_again(self);
}

void on_up_ok(self_pointer self, const std::string& id, bool ok,
              const std::string& reason) {
  auto& st = self->state;
  auto& up = st.up;
  if (!up.stream)
    return;
  switch (up.stream->on_ok(id, ok, reason)) {
    case up_stream::answer::unknown:
      return;
    case up_stream::answer::accepted:
      metrics::sync::sent(st.def.id, "accepted");
      break;
    case up_stream::answer::duplicate:
      metrics::sync::sent(st.def.id, "duplicate");
      break;
    case up_stream::answer::refused:
      metrics::sync::sent(st.def.id, "refused");
      log::debug("{} remote refused {}: {}", st.label, id, reason);
      break;
    case up_stream::answer::rate_limited:
      report(self, atom::report_v, atom::ratelimit_v, st.def.id, reason);
      return fail(self, error_class::rate_limited, reason);
    case up_stream::answer::failed:
      // The up cursor stays below the event: the next session sends it
      // again, after the backoff.
      return fail(self, error_class::protocol,
                  "the relay did not take an event for now: " + reason);
    case up_stream::answer::auth_required:
      if (st.def.auth == auth_mode::never || st.session.challenge.empty()
          || st.session.authenticated)
        return fail(self, error_class::auth, "event refused: " + reason);
      if (!up.resend_after_auth) {
        up.resend_after_auth = true;
        authenticate(self);
      }
      return;
  }
  if (!up.resend_after_auth)
    pump_up(self);
}

void resend_up_after_auth(self_pointer self) {
  auto& up = self->state.up;
  if (!up.resend_after_auth || !up.stream)
    return;
  up.resend_after_auth = false;
  up.stream->rewind();
  pump_up(self);
}

void resend_unanswered_up(self_pointer self) {
  auto& up = self->state.up;
  if (!up.stream)
    return;
  up.stream->rewind();
  pump_up(self);
}

void on_up_check(self_pointer self, uint64_t gen) {
  auto& st = self->state;
  auto& up = st.up;
  if (gen != st.generation)
    return;
  up.check_scheduled = false;
  if (!up.stream || up.stream->in_flight() == 0)
    return;
  auto oldest = up.stream->oldest_sent_at();
  if (unix_now() - oldest > up_ok_timeout_seconds)
    return fail(self, error_class::protocol,
                "the relay left an event unanswered for more than "
                  + std::to_string(up_ok_timeout_seconds) + " s");
  up.check_scheduled = true;
  self->delayed_send(self, up_check_interval, atom::tick_v, gen);
}

} // namespace relay_conn

} // namespace ferry
