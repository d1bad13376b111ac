#pragma once

#include "actors/sync/fetch_claims.hpp"
#include "messages/nostr/filter.hpp"
#include "messages/nostr/flat_id_set.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/id_hash.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace ferry {

/// Whether a relay's CLOSED `reason` refuses a REQ for the number of
/// subscriptions open rather than for what it asks: its words vary
/// ("blocked: too many open subscriptions", "error: too many concurrent
/// REQs", "max subscriptions reached").
bool refuses_for_subscriptions(std::string_view reason);

/// Fetches events by id from one relay: REQs of at most `batch_size` ids, at
/// most `max_requests` of them open at once (what negentropy's "need" list
/// turns into). Not an actor and no I/O: the owner sends the frames it
/// returns and feeds in the relay's EVENT, EOSE and CLOSED answers for the
/// subscriptions it `owns`. Used by `ferry sync`; a relay connection in
/// negentropy mode can own one the same way (the owner bounds the events
/// still in its ingest pipeline by calling `fill` only when it has room).
class id_fetcher {
public:
  struct options {
    /// Ids per REQ (one filter `{"ids":[...],"limit":n}`).
    size_t batch_size = 500;
    /// REQs open at once.
    size_t max_requests = 4;
    /// Subscription ids are this prefix and a counter.
    std::string sub_prefix = "fetch-";
    /// When set, each REQ holds one filter per entry: the batch's ids with
    /// that filter's conditions, so a relay that lets us read only within
    /// these filters (a federation peer's collections) serves the ids.
    std::vector<nostr::filter> within;
    /// Shared with the node's other fetchers: an id another one is asking
    /// for right now is left to it, and looked at again (is it `held`
    /// now? else it is fetched here) once nothing else is left to do; an
    /// id `held` by the time its REQ is made is not asked for.
    std::shared_ptr<fetch_claims> claims;
    /// Whether an event is stored (with `claims`).
    std::function<bool(const nostr::bytes32&)> held;
    /// How long an id is left to another fetcher before this one asks for
    /// it too: a remote that never answers a REQ must not hold up the
    /// catch-ups of other connections.
    std::chrono::steady_clock::duration patience = std::chrono::seconds{30};
  };

  explicit id_fetcher(options opts);
  /// Gives back the claims of the REQs still open.
  ~id_fetcher();
  id_fetcher(const id_fetcher&) = delete;
  id_fetcher& operator=(const id_fetcher&) = delete;

  /// Queues ids to fetch; ids already queued, open or delivered are ignored
  /// (since the last `forget_known`).
  void add(const std::vector<nostr::bytes32>& ids);

  /// Forgets which ids were added, so that the set stays bounded over a
  /// long fetch; call it when none is queued. An id added again later is
  /// asked for again unless `held` (stored) by then.
  void forget_known() {
    known_ = nostr::flat_id_set{};
  }

  /// Ids added since the last `forget_known`.
  size_t known() const {
    return known_.size();
  }

  /// REQ frames for as many queued ids as the open-REQ window allows.
  std::vector<std::string> fill();

  /// True when `sub_id` is one of this fetcher's subscriptions.
  bool owns(std::string_view sub_id) const;

  /// An EVENT on subscription `sub_id` with id `id`.
  /// @returns true when that id was asked for there and not delivered yet:
  ///          the owner ingests it. False for anything else (counted in
  ///          `unexpected`): a relay that ignores the ids filter or repeats.
  bool on_event(std::string_view sub_id, const nostr::bytes32& id);

  /// The owner is done with a delivered event (stored, refused or failed):
  /// its claim is given back. Until then other fetchers leave the id alone
  /// (the event may still be on its way to the store).
  void settled(const nostr::bytes32& id);

  /// EOSE on `sub_id`: the REQ is over.
  /// Ids it did not deliver are asked for once more when it delivered
  /// something (a relay capping results below the ids asked for), otherwise
  /// given up (counted in `missing`).
  /// @returns the CLOSE frame to send, or "" when `sub_id` is not open.
  std::string on_eose(std::string_view sub_id);

  /// What a CLOSED on one of our REQs leads to. A refused REQ never gives
  /// its ids up silently: a catch-up that took a refusal for "fetched"
  /// would move its cursor past events it never stored.
  enum class closed_outcome {
    /// `sub_id` is not one of our open REQs.
    not_ours,
    /// Its undelivered ids are asked for again in two REQs of half as many
    /// (a relay caps the ids of a filter, or refuses one event of many).
    /// Until a REQ as large has been answered, later REQs are that small
    /// too; one refused event among many does not shrink them.
    /// Closed for the number of subscriptions open ("too many open
    /// subscriptions", "too many concurrent REQs"): its ids are asked for
    /// again as they were, with no more REQs open at once than the relay
    /// still holds. A REQ of one id refused while other REQs of ours were
    /// open: asked for again once none is (the relay may have counted
    /// them).
    retrying,
    /// A REQ of one id, the only one of ours open, refused with
    /// "blocked:", "restricted:" or "invalid:": the relay will not serve
    /// that event. Given up, counted in `refused`.
    refused,
    /// "rate-limited:", "auth-required:", a REQ of one id closed for
    /// another reason ("error:"), or one closed for the number of
    /// subscriptions while no other REQ of ours was open: nothing is given
    /// up, its ids are queued again, and the owner stops and tries later
    /// (after a cooldown, after authenticating, once the relay's error has
    /// passed).
    stop,
  };

  /// CLOSED on `sub_id`, with the relay's message (`closed_reason` keeps
  /// it).
  closed_outcome on_closed(std::string_view sub_id, std::string_view reason);

