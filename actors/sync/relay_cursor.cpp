#include "actors/sync/relay_cursor.hpp"

#include "actors/sync/relay_connection_context.hpp"
#include "messages/clock.hpp"

#include <algorithm>

namespace ferry::relay_conn {

namespace {

/// Hands the writer a new cursor; it commits it with its next batch, after
/// the events the cursor covers.
void hand_to_writer(self_pointer self, int64_t to) {
  auto& st = self->state;
  to = std::min(to, unix_now());
  if (st.cursor.unstored_since != INT64_MAX)
    to = std::min(to, st.cursor.unstored_since - 1);
  if (to <= st.cursor.cursor_sent)
    return;
  if (auto writer = st.deps.writer->get()) {
    st.cursor.cursor_sent = to;
    self->send(writer, atom::cursor_v, st.def.id, to, st.era);
  }
}

/// Reports, in order, the barriers whose events are all answered.
void release_barriers(self_pointer self) {
  auto& st = self->state;
  auto& cursor = st.cursor;
  auto oldest_unanswered = cursor.oldest_unanswered();
  auto i = cursor.barriers.begin();
  bool eose_reported = false;
  for (; i != cursor.barriers.end() && i->before <= oldest_unanswered; ++i) {
    if (i->cursor > 0) {
      hand_to_writer(self, i->cursor);
    } else if (i->sub.empty()) {
      tell_listener(self, atom::done_v, st.def.url, i->serial);
    } else {
      tell_listener(self, atom::eose_v, st.def.url, i->sub);
      eose_reported = true;
    }
  }
  cursor.barriers.erase(cursor.barriers.begin(), i);
  if (eose_reported)
    on_driven_eose_stored(self);
}

} // namespace

uint64_t number_ingest(self_pointer self) {
  auto& cursor = self->state.cursor;
  cursor.unanswered.emplace_back(std::nullopt);
  return cursor.next_ingest++;
}

void settle_ingest(self_pointer self, uint64_t seq, int64_t covers) {
  auto& cursor = self->state.cursor;
  // An answer for a number already folded in (or never handed out) has
  // nothing left to record.
  const auto oldest = cursor.oldest_unanswered();
  if (seq >= oldest && seq < cursor.next_ingest)
    cursor.unanswered[seq - oldest] = covers;
  while (!cursor.unanswered.empty() && cursor.unanswered.front()) {
    cursor.stored_through = std::max(cursor.stored_through,
                                     *cursor.unanswered.front());
    cursor.unanswered.pop_front();
  }
  release_barriers(self);
}

/// Hands the writer a new down cursor.
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
  // A driven connection's progress lives in GRASP SYNC's records; its
  // cursor is its deletion follower's (add_cursor_barrier).
  if (driven(st))
    return;
  hand_to_writer(self, to);
}

void note_unstored(self_pointer self, int64_t created_at) {
  auto& st = self->state;
  st.cursor.unstored_since = std::min(st.cursor.unstored_since, created_at);
  if (st.state == phase::catching_up)
    st.cursor.unstored_in_catchup = true;
}

/// Driven: an EOSE (`sub`) or a flush (`serial`) is reported only once every
/// event received before it is stored, so GRASP SYNC never confirms (nor
/// moves `last_connected` over) an event still in the verifiers. An event
/// the store failed to take ends the connection first (on_store_failure),
/// so no barrier behind it is ever reported.
void add_barrier(self_pointer self, std::string sub, uint64_t serial) {
  auto& cursor = self->state.cursor;
  cursor.barriers.push_back({cursor.next_ingest, std::move(sub), serial});
  release_barriers(self);
}

void add_cursor_barrier(self_pointer self, int64_t to) {
  auto& cursor = self->state.cursor;
  cursor.barriers.push_back({cursor.next_ingest, {}, 0, to});
  release_barriers(self);
}

} // namespace ferry::relay_conn
