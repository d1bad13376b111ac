#include "actors/sync/req_catchup.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/id_fetcher.hpp"
#include "actors/sync/relay_connection_context.hpp"
#include "actors/sync/req_pager.hpp"
#include "messages/nostr/wire.hpp"
#include "net/idle_watch.hpp"

#include <algorithm>
#include <utility>

namespace ferry::relay_conn {

namespace {

/// Pages of history are subscriptions of their own, named by a counter.
constexpr std::string_view page_prefix = "ferry-page-";

/// How often the pages and deletion histories open are looked at for
/// answers: those open across a whole interval without any answer are
/// quiet (so after one to two intervals of silence).
constexpr auto quiet_interval = std::chrono::seconds{5};

bool is_page(const std::string& sub_id) {
  return sub_id.compare(0, page_prefix.size(), page_prefix) == 0;
}

/// Subscriptions that end with their EOSE and are asked for again when the
/// remote refuses or drops them: pages and deletion histories.
bool repeatable(const std::string& sub_id) {
  return is_page(sub_id) || is_deletion_history(sub_id);
}

/// Our subscriptions the remote holds now: those kept open after their
/// EOSE, those not answered yet, and a NIP-77 catch-up's fetches by id.
size_t held(const relay_connection_state& st) {
  auto fetches = st.neg.fetcher ? st.neg.fetcher->open_requests() : 0;
  return fetches
         + static_cast<size_t>(std::count_if(
           st.reqs.open.begin(), st.reqs.open.end(), [](const auto& x) {
             return keeps_open(x.first) || !x.second.eose;
           }));
}

/// Our subscriptions the remote holds that will end by themselves (pages,
/// deletion histories, GRASP's REQs, fetches by id), not counting `except`.
size_t ending(const relay_connection_state& st, const std::string& except = {}) {
  auto fetches = st.neg.fetcher ? st.neg.fetcher->open_requests() : 0;
  return fetches
         + static_cast<size_t>(std::count_if(
           st.reqs.open.begin(), st.reqs.open.end(), [&](const auto& x) {
             return !keeps_open(x.first) && !x.second.eose && x.first != except;
           }));
}

/// The most subscriptions the remote holds for us, as far as we know: its
/// NIP-11 max_subscriptions, or fewer once it refused or dropped ours
/// beyond them (0: no limit known).
uint64_t most_held(const relay_connection_state& st) {
  auto declared = st.session.remote_max_subscriptions;
  auto found = st.reqs.held_most;
  if (declared == 0 || found == 0)
    return std::max(declared, found);
  return std::min(declared, found);
}

/// The remote refused or dropped `sub`: it holds no more subscriptions of
/// ours than it held when `sub` came.
void learn_most_held(req_subscriptions& reqs,
                     const req_subscriptions::subscription& sub) {
  auto most = std::max<uint64_t>(sub.held_before, 1);
  reqs.held_most = reqs.held_most > 0 ? std::min(reqs.held_most, most) : most;
}

/// Whether one more page fits among the subscriptions the remote holds. One
/// page always fits once nothing else of ours can end: the paging must go
/// on, and the tails make room for it (make_room_for_page).
bool page_fits(const relay_connection_state& st) {
  auto most = most_held(st);
  return most == 0 || held(st) < most || ending(st) == 0;
}

/// The remote answered subscription `sub_id`.
void answered(req_subscriptions& reqs, const std::string& sub_id,
              req_subscriptions::subscription& sub) {
  if (repeatable(sub_id))
    ++reqs.answers;
  sub.answered = true;
  reqs.answered_seq = std::max(reqs.answered_seq, sub.seq);
}

/// Keeps one quiet look on its way while pages or histories are open.
void watch_reqs(self_pointer self) {
  auto& st = self->state;
  if (st.reqs.look_gen == st.generation)
    return;
  st.reqs.look_gen = st.generation;
  self->delayed_send(self, quiet_interval, atom::pending_v, st.generation);
}

/// Room for a page among the subscriptions the remote holds: the deletion
/// tail gives up its place first. A remote that holds no more than the live
/// tail (one subscription: declared, or found when it refused or dropped a
/// page beside it) gets the live tail closed while the catch-up pages; once
/// the catch-up ends, a catch-up from its end opens it again, so what the
/// remote took meanwhile comes in that one's stored part (relay_catchup.cpp,
/// maybe_finish_catchup). Before, such a remote dropped or refused every
/// page and the catch-up never ended.
void make_room_for_page(self_pointer self) {
  make_room_beside_tails(self);
  auto& st = self->state;
  auto most = most_held(st);
  auto live = st.reqs.open.find(live_sub);
  if (most == 0 || held(st) < most || live == st.reqs.open.end() || !live->second.eose)
    return;
  log::warn("{} remote holds {} subscription{} of ours: the live tail closes "
            "while the catch-up pages, and opens again once it is over",
            st.label, most, most == 1 ? "" : "s");
  st.reqs.open.erase(live);
  st.reqs.live_yielded = true;
  send_frame(self, std::string{"[\"CLOSE\",\""} + live_sub + "\"]");
}

/// Asks for a page of older history.
void send_page(self_pointer self, req_subscriptions::waiting_page page) {
  auto& st = self->state;
  make_room_for_page(self);
  auto sub_id = std::string{page_prefix} + std::to_string(st.reqs.next_page++);
  subscribe(self, sub_id, std::move(page.sent), page.filter);
  if (auto i = st.reqs.open.find(sub_id); i != st.reqs.open.end()) {
    i->second.resume = std::move(page.resume);
    i->second.again = page.again;
  }
}

/// Asks for a page of older history now, or queues it until the remote has
/// room for it (behind the pages already waiting).
void open_page(self_pointer self, std::vector<nostr::filter> sent,
               size_t filter, std::optional<nostr::filter> resume) {
  auto& st = self->state;
  req_subscriptions::waiting_page page{std::move(sent), filter, std::move(resume)};
  if (!st.reqs.waiting.empty() || !page_fits(st))
    return st.reqs.waiting.push_back(std::move(page));
  send_page(self, std::move(page));
}

/// Asks for the waiting pages that now fit.
void open_waiting_pages(self_pointer self) {
  auto& reqs = self->state.reqs;
  while (!reqs.waiting.empty() && page_fits(self->state)) {
    auto page = std::move(reqs.waiting.front());
    reqs.waiting.pop_front();
    send_page(self, std::move(page));
  }
}

/// Takes page or history `i` back from the remote, which refused or dropped
/// it: a page is first in line to be asked for again, a history's authors
/// go back to the deletion follower's next flush.
void ask_again(self_pointer self,
               std::map<std::string, req_subscriptions::subscription>::iterator i) {
  auto& st = self->state;
  ++st.reqs.asked_again;
  if (!is_page(i->first))
    return history_again(self, i->first);
  auto& sub = i->second;
  // Its batch settles; the page asked for again is a batch of its own, and
  // the catch-up does not end while one waits (all_reqs_answered).
  if (sub.tracked)
    close_tracked_sub(self, i->first);
  st.reqs.waiting.push_front(
    {std::move(sub.sent), *sub.filter, std::move(sub.resume), true});
  st.reqs.open.erase(i);
}

/// Whether some filter of `sub` got as many events as its limit.
bool full(const req_subscriptions::subscription& sub) {
  for (size_t f = 0; f < sub.sent.size(); ++f)
    if (sub.sent[f].limit && sub.received[f] >= *sub.sent[f].limit)
      return true;
  return false;
}

/// A remote that declares no max_limit is asked for at most this many
/// pages' worth of one second.
constexpr uint64_t second_pages_max = 10;

/// Opens the next page of older history for each filter that got events,
/// or its crowded second's page, by the paging rules of `after_page`
/// (actors/sync/req_pager.hpp); a crowded second even the largest page
/// cannot hold is logged: REQ has no other way into it. `sub` is a copy: a
/// page opened here may close the live tail (make_room_for_page), whose
/// entry it may be.
///
/// A page is only ever paged on from what its own answer proved, so it
/// carries one filter. A REQ of several filters (the live tail's first
/// page, the deletion tail) proves nothing about any one of them: an event
/// counts for every filter it matches, though another filter's window may
/// have brought it (an author's old kind-0 for {kinds:[0]} also matches
/// {authors:[X]}, far below that filter's window), and a relay that caps
/// the whole REQ rather than each filter may leave a later filter's window
/// short or empty. Paging a filter from such an answer skipped its events
/// between its window and that oldest one, and the cursor passed them. So
/// once such a REQ brought anything, each of its filters is paged in a
/// subscription of its own from the top (its first page again: the events
/// it repeats cost a lookup each).
void page_if_capped(self_pointer self, req_subscriptions::subscription sub) {
  auto& st = self->state;
  if (sub.sent.size() != 1) {
    if (std::none_of(sub.received.begin(), sub.received.end(),
                     [](uint64_t n) { return n > 0; }))
      return;
    for (size_t i = 0; i < sub.sent.size(); ++i)
      open_page(self, {sub.sent[i]}, i, std::nullopt);
    return;
  }
  const auto most_per_page = st.session.remote_max_limit > 0
                               ? st.session.remote_max_limit
                               : st.session.page_size * second_pages_max;
  auto filter = sub.filter.value_or(0);
  auto outcome = after_page(sub.sent.front(), sub.received.front(),
                            sub.oldest.front(), std::move(sub.resume),
                            most_per_page);
  if (outcome.crowded)
    log::warn("{} filter {} matches more than {} events at {}: the remote "
              "serves no more of that second",
              st.label, filter, outcome.crowded->limit,
              outcome.crowded->second);
  if (outcome.next)
    open_page(self, {std::move(*outcome.next)}, filter,
              std::move(outcome.resume));
}

} // namespace

void subscribe(self_pointer self, const std::string& sub_id,
               std::vector<nostr::filter> filters, std::optional<size_t> filter,
               bool resent) {
  auto& st = self->state;
  std::string req = "[\"REQ\",";
  nostr::append_json_string(req, sub_id);
  for (const auto& f : filters) {
    req += ',';
    req += nostr::to_json(f);
  }
  req += ']';
  auto& sub = st.reqs.open[sub_id];
  auto previous = std::exchange(sub, req_subscriptions::subscription{});
  sub.filter = filter;
  sub.received.assign(filters.size(), 0);
  sub.oldest.assign(filters.size(), INT64_MAX);
  sub.sent = std::move(filters);
  if (resent) {
    // The same REQ after AUTH stays what it was: its batch at PENDING
    // BATCHES waits for this EOSE, GRASP SYNC for its answer, its paging
    // goes on where it was. Only the remote's answers start over.
    sub.tracked = previous.tracked;
    sub.driven = previous.driven;
    sub.check = std::move(previous.check);
    sub.resume = std::move(previous.resume);
  } else if (st.state == phase::catching_up) {
    sub.tracked = track_catchup_sub(self, sub_id);
  }
  sub.seq = ++st.reqs.last_seq;
  sub.held_before = held(st) - 1;
  if (repeatable(sub_id)) {
    sub.sent_at_look = st.reqs.looks;
    watch_reqs(self);
  }
  send_frame(self, std::move(req));
}

size_t subscription_room(const relay_connection_state& st) {
  auto most = most_held(st);
  if (!st.reqs.waiting.empty())
    return 0;
  if (most == 0)
    return SIZE_MAX;
  auto now = held(st);
  return most > now ? static_cast<size_t>(most - now) : 0;
}

void start_req_catchup(self_pointer self, int64_t since) {
  auto& st = self->state;
  st.catchup.since = since;
  std::vector<nostr::filter> filters;
  for (auto f : st.def.filters) {
    if (since > 0)
      f.since = std::max(f.since.value_or(0), since);
    f.limit = std::min(f.limit.value_or(st.session.page_size),
                       st.session.page_size);
    filters.push_back(std::move(f));
  }
  begin_catchup(self);
  subscribe(self, live_sub, std::move(filters), std::nullopt);
  open_deletion_tail(self, since);
}

void make_room_beside_tails(self_pointer self) {
  auto& st = self->state;
  auto kept = std::count_if(st.reqs.open.begin(), st.reqs.open.end(),
                            [](const auto& x) { return keeps_open(x.first); });
  auto most = most_held(st);
  if (most > 0 && most <= static_cast<uint64_t>(kept))
    give_up_tail(self);
}

void forget_reqs(self_pointer self) {
  auto& st = self->state;
  auto open = std::move(st.reqs.open);
  st.reqs.open.clear();
  st.reqs.waiting.clear();
  // A subscription the remote still holds would take up its room for good.
  for (const auto& [sub_id, sub] : open)
    if (!sub.eose && !keeps_open(sub_id))
      send_frame(self, "[\"CLOSE\",\"" + sub_id + "\"]");
}

bool all_reqs_answered(const relay_connection_state& st) {
  return st.reqs.waiting.empty()
         && std::all_of(st.reqs.open.begin(), st.reqs.open.end(),
                        [](const auto& entry) { return entry.second.eose; });
}

void on_req_event(self_pointer self, const std::string& sub_id,
                  nostr::event ev) {
  auto& st = self->state;
  auto i = st.reqs.open.find(sub_id);
  if (i == st.reqs.open.end())
    return;
  auto& sub = i->second;
  answered(st.reqs, sub_id, sub);
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

void on_req_eose(self_pointer self, const std::string& sub_id) {
  auto& st = self->state;
  auto i = st.reqs.open.find(sub_id);
  if (i == st.reqs.open.end() || i->second.eose)
    return;
  i->second.eose = true;
  answered(st.reqs, sub_id, i->second);
  if (i->second.driven)
    return add_barrier(self, sub_id, 0);
  if (i->second.tracked)
    close_tracked_sub(self, sub_id);
  // The remote lets go of a finished page before the next is asked for: a
  // relay at its subscription limit refuses or drops a REQ beyond it. The
  // finished page stays here, so maybe_finish_catchup sees its EOSE.
  if (!keeps_open(sub_id))
    send_frame(self, "[\"CLOSE\",\"" + sub_id + "\"]");
  // The live tail's first page after a paging that closed it is all that
  // catch-up reads: a page of older history would close it again, and the
  // next first page would cover the same window, without end. Full, or of
  // several filters (whose answer proves no one filter's window, see
  // page_if_capped), it may not reach back to the catch-up's `since`: what
  // the store failed to take there is not fetched again, so it stays to be
  // (maybe_finish_catchup).
  if (st.reqs.reopening && sub_id == live_sub) {
    const auto& sub = i->second;
    if (full(sub) || sub.sent.size() > 1)
      st.catchup.partial = true;
    if (full(sub))
      log::warn("{} the live tail's first page after the paging was full: an "
                "event the remote took meanwhile dated before that page is "
                "not asked for",
                st.label);
  } else {
    page_if_capped(self, i->second);
  }
  open_waiting_pages(self);
  maybe_finish_catchup(self);
  settle_deletion_cursor(self);
}

void on_req_closed(self_pointer self, const std::string& sub_id,
                   const std::string& reason) {
  auto& st = self->state;
  auto i = st.reqs.open.find(sub_id);
  if (i == st.reqs.open.end())
    return;
  if (reason.rfind("auth-required:", 0) == 0
      && st.def.auth != auth_mode::never && !st.session.challenge.empty()) {
    st.session.waiting_for_auth.push_back(sub_id);
    return authenticate(self);
  }
  if (i->second.driven) {
    st.reqs.open.erase(i);
    return tell_listener(self, atom::closed_v, st.def.url, sub_id, reason);
  }
  // A page or history refused for the number of subscriptions open waits
  // until one of ours ends, and from then on the remote is asked to hold no
  // more than it held when that one came. A page refused while nothing
  // else of ours can end takes the deletion tail's place, or the live
  // tail's while the catch-up pages (make_room_for_page). Otherwise asking
  // again would be refused again.
  if (repeatable(sub_id) && refuses_for_subscriptions(reason)
      && (ending(st, sub_id) > 0
          || (is_page(sub_id)
              && (st.reqs.open.count(deletion_tail_sub) > 0
                  || st.reqs.open.count(live_sub) > 0)))) {
    ++st.reqs.answers;
    learn_most_held(st.reqs, i->second);
    ask_again(self, i);
    log::warn("{} remote refused {} ({}): asked again with at most {} "
              "subscriptions open",
              st.label, sub_id, reason, st.reqs.held_most);
    return open_waiting_pages(self);
  }
  // A driven connection's own REQs are all the deletion follower's.
  if (is_deletion_sub(sub_id) || driven(st)) {
    // The sync goes on without them; the next session asks again.
    log::warn("{} remote refused the deletions of synced authors: {}",
              st.label, reason);
    auto tracked = i->second.tracked;
    st.reqs.open.erase(i);
    if (tracked)
      close_tracked_sub(self, sub_id);
    return maybe_finish_catchup(self);
  }
  if (reason.rfind("rate-limited:", 0) == 0) {
    report(self, atom::report_v, atom::ratelimit_v, st.def.id, reason);
    return fail(self, error_class::rate_limited, reason);
  }
  auto kind = reason.rfind("auth-required:", 0) == 0 ? error_class::auth
                                                      : error_class::protocol;
  fail(self, kind, "subscription closed by relay: " + reason);
}

/// Pages and histories the remote leaves unanswered: a relay that drops a
/// REQ beyond a subscription limit it does not publish, with a NOTICE (as
/// relays did before NIP-01 had CLOSED) or without a word, would otherwise
/// hold the catch-up until its batches time out. At each look, those open
/// across a whole interval are dropped when the remote answered a REQ of
/// ours sent after them but not them (once: a page asked for again may be
/// a slow one), or when none of them was answered since the previous look.
/// Those are closed and asked for again, with no more subscriptions open
/// than the remote held when they came. A page left unanswered alone, while
/// nothing else of ours can end, takes the deletion tail's place if it is
/// open, else the live tail's (make_room_for_page); without either it is
/// waited for: it may be a slow remote's answer, and the catch-up's batch
/// timeout bounds it.
void on_req_quiet_look(self_pointer self, uint64_t gen) {
  auto& st = self->state;
  if (gen != st.generation)
    return;
  auto& reqs = st.reqs;
  reqs.look_gen = 0;
  std::vector<std::string> open;
  for (const auto& [sub_id, sub] : reqs.open)
    if (repeatable(sub_id) && !sub.eose)
      open.push_back(sub_id);
  if (open.empty())
    return;
  // While we do not read, the remote's answers wait in the socket.
  if (st.ingest.reading_paused)
    return watch_reqs(self);
  const bool answered = reqs.answers != reqs.answers_at_look;
  const auto previous_look = reqs.looks++;
  reqs.answers_at_look = reqs.answers;
  std::vector<std::string> passed_over;
  bool recent = false;
  for (const auto& id : open) {
    const auto& sub = reqs.open[id];
    if (sub.sent_at_look >= previous_look)
      recent = true;
    else if (!sub.answered && !sub.again && sub.seq < reqs.answered_seq)
      passed_over.push_back(id);
  }
  auto dropped = passed_over;
  if (dropped.empty() && !answered && !recent) {
    if (open.size() == 1 && ending(st, open.front()) == 0
        && (!is_page(open.front())
            || (reqs.open.count(deletion_tail_sub) == 0
                && reqs.open.count(live_sub) == 0))) {
      if (!std::exchange(reqs.open[open.front()].quiet_logged, true))
        log::warn("{} {} has had no answer for {}: still waiting", st.label,
                  open.front(), net::duration_text(quiet_interval));
      return watch_reqs(self);
    }
    dropped = open;
  }
  if (dropped.empty())
    return watch_reqs(self);
  // Pages asked for again before the pages waiting already.
  for (auto id = dropped.rbegin(); id != dropped.rend(); ++id) {
    send_frame(self, "[\"CLOSE\",\"" + *id + "\"]");
    auto i = reqs.open.find(*id);
    learn_most_held(reqs, i->second);
    ask_again(self, i);
  }
  log::warn("{} {} subscriptions had no answer for {}{}: asked again with "
            "fewer open at once",
            st.label, dropped.size(), net::duration_text(quiet_interval),
            passed_over.empty() ? "" : " while later ones were answered");
  open_waiting_pages(self);
  watch_reqs(self);
}

void resubscribe_after_auth(self_pointer self) {
  auto& st = self->state;
  auto waiting = std::move(st.session.waiting_for_auth);
  st.session.waiting_for_auth.clear();
  for (auto& sub_id : waiting) {
    auto i = st.reqs.open.find(sub_id);
    if (i == st.reqs.open.end())
      continue;
    subscribe(self, sub_id, i->second.sent, i->second.filter, true);
  }
}

} // namespace ferry::relay_conn
