#include "actors/sync/relay_negentropy.hpp"

#include "actors/relay/item_set_cache.hpp"
#include "actors/runtime/logging.hpp"
#include "actors/sync/relay_connection_context.hpp"
#include "actors/sync/sync_metrics.hpp"
#include "messages/clock.hpp"
#include "net/idle_watch.hpp"
#include "store/change_log.hpp"
#include "store/refused_store.hpp"

#include <algorithm>
#include <utility>

namespace ferry::relay_conn {

namespace {

/// A NEG-OPEN or NEG-MSG unanswered this long: the remote does not speak
/// NIP-77 (before its first answer) or is stuck (after).
constexpr auto neg_answer_timeout = std::chrono::seconds{10};

/// Ids per fetch REQ after a reconciliation, and fetch REQs open at once.
constexpr size_t fetch_batch = 500;
constexpr size_t fetches_max_in_flight = 4;
/// How often a fetcher whose last ids another connection is fetching looks
/// whether they are stored (long enough for that connection's writes).
constexpr auto fetch_look_interval = std::chrono::milliseconds{50};
/// How often the fetch REQs are looked at for answers while some are open:
/// REQs open across a whole interval without any answer are quiet (so after
/// one to two intervals of silence).
constexpr auto fetch_quiet_interval = neg_answer_timeout / 2;

/// Fetch REQs open at once: ours, or fewer when the remote's NIP-11 says
/// how many subscriptions it holds per connection (the live tail and the
/// deletion tail take one each). A remote that says nothing and drops REQs
/// beyond its limit is found out by the quiet looks.
size_t fetch_requests_allowed(const relay_connection_state& st) {
  constexpr uint64_t other_subscriptions = 2;
  const auto most = st.session.remote_max_subscriptions;
  if (most == 0)
    return fetches_max_in_flight;
  return most > other_subscriptions
           ? std::min<uint64_t>(fetches_max_in_flight, most - other_subscriptions)
           : 1;
}

/// Longest a round is held for the fetches (hold_round): well within the
/// time a relay keeps an idle negentropy session open (Ferry's own: 60 s,
/// `relay.negentropy.idle_timeout_seconds`).
constexpr auto neg_hold_max = std::chrono::seconds{30};

/// Keeps one quiet look scheduled while fetch REQs are open.
void watch_fetches(self_pointer self) {
  auto& st = self->state;
  if (st.neg.fetcher && st.neg.fetcher->open_requests() > 0
      && st.neg.quiet_look_gen != st.generation) {
    st.neg.quiet_look_gen = st.generation;
    self->delayed_send(self, fetch_quiet_interval, atom::timeout_v, st.generation);
  }
}

/// The reconciliation covered every window: fetch the rest and send what the
/// remote lacks (the live tail is open since before it began).
void neg_finished(self_pointer self) {
  auto& st = self->state;
  auto& neg = st.neg;
  neg.done = true;
  neg.rounds += neg.run->rounds;
  log::info("{} reconciled in {} sessions, {} rounds: {} to fetch, {} to send",
            st.label, neg.run->sessions, neg.run->rounds, neg.run->need_count,
            neg.run->have_count);
  if (sends_up(st.def))
    start_up(self);
  maybe_finish_catchup(self);
}

/// Catches up with REQ instead: the remote does not speak NIP-77.
void neg_fallback(self_pointer self, const std::string& reason) {
  auto& st = self->state;
  auto& neg = st.neg;
  neg.unsupported = reason;
  neg.awaiting_auth = false;
  log::warn("{} falls back to REQ catch-up: {}", st.label, reason);
  if (!neg.run->session().empty())
    send_frame(self, "[\"NEG-CLOSE\",\"" + neg.run->session() + "\"]");
  neg.run.reset();
  neg.done = false;
  end_fetches(self);
  if (sends_up(st.def))
    start_up(self);
  if (syncs_down(st.def))
    start_req_catchup(self, neg.since);
  else
    maybe_finish_catchup(self);
}

/// The local set of the whole range is empty (neg_catchup's
/// `page_when_empty`): REQ pages bring what fetches by id would, for less.
/// 94,861 realistic events from a node into an empty one on the same 2
/// cores, 3 alternated pairs: catch-up 5.17/4.94/4.86 -> 4.95/4.71/4.57 s,
/// the empty node's CPU 7.60/7.68/7.66 -> 7.51/7.40/7.26 s.
void page_instead(self_pointer self) {
  auto& st = self->state;
  auto& neg = st.neg;
  ++neg.paged;
  log::info("{} holds nothing its filter matches{}: pages the remote with REQ "
            "instead of reconciling",
            st.label,
            neg.since > 0 ? " since " + std::to_string(neg.since) : std::string{});
  neg.run.reset();
  neg.done = false;
  end_fetches(self);
  if (sends_up(st.def))
    start_up(self);
  start_req_catchup(self, neg.since);
}

/// The remote wants NIP-42 before NIP-77 (our NEG-OPEN crossed its
/// challenge): the window opens again once our AUTH is accepted.
void neg_authenticate(self_pointer self, const std::string& reason) {
  auto& st = self->state;
  auto& neg = st.neg;
  if (st.def.auth == auth_mode::never || st.session.challenge.empty())
    return neg_fallback(self, "NEG-OPEN refused: " + reason);
  neg.awaiting_auth = true;
  if (st.session.authenticated)
    return resume_negentropy_after_auth(self);
  // Answering the challenge may already have sent our AUTH.
  if (st.session.auth_event_id.empty())
    authenticate(self);
  // An AUTH never answered ends like an unanswered NEG-OPEN.
  self->delayed_send(self, neg_answer_timeout, atom::timeout_v, st.generation,
                     ++neg.serial);
}

/// Reads a window's local set on the item-set threads and hands it back to
/// the connection: a scheduler thread must not stall for it (a few hundred
/// ms at a million events).
void scan_off_thread(self_pointer self, neg_catchup::scan_request request) {
  auto& st = self->state;
  auto& neg = st.neg;
  // No answer is due while we read: a pending timeout is void.
  ++neg.serial;
  st.deps.item_sets->read(
    request.filter, request.now, request.max_items,
    [connection = caf::actor_cast<relay_connection_actor>(self),
     gen = st.generation,
     serial = ++neg.scan_serial](caf::expected<store::item_scan> scan) {
      caf::anon_send(connection, atom::neg_v, gen, serial,
                     std::make_shared<caf::expected<store::item_scan>>(
                       std::move(scan)));
    });
}

/// The live tail opens before the first NEG-OPEN, so what reaches the
/// remote while we reconcile comes to us too (its events wait for the
/// catch-up's end to move the cursor): the remote reads our REQ before it
/// takes its set. `limit: 0`: no history. When we also send up, its `since`
/// floor, the overlap window before the reconciliation's start, keeps the
/// remote from echoing back older events we send; down only, back-dated
/// events the remote stores come live too (a cluster member's catch-ups of
/// its relays). Not before the local set is read: a catch-up that pages
/// instead (page_instead) opens a live subscription of its own.
void open_tails(self_pointer self) {
  auto& st = self->state;
  st.neg.tails_due = false;
  std::vector<nostr::filter> live;
  for (auto f : st.def.filters) {
    if (st.def.direction != sync_direction::down)
      f.since = std::max<int64_t>(f.since.value_or(0),
                                  unix_now() - st.def.overlap_window_seconds);
    f.limit = 0;
    live.push_back(std::move(f));
  }
  subscribe(self, live_sub, std::move(live), std::nullopt);
  open_deletion_tail(self, st.neg.since);
}

/// Holds the next round while the fetcher has `max_fetch_backlog` ids or
/// more still to ask for. The remote answers each round with more ids we
/// lack: against a remote holding millions of events we do not, a catch-up
/// that went on reconciling kept every id still to fetch in memory (their
/// list, the fetcher's queue and its set of ids seen, ~100 bytes an id).
/// Held, it waits until all of them are asked for (pump_fetches, which also
/// has the fetcher forget the ids it knew), then the round goes out
/// (release_held_round). An id the remote names again after that (in
/// another filter's reconciliation) is skipped as stored, or fetched once
/// more. At most `neg_hold_max`: the remote's session must not time out
/// meanwhile.
void hold_round(self_pointer self, std::vector<std::string> frames) {
  auto& st = self->state;
  auto& neg = st.neg;
  neg.held_round = std::move(frames);
  neg.round_held = true;
  // The fetches this makes room for may take every id at once.
  pump_fetches(self);
  if (!neg.round_held)
    return;
  ++neg.rounds_held;
  log::debug("{} holds its next negentropy round: {} ids wait to be fetched",
             st.label, neg.fetcher->queued());
  self->delayed_send(self, neg_hold_max, atom::timeout_v, st.generation,
                     ++neg.serial);
}

/// Keeps the ids of `have` (the remote lacks them) for the up stream, up to
/// `max_have_backlog` with those it still holds. A remote that lacks
/// millions would otherwise have them all kept, 32 bytes each, for as long
/// as sending them takes. The rest stay in the store for a reconciliation
/// of everything that runs once the up stream is drained
/// (maybe_reconcile_again), or as the next catch-up after a reconnect
/// (catchup_since). Until then the up cursor does not skip the log this one
/// covered, as ids it found are not all sent.
void keep_have(self_pointer self, const std::vector<nostr::bytes32>& have) {
  auto& st = self->state;
  auto& neg = st.neg;
  auto waiting = neg.have_ids.size()
                 + (st.up.stream ? st.up.stream->extras_waiting() : 0);
  auto room = st.deps.max_have_backlog > waiting
                ? st.deps.max_have_backlog - waiting
                : 0;
  auto kept = std::min(room, have.size());
  neg.have_ids.insert(neg.have_ids.end(), have.begin(),
                      have.begin() + static_cast<std::ptrdiff_t>(kept));
  if (kept == have.size())
    return;
  if (!neg.have_overflow)
    log::info("{} keeps {} ids the remote lacks: it sends those, then "
              "reconciles again for the rest",
              st.label, st.deps.max_have_backlog);
  neg.have_overflow = true;
  neg.have_deferred += have.size() - kept;
  neg.log_covered = 0;
}

/// Carries out what the reconciliation asks for.
void on_neg(self_pointer self, neg_catchup::action act) {
  using kind = neg_catchup::action::kind;
  auto& st = self->state;
  auto& neg = st.neg;
  if (act.what == kind::none)
    return;
  if (act.what == kind::fallback)
    return neg_fallback(self, act.reason);
  if (act.what == kind::fail)
    return fail(self, error_class::protocol, "negentropy: " + act.reason);
  if (act.what == kind::authenticate)
    return neg_authenticate(self, act.reason);
  if (act.what == kind::page) {
    neg.tails_due = false;
    for (auto& frame : act.frames)
      send_frame(self, std::move(frame));
    return page_instead(self);
  }
  if (neg.tails_due && act.what != kind::scan)
    open_tails(self);
  if (act.what == kind::scan) {
    for (auto& frame : act.frames)
      send_frame(self, std::move(frame));
    return scan_off_thread(self, std::move(act.scan));
  }
  auto need = neg.run->take_need();
  auto have = neg.run->take_have();
  log::debug("{} negentropy round {}: {} to fetch, {} to send", st.label,
             neg.run->rounds, need.size(), have.size());
  neg.need += need.size();
  // Refused before: as good as held, so never fetched again.
  auto refused = store::drop_refused(*st.deps.store, st.label, need);
  neg.need_refused += refused;
  if (refused > 0)
    metrics::sync::refused_skipped(st.def.id, refused);
  neg.have += have.size();
  if (syncs_down(st.def))
    neg.fetcher->add(need);
  if (sends_up(st.def))
    keep_have(self, have);
  if (act.what == kind::send && syncs_down(st.def)
      && neg.fetcher->queued() >= st.deps.max_fetch_backlog)
    return hold_round(self, std::move(act.frames));
  for (auto& frame : act.frames)
    send_frame(self, std::move(frame));
  pump_fetches(self);
  if (act.what == kind::done)
    return neg_finished(self);
  self->delayed_send(self, neg_answer_timeout, atom::timeout_v, st.generation,
                     ++neg.serial);
}

} // namespace

bool uses_negentropy(const relay_connection_state& st) {
  return st.def.mode == sync_mode::negentropy && st.neg.unsupported.empty();
}

bool negentropy_open(const relay_connection_state& st) {
  const auto& neg = st.neg;
  return (neg.run && !neg.done) || (neg.fetcher && !neg.fetcher->done());
}

std::optional<int64_t> take_reconciled_through(self_pointer self) {
  auto& run = self->state.neg.run;
  if (!run)
    return std::nullopt;
  auto through = run->newest_local();
  run.reset();
  return through;
}

void start_neg_catchup(self_pointer self, int64_t since) {
  auto& st = self->state;
  auto& neg = st.neg;
  neg.since = since;
  neg.done = false;
  end_fetches(self);
  id_fetcher::options fetch;
  fetch.batch_size = std::min<size_t>(fetch_batch, st.session.page_size);
  fetch.max_requests = fetch_requests_allowed(st);
  fetch.sub_prefix = "ferry-fetch-";
  fetch.claims = st.deps.fetching;
  fetch.held = [store = st.deps.store](const nostr::bytes32& id) {
    return store->contains(id);
  };
  neg.fetcher.emplace(fetch);
  neg.have_ids.clear();
  // Ids left for later are found only by reconciling everything.
  if (since == 0)
    neg.have_overflow = false;
  // Only a reconciliation of everything covers the whole change log.
  neg.log_covered = since == 0 ? store::last_change_seq(*st.deps.store) : 0;
  begin_catchup(self);
  neg.tails_due = syncs_down(st.def);
  neg_catchup::limits limits;
  limits.scan_inline = st.deps.item_sets == nullptr;
  limits.page_when_empty = syncs_down(st.def) && !st.def.reconcile_when_empty;
  neg.run.emplace(*st.deps.store, st.def.filters, since, unix_now(), limits);
  on_neg(self, neg.run->start());
}

void resume_negentropy_after_auth(self_pointer self) {
  auto& neg = self->state.neg;
  if (neg.fetch_awaiting_auth) {
    neg.fetch_awaiting_auth = false;
    pump_fetches(self);
  }
  if (!neg.awaiting_auth || !neg.run || neg.done)
    return;
  neg.awaiting_auth = false;
  on_neg(self, neg.run->resume());
}

void on_neg_frame(self_pointer self, bool error, const std::string& sub_id,
                  const std::string& text) {
  auto& run = self->state.neg.run;
  if (!run)
    return;
  on_neg(self, error ? run->on_error(sub_id, text) : run->on_message(sub_id, text));
}

void on_neg_notice(self_pointer self, const std::string& text) {
  auto& neg = self->state.neg;
  if (neg.run && !neg.done)
    on_neg(self, neg.run->on_notice(text));
}

void on_neg_items(self_pointer self, uint64_t gen, uint64_t serial,
                  const item_scan_result_ptr& scan) {
  auto& st = self->state;
  auto& neg = st.neg;
  if (gen != st.generation || !neg.run || neg.done || serial != neg.scan_serial)
    return;
  on_neg(self, neg.run->on_items(std::move(*scan)));
}

void on_neg_timeout(self_pointer self, uint64_t gen, uint64_t serial) {
  auto& st = self->state;
  auto& neg = st.neg;
  if (gen != st.generation || !neg.run || neg.done || serial != neg.serial)
    return;
  if (neg.round_held)
    return release_held_round(self);
  if (neg.awaiting_auth)
    return neg_fallback(self, "no answer to AUTH within "
                                + std::to_string(neg_answer_timeout.count())
                                + " s");
  if (!neg.run->answered())
    return neg_fallback(self, "no answer to NEG-OPEN within "
                                + std::to_string(neg_answer_timeout.count())
                                + " s");
  fail(self, error_class::protocol,
       "negentropy: no answer within "
         + std::to_string(neg_answer_timeout.count()) + " s");
}

bool on_fetch_event(self_pointer self, const std::string& sub_id,
                    nostr::event& ev) {
  auto& st = self->state;
  auto& fetcher = st.neg.fetcher;
  if (!fetcher || !fetcher->owns(sub_id))
    return false;
  // Asked for by id: only those ids, once each.
  if (!fetcher->on_event(sub_id, ev.id))
    return true;
  auto id = ev.id;
  if (!admit(self, st.def.filters, ev) || !ingest(self, std::move(ev)))
    fetcher->settled(id);
  return true;
}

void settle_fetched(self_pointer self, const nostr::bytes32& id) {
  if (auto& fetcher = self->state.neg.fetcher)
    fetcher->settled(id);
}

bool on_fetch_eose(self_pointer self, const std::string& sub_id) {
  auto& fetcher = self->state.neg.fetcher;
  if (!fetcher || !fetcher->owns(sub_id))
    return false;
  if (auto close = fetcher->on_eose(sub_id); !close.empty())
    send_frame(self, std::move(close));
  pump_fetches(self);
  maybe_finish_catchup(self);
  return true;
}

bool on_fetch_closed(self_pointer self, const std::string& sub_id,
                     const std::string& reason) {
  using outcome = id_fetcher::closed_outcome;
  auto& st = self->state;
  if (!st.neg.fetcher)
    return false;
  const auto batch_before = st.neg.fetcher->batch_size();
  const auto requests_before = st.neg.fetcher->max_requests();
  switch (st.neg.fetcher->on_closed(sub_id, reason)) {
    case outcome::not_ours:
      return false;
    case outcome::retrying:
      if (st.neg.fetcher->batch_size() < batch_before)
        log::info("{} the remote refused a fetch by ids ({}): asking for at "
                  "most {} at a time",
                  st.label, reason, st.neg.fetcher->batch_size());
      if (st.neg.fetcher->max_requests() < requests_before)
        log::info("{} the remote refused a fetch by ids ({}): at most {} "
                  "fetch REQs open at once",
                  st.label, reason, st.neg.fetcher->max_requests());
      break;
    case outcome::refused:
      log::warn("{} the remote refused to serve an event it reconciled: {}",
                st.label, reason);
      break;
    case outcome::stop:
      // Refused for the subscriptions open while no other fetch was: the
      // deletion tail makes room, if it is open.
      if (refuses_for_subscriptions(reason) && give_up_tail(self))
        break;
      // Answering the challenge that came with it (as for a REQ, see
      // on_req_closed) lets the fetch go on.
      if (reason.rfind("auth-required:", 0) == 0 && st.def.auth != auth_mode::never
          && !st.session.challenge.empty() && !st.session.authenticated) {
        st.neg.fetch_awaiting_auth = true;
        if (st.session.auth_event_id.empty())
          authenticate(self);
        return true;
      }
      // Otherwise the catch-up is not over: it begins again on the next
      // connection, and its cursor stays where it is.
      if (reason.rfind("rate-limited:", 0) == 0) {
        report(self, atom::report_v, atom::ratelimit_v, st.def.id, reason);
        fail(self, error_class::rate_limited, reason);
      } else {
        fail(self,
             reason.rfind("auth-required:", 0) == 0 ? error_class::auth
                                                     : error_class::protocol,
             "a fetch by ids was closed: " + reason);
      }
      return true;
  }
  pump_fetches(self);
  maybe_finish_catchup(self);
  return true;
}

void pump_fetches(self_pointer self) {
  auto& st = self->state;
  if (!st.neg.fetcher || st.neg.fetch_awaiting_auth
      || st.ingest.in_flight >= in_flight_low)
    return;
  if (st.neg.fetcher->queued() > 0)
    make_room_beside_tails(self);
  for (auto& frame : st.neg.fetcher->fill())
    send_frame(self, std::move(frame));
  watch_fetches(self);
  if (st.neg.fetcher->waiting_for_others() && !st.neg.fetch_look_scheduled) {
    st.neg.fetch_look_scheduled = true;
    self->delayed_send(self, fetch_look_interval, atom::retry_v, st.generation);
  }
  if (st.neg.fetcher->queued() == 0) {
    // Every id it knew is asked for: the set of them starts over, so that
    // it stays bounded however many a long catch-up fetches.
    if (st.neg.fetcher->known() >= st.deps.max_fetch_backlog)
      st.neg.fetcher->forget_known();
    if (st.neg.round_held)
      release_held_round(self);
  }
}

void release_held_round(self_pointer self) {
  auto& st = self->state;
  auto& neg = st.neg;
  if (!neg.round_held)
    return;
  neg.round_held = false;
  for (auto& frame : std::exchange(neg.held_round, {}))
    send_frame(self, std::move(frame));
  self->delayed_send(self, neg_answer_timeout, atom::timeout_v, st.generation,
                     ++neg.serial);
}

void on_fetch_look(self_pointer self, uint64_t gen) {
  auto& st = self->state;
  if (gen != st.generation)
    return;
  st.neg.fetch_look_scheduled = false;
  if (!st.neg.fetcher)
    return;
  pump_fetches(self);
  maybe_finish_catchup(self);
}

void on_fetch_quiet_look(self_pointer self, uint64_t gen) {
  using outcome = id_fetcher::quiet_look::outcome;
  auto& st = self->state;
  if (gen != st.generation)
    return;
  st.neg.quiet_look_gen = 0;
  if (!st.neg.fetcher || st.neg.fetcher->open_requests() == 0)
    return;
  // While we do not read, the remote's answers wait in the socket.
  if (st.ingest.reading_paused)
    return watch_fetches(self);
  auto look = st.neg.fetcher->look_for_quiet();
  switch (look.what) {
    case outcome::answered:
      break;
    case outcome::retrying:
      log::warn("{} {} fetch REQs had no answer for {}: asked again, at most {} "
                "open at once",
                st.label, look.close.size(), net::duration_text(fetch_quiet_interval),
                st.neg.fetcher->max_requests());
      for (auto& frame : look.close)
        send_frame(self, std::move(frame));
      break;
    case outcome::stop:
      // Unanswered while alone: the deletion tail makes room, if it is
      // open. Otherwise nothing is given up: the catch-up begins again on
      // the next connection, and its cursor stays where it is.
      if (give_up_tail(self))
        break;
      return fail(self, error_class::protocol,
                  "no answer to a fetch by ids for "
                    + net::duration_text(fetch_quiet_interval));
  }
  pump_fetches(self);
  // pump_fetches returns early while the ingest path is full.
  watch_fetches(self);
}

void end_fetches(self_pointer self) {
  auto& neg = self->state.neg;
  if (neg.fetcher) {
    neg.fetch_missing += neg.fetcher->missing;
    neg.fetch_refused += neg.fetcher->refused;
    neg.fetched_elsewhere += neg.fetcher->fetched_elsewhere;
    neg.fetch_unanswered += neg.fetcher->unanswered;
  }
  neg.fetcher.reset();
  neg.fetch_look_scheduled = false;
  neg.fetch_awaiting_auth = false;
  // A held round is the fetch's; a new reconciliation starts over.
  neg.held_round.clear();
  neg.round_held = false;
}

void drop_negentropy(self_pointer self) {
  auto& neg = self->state.neg;
  neg.run.reset();
  neg.done = false;
  neg.awaiting_auth = false;
  neg.tails_due = false;
  end_fetches(self);
  neg.have_ids.clear();
}

void maybe_reconcile_again(self_pointer self) {
  auto& st = self->state;
  auto& neg = st.neg;
  if (!neg.have_overflow || !uses_negentropy(st) || st.state != phase::live
      || negentropy_open(st) || !st.up.stream
      || !st.up.stream->extras_and_log_sent())
    return;
  ++neg.reconciled_again;
  log::info("{} reconciles again: the last reconciliation found more ids "
            "the remote lacks than it kept",
            st.label);
  catch_up_again(self, 0);
}

} // namespace ferry::relay_conn
