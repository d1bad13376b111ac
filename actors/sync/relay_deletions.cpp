#include "actors/sync/relay_deletions.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/relay_connection_context.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "store/sync_store.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace ferry::relay_conn {

namespace {

constexpr uint32_t deletion_kind = 5;

/// Authors per filter: relays cap list sizes (ours at 1000) and frame sizes.
constexpr size_t authors_per_filter = 250;

/// Above this many authors the tail asks for every deletion and keeps those
/// of followed authors: a REQ naming them all would outgrow a relay's frame
/// limit.
constexpr size_t tail_authors_max = 4 * authors_per_filter;

/// Followed authors per server: memory stays bounded whatever a remote
/// sends (a set entry is ~100 bytes).
constexpr size_t authors_max = 100000;

/// History subscriptions open at once: a relay caps subscriptions per
/// connection (strfry: 20), and pages of the catch-up need some.
constexpr size_t histories_max = 2;

/// New authors' history is asked for in batches: a catch-up learns many at
/// once.
constexpr auto flush_interval = std::chrono::seconds{1};

/// An open tail is replaced at most this often: each time the remote runs it
/// again, and a busy remote brings new authors all the time. Its replacement
/// starts where it began to miss authors, so nothing falls in between.
constexpr int64_t tail_refresh_seconds = 30;

constexpr const char* history_prefix = "ferry-deletions-";

nostr::filter deletions_of(std::vector<nostr::bytes32> authors,
                           std::optional<int64_t> since) {
  nostr::filter f;
  f.kinds = std::vector<uint32_t>{deletion_kind};
  if (!authors.empty()) {
    std::sort(authors.begin(), authors.end());
    authors.erase(std::unique(authors.begin(), authors.end()), authors.end());
    f.authors = std::move(authors);
  }
  f.since = since;
  return f;
}

/// The tail's filters: every followed author's deletions since `since`.
std::vector<nostr::filter> tail_filters(const relay_deletions& dels,
                                        int64_t since) {
  auto floor = since > 0 ? std::optional<int64_t>{since} : std::nullopt;
  if (dels.authors.size() > tail_authors_max)
    return {deletions_of({}, floor)};
  std::vector<nostr::filter> filters;
  std::vector<nostr::bytes32> chunk;
  for (const auto& author : dels.authors) {
    chunk.push_back(author);
    if (chunk.size() == authors_per_filter)
      filters.push_back(deletions_of(std::exchange(chunk, {}), floor));
  }
  if (!chunk.empty())
    filters.push_back(deletions_of(std::move(chunk), floor));
  return filters;
}

size_t open_histories(const relay_connection_state& st) {
  return static_cast<size_t>(
    std::count_if(st.reqs.open.begin(), st.reqs.open.end(), [](const auto& x) {
      return x.first.rfind(history_prefix, 0) == 0 && !x.second.eose;
    }));
}

bool session_up(const relay_connection_state& st) {
  return st.session.conn
         && (st.state == phase::catching_up || st.state == phase::live);
}

/// (Re)opens the tail. Driven, it is the cursor's next target unless an
/// older one is still pending (that one is valid too, and comes first).
void open_tail(self_pointer self, int64_t since) {
  auto& st = self->state;
  auto& dels = st.deletions;
  dels.tail_opened = unix_now();
  if (driven(st) && dels.cursor_target == 0)
    dels.cursor_target = dels.tail_opened;
  subscribe(self, deletion_tail_sub, tail_filters(dels, since), std::nullopt);
}

void schedule_flush(self_pointer self) {
  auto& dels = self->state.deletions;
  if (dels.flush_scheduled)
    return;
  dels.flush_scheduled = true;
  self->delayed_send(self, flush_interval, atom::deletions_v,
                     self->state.generation);
}

} // namespace

bool follows_deletions(const sync_server& def) {
  if (!def.follow_deletions || !syncs_down(def))
    return false;
  return std::any_of(def.filters.begin(), def.filters.end(), [](const auto& f) {
    auto kinds_cover = !f.kinds
                       || std::binary_search(f.kinds->begin(), f.kinds->end(),
                                             deletion_kind);
    return !kinds_cover || !f.tags.empty() || f.ids;
  });
}

void load_deletion_authors(self_pointer self) {
  auto& st = self->state;
  st.deletions.active = driven(st) ? st.def.follow_deletions
                                    : follows_deletions(st.def);
  if (!st.deletions.active)
    return;
  auto authors = store::list_sync_authors(*st.deps.store, st.def.id);
  if (!authors) {
    // Without them only the tail of this session's authors is followed.
    log::warn("{} cannot read the authors whose deletions it follows: {}",
              st.label, render(authors.error()));
    return;
  }
  st.deletions.authors.insert(authors->begin(), authors->end());
}

bool is_followed_deletion(const relay_connection_state& st,
                          const nostr::event& ev) {
  return st.deletions.active && ev.kind == deletion_kind
         && st.deletions.authors.count(ev.pubkey) > 0;
}

void learn_author(self_pointer self, uint32_t kind,
                  const nostr::bytes32& pubkey) {
  auto& st = self->state;
  auto& dels = st.deletions;
  if (!dels.active || kind == deletion_kind || dels.authors.count(pubkey))
    return;
  if (dels.authors.size() >= authors_max) {
    if (!std::exchange(dels.at_most_logged, true))
      log::warn("{} follows the deletions of {} authors, its most: later "
                "authors' deletions come only if the filters ask for them",
                st.label, authors_max);
    return;
  }
  dels.authors.insert(pubkey);
  if (auto err = store::put_sync_author(*st.deps.store, st.def.id, pubkey))
    log::warn("{} cannot persist a followed author: {}", st.label,
              render(err));
  dels.unannounced.push_back(pubkey);
  if (dels.tail_stale_since == 0)
    dels.tail_stale_since = unix_now();
  schedule_flush(self);
}

