#include "actors/sync/relay_connection.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/sync_metrics.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/nip42.hpp"
#include "messages/nostr/wire.hpp"
#include "store/change_log.hpp"
#include "store/sync_store.hpp"

#include <caf/send.hpp>

#include <boost/json.hpp>

#include <simdjson.h>

#include <algorithm>

namespace ferry {

namespace {

using self_pointer
  = relay_connection_actor::stateful_pointer<relay_connection_state>;
using phase = relay_connection_state::phase;

/// Events from the remote waiting for the ingest path: reading stops at the
/// high mark and resumes at the low one, so a fast remote cannot fill memory.
constexpr uint64_t in_flight_high = 4096;
constexpr uint64_t in_flight_low = 1024;

/// The live subscription's id; pages get their own.
constexpr const char* live_sub = "ferry-live";

/// Events sent up and not answered yet: enough to fill a loopback pipe,
/// few enough that a reconnect resends little.
constexpr size_t up_window = 500;

/// A remote that leaves an event sent up unanswered this long is stuck.
constexpr int64_t up_ok_timeout_seconds = 30;
constexpr auto up_check_interval = std::chrono::seconds{5};

/// The up cursor is written after this many log entries, and when drained.
constexpr uint64_t up_persist_every = 256;

/// A NEG-OPEN or NEG-MSG unanswered this long: the remote does not speak
/// NIP-77 (before its first answer) or is stuck (after).
constexpr auto neg_answer_timeout = std::chrono::seconds{10};

/// While the store's disk is full, how often a connection looks for space
/// before it dials.
constexpr auto disk_poll_interval = std::chrono::seconds{1};

/// Ids per fetch REQ after a reconciliation, and fetch REQs open at once.
constexpr size_t fetch_batch = 500;
constexpr size_t fetches_max_in_flight = 4;

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

error_class classify(net::failure_kind kind) {
  switch (kind) {
    case net::failure_kind::dns:
      return error_class::dns;
    case net::failure_kind::tcp:
    case net::failure_kind::timeout:
      return error_class::tcp;
    case net::failure_kind::tls:
      return error_class::tls;
    case net::failure_kind::pin:
      return error_class::pin;
    case net::failure_kind::http:
    case net::failure_kind::websocket:
    case net::failure_kind::protocol:
      return error_class::protocol;
    case net::failure_kind::none:
    case net::failure_kind::closed_by_peer:
      break;
  }
  return error_class::closed;
}

/// ws:// → http://, wss:// → https:// (NIP-11 is served on the same URL).
std::string info_url(const std::string& ws_url) {
  if (ws_url.rfind("wss://", 0) == 0)
    return "https://" + ws_url.substr(6);
  return "http://" + ws_url.substr(5);
}

net::tls_options tls_options_of(const sync_server& def) {
  net::tls_options tls;
  tls.enabled = def.url.rfind("wss://", 0) == 0;
  tls.hostname = def.tls.hostname;
  tls.ca_certfile = def.tls.ca_certfile;
  tls.client_certfile = def.tls.client_certfile;
  tls.client_keyfile = def.tls.client_keyfile;
  for (const auto& pin : def.tls.pins)
    tls.spki_sha256_pins.push_back(pin.value);
  return tls;
}

/// Tells the health tracker, unless it is between incarnations.
template <class... Ts>
void report(self_pointer self, Ts&&... xs) {
  if (auto health = self->state.deps.health->get())
    self->send(health, std::forward<Ts>(xs)...);
}

/// Asks the health tracker; without one, `fallback` answers at once.
template <class Result, class OnResult, class OnError, class... Ts>
void ask_health(self_pointer self, OnResult on_result, OnError on_error,
                Result fallback, Ts&&... xs) {
  auto health = self->state.deps.health->get();
  if (!health)
    return on_result(fallback);
  self->request(health, std::chrono::seconds{5}, std::forward<Ts>(xs)...)
    .then(std::move(on_result), std::move(on_error));
}

void send_frame(self_pointer self, std::string frame) {
  if (self->state.conn)
    self->state.conn->send(std::make_shared<const std::string>(std::move(frame)));
}

/// Driven by GRASP SYNC (through the relay driver) rather than by a sync
/// server definition.
bool driven(const relay_connection_state& st) {
  return static_cast<bool>(st.deps.driver_listener);
}

/// Tells GRASP SYNC, unless it is between incarnations.
template <class... Ts>
void tell_listener(self_pointer self, Ts&&... xs) {
  if (auto listener = self->state.deps.driver_listener())
    self->send(listener, std::forward<Ts>(xs)...);
}

/// Catch-ups reconcile with NIP-77 unless the remote proved it cannot.
bool uses_negentropy(const relay_connection_state& st) {
  return st.def.mode == sync_mode::negentropy
         && st.negentropy_unsupported.empty();
}

bool sends_up(const sync_server& def) {
  return def.direction != sync_direction::down;
}

bool syncs_down(const sync_server& def) {
  return def.direction != sync_direction::up;
}

void persist_runtime(self_pointer self) {
  auto& st = self->state;
  // A driven connection's state lives in GRASP SYNC's relay_sync records.
  if (driven(st))
    return;
  auto runtime = store::get_sync_runtime(*st.deps.store, st.def.id);
  if (!runtime)
    return;
  if (st.up)
    st.up_cursor = st.up->cursor();
  runtime->sent = st.sent_before + (st.up ? st.up->sent : 0);
  runtime->sent_ok = st.sent_ok_before
                     + (st.up ? st.up->accepted + st.up->duplicate : 0);
  runtime->sent_refused = st.sent_refused_before
                          + (st.up ? st.up->refused : 0);
  runtime->up_cursor = st.up_cursor;
  st.up_cursor_persisted = st.up_cursor;
  runtime->received = st.received;
  runtime->accepted = st.accepted;
  runtime->duplicate = st.duplicate;
  runtime->rejected = st.rejected;
  runtime->filtered = st.filtered;
  runtime->last_connected = st.last_connected;
  runtime->disconnected_at = st.disconnected_at;
  runtime->last_error = st.last_error;
  if (st.catchup_complete)
    runtime->last_catchup_completed = unix_now();
  if (auto err = store::put_sync_runtime(*st.deps.store, st.def.id, *runtime))
    log::warn("{} could not persist its runtime state: {}", st.label,
              render(err));
}

pending_batches_actor batches_of(self_pointer self) {
  auto& slot = self->state.deps.batches;
  return slot ? slot->get() : pending_batches_actor{};
}

std::string catchup_payload(const relay_connection_state& st) {
  return "catchup:" + std::to_string(st.catchup_round);
}

void fail(self_pointer self, error_class kind, const std::string& reason);

/// Tracks catch-up subscription `sub_id` at PENDING BATCHES, whose
/// confirmation is what completes the catch-up.
/// @returns false when no tracker runs (the subscriptions' own EOSE decide).
bool track_catchup_sub(self_pointer self, const std::string& sub_id) {
  auto& st = self->state;
  auto batches = batches_of(self);
  if (!batches)
    return false;
  if (batches.address() != st.watched_batches) {
    self->monitor(batches);
    st.watched_batches = batches.address();
  }
  ++st.catchup_batches_open;
  self
    ->request(batches, std::chrono::seconds{10}, atom::open_v,
              caf::actor_cast<batch_listener_actor>(self), st.def.id,
              std::vector<std::string>{sub_id}, catchup_payload(st))
    .then([](uint64_t) {},
          [self, round = st.catchup_round](caf::error& err) {
            if (round == self->state.catchup_round)
              fail(self, error_class::protocol,
                   "could not track the catch-up: " + render(err));
          });
  return true;
}

/// Abandons the batches of the running catch-up (their settling is ignored).
void drop_catchup_batches(self_pointer self) {
  auto& st = self->state;
  ++st.catchup_round;
  st.catchup_batches_open = 0;
  if (auto batches = batches_of(self))
    self->send(batches, atom::lost_v, st.def.id);
}

/// Ends the session's up stream, keeping its cursor and totals.
void stop_up(self_pointer self) {
  auto& st = self->state;
  if (!st.up)
    return;
  st.up_cursor = st.up->cursor();
  st.sent_before += st.up->sent;
  st.sent_ok_before += st.up->accepted + st.up->duplicate;
  st.sent_refused_before += st.up->refused;
  st.up.reset();
  // A check still in the mailbox belongs to the old generation.
  st.up_check_scheduled = false;
  if (auto hub = st.deps.hub ? st.deps.hub->get() : hub_actor{})
    self->send(hub, atom::unsubscribe_v, atom::feed_v,
               caf::actor_cast<feed_listener_actor>(self));
}

/// Ends the current connection attempt or connection and schedules the next
/// one after the health tracker's backoff.
void end_fetches(self_pointer self);

void fail(self_pointer self, error_class kind, const std::string& reason) {
  auto& st = self->state;
  st.last_error = reason;
  log::warn("{} {}: {}", st.label, to_string(kind), reason);
  if (st.conn) {
    st.conn->close(reason);
    st.conn = nullptr;
  }
  st.subscriptions.clear();
  // Events still in the verifiers keep their numbers: their answers come,
  // and the cursor's fold (settle_ingest) waits for them.
  st.barriers.clear();
  st.disconnected_at = unix_now();
  metrics::sync::set_connected(st.def.id, false);
  metrics::sync::attempt(st.def.id, to_string(kind));
  drop_catchup_batches(self);
  st.neg.reset();
  st.neg_done = false;
  end_fetches(self);
  st.neg_have_ids.clear();
  stop_up(self);
  persist_runtime(self);
  auto gen = ++st.generation;
  st.state = phase::backing_off;
  report(self, atom::report_v, atom::failed_v, st.def.id, kind,
             reason);
  ask_health(
    self,
    [self, gen](caf::timespan delay) {
      auto& st = self->state;
      if (driven(st)) {
        // The driver forgets the relay and waits out `delay` before GRASP
        // SYNC's next connect dials it again.
        self->send(st.deps.driver, atom::lost_v, st.def.url, st.last_error,
                   delay);
        return self->quit();
      }
      self->delayed_send(self, delay, atom::reconnect_v, gen);
    },
    [self](caf::error& err) {
      auto& st = self->state;
      st.state = phase::dead;
      st.last_error = render(err);
      log::warn("{} gives up: {}", st.label, render(err));
      if (driven(st)) {
        self->send(st.deps.driver, atom::lost_v, st.def.url, st.last_error,
                   caf::timespan{std::chrono::minutes{5}});
        self->quit();
      }
    },
    caf::timespan{std::chrono::seconds{5}}, atom::get_v, atom::delay_v,
    st.def.id);
}

/// Sends REQ `sub_id` for `filters` and remembers it; during a catch-up
/// (unless `resent`, the same REQ again after AUTH) it is tracked as a batch.
void subscribe(self_pointer self, const std::string& sub_id,
               std::vector<nostr::filter> filters, std::optional<size_t> filter,
               bool resent = false) {
  auto& st = self->state;
  std::string req = "[\"REQ\",";
  nostr::append_json_string(req, sub_id);
  for (const auto& f : filters) {
    req += ',';
    req += nostr::to_json(f);
  }
  req += ']';
  auto& sub = st.subscriptions[sub_id];
  sub = relay_connection_state::subscription{};
  sub.filter = filter;
  sub.received.assign(filters.size(), 0);
  sub.oldest.assign(filters.size(), INT64_MAX);
  sub.sent = std::move(filters);
  if (!resent && st.state == phase::catching_up)
    sub.tracked = track_catchup_sub(self, sub_id);
  send_frame(self, std::move(req));
}

/// Starts a catch-up from `since` (0: everything) on the live subscription.
void start_catchup(self_pointer self, int64_t since) {
  auto& st = self->state;
  st.state = phase::catching_up;
  st.catchup_complete = false;
  st.catchup_since = since;
  st.catchup_started = self->clock().now();
  std::vector<nostr::filter> filters;
  for (auto f : st.def.filters) {
    if (since > 0)
      f.since = std::max(f.since.value_or(0), since);
    f.limit = std::min(f.limit.value_or(st.page_size), st.page_size);
    filters.push_back(std::move(f));
  }
  report(self, atom::report_v, atom::catchup_v, st.def.id);
  subscribe(self, live_sub, std::move(filters), std::nullopt);
}

/// Hands the writer a new down cursor; it commits it with its next batch,
/// after the events the cursor covers.
/// The rule, for every caller: the persisted cursor moves only to a
/// created_at below which everything the filters match that the remote gave
/// us is stored. So it does not move during a catch-up (older pages or
/// fetches may still be open; live events of that time wait too), moves at
/// the catch-up's end once every page had its EOSE and every event its
/// answer, and after that moves with a live event only once every event
/// received before it was answered. It never passes an event the store
/// failed to take, nor now: an event dated ahead of the clock must not
/// carry it past events still to be published. A back-dated event the
/// remote gets while we are away is what the overlap window (catchup_since)
/// is for.
void advance_cursor(self_pointer self, int64_t to) {
  auto& st = self->state;
  // A driven connection's progress lives in GRASP SYNC's records.
  if (driven(st))
    return;
  to = std::min(to, unix_now());
  if (st.unstored_since != INT64_MAX)
    to = std::min(to, st.unstored_since - 1);
  if (to <= st.cursor_sent)
    return;
  if (auto writer = st.deps.writer->get()) {
    st.cursor_sent = to;
    self->send(writer, atom::cursor_v, st.def.id, to);
  }
}

/// The store did not take an event (`created_at`): the cursor stays below
/// it, and the next catch-up starts no later than it.
void note_unstored(self_pointer self, int64_t created_at) {
  auto& st = self->state;
  st.unstored_since = std::min(st.unstored_since, created_at);
  if (st.state == phase::catching_up)
    st.unstored_in_catchup = true;
}

/// Reports, in order, the barriers whose events are all answered.
void release_barriers(self_pointer self) {
  auto& st = self->state;
  auto oldest_unanswered = st.unanswered.empty() ? st.next_ingest
                                                 : st.unanswered.begin()->first;
  auto i = st.barriers.begin();
  for (; i != st.barriers.end() && i->before <= oldest_unanswered; ++i) {
    if (i->sub.empty())
      tell_listener(self, atom::done_v, st.def.url, i->serial);
    else
      tell_listener(self, atom::eose_v, st.def.url, i->sub);
  }
  st.barriers.erase(st.barriers.begin(), i);
}

/// Records the answer to ingest number `seq` and folds every answered one
/// before the oldest still in flight into `stored_through`.
void settle_ingest(self_pointer self, uint64_t seq, int64_t covers) {
  auto& st = self->state;
  if (auto i = st.unanswered.find(seq); i != st.unanswered.end())
    i->second = covers;
  while (!st.unanswered.empty() && st.unanswered.begin()->second) {
    st.stored_through = std::max(st.stored_through,
                                 *st.unanswered.begin()->second);
    st.unanswered.erase(st.unanswered.begin());
  }
  release_barriers(self);
}

/// The catch-up ends once every page had its EOSE and every event of it has
/// an answer from the writer; only then may the cursor move.
void maybe_finish_catchup(self_pointer self) {
  auto& st = self->state;
  if (st.state != phase::catching_up || st.in_flight > 0
      || st.catchup_batches_open > 0 || (st.neg && !st.neg_done)
      || (st.fetcher && !st.fetcher->done()))
    return;
  for (auto& [id, sub] : st.subscriptions)
    if (!sub.eose)
      return;
  st.state = phase::live;
  st.catchup_complete = true;
  auto took = self->clock().now() - st.catchup_started;
  st.last_catchup = took;
  // Nothing is in flight: every event received so far is answered, and
  // every page (or reconciled window) from `catchup_since` on is done.
  auto through = st.stored_through;
  if (st.neg) {
    // Everything the reconciliation covered is here now.
    through = std::max(through, st.neg->newest_local());
    st.neg.reset();
  }
  // The catch-up started no later than any event the store failed to take
  // before it, and fetched them again.
  if (!st.unstored_in_catchup)
    st.unstored_since = INT64_MAX;
  advance_cursor(self, through);
  report(self, atom::report_v, atom::caughtup_v, st.def.id,
             caf::timespan{took});
  metrics::sync::set_catchup_seconds(
    st.def.id, std::chrono::duration<double>(took).count());
  persist_runtime(self);
  log::info("{} caught up ({} received, {} accepted, {} duplicate)", st.label,
            st.received, st.accepted, st.duplicate);
}

/// Opens the next page of older history for each filter that got events:
/// a remote may cap an answer below the limit we asked for without saying so,
/// so paging ends only with an empty page. `until` is inclusive, so events
/// sharing the oldest timestamp are asked for again (they come back as
/// duplicates).
void page_if_capped(self_pointer self, const relay_connection_state::subscription& sub) {
  auto& st = self->state;
  for (size_t i = 0; i < sub.sent.size(); ++i) {
    if (sub.received[i] == 0 || sub.oldest[i] == INT64_MAX)
      continue;
    auto filter = sub.filter ? *sub.filter : i;
    auto next = sub.sent[i];
    // A page full of one timestamp would repeat forever; step past it.
    auto until = sub.oldest[i];
    if (next.until && *next.until == until)
      --until;
    if (next.since && until < *next.since)
      continue;
    next.until = until;
    subscribe(self, "ferry-page-" + std::to_string(st.next_page++),
              {std::move(next)}, filter);
  }
}

void pump_fetches(self_pointer self);

/// An event we could not store ends the session: the catch-up may not
/// complete past it (the cursor never passes an event not stored), and on a
/// full disk the remote is not read at all until space returns (`begin`).
void on_store_failure(self_pointer self, const std::string& message) {
  auto& st = self->state;
  if (!st.conn)
    return; // an answer for a session that already ended
  auto full = message.compare(0, store::disk_full_prefix.size(),
                              store::disk_full_prefix)
              == 0;
  fail(self, full ? error_class::disk_full : error_class::store, message);
}

void on_ingested(self_pointer self, const ingest_result& result,
                 int64_t created_at, uint64_t seq) {
  auto& st = self->state;
  if (--st.in_flight == in_flight_low && st.reading_paused && st.conn) {
    st.reading_paused = false;
    st.conn->resume_reading();
  }
  if (st.fetcher && st.fetcher->queued() > 0 && st.in_flight < in_flight_low)
    pump_fetches(self);
  switch (result.status) {
    case ingest_status::stored:
    case ingest_status::ephemeral:
      ++st.accepted;
      metrics::sync::events(st.def.id, metrics::sync::event_result::accepted);
      break;
    case ingest_status::duplicate:
      ++st.duplicate;
      metrics::sync::events(st.def.id, metrics::sync::event_result::duplicate);
      break;
    case ingest_status::error:
      ++st.failed;
      metrics::sync::events(st.def.id, metrics::sync::event_result::rejected);
      note_unstored(self, created_at);
      settle_ingest(self, seq, 0);
      return on_store_failure(self, result.message);
    default:
      ++st.rejected;
      metrics::sync::events(st.def.id, metrics::sync::event_result::rejected);
      settle_ingest(self, seq, 0);
      return maybe_finish_catchup(self);
  }
  settle_ingest(self, seq, created_at);
  metrics::sync::set_lag(st.def.id,
                         static_cast<double>(unix_now() - created_at));
  if (st.state == phase::live)
    advance_cursor(self, st.stored_through);
  maybe_finish_catchup(self);
}

/// Sends one event from the remote into the node's ingest path, numbered in
/// the order received (the cursor follows that order, see advance_cursor).
void ingest(self_pointer self, nostr::event ev) {
  auto& st = self->state;
  auto item = std::make_shared<ingest_item>();
  item->source = st.label;
  auto created_at = ev.created_at;
  item->data.ev = std::move(ev);
  auto verifier = st.deps.verifiers[st.next_verifier++ % st.deps.verifiers.size()]
                    ->get();
  if (!verifier) {
    ++st.rejected;
    return note_unstored(self, created_at);
  }
  auto seq = st.next_ingest++;
  st.unanswered.emplace(seq, std::nullopt);
  if (++st.in_flight == in_flight_high && st.conn) {
    st.reading_paused = true;
    st.conn->pause_reading();
  }
  self->request(verifier, caf::infinite, atom::ingest_v, std::move(item))
    .then(
      [self, created_at, seq](ingest_result& r) {
        on_ingested(self, r, created_at, seq);
      },
      [self, created_at, seq](caf::error& err) {
        on_ingested(self,
                    ingest_result{ingest_status::error, render(err)},
                    created_at, seq);
      });
}

/// Counts an event from the remote; false when it is outside `filters`
/// (a remote may only give us what we asked for).
bool admit(self_pointer self, const std::vector<nostr::filter>& filters,
           const nostr::event& ev) {
  auto& st = self->state;
  ++st.received;
  metrics::sync::events(st.def.id, metrics::sync::event_result::received);
  if (nostr::matches_any(filters, ev))
    return true;
  ++st.filtered;
  metrics::sync::events(st.def.id, metrics::sync::event_result::filtered);
  return false;
}

void on_event(self_pointer self, const std::string& sub_id, nostr::event ev) {
  auto& st = self->state;
  if (st.fetcher && st.fetcher->owns(sub_id)) {
    // Asked for by id: only those ids, once each.
    if (st.fetcher->on_event(sub_id, ev.id) && admit(self, st.def.filters, ev))
      ingest(self, std::move(ev));
    return;
  }
  auto i = st.subscriptions.find(sub_id);
  if (i == st.subscriptions.end())
    return;
  auto& sub = i->second;
  if (!admit(self, sub.driven ? sub.check : st.def.filters, ev))
    return;
  if (!sub.eose)
    for (size_t f = 0; f < sub.sent.size(); ++f)
      if (sub.sent[f].matches(ev)) {
        ++sub.received[f];
        sub.oldest[f] = std::min(sub.oldest[f], ev.created_at);
      }
  ingest(self, std::move(ev));
}

/// Up only: the session is caught up once the log's backlog is answered.
void finish_up_catchup(self_pointer self) {
  auto& st = self->state;
  st.state = phase::live;
  st.catchup_complete = true;
  auto took = self->clock().now() - st.catchup_started;
  st.last_catchup = took;
  report(self, atom::report_v, atom::caughtup_v, st.def.id,
         caf::timespan{took});
  metrics::sync::set_catchup_seconds(
    st.def.id, std::chrono::duration<double>(took).count());
  persist_runtime(self);
  log::info("{} caught up: {} events sent", st.label, st.up->sent);
}

/// Sends what the change log has for the remote, within the window.
void pump_up(self_pointer self) {
  auto& st = self->state;
  if (!st.up || !st.conn)
    return;
  auto skipped = st.up->echoes_skipped;
  auto frames = st.up->fill(unix_now());
  if (st.up->echoes_skipped > skipped)
    metrics::sync::sent(st.def.id, "echo_skipped",
                        st.up->echoes_skipped - skipped);
  if (!frames.empty()) {
    metrics::sync::sent(st.def.id, "sent", frames.size());
    for (auto& frame : frames)
      send_frame(self, std::move(frame));
    if (!st.up_check_scheduled) {
      st.up_check_scheduled = true;
      self->delayed_send(self, up_check_interval, atom::tick_v, st.generation);
    }
  }
  auto cursor = st.up->cursor();
  if (cursor >= st.up_cursor_persisted + up_persist_every
      || (st.up->drained() && cursor != st.up_cursor_persisted))
    persist_runtime(self);
  if (st.up->drained() && st.def.direction == sync_direction::up
      && st.state == phase::catching_up)
    finish_up_catchup(self);
}

/// Opens the up stream of a fresh session: from the persisted cursor, woken
/// by the hub's change feed.
void start_up(self_pointer self) {
  auto& st = self->state;
  auto extras = std::exchange(st.neg_have_ids, {});
  if (st.up) {
    // A later reconciliation on the same connection (sync-now).
    st.up->enqueue(extras);
    return pump_up(self);
  }
  st.up.emplace(*st.deps.store, st.label, st.def.filters, st.up_cursor,
                up_window);
  st.up->enqueue(extras);
  st.up->skip_to(st.neg_log_covered);
  st.resend_after_auth = false;
  if (auto hub = st.deps.hub ? st.deps.hub->get() : hub_actor{})
    self->send(hub, atom::subscribe_v, atom::feed_v,
               caf::actor_cast<feed_listener_actor>(self),
               std::make_shared<const std::vector<nostr::filter>>(
                 st.def.filters));
  if (st.def.direction == sync_direction::up && !st.neg) {
    st.state = phase::catching_up;
    st.catchup_complete = false;
    st.catchup_started = self->clock().now();
    report(self, atom::report_v, atom::catchup_v, st.def.id);
  }
  pump_up(self);
}

void authenticate(self_pointer self);

/// Sends one REQ GRASP SYNC asked for.
void send_driven(self_pointer self, const grasp::subscription& wanted) {
  auto& st = self->state;
  std::vector<nostr::filter> filters;
  for (const auto& text : wanted.filters) {
    nostr::filter f;
    if (auto why = nostr::parse_filter(std::string_view{text}, f); !why.empty())
      return tell_listener(self, atom::closed_v, st.def.url, wanted.id,
                           "error: invalid filter: " + why);
    filters.push_back(std::move(f));
  }
  std::vector<nostr::filter> check = filters;
  for (auto& f : check) {
    f.since.reset();
    f.until.reset();
    f.limit.reset();
  }
  subscribe(self, wanted.id, std::move(filters), std::nullopt);
  auto& sub = st.subscriptions[wanted.id];
  sub.driven = true;
  sub.check = std::move(check);
}

/// Driven: an EOSE (`sub`) or a flush (`serial`) is reported only once every
/// event received before it is stored, so GRASP SYNC never confirms (nor
/// moves `last_connected` over) an event still in the verifiers. An event
/// the store failed to take ends the connection first (on_store_failure),
/// so no barrier behind it is ever reported.
void add_barrier(self_pointer self, std::string sub, uint64_t serial) {
  auto& st = self->state;
  st.barriers.push_back({st.next_ingest, std::move(sub), serial});
  release_barriers(self);
}

/// The remote's OK for an event we sent up.
void on_up_ok(self_pointer self, const std::string& id, bool ok,
              const std::string& reason) {
  auto& st = self->state;
  switch (st.up->on_ok(id, ok, reason)) {
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
    case up_stream::answer::auth_required:
      if (st.def.auth == auth_mode::never || st.challenge.empty()
          || st.authenticated)
        return fail(self, error_class::auth, "event refused: " + reason);
      if (!st.resend_after_auth) {
        st.resend_after_auth = true;
        authenticate(self);
      }
      return;
  }
  if (!st.resend_after_auth)
    pump_up(self);
}

/// Opens fetch REQs for ids a reconciliation found missing, while the
/// ingest path has room.
void pump_fetches(self_pointer self) {
  auto& st = self->state;
  if (!st.fetcher || st.in_flight >= in_flight_low)
    return;
  for (auto& frame : st.fetcher->fill())
    send_frame(self, std::move(frame));
}

/// Forgets the running fetch, keeping its count of missing ids.
void end_fetches(self_pointer self) {
  auto& st = self->state;
  if (st.fetcher)
    st.fetch_missing += st.fetcher->missing;
  st.fetcher.reset();
}

/// The reconciliation covered every window: fetch the rest and send what the
/// remote lacks (the live tail is open since before it began).
void neg_finished(self_pointer self) {
  auto& st = self->state;
  st.neg_done = true;
  st.neg_rounds += st.neg->rounds;
  log::info("{} reconciled in {} sessions, {} rounds: {} to fetch, {} to send",
            st.label, st.neg->sessions, st.neg->rounds, st.neg->need_count,
            st.neg->have_count);
  if (sends_up(st.def))
    start_up(self);
  maybe_finish_catchup(self);
}

/// Catches up with REQ instead: the remote does not speak NIP-77.
void neg_fallback(self_pointer self, const std::string& reason) {
  auto& st = self->state;
  st.negentropy_unsupported = reason;
  log::warn("{} falls back to REQ catch-up: {}", st.label, reason);
  if (!st.neg->session().empty())
    send_frame(self, "[\"NEG-CLOSE\",\"" + st.neg->session() + "\"]");
  st.neg.reset();
  st.neg_done = false;
  end_fetches(self);
  if (sends_up(st.def))
    start_up(self);
  if (syncs_down(st.def))
    start_catchup(self, st.neg_since);
  else
    maybe_finish_catchup(self);
}

/// Carries out what the reconciliation asks for.
void on_neg(self_pointer self, neg_catchup::action act) {
  using kind = neg_catchup::action::kind;
  auto& st = self->state;
  if (act.what == kind::none)
    return;
  if (act.what == kind::fallback)
    return neg_fallback(self, act.reason);
  if (act.what == kind::fail)
    return fail(self, error_class::protocol, "negentropy: " + act.reason);
  for (auto& frame : act.frames)
    send_frame(self, std::move(frame));
  auto need = st.neg->take_need();
  auto have = st.neg->take_have();
  st.neg_need += need.size();
  st.neg_have += have.size();
  if (syncs_down(st.def))
    st.fetcher->add(need);
  if (sends_up(st.def))
    st.neg_have_ids.insert(st.neg_have_ids.end(), have.begin(), have.end());
  pump_fetches(self);
  if (act.what == kind::done)
    return neg_finished(self);
  self->delayed_send(self, neg_answer_timeout, atom::timeout_v, st.generation,
                     ++st.neg_serial);
}

/// A catch-up by NIP-77 reconciliation from `since` (0: everything).
void start_neg_catchup(self_pointer self, int64_t since) {
  auto& st = self->state;
  st.state = phase::catching_up;
  st.catchup_complete = false;
  st.catchup_started = self->clock().now();
  st.neg_since = since;
  st.neg_done = false;
  end_fetches(self);
  id_fetcher::options fetch;
  fetch.batch_size = std::min<size_t>(fetch_batch, st.page_size);
  fetch.max_requests = fetches_max_in_flight;
  fetch.sub_prefix = "ferry-fetch-";
  st.fetcher.emplace(fetch);
  st.neg_have_ids.clear();
  // Only a reconciliation of everything covers the whole change log.
  st.neg_log_covered = since == 0 ? store::last_change_seq(*st.deps.store) : 0;
  report(self, atom::report_v, atom::catchup_v, st.def.id);
  if (syncs_down(st.def)) {
    // The live tail opens before the reconciliation, so what reaches the
    // remote while we reconcile comes to us too (its events wait for the
    // catch-up's end to move the cursor). `limit: 0`: no history. Its
    // `since` floor, the overlap window before the reconciliation's start,
    // keeps the remote from echoing back older events we send up.
    std::vector<nostr::filter> live;
    for (auto f : st.def.filters) {
      f.since = std::max<int64_t>(f.since.value_or(0),
                                  unix_now() - st.def.overlap_window_seconds);
      f.limit = 0;
      live.push_back(std::move(f));
    }
    subscribe(self, live_sub, std::move(live), std::nullopt);
  }
  st.neg.emplace(*st.deps.store, st.def.filters, since, unix_now(),
                 neg_catchup::limits{});
  on_neg(self, st.neg->start());
}

/// Where a catch-up starts. REQ: the overlap window before the cursor,
/// after any outage: a remote may receive back-dated events while we are
/// away, and events we already hold cost only a lookup (the verifier skips
/// stored ids before checking signatures). `since` is inclusive, so events
/// sharing the cursor's second are asked for again. NIP-77, by the
/// 15-minute rule: a short outage reconciles from the overlap window before
/// the cursor, a long one everything. A first sync (no cursor) takes
/// everything either way.
int64_t catchup_since(const relay_connection_state& st, resume_mode mode) {
  auto cursor = store::get_sync_cursor(*st.deps.store, st.def.id);
  if (!cursor || !*cursor)
    return 0;
  auto before = std::max<int64_t>(
    0, (*cursor)->created_at - st.def.overlap_window_seconds);
  if (uses_negentropy(st) && mode == resume_mode::full_catchup)
    return 0;
  return before;
}

void start_any_catchup(self_pointer self, int64_t since) {
  auto& st = self->state;
  // Events the store failed to take are fetched again.
  if (since > 0 && st.unstored_since != INT64_MAX)
    since = std::min(since, st.unstored_since);
  st.unstored_in_catchup = false;
  if (uses_negentropy(st))
    start_neg_catchup(self, since);
  else
    start_catchup(self, since);
}

void authenticate(self_pointer self) {
  auto& st = self->state;
  if (st.challenge.empty() || st.def.auth == auth_mode::never)
    return;
  auto ev = nostr::make_auth_event(st.deps.keys, st.def.url, st.challenge,
                                   unix_now());
  st.auth_event_id = nostr::to_hex(ev.id);
  send_frame(self, "[\"AUTH\"," + nostr::to_json(ev) + "]");
}

void on_frame(self_pointer self, std::string& frame) {
  auto& st = self->state;
  thread_local simdjson::ondemand::parser parser;
  frame.reserve(frame.size() + simdjson::SIMDJSON_PADDING);
  simdjson::padded_string_view input(frame.data(), frame.size(),
                                     frame.capacity());
  simdjson::ondemand::document doc;
  simdjson::ondemand::array msg;
  simdjson::ondemand::array_iterator it;
  simdjson::ondemand::array_iterator end;
  std::string_view verb_view;
  if (parser.iterate(input).get(doc) || doc.get_array().get(msg)
      || msg.begin().get(it) || msg.end().get(end) || it == end
      || (*it).get_string().get(verb_view))
    return fail(self, error_class::protocol, "malformed message from relay");
  std::string verb{verb_view};
  ++it;
  auto next_string = [&](std::string& out) {
    std::string_view view;
    if (it == end || (*it).get_string().get(view))
      return false;
    out = std::string{view};
    ++it;
    return true;
  };
  if (verb == "EVENT") {
    std::string sub_id;
    simdjson::ondemand::value value;
    nostr::event ev;
    if (!next_string(sub_id) || it == end || (*it).get(value)
        || !nostr::parse_event(value, ev).empty()) {
      ++st.rejected;
      return;
    }
    return on_event(self, sub_id, std::move(ev));
  }
  if (verb == "EOSE") {
    std::string sub_id;
    if (!next_string(sub_id))
      return;
    if (st.fetcher && st.fetcher->owns(sub_id)) {
      if (auto close = st.fetcher->on_eose(sub_id); !close.empty())
        send_frame(self, std::move(close));
      pump_fetches(self);
      return maybe_finish_catchup(self);
    }
    auto i = st.subscriptions.find(sub_id);
    if (i == st.subscriptions.end() || i->second.eose)
      return;
    i->second.eose = true;
    if (i->second.driven)
      return add_barrier(self, sub_id, 0);
    if (i->second.tracked)
      if (auto batches = batches_of(self))
        self->send(batches, atom::eose_v, st.def.id, sub_id);
    page_if_capped(self, i->second);
    if (sub_id != live_sub) {
      send_frame(self, "[\"CLOSE\",\"" + sub_id + "\"]");
      // Keep the finished page, so maybe_finish_catchup sees its EOSE.
    }
    return maybe_finish_catchup(self);
  }
  if (verb == "CLOSED") {
    std::string sub_id;
    std::string reason;
    if (!next_string(sub_id))
      return;
    next_string(reason);
    if (st.fetcher && st.fetcher->on_closed(sub_id, reason)) {
      log::warn("{} a fetch by ids was closed: {}", st.label, reason);
      pump_fetches(self);
      return maybe_finish_catchup(self);
    }
    auto i = st.subscriptions.find(sub_id);
    if (i == st.subscriptions.end())
      return;
    if (reason.rfind("auth-required:", 0) == 0
        && st.def.auth != auth_mode::never && !st.challenge.empty()) {
      st.waiting_for_auth.push_back(sub_id);
      return authenticate(self);
    }
    if (i->second.driven) {
      st.subscriptions.erase(i);
      return tell_listener(self, atom::closed_v, st.def.url, sub_id, reason);
    }
    if (reason.rfind("rate-limited:", 0) == 0) {
      report(self, atom::report_v, atom::ratelimit_v, st.def.id,
                 reason);
      return fail(self, error_class::rate_limited, reason);
    }
    auto kind = reason.rfind("auth-required:", 0) == 0 ? error_class::auth
                                                        : error_class::protocol;
    return fail(self, kind, "subscription closed by relay: " + reason);
  }
  if (verb == "AUTH") {
    if (!next_string(st.challenge))
      return;
    if (st.def.auth != auth_mode::never)
      authenticate(self);
    return;
  }
  if (verb == "OK") {
    std::string id;
    bool accepted = false;
    if (!next_string(id) || it == end || (*it).get_bool().get(accepted))
      return;
    ++it;
    std::string reason;
    next_string(reason);
    if (id != st.auth_event_id)
      return st.up ? on_up_ok(self, id, accepted, reason) : void();
    if (!accepted)
      return fail(self, error_class::auth, "AUTH refused: " + reason);
    st.authenticated = true;
    if (st.resend_after_auth && st.up) {
      st.resend_after_auth = false;
      st.up->rewind();
      pump_up(self);
    }
    auto waiting = std::move(st.waiting_for_auth);
    st.waiting_for_auth.clear();
    for (auto& sub_id : waiting) {
      auto i = st.subscriptions.find(sub_id);
      if (i != st.subscriptions.end())
        subscribe(self, sub_id, i->second.sent, i->second.filter, true);
    }
    return;
  }
  if (verb == "NEG-MSG" || verb == "NEG-ERR") {
    std::string sub_id;
    std::string text;
    if (!st.neg || !next_string(sub_id) || !next_string(text))
      return;
    return on_neg(self, verb == "NEG-MSG" ? st.neg->on_message(sub_id, text)
                                          : st.neg->on_error(sub_id, text));
  }
  if (verb == "NOTICE") {
    std::string text;
    next_string(text);
    log::debug("{} notice: {}", st.label, text);
    if (st.neg && !st.neg_done)
      on_neg(self, st.neg->on_notice(text));
  }
}

void connect(self_pointer self) {
  auto& st = self->state;
  st.state = phase::connecting;
  st.reading_paused = false;
  st.challenge.clear();
  st.authenticated = false;
  st.waiting_for_auth.clear();
  auto gen = st.generation;
  auto handle = caf::actor_cast<relay_connection_actor>(self);
  net::ws_client_callbacks callbacks;
  callbacks.on_open = [handle, gen] {
    caf::anon_send(handle, atom::connected_v, gen);
  };
  callbacks.on_frame = [handle, gen](std::string frame) {
    caf::anon_send(handle, atom::frame_v, gen, std::move(frame));
  };
  callbacks.on_close = [handle, gen](net::failure_kind kind,
                                     const std::string& reason) {
    caf::anon_send(handle, atom::closed_v, gen, static_cast<uint8_t>(kind),
                   reason);
  };
  st.conn = net::connect_ws(st.deps.io->context(), st.def.url, st.tls,
                            std::move(callbacks));
}

/// One attempt: NIP-11 identity check (unless disabled), then connect.
void begin(self_pointer self) {
  auto& st = self->state;
  if (auto problem = st.deps.store->space_problem(); !problem.empty()) {
    st.state = phase::backing_off;
    st.last_error = std::string{store::disk_full_prefix} + problem;
    self->delayed_send(self, disk_poll_interval, atom::reconnect_v,
                       st.generation);
    return;
  }
  auto gen = ++st.generation;
  report(self, atom::report_v, atom::connecting_v, st.def.id);
  if (st.def.relay_info == relay_info_mode::disabled)
    return connect(self);
  st.state = phase::relay_info;
  auto handle = caf::actor_cast<relay_connection_actor>(self);
  net::http_get(st.deps.io->context(), info_url(st.def.url), st.tls,
                {{"Accept", "application/nostr+json"}},
                [handle, gen](net::http_get_result r) {
                  auto ok = r.failure == net::failure_kind::none;
                  caf::anon_send(handle, atom::info_v, gen,
                                 static_cast<uint32_t>(ok ? r.status : 0),
                                 ok ? std::move(r.body) : std::move(r.error));
                });
}

/// Checks a NIP-11 document against the definition. @returns "" or why not.
std::string check_relay_info(relay_connection_state& st, uint32_t status,
                             const std::string& body) {
  namespace json = boost::json;
  const bool required = st.def.relay_info == relay_info_mode::required;
  if (status != 200)
    return required ? "relay information unavailable: "
                        + (status == 0 ? body : "HTTP " + std::to_string(status))
                    : "";
  boost::system::error_code ec;
  auto doc = json::parse(body, ec);
  if (ec || !doc.is_object())
    return required ? "relay information is not a JSON object" : "";
  const auto& info = doc.as_object();
  if (auto* limitation = info.if_contains("limitation"))
    if (limitation->is_object())
      if (auto* max_limit = limitation->as_object().if_contains("max_limit"))
        if (max_limit->is_int64() && max_limit->as_int64() > 0)
          st.page_size = std::min<uint64_t>(st.page_size,
                                            static_cast<uint64_t>(
                                              max_limit->as_int64()));
  std::string identity;
  for (const char* key : {"self", "pubkey"})
    if (auto* value = info.if_contains(key); value && value->is_string()) {
      identity = std::string{value->as_string()};
      break;
    }
  if (st.def.auth_pubkey.empty())
    return "";
  if (identity.empty())
    return required ? "relay information names no identity (self or pubkey)"
                    : "";
  if (identity != st.def.auth_pubkey)
    return "identity mismatch: relay is " + identity + ", expected "
           + st.def.auth_pubkey;
  return "";
}

} // namespace

relay_connection_actor::behavior_type
relay_connection(relay_connection_actor::stateful_pointer<relay_connection_state> self,
                 sync_server def, relay_connection_deps deps) {
  auto& st = self->state;
  st.tls = tls_options_of(def);
  st.label = deps.driver_listener ? "grasp:" + def.url : "sync:" + def.id;
  st.def = std::move(def);
  st.deps = std::move(deps);
  if (auto runtime = store::get_sync_runtime(*st.deps.store, st.def.id)) {
    st.up_cursor = runtime->up_cursor;
    st.up_cursor_persisted = st.up_cursor;
  }
  self->set_down_handler([self](const caf::down_msg& msg) {
    auto& st = self->state;
    if (msg.source != st.watched_batches)
      return;
    st.watched_batches = caf::actor_addr{};
    if (st.state == phase::catching_up && st.catchup_batches_open > 0)
      fail(self, error_class::protocol,
           "the pending-batch tracker restarted during the catch-up");
  });
  if (!driven(st))
    self->send(self, atom::reconnect_v, st.generation);
  else if (st.deps.start_after > caf::timespan::zero()) {
    st.state = phase::backing_off;
    self->delayed_send(self, st.deps.start_after, atom::reconnect_v,
                       st.generation);
  }
  return {
    [self](atom::sync_now) {
      auto& st = self->state;
      if (!syncs_down(st.def) && !uses_negentropy(st)
          && (st.state == phase::live || st.state == phase::catching_up)) {
        // Up only by REQ: resend from the cursor whatever is unanswered.
        if (st.up) {
          st.up->rewind();
          pump_up(self);
        }
        return;
      }
      if (st.state == phase::live || st.state == phase::catching_up) {
        st.subscriptions.clear();
        drop_catchup_batches(self);
        end_fetches(self);
        return start_any_catchup(
          self, catchup_since(st, resume_mode::full_catchup));
      }
      if (st.state != phase::relay_info && st.state != phase::connecting)
        begin(self);
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "state", to_string(st.state));
      caf::put(result, "url", st.def.url);
      caf::put(result, "connected", st.state == phase::catching_up
                                      || st.state == phase::live);
      caf::put(result, "catchup_complete", st.catchup_complete);
      caf::put(result, "last_catchup_ms",
               static_cast<int64_t>(
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                   st.last_catchup)
                   .count()));
      caf::put(result, "received", static_cast<int64_t>(st.received));
      caf::put(result, "accepted", static_cast<int64_t>(st.accepted));
      caf::put(result, "duplicate", static_cast<int64_t>(st.duplicate));
      caf::put(result, "rejected", static_cast<int64_t>(st.rejected));
      caf::put(result, "failed", static_cast<int64_t>(st.failed));
      caf::put(result, "filtered", static_cast<int64_t>(st.filtered));
      caf::put(result, "in_flight", static_cast<int64_t>(st.in_flight));
      int64_t cursor = 0;
      if (auto c = store::get_sync_cursor(*st.deps.store, st.def.id); c && *c)
        cursor = (*c)->created_at;
      caf::put(result, "cursor", cursor);
      caf::put(result, "direction", to_string(st.def.direction));
      caf::put(result, "mode", to_string(st.def.mode));
      if (st.def.mode == sync_mode::negentropy)
        caf::put(result, "negentropy",
                 st.negentropy_unsupported.empty()
                   ? std::string{"supported"}
                   : "unsupported: " + st.negentropy_unsupported);
      caf::put(result, "neg_rounds",
               static_cast<int64_t>(st.neg_rounds + (st.neg ? st.neg->rounds : 0)));
      caf::put(result, "neg_need", static_cast<int64_t>(st.neg_need));
      caf::put(result, "neg_have", static_cast<int64_t>(st.neg_have));
      caf::put(result, "fetch_missing",
               static_cast<int64_t>(st.fetch_missing
                                    + (st.fetcher ? st.fetcher->missing : 0)));
      caf::put(result, "sent", static_cast<int64_t>(
                                 st.sent_before + (st.up ? st.up->sent : 0)));
      caf::put(result, "sent_ok",
               static_cast<int64_t>(
                 st.sent_ok_before
                 + (st.up ? st.up->accepted + st.up->duplicate : 0)));
      caf::put(result, "sent_refused",
               static_cast<int64_t>(st.sent_refused_before
                                    + (st.up ? st.up->refused : 0)));
      caf::put(result, "echoes_skipped",
               static_cast<int64_t>(st.up ? st.up->echoes_skipped : 0));
      caf::put(result, "up_cursor", static_cast<int64_t>(
                                      st.up ? st.up->cursor() : st.up_cursor));
      caf::put(result, "up_in_flight",
               static_cast<int64_t>(st.up ? st.up->in_flight() : 0));
      caf::put(result, "last_error", st.last_error);
      caf::put(result, "last_connected", st.last_connected);
      caf::put(result, "disconnected_at", st.disconnected_at);
      caf::put(result, "bytes_received",
               static_cast<int64_t>(st.conn ? st.conn->bytes_received() : 0));
      return result;
    },
    [self](atom::info, uint64_t gen, uint32_t status, const std::string& body) {
      auto& st = self->state;
      if (gen != st.generation || st.state != phase::relay_info)
        return;
      if (auto problem = check_relay_info(st, status, body); !problem.empty())
        return fail(self, error_class::auth, problem);
      connect(self);
    },
    [self](atom::connected, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.generation)
        return;
      st.last_connected = unix_now();
      st.last_error.clear();
      metrics::sync::set_connected(st.def.id, true);
      report(self, atom::report_v, atom::connected_v, st.def.id);
      log::info("{} connected to {}", st.label, st.def.url);
      if (driven(st)) {
        st.state = phase::live;
        tell_listener(self, atom::connected_v, st.def.url);
        auto queued = std::move(st.queued);
        st.queued.clear();
        for (const auto& wanted : queued)
          send_driven(self, wanted);
        return;
      }
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
    },
    [self](atom::frame, uint64_t gen, std::string& frame) {
      if (gen == self->state.generation)
        on_frame(self, frame);
    },
    [self](atom::closed, uint64_t gen, uint8_t kind, const std::string& reason) {
      auto& st = self->state;
      if (gen != st.generation)
        return;
      st.conn = nullptr;
      fail(self, classify(static_cast<net::failure_kind>(kind)), reason);
    },
    [self](atom::reconnect, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.generation)
        return;
      // A driven connection dials only when GRASP SYNC wants something.
      if (driven(st) && st.queued.empty()) {
        st.state = phase::idle;
        return;
      }
      begin(self);
    },
    [self](atom::subscribe, std::vector<grasp::subscription>& wanted) {
      auto& st = self->state;
      if (st.state == phase::live) {
        for (const auto& sub : wanted)
          send_driven(self, sub);
        return;
      }
      st.queued.insert(st.queued.end(), wanted.begin(), wanted.end());
      if (st.state == phase::idle)
        begin(self);
    },
    [self](atom::flush, uint64_t serial) {
      // Only a live connection can vouch for what it received.
      if (self->state.state == phase::live)
        add_barrier(self, {}, serial);
    },
    [self](atom::unsubscribe, const std::vector<std::string>& ids) {
      auto& st = self->state;
      for (const auto& id : ids) {
        if (st.subscriptions.erase(id) > 0) {
          std::string close = "[\"CLOSE\",";
          nostr::append_json_string(close, id);
          send_frame(self, close + "]");
        }
        st.queued.erase(std::remove_if(st.queued.begin(), st.queued.end(),
                                       [&](const auto& q) { return q.id == id; }),
                        st.queued.end());
      }
    },
    [self](atom::confirmed, const batch_info& batch) {
      auto& st = self->state;
      if (batch.payload != catchup_payload(st) || st.catchup_batches_open == 0)
        return;
      --st.catchup_batches_open;
      maybe_finish_catchup(self);
    },
    [self](atom::failed, const batch_info& batch) {
      auto& st = self->state;
      if (batch.payload != catchup_payload(st))
        return;
      std::string why;
      for (const auto& sub : batch.subscriptions)
        if (sub.outcome != sub_outcome::eose)
          why += (why.empty() ? "" : ", ") + sub.id + " " + to_string(sub.outcome);
      fail(self, error_class::protocol, "catch-up incomplete: " + why);
    },
    [self](atom::timeout, uint64_t gen, uint64_t serial) {
      auto& st = self->state;
      if (gen != st.generation || !st.neg || st.neg_done
          || serial != st.neg_serial)
        return;
      if (!st.neg->answered())
        return neg_fallback(self, "no answer to NEG-OPEN within "
                                    + std::to_string(neg_answer_timeout.count())
                                    + " s");
      fail(self, error_class::protocol,
           "negentropy: no answer within "
             + std::to_string(neg_answer_timeout.count()) + " s");
    },
    [self](atom::feed, const ingest_item_ptr&) {
      pump_up(self);
    },
    [self](atom::tick, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.generation)
        return;
      st.up_check_scheduled = false;
      if (!st.up || st.up->in_flight() == 0)
        return;
      auto oldest = st.up->oldest_sent_at();
      if (unix_now() - oldest > up_ok_timeout_seconds)
        return fail(self, error_class::protocol,
                    "the relay left an event unanswered for more than "
                      + std::to_string(up_ok_timeout_seconds) + " s");
      st.up_check_scheduled = true;
      self->delayed_send(self, up_check_interval, atom::tick_v, gen);
    },
  };
}

} // namespace ferry
