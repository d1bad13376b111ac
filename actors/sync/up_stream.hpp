#pragma once

#include "messages/nostr/filter.hpp"
#include "store/event_store.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ferry {

/// The "up" half of a RELAY CONNECTION: it reads the store's change log from
/// a persistent cursor and turns the events that match the server's filters
/// into EVENT frames, keeping at most `window` unanswered. The cursor only
/// passes an entry once the remote took it or refused it for good (or it is
/// not for the remote), so a restart resends what may not have arrived or
/// was refused for now, and skips nothing. Entries whose source is the remote itself are never sent back.
/// Not an actor: the connection owns one per connected session.
class up_stream {
public:
  /// How the remote answered one event.
  enum class answer {
    /// Not an event of ours in flight (another OK, or a late one).
    unknown,
    /// OK true.
    accepted,
    /// OK true with "duplicate:": the remote had it.
    duplicate,
    /// OK false: the remote refuses it for good (invalid, blocked, ...).
    refused,
    /// OK false with "rate-limited:": back off; it is sent again later.
    rate_limited,
    /// OK false with another refusal that may not hold next time ("error:"
    /// when the remote could not store it, a created_at too far ahead): back
    /// off; it is sent again later.
    failed,
    /// OK false with "auth-required:": send again after AUTH.
    auth_required,
  };

  /// @param own_source The ingest source of events from this remote
  ///                   ("sync:ID"); they are never sent back.
  /// @param cursor Where the last session left off.
  up_stream(const store::event_store& store, std::string own_source,
            std::vector<nostr::filter> filters, uint64_t cursor, size_t window);

  /// Reads the log after the last entry read and returns EVENT frames for
  /// matching events until `window` are unanswered or the log ends.
  std::vector<std::string> fill(int64_t now);

  /// Records the remote's OK for event `id_hex`.
  answer on_ok(const std::string& id_hex, bool ok, std::string_view message);

  /// Forgets what is in flight: the next `fill` starts after the cursor again
  /// (after a rate limit or an AUTH, or on a new connection).
  void rewind();

  /// Sends these events before the log (a reconciliation found the remote
  /// lacks them); they do not move the cursor.
  void enqueue(const std::vector<nostr::bytes32>& ids);

  /// Moves the cursor to `seq` when it is behind: a full reconciliation
  /// covered every log entry up to there. The entries it skips are covered
  /// only by the extras the remote lacks, so the cursor stays where it was
  /// until every extra is answered.
  void skip_to(uint64_t seq);

  /// Every log entry up to here is done with: answered by the remote, not
  /// for it, or (after skip_to) known to it.
  uint64_t cursor() const;

  /// Nothing unanswered and nothing left in the log (as of the last fill).
  bool drained() const {
    return in_flight_.empty() && at_end_ && extra_.empty();
  }

  size_t in_flight() const {
    return in_flight_.size();
  }

  /// Extras waiting to be sent or answered.
  size_t extras_waiting() const {
    return extra_.size() + extras_in_flight_;
  }

  /// Every extra is answered and the log was read to its end (as of the last
  /// fill): what the remote lacked from the store's log on is sent.
  bool extras_and_log_sent() const {
    return extras_waiting() == 0 && at_end_;
  }

  /// When the oldest unanswered event was sent (0: none in flight).
  int64_t oldest_sent_at() const;

  // Counters for this stream's lifetime.
  uint64_t sent = 0;
  uint64_t accepted = 0;
  uint64_t duplicate = 0;
  uint64_t refused = 0;
  /// Entries not sent because they came from the remote itself.
  uint64_t echoes_skipped = 0;

private:
  struct flight {
    uint64_t seq;
    int64_t sent_at;
  };

  const store::event_store* store_;
  std::string own_source_;
  std::vector<nostr::filter> filters_;
  size_t window_;
  /// Entries up to here are answered or skipped.
  uint64_t done_;
  /// The last entry read from the log.
  uint64_t read_;
  bool at_end_ = false;
  /// Unanswered events by id (hex) and by sequence number.
  std::unordered_map<std::string, flight> in_flight_;
  std::map<uint64_t, std::string> by_seq_;
  /// Events to send before the log; in flight with sequence number 0.
  std::deque<nostr::bytes32> extra_;
  size_t extras_in_flight_ = 0;
  /// The cursor before skip_to, in force while extras are unanswered.
  std::optional<uint64_t> held_;

  /// Drops `held_` once no extra is waiting or unanswered.
  void release_skip();

  /// Appends the EVENT frame of stored event `id` (sequence `seq`, 0 for an
  /// extra) when it is still stored, matching and unexpired.
  bool send(const nostr::bytes32& id, uint64_t seq, int64_t now,
            std::vector<std::string>& frames);
};

} // namespace ferry