void open_deletion_tail(self_pointer self, int64_t since) {
  auto& st = self->state;
  auto& dels = st.deletions;
  if (!dels.active)
    return;
  dels.tail_stale_since = 0;
  dels.tail_opened = unix_now();
  dels.tail_given_up = false;
  dels.flush_scheduled = false; // a timer of an ended session is ignored
  dels.cursor_target = 0;
  // A remote that holds no more subscriptions of ours than the live tail
  // (its NIP-11 max_subscriptions, or what it was found to hold) would drop
  // or refuse the tail, and the catch-up would wait for it for good.
  if (!dels.authors.empty() && subscription_room(st) == 0) {
    dels.tail_given_up = true;
    log::warn("{} remote holds no subscription of ours beside the live tail: "
              "deletions of synced authors are not followed this session",
              st.label);
  } else if (!dels.authors.empty()) {
    open_tail(self, since);
  }
  if (!dels.unannounced.empty())
    schedule_flush(self);
}

void open_driven_deletion_tail(self_pointer self) {
  auto& st = self->state;
  if (!st.deletions.active)
    return;
  int64_t since = 0;
  if (auto c = store::get_sync_cursor(*st.deps.store, st.def.id); c && *c)
    since = std::max<int64_t>(0, (*c)->created_at
                                   - st.def.overlap_window_seconds);
  open_deletion_tail(self, since);
}

void settle_deletion_cursor(self_pointer self) {
  auto& st = self->state;
  auto& dels = st.deletions;
  if (!dels.active || !driven(st) || dels.cursor_target == 0
      || !dels.unannounced.empty())
    return;
  // The driven connection's other REQs are GRASP SYNC's.
  for (const auto& [id, sub] : st.reqs.open)
    if (!sub.driven && !sub.eose)
      return;
  add_cursor_barrier(self, std::exchange(dels.cursor_target, 0));
}

void flush_deletion_authors(self_pointer self, uint64_t gen) {
  auto& st = self->state;
  auto& dels = st.deletions;
  if (gen != st.generation)
    return; // a timer of an ended session; this one's tail names everyone
  dels.flush_scheduled = false;
  if (!session_up(st))
    return;
  // History of the new authors, a filter's worth per subscription, within
  // what the remote holds (pages first: the cursor waits for them).
  auto room = std::min(histories_max - std::min(histories_max, open_histories(st)),
                       subscription_room(st));
  for (; room > 0 && !dels.unannounced.empty(); --room) {
    auto take = std::min(authors_per_filter, dels.unannounced.size());
    std::vector<nostr::bytes32> batch(dels.unannounced.begin(),
                                      dels.unannounced.begin() + take);
    dels.unannounced.erase(dels.unannounced.begin(),
                           dels.unannounced.begin() + take);
    subscribe(self, history_prefix + std::to_string(dels.next_history++),
              {deletions_of(std::move(batch), std::nullopt)}, std::nullopt);
  }
  // The tail again, naming them too. A REQ with the same id replaces the
  // remote's subscription (NIP-01). While catching up the tail is a tracked
  // batch, so it is replaced only once live.
  auto now = unix_now();
  auto tail = st.reqs.open.find(deletion_tail_sub);
  auto tail_open = tail != st.reqs.open.end();
  // A tail still sending what it found is not replaced: the remote would
  // drop the rest (a driven connection is live from its start).
  auto tail_answered = !tail_open || tail->second.eose;
  // A tail not open yet waits for room among the remote's subscriptions,
  // as histories do; a replaced one takes no more room.
  if (dels.tail_stale_since > 0 && st.state == phase::live && tail_answered
      && (tail_open ? now - dels.tail_opened >= tail_refresh_seconds
                    : !dels.tail_given_up && subscription_room(st) > 0)) {
    auto since = dels.tail_stale_since - st.def.overlap_window_seconds;
    dels.tail_stale_since = 0;
    open_tail(self, since);
  }
  if (!dels.unannounced.empty() || dels.tail_stale_since > 0)
    schedule_flush(self);
}

bool is_deletion_sub(const std::string& sub_id) {
  return sub_id == deletion_tail_sub || is_deletion_history(sub_id);
}

bool give_up_tail(self_pointer self) {
  auto& st = self->state;
  auto tail = st.reqs.open.find(deletion_tail_sub);
  if (tail == st.reqs.open.end())
    return false;
  log::warn("{} remote holds too few subscriptions for the deletion tail "
            "beside the catch-up's REQs: the tail stays closed until the next "
            "catch-up",
            st.label);
  st.deletions.tail_given_up = true;
  auto tracked = tail->second.tracked;
  st.reqs.open.erase(tail);
  if (tracked)
    close_tracked_sub(self, deletion_tail_sub);
  send_frame(self, std::string{"[\"CLOSE\",\""} + deletion_tail_sub + "\"]");
  return true;
}

bool is_deletion_history(const std::string& sub_id) {
  return sub_id.rfind(history_prefix, 0) == 0;
}

void history_again(self_pointer self, const std::string& sub_id) {
  auto& st = self->state;
  auto i = st.reqs.open.find(sub_id);
  if (i == st.reqs.open.end())
    return;
  if (i->second.tracked)
    close_tracked_sub(self, sub_id);
  auto& unannounced = st.deletions.unannounced;
  for (const auto& f : i->second.sent)
    if (f.authors)
      unannounced.insert(unannounced.begin(), f.authors->begin(), f.authors->end());
  st.reqs.open.erase(i);
  schedule_flush(self);
}

bool keeps_open(const std::string& sub_id) {
  return sub_id == live_sub || sub_id == deletion_tail_sub;
}

} // namespace ferry::relay_conn
