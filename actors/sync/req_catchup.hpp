#pragma once

// The RELAY CONNECTION's REQ subscriptions on the remote: the live one
// (whose first answer is the newest page of a REQ catch-up) and the pages of
// older history, asked for with `until` until a page comes back empty.
// Driven (GRASP) and NIP-77 connections open their REQs here too. Internal
// to actors/sync/relay_*.

#include "actors/sync/relay_connection_self.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"

#include <cstddef>
#include <cstdint>
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
    /// Per sent filter: events received and the oldest created_at seen.
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
  };

  std::map<std::string, subscription> open;
  uint64_t next_page = 1;
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

/// Every open REQ had its EOSE.
bool all_reqs_answered(const relay_connection_state& st);

/// An EVENT for one of our REQs.
void on_req_event(self_pointer self, const std::string& sub_id, nostr::event ev);

/// The remote's EOSE for one of our REQs: the next page, if any.
void on_req_eose(self_pointer self, const std::string& sub_id);

/// The remote's CLOSED for one of our REQs.
void on_req_closed(self_pointer self, const std::string& sub_id,
                   const std::string& reason);

/// AUTH succeeded: sends again the REQs refused with auth-required:.
void resubscribe_after_auth(self_pointer self);

} // namespace relay_conn

} // namespace ferry
