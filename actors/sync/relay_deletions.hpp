#pragma once

// The RELAY CONNECTION's deletion follower (NIP-09). A sync server whose
// filters leave out kind 5 would never bring the deletions of what it synced,
// so the connection follows them itself: it remembers the author of every
// event it hands to the ingest path (persisted, see store/sync_store.hpp) and
// keeps a REQ open for those authors' kind 5 events; the store then applies
// them under the usual NIP-09 rules (an author deletes only its own events).
//   - `ferry-deletions`, the tail: every known author's deletions since the
//     catch-up's start, opened with the catch-up and kept open; it is
//     tracked and paged like any catch-up REQ, so the cursor rule covers it;
//   - `ferry-deletions-N`, the history of authors learned in this session
//     (their older deletions: the remote may still hold an event it was asked
//     to delete), opened in batches, closed at its EOSE.
// A connection driven by GRASP SYNC follows the deletions of what it
// fetched for the repositories too (its REQs name repositories and roots, so
// a deletion of a reply, a status or a comment would never match them).
// With no catch-up to ride on, it keeps its own cursor under its id: every
// followed author's deletions created before it are stored
// (settle_deletion_cursor), and its tail starts there, less the overlap.
// Internal to actors/sync/relay_*.

#include "actors/sync/relay_connection_self.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace ferry {

struct sync_server;

/// The deletion part of a RELAY CONNECTION's state.
struct relay_deletions {
  /// This connection follows deletions (see `follows_deletions`).
  bool active = false;
  /// Authors whose deletions are followed: persisted, and announced to the
  /// remote in the tail.
  std::set<nostr::bytes32> authors;
  /// Learned since the last flush: their history is not asked for yet.
  std::vector<nostr::bytes32> unannounced;
  /// When the tail began to miss authors learned after it opened (0: it
  /// names every author): its replacement starts there.
  int64_t tail_stale_since = 0;
  /// When the tail was last (re)opened.
  int64_t tail_opened = 0;
  /// A flush is scheduled (see `flush_deletion_authors`).
  bool flush_scheduled = false;
  uint64_t next_history = 1;
  /// The most authors are followed (logged once).
  bool at_most_logged = false;
  /// Deletions received for followed authors (counted in the status).
  uint64_t received = 0;
  /// Driven: when the oldest tail not yet settled opened (0: none); the
  /// cursor may move there (see settle_deletion_cursor).
  int64_t cursor_target = 0;
  /// The tail made room for the catch-up (see `give_up_tail`): not opened
  /// again until the next catch-up.
  bool tail_given_up = false;
};

namespace relay_conn {

/// The tail subscription's id.
inline constexpr const char* deletion_tail_sub = "ferry-deletions";

/// True when `def` asks for it (`follow_deletions`, down) and some filter
/// could match an event without matching its author's deletions: it names
/// kinds without 5, or asks for tags or ids a deletion does not carry.
bool follows_deletions(const sync_server& def);

/// Reads the followed authors from the store (at the actor's start).
void load_deletion_authors(self_pointer self);

/// A kind 5 event by a followed author: admitted even outside the filters.
bool is_followed_deletion(const relay_connection_state& st,
                          const nostr::event& ev);

/// An event of `kind` by `pubkey` from the remote is stored (or was held
/// already): its author is followed from now on, persisted before the cursor
/// can pass the event, so after a crash the catch-up brings the event again
/// and with it the author.
void learn_author(self_pointer self, uint32_t kind,
                  const nostr::bytes32& pubkey);

/// One of the deletion follower's subscriptions (tail or history).
bool is_deletion_sub(const std::string& sub_id);

/// One of the deletion follower's histories (they end with their EOSE).
bool is_deletion_history(const std::string& sub_id);

/// The remote refused or dropped history `sub_id`: its authors' history is
/// asked for again at a later flush.
void history_again(self_pointer self, const std::string& sub_id);

/// A remote that holds too few subscriptions for the tail beside a page or
/// a fetch by ids: the tail is closed until the next catch-up opens it
/// again, so the catch-up goes on (deletions published meanwhile may be
/// missed; the catch-up's events must not be). @returns false when no tail
/// is open.
bool give_up_tail(self_pointer self);

/// A catch-up starts from `since` (0: everything): opens the tail.
void open_deletion_tail(self_pointer self, int64_t since);

/// Driven: the connection is up; the tail starts at the stored cursor, less
/// the overlap window.
void open_driven_deletion_tail(self_pointer self);

/// Driven, after an EOSE of the follower's: once no subscription of the
/// follower waits for its EOSE and every learned author's history was asked
/// for, the cursor moves to `cursor_target` as soon as everything received
/// before is stored. Before that moment a deletion the tail or a history
/// still had to bring could be missing, so the cursor would skip it.
void settle_deletion_cursor(self_pointer self);

/// The flush timer (generation): the tail grows by the authors learned since
/// the last flush, and their history is asked for.
void flush_deletion_authors(self_pointer self, uint64_t gen);

/// Subscriptions kept open after their EOSE: the live tail and the deletion
/// tail.
bool keeps_open(const std::string& sub_id);

} // namespace relay_conn

} // namespace ferry
