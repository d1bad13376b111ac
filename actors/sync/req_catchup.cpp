#include "actors/sync/req_catchup.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/relay_connection_context.hpp"
#include "messages/nostr/wire.hpp"

#include <algorithm>
#include <utility>

namespace ferry::relay_conn {

namespace {

/// A remote that declares no max_limit is asked for at most this many
/// pages' worth of one second.
constexpr uint64_t second_pages_max = 10;

/// The limit to ask for one crowded second again with, after a page of
/// `limit` came back full of it; 0 when the remote would serve no more.
uint64_t raised_limit(const relay_session& session, uint64_t limit) {
  auto most = session.remote_max_limit > 0
                ? session.remote_max_limit
                : session.page_size * second_pages_max;
  auto raised = std::min(limit * 2, most);
  return raised > limit ? raised : 0;
}

/// Opens the next page of older history for each filter that got events:
/// a remote may cap an answer below the limit we asked for without saying so,
/// so paging ends only with an empty page. `until` is inclusive, so events
/// sharing the oldest timestamp are asked for again (they come back as
/// duplicates).
/// A page that holds nothing but its `until` second cannot be paged by
/// `until`: paging steps past that second. If the page was full, the second
/// may hold more than a page, so first that second alone is asked for again
/// (since = until = it) with a doubled limit, up to what the remote serves,
/// until an answer is not full; the page it was cut from then goes on below
/// it. A second even the largest page cannot hold is logged and stepped
/// past: REQ has no other way into it.
void page_if_capped(self_pointer self,
                    const req_subscriptions::subscription& sub) {
  auto& st = self->state;
  for (size_t i = 0; i < sub.sent.size(); ++i) {
    const auto& sent = sub.sent[i];
    auto got = sub.received[i] > 0 && sub.oldest[i] != INT64_MAX;
    // An empty page ends the paging, but a crowded second's goes on below.
    if (!got && !sub.resume)
      continue;
    auto filter = sub.filter ? *sub.filter : i;
    auto next = sub.resume ? *sub.resume : sent;
    auto until = got ? sub.oldest[i] : *sent.until;
    if (sent.until && *sent.until == until) {
      auto limit = sent.limit.value_or(0);
      if (limit > 0 && sub.received[i] >= limit) {
        if (auto raised = raised_limit(st.session, limit)) {
          auto second = sent;
          second.since = until;
          second.limit = raised;
          auto sub_id = "ferry-page-" + std::to_string(st.reqs.next_page++);
          subscribe(self, sub_id, {std::move(second)}, filter);
          st.reqs.open[sub_id].resume = std::move(next);
          continue;
        }
        log::warn("{} filter {} matches more than {} events at {}: the "
                  "remote serves no more of that second",
                  st.label, filter, limit, until);
      }
      --until;
    }
    if (next.since && until < *next.since)
      continue;
    next.until = until;
    subscribe(self, "ferry-page-" + std::to_string(st.reqs.next_page++),
              {std::move(next)}, filter);
  }
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
  send_frame(self, std::move(req));
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

bool all_reqs_answered(const relay_connection_state& st) {
  return std::all_of(st.reqs.open.begin(), st.reqs.open.end(),
                     [](const auto& entry) { return entry.second.eose; });
}

void on_req_event(self_pointer self, const std::string& sub_id,
                  nostr::event ev) {
  auto& st = self->state;
  auto i = st.reqs.open.find(sub_id);
  if (i == st.reqs.open.end())
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

void on_req_eose(self_pointer self, const std::string& sub_id) {
  auto& st = self->state;
  auto i = st.reqs.open.find(sub_id);
  if (i == st.reqs.open.end() || i->second.eose)
    return;
  i->second.eose = true;
  if (i->second.driven)
    return add_barrier(self, sub_id, 0);
  if (i->second.tracked)
    close_tracked_sub(self, sub_id);
  page_if_capped(self, i->second);
  if (!keeps_open(sub_id)) {
    send_frame(self, "[\"CLOSE\",\"" + sub_id + "\"]");
    // Keep the finished page, so maybe_finish_catchup sees its EOSE.
  }
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
