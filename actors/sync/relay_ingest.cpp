#include "actors/sync/relay_ingest.hpp"

#include "actors/ingest/policy.hpp"
#include "actors/runtime/logging.hpp"
#include "actors/sync/relay_connection_context.hpp"
#include "actors/sync/sync_metrics.hpp"
#include "messages/clock.hpp"
#include "messages/cluster/replication.hpp"
#include "messages/error.hpp"
#include "store/refused_store.hpp"

namespace ferry::relay_conn {

namespace {

/// Events from the remote waiting for the ingest path: reading stops at the
/// high mark and resumes at the low one, so a fast remote cannot fill memory.
constexpr uint64_t in_flight_high = 4096;

/// An event we could not store ends the session: the catch-up may not
/// complete past it (the cursor never passes an event not stored), and on a
/// full disk the remote is not read at all until space returns (`begin`).
void on_store_failure(self_pointer self, const std::string& message) {
  if (!self->state.session.conn)
    return; // an answer for a session that already ended
  auto full = message.compare(0, store::disk_full_prefix.size(),
                              store::disk_full_prefix)
              == 0;
  fail(self, full ? error_class::disk_full : error_class::store, message);
}

bool is_temporary_refusal(const ingest_result& result) {
  return result.status == ingest_status::refused
         && ferry::is_temporary_refusal(result.message);
}

/// One event fewer in the ingest path: reading resumes at the low mark, and
/// fetches by id may open.
void release_in_flight(self_pointer self) {
  auto& st = self->state;
  auto& counts = st.ingest;
  if (--counts.in_flight == in_flight_low && counts.reading_paused
      && st.session.conn) {
    counts.reading_paused = false;
    st.session.conn->resume_reading();
  }
  pump_fetches(self);
}

void on_ingested(self_pointer self, const ingest_result& result,
                 int64_t created_at, uint64_t seq) {
  auto& st = self->state;
  auto& counts = st.ingest;
  release_in_flight(self);
  switch (result.status) {
    case ingest_status::stored:
    case ingest_status::ephemeral:
      ++counts.accepted;
      metrics::sync::events(st.def.id, metrics::sync::event_result::accepted);
      break;
    case ingest_status::duplicate:
      ++counts.duplicate;
      metrics::sync::events(st.def.id, metrics::sync::event_result::duplicate);
      break;
    case ingest_status::error:
      ++counts.failed;
      metrics::sync::events(st.def.id, metrics::sync::event_result::rejected);
      note_unstored(self, created_at);
      settle_ingest(self, seq, 0);
      return on_store_failure(self, result.message);
    default:
      ++counts.rejected;
      if (result.status == ingest_status::refused
          || result.status == ingest_status::shadowed)
        ++counts.refused;
      metrics::sync::events(st.def.id, metrics::sync::event_result::rejected);
      // Refused for now only (a rate limit, a plugin that could not judge):
      // the cursor stays below it, so a later catch-up asks again.
      if (is_temporary_refusal(result))
        note_unstored(self, created_at);
      settle_ingest(self, seq, 0);
      return maybe_finish_catchup(self);
  }
  settle_ingest(self, seq, created_at);
  if (st.state == phase::live)
    advance_cursor(self, st.cursor.stored_through);
  maybe_finish_catchup(self);
}

/// Counts an event refused before the ingest path.
void count_refused(self_pointer self) {
  auto& st = self->state;
  ++st.ingest.rejected;
  ++st.ingest.refused;
  metrics::sync::events(st.def.id, metrics::sync::event_result::rejected);
}

/// The server's own policy refused an event before the ingest path. A
/// lasting refusal is remembered for this source, so a catch-up does not
/// fetch the event again (relay_negentropy) and a copy that comes anyway is
/// not judged again.
void refuse_by_server_policy(self_pointer self, const nostr::event& ev,
                             const policy_verdict& verdict) {
  auto& st = self->state;
  count_refused(self);
  log::debug("{} refused by the server's policy: {}", st.label,
             verdict.message);
  // Refused for now only (a rate limit, a created_at too far ahead): the
  // cursor stays below the event, so a later catch-up asks again.
  if (ferry::is_temporary_refusal(verdict.message))
    return note_unstored(self, ev.created_at);
  if (!st.deps.remember_refused)
    return;
  if (auto err = store::remember_refused(*st.deps.store, st.label, ev.id,
                                         unix_now(), verdict.message))
    log::warn("{} could not remember a refused event: {}", st.label,
              render(err));
}

/// The next verifier running, round robin; none while all restart.
verifier_actor pick_verifier(self_pointer self) {
  auto& st = self->state;
  return next_running(st.deps.verifiers, st.ingest.next_verifier);
}

/// A gathered event no verifier could take: rejected, and the cursor stays
/// below it, so a later catch-up asks for it again.
void settle_unsent(self_pointer self, const gathered_event& ev) {
  ++self->state.ingest.rejected;
  settle_fetched(self, ev.id);
  release_in_flight(self);
  note_unstored(self, ev.created_at);
  settle_ingest(self, ev.seq, 0);
  maybe_finish_catchup(self);
}

} // namespace

void load_server_policy(self_pointer self) {
  auto& st = self->state;
  const auto& p = st.def.policy;
  if (p.empty())
    return;
  config::policy_config cfg;
  static_cast<event_rules&>(cfg) = p;
  // The source's bucket: this connection is that whole source.
  cfg.rate_source = p.rate_limit;
  st.ingest.server_rules.emplace(cfg);
}

void follow_server_policy(self_pointer self) {
  auto& st = self->state;
  if (!st.deps.remember_refused)
    return;
  config::policy_config cfg;
  static_cast<event_rules&>(cfg) = st.def.policy;
  auto forgotten = store::follow_source_policy(*st.deps.store, st.label,
                                               policy_fingerprint(cfg));
  if (!forgotten)
    log::warn("{} keeps the refused events' memory after its rules "
              "changed: {}",
              st.label, render(forgotten.error()));
  else if (*forgotten > 0)
    log::info("{} forgets {} refused event(s): its own rules changed since "
              "they were refused",
              st.label, *forgotten);
}

bool admit(self_pointer self, const std::vector<nostr::filter>& filters,
           const nostr::event& ev) {
  auto& st = self->state;
  ++st.ingest.received;
  metrics::sync::events(st.def.id, metrics::sync::event_result::received);
  if (nostr::matches_any(filters, ev))
    return true;
  if (is_followed_deletion(st, ev)) {
    ++st.deletions.received;
    return true;
  }
  ++st.ingest.filtered;
  metrics::sync::events(st.def.id, metrics::sync::event_result::filtered);
  return false;
}

bool ingest(self_pointer self, nostr::event ev) {
  auto& st = self->state;
  auto& counts = st.ingest;
  auto item = std::make_shared<ingest_item>();
  item->source = st.label;
  item->source_info = st.def.url;
  // From another member: its node key (the identity its relay proved) marks
  // the event, so this node's relay does not send it back to that member's
  // sessions (client_session's echo rule).
  if (cluster::is_peer_source(st.label))
    item->authed = st.def.auth_pubkey;
  auto created_at = ev.created_at;
  auto kind = ev.kind;
  auto pubkey = ev.pubkey;
  item->data.ev = std::move(ev);
  // An event held already is a duplicate whatever the rules say; judging it
  // would spend the rate limit's tokens on what a catch-up asks again.
  if (counts.server_rules && !st.deps.store->contains(item->data.ev.id)) {
    // Refused before: the same answer, without spending a token on it.
    if (st.deps.remember_refused
        && store::find_refused(*st.deps.store, st.label, item->data.ev.id)) {
      metrics::sync::refused_skipped(st.def.id);
      count_refused(self);
      return false;
    }
    auto verdict = counts.server_rules->judge(*item, unix_now(),
                                              steady_seconds());
    if (verdict.action != policy_action::accept) {
      refuse_by_server_policy(self, item->data.ev, verdict);
      return false;
    }
  }
  counts.gathered_info.push_back(
    {item->data.ev.id, pubkey, created_at, kind, number_ingest(self)});
  counts.gathered.push_back(std::move(item));
  if (++counts.in_flight == in_flight_high && st.session.conn) {
    counts.reading_paused = true;
    st.session.conn->pause_reading();
  }
  if (counts.gathered.size() >= ingest_batch_max) {
    hand_over_gathered(self);
  } else if (!counts.hand_over_due) {
    // Behind the frames already in the mailbox: they join this batch.
    counts.hand_over_due = true;
    self->send(self, atom::ingest_v);
  }
  return true;
}

void hand_over_gathered(self_pointer self) {
  auto& st = self->state;
  auto& counts = st.ingest;
  if (counts.gathered.empty())
    return;
  ingest_batch batch;
  batch.swap(counts.gathered);
  auto info = std::make_shared<std::vector<gathered_event>>();
  info->swap(counts.gathered_info);
  auto verifier = pick_verifier(self);
  if (!verifier) {
    for (const auto& ev : *info)
      settle_unsent(self, ev);
    return;
  }
  self->request(verifier, caf::infinite, atom::ingest_v, std::move(batch))
    .then(
      [self, info](ingest_results& results) {
        for (size_t i = 0; i < info->size(); ++i) {
          const auto& ev = (*info)[i];
          settle_fetched(self, ev.id);
          if (i >= results.size()) {
            on_ingested(self,
                        ingest_result{ingest_status::error,
                                      "error: the verifier answered another "
                                      "batch"},
                        ev.created_at, ev.seq);
            continue;
          }
          const auto& result = results[i];
          // Learned once stored (or held already), never from an event that
          // failed its signature check; before the cursor can pass it.
          if (result.status == ingest_status::stored
              || result.status == ingest_status::duplicate)
            learn_author(self, ev.kind, ev.pubkey);
          on_ingested(self, result, ev.created_at, ev.seq);
        }
      },
      [self, info](caf::error& err) {
        ingest_result failed{ingest_status::error, render(err)};
        for (const auto& ev : *info) {
          settle_fetched(self, ev.id);
          on_ingested(self, failed, ev.created_at, ev.seq);
        }
      });
}

} // namespace ferry::relay_conn
