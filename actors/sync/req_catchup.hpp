#pragma once

// The RELAY CONNECTION's REQ subscriptions on the remote: the live one
// (whose first answer is the newest page of a REQ catch-up of one filter)
// and the pages of older history, one filter each, asked for with `until`
// until a page comes back empty.
// Driven (GRASP) and NIP-77 connections open their REQs here too. Internal
// to actors/sync/relay_*.

#include "actors/sync/relay_connection_self.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// The REQ part of a RELAY CONNECTION's state.
struct req_subscriptions {
  /// One REQ we have open on the remote: the live one, or a page of history.
  struct subscription {
    /// Index of the filter a page covers; the live subscription covers all.
    std::optional<size_t> filter;
    /// The filters as sent (with since / until / limit).
    std::vector<nostr::filter> sent;
    /// Per sent filter: events received and the oldest created_at seen
    /// (what a page of one filter goes on from; see page_if_capped).
    std::vector<uint64_t> received;
    std::vector<int64_t> oldest;
    bool eose = false;
    /// Part of the catch-up, tracked at PENDING BATCHES.
    bool tracked = false;
    /// Asked for by GRASP SYNC; `check` is what a received event must match
    /// (the filters without since / until / limit).
    bool driven = false;
    std::vector<nostr::filter> check;
    /// A page of one crowded second: the page to go on with below it.
    std::optional<nostr::filter> resume;
    /// Its place in the order our REQs were sent, and whether the remote
    /// answered it (an EVENT or EOSE).
    uint64_t seq = 0;
    bool answered = false;
    /// Our other subscriptions the remote held when this one was sent: a
    /// remote that refuses or drops it holds no more than these.
    uint64_t held_before = 0;
    /// Pages and deletion histories: `looks` when it was sent, and whether
    /// it was logged as quiet while alone.
    uint64_t sent_at_look = 0;
    bool quiet_logged = false;
    /// A page asked for again: not taken for dropped a second time only
    /// because later REQs were answered first (a slow answer, then).
    bool again = false;
  };

  /// A page of history waiting for room among the remote's subscriptions.
  struct waiting_page {
    std::vector<nostr::filter> sent;
    size_t filter = 0;
    std::optional<nostr::filter> resume;
    bool again = false;
  };

  std::map<std::string, subscription> open;
  /// Pages waiting for room, the first asked for first.
  std::deque<waiting_page> waiting;
  uint64_t next_page = 1;
  /// The most subscriptions the remote was found to hold this session (0:
  /// not found yet): it refused, or left unanswered, pages or histories
  /// beyond them.
  uint64_t held_most = 0;
  /// Answers (EVENT, EOSE, CLOSED) on pages and deletion histories, and
  /// their number at the last quiet look, of which there were `looks`.
  uint64_t answers = 0;
  uint64_t answers_at_look = 0;
  uint64_t looks = 0;
  /// The last `seq` given, and the highest the remote answered.
  uint64_t last_seq = 0;
  uint64_t answered_seq = 0;
  /// The generation a quiet look is on its way for (0: none).
  uint64_t look_gen = 0;
  /// Pages and deletion histories asked for again after the remote refused
  /// or dropped them (stats).
  uint64_t asked_again = 0;
  /// The live tail closed to make room for a page (the remote holds no more
  /// than one subscription of ours): a catch-up from this one's end opens it
  /// again (see make_room_for_page).
  bool live_yielded = false;
  /// This catch-up opens the live tail again after one that closed it: its
  /// first page is all it reads (a page of older history would close the
  /// live tail once more, and so on without end).
  bool reopening = false;

  /// Forgets everything of a session that ended, but the counters.
  void end_session() {
    open.clear();
    waiting.clear();
    held_most = 0;
    look_gen = 0;
    live_yielded = false;
    reopening = false;
  }
};

namespace relay_conn {

/// The live subscription's id; pages get their own.
inline constexpr const char* live_sub = "ferry-live";

/// Sends REQ `sub_id` for `filters` and remembers it; during a catch-up it
/// is tracked as a batch. `resent`: the same REQ again after AUTH, which
/// keeps its tracking, GRASP role and paging.
void subscribe(self_pointer self, const std::string& sub_id,
               std::vector<nostr::filter> filters, std::optional<size_t> filter,
               bool resent = false);

/// Starts a REQ catch-up from `since` (0: everything) on the live
/// subscription.
void start_req_catchup(self_pointer self, int64_t since);

/// A remote found to hold no more subscriptions than we keep open (the
/// live and deletion tails) has no room for a page or a fetch by ids: the
/// deletion tail gives up its place (see give_up_tail).
void make_room_beside_tails(self_pointer self);

/// A catch-up starts over on the same session (sync-now): our REQs still
/// open on the remote are closed, but the live and deletion tails, which
/// the catch-up sends again under the same ids, replacing them.
void forget_reqs(self_pointer self);

/// Every open REQ had its EOSE.
bool all_reqs_answered(const relay_connection_state& st);

/// An EVENT for one of our REQs.
void on_req_event(self_pointer self, const std::string& sub_id, nostr::event ev);

/// The remote's EOSE for one of our REQs: the next page, if any.
void on_req_eose(self_pointer self, const std::string& sub_id);

/// The remote's CLOSED for one of our REQs.
void on_req_closed(self_pointer self, const std::string& sub_id,
                   const std::string& reason);

/// How many more subscriptions the remote holds for us now, as far as we
/// know (SIZE_MAX: no limit known); 0 while pages wait for room, which come
/// first.
size_t subscription_room(const relay_connection_state& st);

/// Looks whether the pages and deletion histories open were answered since
/// the last look (generation).
void on_req_quiet_look(self_pointer self, uint64_t gen);

/// AUTH succeeded: sends again the REQs refused with auth-required:.
void resubscribe_after_auth(self_pointer self);

} // namespace relay_conn

} // namespace ferry
