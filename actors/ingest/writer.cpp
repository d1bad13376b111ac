#include "actors/ingest/writer.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/runtime/metrics.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "net/thread_name.hpp"
#include "store/change_log.hpp"
#include "store/refused_store.hpp"

#include <caf/send.hpp>

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <iterator>

namespace ferry {

namespace {

ingest_status to_ingest_status(store::write_outcome x) {
  switch (x) {
    case store::write_outcome::stored:
      return ingest_status::stored;
    case store::write_outcome::ephemeral:
      return ingest_status::ephemeral;
    case store::write_outcome::duplicate:
      return ingest_status::duplicate;
    case store::write_outcome::refused:
      break;
  }
  return ingest_status::refused;
}

} // namespace

void writer_state::answer_pending(ingest_results answers) {
  size_t at = 0;
  for (auto& w : waiters) {
    if (w.sent_batch) {
      auto first = answers.begin() + static_cast<std::ptrdiff_t>(at);
      w.batch.deliver(ingest_results(std::make_move_iterator(first),
                                     std::make_move_iterator(
                                       first + static_cast<std::ptrdiff_t>(w.events))));
    } else {
      w.one.deliver(std::move(answers[at]));
    }
    at += w.events;
  }
  waiters.clear();
  pending.clear();
}

writer_state::~writer_state() {
  if (!pending.empty())
    fail_pending("error: the writer stopped before storing this event; try again");
}

void writer_state::fail_pending(const std::string& text) {
  failed_events += pending.size();
  // A failed event holds no cursor here: its relay connection keeps its
  // cursor below it (relay_connection's advance_cursor).
  for (auto& item : pending)
    metrics::event_ingested(item->data.ev.kind, item->source, "error");
  answer_pending(ingest_results(pending.size(), ingest_result{ingest_status::error, text}));
}

void writer_state::commit() {
  if (pending.empty())
    return;
  // Refused before RocksDB runs out: the WAL, the MANIFEST and flushes keep
  // the reserve, so the DB never turns read-only while the node runs.
  if (auto problem = store->check_space(); !problem.empty())
    return fail_pending(std::string{store::disk_full_prefix} + problem);
  std::vector<const store::incoming_event*> events;
  events.reserve(pending.size());
  for (auto& item : pending)
    events.push_back(&item->data);
  auto began = std::chrono::steady_clock::now();
  auto seq = next_change_seq;
  auto results = store->write(
    events, unix_now(),
    [this, &seq](rocksdb::WriteBatch& batch,
                 const std::vector<store::write_result>& outcomes) {
      for (size_t i = 0; i < outcomes.size(); ++i)
        if (outcomes[i].outcome == store::write_outcome::stored)
          store::append_change(batch, *store, seq++, pending[i]->data.ev.id,
                               pending[i]->source);
      for (auto& [server, cursor] : staged_cursors)
        store::put_sync_cursor(batch, *store, server, cursor);
    });
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - began;
  metrics::writer_batch(events.size(), took.count());
  ++batches;
  if (!results) {
    ++failed_batches;
    auto problem = store->space_problem();
    auto text = problem.empty()
                  ? "error: could not store the event: " + render(results.error())
                  : std::string{store::disk_full_prefix} + problem;
    log::error("writer failed to commit {} events: {}", pending.size(), text);
    return fail_pending(text);
  }
  next_change_seq = seq;
  for (auto& [server, cursor] : staged_cursors)
    cursors[server] = cursor;
  staged_cursors.clear();
  auto fan_out = hub ? hub->get() : hub_actor{};
  // The hub hears of the commit in one message, before any sender hears
  // its answer: one message per event was a good part of the hub's thread
  // during a catch-up that nobody subscribed to.
  ingest_batch committed_items;
  for (size_t i = 0; i < pending.size(); ++i) {
    auto status = to_ingest_status((*results)[i].outcome);
    if (status == ingest_status::stored || status == ingest_status::ephemeral) {
      ++committed;
      if (fan_out)
        committed_items.push_back(pending[i]);
    }
  }
  if (!committed_items.empty())
    caf::anon_send(fan_out, atom::publish_v, std::move(committed_items));
  ingest_results answers;
  answers.reserve(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    auto& item = pending[i];
    auto& r = (*results)[i];
    auto status = to_ingest_status(r.outcome);
    metrics::event_ingested(item->data.ev.kind, item->source,
                            to_string(status));
    answers.push_back(ingest_result{status, std::move(r.message)});
  }
  answer_pending(std::move(answers));
}

sync_cursor writer_state::cursor_of(const std::string& server) {
  auto i = cursors.find(server);
  if (i != cursors.end())
    return i->second;
  sync_cursor result;
  if (auto stored = store::get_sync_cursor(*store, server); stored && *stored)
    result = **stored;
  cursors.emplace(server, result);
  return result;
}

void writer_state::commit_cursors() {
  if (staged_cursors.empty())
    return;
  auto written = store->write(
    {}, unix_now(),
    [this](rocksdb::WriteBatch& batch, const std::vector<store::write_result>&) {
      for (auto& [server, cursor] : staged_cursors)
        store::put_sync_cursor(batch, *store, server, cursor);
    });
  if (!written) {
    // They stay staged for the next commit; a lost cursor repeats work only.
    log::error("writer could not store {} sync cursors: {}",
               staged_cursors.size(), render(written.error()));
    return;
  }
  for (auto& [server, cursor] : staged_cursors)
    cursors[server] = cursor;
  staged_cursors.clear();
}

namespace {

using self_pointer = writer_actor::stateful_pointer<writer_state>;

/// Keeps the memory of refused events within its TTL and size cap.
void prune_refused(self_pointer self) {
  auto& st = self->state;
  const auto& cfg = st.config.refused;
  auto n = store::prune_refused(*st.store, unix_now(), cfg.ttl,
                                static_cast<size_t>(cfg.max_entries));
  if (!n) {
    log::error("{} could not prune the refused events: {}", self->name(),
               render(n.error()));
    return;
  }
  st.refused_forgotten += *n;
}

/// Commits, then watches the free space while the disk is full: the node
/// resumes by itself once there is room again.
void commit(self_pointer self) {
  auto& st = self->state;
  st.commit();
  if (st.recheck_scheduled)
    return;
  auto problem = st.store->space_problem();
  if (problem.empty())
    return;
  log::warn("{} refuses events until disk space returns: {}", self->name(),
            problem);
  st.recheck_scheduled = true;
  self->delayed_send(self, st.config.space_recheck, atom::tick_v);
}

/// Commits once a batch is full; otherwise after what is in the mailbox
/// now, so that requests queued meanwhile join the same commit.
void commit_when_due(self_pointer self) {
  auto& st = self->state;
  if (st.pending.size() >= st.config.batch_max) {
    commit(self);
  } else if (!st.flush_scheduled) {
    st.flush_scheduled = true;
    self->send(self, atom::flush_v);
  }
}

} // namespace

writer_actor::behavior_type
writer(writer_actor::stateful_pointer<writer_state> self,
       store::event_store* store, handle_slot_ptr<hub_actor> hub,
       writer_config config) {
  if (self->getf(caf::abstract_actor::is_detached_flag))
    net::name_this_thread("writer");
  auto& st = self->state;
  st.store = store;
  st.next_change_seq = store::last_change_seq(*store) + 1;
  st.hub = std::move(hub);
  st.config = config;
  st.pending.reserve(config.batch_max);
  if (config.purge_interval.count() > 0) {
    prune_refused(self);
    self->delayed_send(self, config.purge_interval, atom::purge_v);
  }
  return {
    [self](atom::write, ingest_item_ptr& item) -> caf::result<ingest_result> {
      auto& st = self->state;
      auto promise = self->make_response_promise<ingest_result>();
      st.pending.push_back(std::move(item));
      st.waiters.push_back({1, false, promise, {}});
      commit_when_due(self);
      return promise;
    },
    [self](atom::write, ingest_batch& batch) -> caf::result<ingest_results> {
      if (batch.empty())
        return ingest_results{};
      auto& st = self->state;
      auto promise = self->make_response_promise<ingest_results>();
      st.waiters.push_back({batch.size(), true, {}, promise});
      for (auto& item : batch)
        st.pending.push_back(std::move(item));
      commit_when_due(self);
      return promise;
    },
    [self](atom::flush) {
      self->state.flush_scheduled = false;
      commit(self);
      self->state.commit_cursors();
    },
    [self](atom::tick) {
      auto& st = self->state;
      st.recheck_scheduled = false;
      if (st.store->recheck_space()) {
        log::info("{} has disk space again; writes resume", self->name());
        return;
      }
      st.recheck_scheduled = true;
      self->delayed_send(self, st.config.space_recheck, atom::tick_v);
    },
    [self](atom::purge) {
      auto& st = self->state;
      commit(self);
      // Deleting needs WAL space too; the next round purges.
      if (!st.store->space_problem().empty()) {
        self->delayed_send(self, st.config.purge_interval, atom::purge_v);
        return;
      }
      prune_refused(self);
      if (auto n = st.store->purge_expired(unix_now())) {
        st.purged += *n;
        if (*n > 0)
          log::info("writer purged {} expired events", *n);
      } else {
        log::error("writer could not purge expired events: {}",
                   render(n.error()));
      }
      // A sweep takes one step per message, so commits go on between them;
      // one longer than the interval is not started twice.
      if (!st.sweeping) {
        st.sweeping = true;
        st.sweep_left = st.config.sweep_per_purge;
        self->send(self, atom::purge_v, st.sweep_from);
      }
      self->delayed_send(self, st.config.purge_interval, atom::purge_v);
    },
    [self](atom::purge, uint64_t after) {
      auto& st = self->state;
      // Deleting needs WAL space too; the next purge sweeps.
      if (!st.store->space_problem().empty()) {
        st.sweeping = false;
        return;
      }
      // The last entry written stays: the next start numbers from it.
      auto step = store::sweep_changes(
        *st.store, after, std::min(st.config.sweep_step, st.sweep_left),
        st.next_change_seq - 1);
      if (!step) {
        log::error("{} could not sweep the change log: {}", self->name(),
                   render(step.error()));
        st.sweeping = false;
        return;
      }
      st.changes_swept += step->deleted;
      st.sweep_left -= std::min(st.sweep_left, step->examined);
      st.sweep_from = step->at_end ? 0 : step->through;
      if (step->at_end || st.sweep_left == 0) {
        st.sweeping = false;
        return;
      }
      self->send(self, atom::purge_v, step->through);
    },
    [self](atom::cursor, const std::string& server, int64_t created_at,
           uint64_t era) {
      // A sync cursor never passes an event that is not stored: the sender
      // moves it only past events this writer has already answered, i.e.
      // committed (relay_connection's advance_cursor). So it can wait for
      // the next commit, and goes into that batch. It only moves forward.
      auto& st = self->state;
      // It speaks only of the definition it was made under: a connection
      // of an earlier one (other filters, another remote) or of a deleted
      // server may still hand one over. Dropped, it cannot take the place
      // of the current definition's cursor (which it would not pass for
      // anyway: store::get_sync_cursor).
      auto current_era = store::get_sync_era(*st.store, server);
      if (!current_era || *current_era != era)
        return;
      auto staged = st.staged_cursors.find(server);
      auto current = staged != st.staged_cursors.end() ? staged->second
                                                       : st.cursor_of(server);
      if (current.era == era && created_at <= current.created_at)
        return;
      sync_cursor cursor;
      cursor.created_at = created_at;
      cursor.era = era;
      st.staged_cursors[server] = cursor;
      if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        self->send(self, atom::flush_v);
      }
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "pending", static_cast<int64_t>(st.pending.size()));
      caf::put(result, "batches", static_cast<int64_t>(st.batches));
      caf::put(result, "committed", static_cast<int64_t>(st.committed));
      caf::put(result, "failed_batches", static_cast<int64_t>(st.failed_batches));
      caf::put(result, "failed_events", static_cast<int64_t>(st.failed_events));
      if (auto problem = st.store->space_problem(); !problem.empty())
        caf::put(result, "disk_full", problem);
      caf::put(result, "purged", static_cast<int64_t>(st.purged));
      caf::put(result, "changes_swept", static_cast<int64_t>(st.changes_swept));
      caf::put(result, "refused_forgotten",
               static_cast<int64_t>(st.refused_forgotten));
      return result;
    },
  };
}

} // namespace ferry