  /// What a look for REQs the relay leaves unanswered found.
  struct quiet_look {
    enum class outcome {
      /// REQs were answered since the last look, or none is open.
      answered,
      /// The REQs open were all quiet: each is closed (`close` holds the
      /// frames) and its ids asked for again, with fewer REQs open at once
      /// from now on (the relay holds fewer subscriptions than we opened).
      retrying,
      /// One REQ open at a time was quiet too: the relay is stuck. Nothing
      /// is given up (the ids stay queued); the owner ends the connection.
      stop,
    } what = outcome::answered;
    std::vector<std::string> close;
  };

  /// The owner looks at regular intervals while REQs are open. Quiet: no
  /// EVENT, EOSE or CLOSED on any of our REQs since the previous look, and
  /// every REQ open now was open then. A relay that drops a REQ beyond its
  /// subscription limit with a NOTICE (as relays did before NIP-01 had
  /// CLOSED), or none, would otherwise hold the fetch, and the catch-up
  /// with it, for ever.
  quiet_look look_for_quiet();

  /// Nothing queued, no REQ open and no id left to another fetcher.
  bool done() const {
    return queue_.empty() && retry_.empty() && alone_.empty() && open_.empty()
           && deferred_.empty();
  }

  /// All that is left are ids other fetchers were asking for: the owner
  /// calls `fill` again after a while (nothing else will wake it).
  bool waiting_for_others() const {
    return queue_.empty() && retry_.empty() && alone_.empty() && open_.empty()
           && !deferred_.empty();
  }

  /// REQs open.
  size_t open_requests() const {
    return open_.size();
  }

  /// Ids queued and not yet asked for.
  size_t queued() const {
    size_t n = queue_.size() + alone_.size();
    for (const auto& group : retry_)
      n += group.size();
    return n;
  }

  /// Ids per REQ from now on: `batch_size`, or less after refusals.
  size_t batch_size() const {
    return batch_size_;
  }

  /// REQs open at once from now on: `max_requests`, or less after REQs the
  /// relay left unanswered.
  size_t max_requests() const {
    return max_requests_;
  }

  /// The message of the last CLOSED on one of our REQs ("" for none).
  const std::string& closed_reason() const {
    return closed_reason_;
  }

  // Counters.
  /// Ids added (distinct).
  uint64_t wanted = 0;
  /// Events handed to the owner (`on_event` returned true).
  uint64_t delivered = 0;
  /// Ids given up: the relay answered their REQ without them.
  uint64_t missing = 0;
  /// Ids given up: the relay refused a REQ of that id alone.
  uint64_t refused = 0;
  /// EVENTs on our subscriptions that were not asked for or came twice.
  uint64_t unexpected = 0;
  /// REQs sent.
  uint64_t requests = 0;
  /// REQs closed and asked for again because the relay left them
  /// unanswered.
  uint64_t unanswered = 0;
  /// Ids stored by another fetcher (or path) before this one asked for
  /// them: not downloaded here.
  uint64_t fetched_elsewhere = 0;

private:
  /// Hashed, not ordered: a catch-up passes every id it fetches through
  /// these sets five times, and as red-black trees each step compared 32
  /// bytes per tree level (the five steps for 78k ids in a loop: 1.6 us per
  /// id as std::set, 0.45 us hashed). The hash is seeded: the ids are a
  /// remote's choice.
  using id_set = std::unordered_set<nostr::bytes32, nostr::id_hash>;

  struct request {
    id_set pending;
    /// Ids asked for.
    size_t size = 0;
    size_t delivered = 0;
    /// `looks_` when it was sent.
    uint64_t sent_at_look = 0;
  };

  /// Whether `id`, due now, is asked for here: not when it is stored
  /// already or another fetcher claims it (it is then deferred).
  bool take(const nostr::bytes32& id);
  /// The REQ frame for `batch`, which is then open.
  std::string request_for(const std::vector<nostr::bytes32>& batch);

  /// Ids left to other fetchers: those now held are done, those still
  /// claimed stay (for at most `patience`), the rest are queued to be
  /// fetched here.
  void look_again_at_deferred();
  void release(const id_set& ids);

  options opts_;
  std::deque<nostr::bytes32> queue_;
  /// Ids of refused REQs, each group asked for in a REQ of its own before
  /// anything queued.
  std::deque<std::vector<nostr::bytes32>> retry_;
  /// Ids refused alone in a REQ while other REQs of ours were open: each
  /// asked for again in a REQ open alone (`alone_sub_`), once nothing else
  /// is left, so a relay refusing for the number of subscriptions is never
  /// taken for one refusing the event.
  std::deque<nostr::bytes32> alone_;
  std::string alone_sub_;
  /// Ids per REQ for `queue_`.
  size_t batch_size_ = 0;
  /// REQs open at once.
  size_t max_requests_ = 0;
  /// Answers (EVENT, EOSE, CLOSED) on our REQs, and their number at the
  /// last `look_for_quiet`, which there were `looks_` of.
  uint64_t answers_ = 0;
  uint64_t answers_at_look_ = 0;
  uint64_t looks_ = 0;
  /// The most ids a REQ held that the relay answered with EOSE.
  size_t largest_answered_ = 0;
  /// Every id ever added, so the same id is never fetched twice.
  nostr::flat_id_set known_;
  std::map<std::string, request, std::less<>> open_;
  /// Ids another fetcher claimed when they were due here, and since when.
  std::vector<std::pair<nostr::bytes32, std::chrono::steady_clock::time_point>> deferred_;
  /// Deferred ids waited for longer than `patience`: asked for here even
  /// though another fetcher still claims them.
  id_set overdue_;
  /// Delivered ids the owner has not settled: still claimed.
  id_set unsettled_;
  /// This fetcher's identity in `opts_.claims`.
  uint64_t owner_ = 0;
  uint64_t next_sub_ = 0;
  std::string closed_reason_;
};

} // namespace ferry
