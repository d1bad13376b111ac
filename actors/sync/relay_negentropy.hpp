#pragma once

// The RELAY CONNECTION's NIP-77 catch-up: drives a neg_catchup (the pure
// reconciliation) over the socket, fetches by id what the remote has and we
// lack (id_fetcher), hands what we have and the remote lacks to the up
// stream, and falls back to a REQ catch-up against a remote without NIP-77.
// Internal to actors/sync/relay_*.

#include "actors/sync/id_fetcher.hpp"
#include "actors/sync/neg_catchup.hpp"
#include "actors/sync/relay_connection_self.hpp"
#include "messages/nostr/event.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// The NIP-77 part of a RELAY CONNECTION's state (mode negentropy).
struct relay_negentropy {
  /// The reconciliation of the running catch-up; done once every window is.
  std::optional<neg_catchup> run;
  bool done = false;
  /// `since` of the reconciliation, for a fallback to REQ.
  int64_t since = 0;
  /// Names the answer we wait for, so a late timeout is ignored.
  uint64_t serial = 0;
  /// Names the local set being read, so a stale read is ignored.
  uint64_t scan_serial = 0;
  /// A window waits for the connection's AUTH to be accepted (the remote
  /// answered NEG-OPEN with `auth-required:`).
  bool awaiting_auth = false;
  /// The remote failed at NIP-77 (why); REQ catch-ups from then on.
  std::string unsupported;
  /// The live and deletion tails open with the first NEG-OPEN (open_tails).
  bool tails_due = false;
  /// Catch-ups that paged with REQ, holding nothing to reconcile.
  uint64_t paged = 0;
  /// Totals of finished reconciliations.
  uint64_t rounds = 0;
  uint64_t have = 0;
  uint64_t need = 0;
  /// Of `need`: ids this remote sent before and we refused, not fetched
  /// again (store/refused_store.hpp).
  uint64_t need_refused = 0;
  /// Fetches what a reconciliation found missing (REQ by ids).
  std::optional<id_fetcher> fetcher;
  /// Ids the remote announced but did not deliver, over all catch-ups.
  uint64_t fetch_missing = 0;
  /// Ids the remote refused to serve (CLOSED on a REQ of that id alone),
  /// over all catch-ups.
  uint64_t fetch_refused = 0;
  /// Ids left to another connection's fetch and stored by it, over all
  /// catch-ups (not downloaded from this remote).
  uint64_t fetched_elsewhere = 0;
  /// The fetcher waits for other connections' fetches; a look is due.
  bool fetch_look_scheduled = false;
  /// A fetch was closed with "auth-required:": no REQ goes out until our
  /// AUTH is accepted (its ids wait in the fetcher).
  bool fetch_awaiting_auth = false;
  /// The generation a look for quiet fetch REQs is scheduled in (0: none).
  uint64_t quiet_look_gen = 0;
  /// Fetch REQs the remote left unanswered (asked again), over all
  /// catch-ups.
  uint64_t fetch_unanswered = 0;
  /// The next round's frames, held while the fetcher has
  /// `max_fetch_backlog` ids or more still to ask for (hold_round).
  std::vector<std::string> held_round;
  bool round_held = false;
  /// Rounds held so, over all catch-ups.
  uint64_t rounds_held = 0;
  /// Ids the remote lacks, sent once the up stream starts; at most
  /// `max_have_backlog` with those the up stream still holds.
  std::vector<nostr::bytes32> have_ids;
  /// A reconciliation found more than that: it does not move the up cursor
  /// past the log it covered, and once the up stream is drained the
  /// connection reconciles everything again, as does its next catch-up after
  /// a reconnect (keep_have). Only a reconciliation of everything clears it.
  bool have_overflow = false;
  /// Ids the remote lacks left so for a later reconciliation, and the
  /// reconciliations run again for them, over all catch-ups.
  uint64_t have_deferred = 0;
  uint64_t reconciled_again = 0;
  /// After a full reconciliation, the change log up to here is covered.
  uint64_t log_covered = 0;
};

namespace relay_conn {

/// Catch-ups reconcile with NIP-77 unless the remote proved it cannot.
bool uses_negentropy(const relay_connection_state& st);

/// A reconciliation or its fetches still run.
bool negentropy_open(const relay_connection_state& st);

/// Ends the finished reconciliation. @returns the newest created_at it
/// covered locally, or nullopt when none ran.
std::optional<int64_t> take_reconciled_through(self_pointer self);

/// A catch-up by NIP-77 reconciliation from `since` (0: everything).
void start_neg_catchup(self_pointer self, int64_t since);

/// NEG-MSG or NEG-ERR (`error`) from the remote.
void on_neg_frame(self_pointer self, bool error, const std::string& sub_id,
                  const std::string& text);

/// A NOTICE may be the remote's way of refusing NIP-77.
void on_neg_notice(self_pointer self, const std::string& text);

/// The connection authenticated: a window refused for want of it opens
/// again.
void resume_negentropy_after_auth(self_pointer self);

/// The local set a scan of `serial` read on a worker thread.
void on_neg_items(self_pointer self, uint64_t gen, uint64_t serial,
                  const item_scan_result_ptr& scan);

/// The answer named `serial` did not come in time.
void on_neg_timeout(self_pointer self, uint64_t gen, uint64_t serial);

/// Whether `sub_id` is a fetch by ids; if so the frame is handled here.
bool on_fetch_event(self_pointer self, const std::string& sub_id,
                    nostr::event& ev);
bool on_fetch_eose(self_pointer self, const std::string& sub_id);
bool on_fetch_closed(self_pointer self, const std::string& sub_id,
                     const std::string& reason);

/// Opens fetch REQs for ids a reconciliation found missing, while the
/// ingest path has room; sends a held round once all of them are asked for.
void pump_fetches(self_pointer self);

/// Sends the round held for the fetches (hold_round in the .cpp).
void release_held_round(self_pointer self);

/// The ingest path answered for event `id`: if this connection fetched it,
/// other connections may now fetch it (or find it stored).
void settle_fetched(self_pointer self, const nostr::bytes32& id);

/// The look a fetcher waiting for other connections' fetches asked for
/// (`atom::retry` with the generation it was scheduled in).
void on_fetch_look(self_pointer self, uint64_t gen);

/// Looks whether the remote answered the fetch REQs open (`atom::timeout`
/// with the generation it was scheduled in): quiet ones are asked again
/// with fewer open at once, or end the connection.
void on_fetch_quiet_look(self_pointer self, uint64_t gen);
/// Forgets the running fetch, keeping its count of missing ids.
void end_fetches(self_pointer self);

/// A reconciliation left ids the remote lacks for later (have_overflow): once
/// the up stream is drained and nothing else runs, reconcile again.
void maybe_reconcile_again(self_pointer self);

/// Forgets the running reconciliation (the session ended).
void drop_negentropy(self_pointer self);

} // namespace relay_conn

} // namespace ferry
