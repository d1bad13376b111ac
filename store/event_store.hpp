#pragma once

#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"
#include "messages/nostr/negentropy.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rocksdb {
class DB;
class WriteBatch;
class ColumnFamilyHandle;
} // namespace rocksdb

namespace ferry::store {

enum class cf : uint32_t; // store/column_families.hpp

/// How the store is opened.
struct store_options {
  /// Directory of the RocksDB database; created when missing.
  std::string path = "./ferry-data";
  /// Shared LRU block cache for every column family, in MiB.
  size_t block_cache_mb = 256;
  /// Memtable size per column family, in MiB (tests use 1 to force flushes).
  size_t write_buffer_mb = 64;
  /// fsync the WAL on every commit. Off, a machine crash may lose the last
  /// commits; a process crash never does (the WAL is written before OK).
  bool sync_writes = false;
  /// Free space kept in reserve on the store's filesystem: below it
  /// `check_space` reports the disk full before RocksDB itself runs out
  /// (0: no reserve; only RocksDB's own out-of-space errors count).
  uint64_t reserve_bytes = 64ull << 20;
  /// Receives RocksDB's own log lines (`problem`: warning or worse). RocksDB
  /// writes no LOG file of its own, so it never fails on a full disk.
  std::function<void(bool problem, std::string_view line)> log;
  /// Reads a store a running node holds: opens it as a RocksDB secondary
  /// instance, which takes no lock and sees what the node had written when
  /// it opened (the WAL included). Such a store must not be written to, and
  /// its schema must be this build's (a node upgrades it, not a reader).
  bool beside_running_node = false;
  /// Tuned for `ferry import` and a `ferry sync` that fetches, each the
  /// store's only user while it runs: the index families, which they do not
  /// read once they write, keep their memtables as unsorted vectors (an
  /// append per key; the flush sorts them, store/index_memtable.hpp) instead
  /// of skip lists, whose inserts were over half of the writer's time.
  /// Reading an index family is then slow until its memtable is flushed
  /// (each read sorts a copy), so a serving node must never open a store
  /// this way.
  bool bulk_import = false;
};

/// The start of every OK message for an event refused for lack of space.
inline constexpr std::string_view disk_full_prefix = "error: disk full: ";

/// An event on its way into the store: the parsed event plus its JSON form
/// (`nostr::to_json(ev)`, computed once by the verifier, stored and served as is).
struct incoming_event {
  nostr::event ev;
  std::string json;
  /// A replaceable or addressable version that takes its slot even from a
  /// newer one (a federation pull's `overwrite` strategy); otherwise the
  /// newest version wins (NIP-01).
  bool replaces_newer = false;
};

/// What the store did with one event.
enum class write_outcome : uint8_t {
  /// Committed; fan it out.
  stored,
  /// Ephemeral kind: accepted, not stored; fan it out.
  ephemeral,
  /// Already stored (same id), or an older version of a replaceable or
  /// addressable event that we hold a newer version of: accepted, not fanned out.
  duplicate,
  /// Refused: deleted by its author (NIP-09), or expired (NIP-40).
  refused,
};

/// One result per event, in order; `message` is the NIP-01 OK message
/// ("" or with a prefix such as "duplicate:", "blocked:", "invalid:").
struct write_result {
  write_outcome outcome = write_outcome::stored;
  std::string message;

  /// The OK flag a relay sends for this result.
  bool accepted() const {
    return outcome != write_outcome::refused;
  }
};

/// Adds operations to a batch of events before it commits (sync cursors),
/// knowing what happened to each event of the batch.
using batch_extra = std::function<void(rocksdb::WriteBatch&,
                                       const std::vector<write_result>&)>;

/// Position in a newest-first scan: everything strictly after it is next.
struct scan_position {
  int64_t created_at = 0;
  nostr::bytes32 id{};
};

/// The work a caller allows one read: index entries and stored events
/// examined, matching or not.
struct read_budget {
  explicit read_budget(uint64_t units) : left(units) {
    // nop
  }

  uint64_t left = 0;
  /// The read stopped because `left` ran out; what it gave is incomplete.
  bool exhausted = false;
  /// Set by a `scan` that ran out: the last candidate it examined, in its
  /// serving order. Every match up to it was delivered, so a scan resumed
  /// after it misses nothing; a slice bounded by what it examines goes on
  /// from here even when it delivered nothing. Unset when nothing was
  /// examined, or for an `ids` filter (whose ids are not examined in that
  /// order; their number bounds that scan anyway).
  std::optional<scan_position> examined_through;

  /// Takes one unit; false (and exhausted) when none is left.
  bool take() {
    if (left == 0) {
      exhausted = true;
      return false;
    }
    --left;
    return true;
  }
};

/// The records of the events matching a filter, for negentropy (NIP-77).
struct item_scan {
  /// Unordered; empty when `over_limit`.
  std::vector<nostr::negentropy::item> items;
  /// More events matched than the caller allows.
  bool over_limit = false;
};

/// The RocksDB event store: events, their indexes and the node's other tables.
/// Safe for one writer thread plus any number of reader threads.
class event_store {
public:
  ~event_store();
  event_store(const event_store&) = delete;
  event_store& operator=(const event_store&) = delete;

  /// Opens (or creates) the store, migrating the schema when needed.
  static caf::expected<std::unique_ptr<event_store>>
  open(const store_options& opts);

  // -- writing (one thread only) ---------------------------------------------

  /// Applies `events` in order within ONE atomic WriteBatch, handling
  /// duplicates, replaceable/addressable versions, NIP-09 deletions and NIP-40
  /// expiration (also between events of the same batch). `extra` may add
  /// further operations (e.g. sync cursors) to the same commit. `now` is the
  /// current unix time, for expiration.
  /// @returns one result per event, or an error when the commit failed (then
  ///          nothing of the batch was written).
  caf::expected<std::vector<write_result>>
  write(const std::vector<const incoming_event*>& events, int64_t now,
        const batch_extra& extra = {});

  /// Deletes every event whose NIP-40 expiration is <= `now`, with its indexes.
  /// @returns how many were deleted.
  caf::expected<size_t> purge_expired(int64_t now);

  // -- reading (any thread) ----------------------------------------------------

  /// True when an event with this id is stored.
  bool contains(const nostr::bytes32& id) const;

  /// The stored JSON of one event.
  std::optional<std::string> get_json(const nostr::bytes32& id) const;

  /// Streams the events matching `f`, newest first (ties: lower id first),
  /// skipping expired ones (`now`); `f.limit` is left to the caller. Starts
  /// after `resume` when given. Calls
  /// `sink(json, position)` per event until it returns false, `max_events`
  /// have been delivered, or the matches are exhausted.
  /// With `budget`, each candidate examined takes a unit of it, and the scan
  /// stops where it runs out (`budget->exhausted`; resume after
  /// `budget->examined_through` when set).
  /// @returns true when more matches may remain (call again from the last
  ///          position delivered), false when the scan is exhausted.
  bool scan(const nostr::filter& f, int64_t now,
            const std::optional<scan_position>& resume, size_t max_events,
            const std::function<bool(std::string_view json,
                                     const scan_position& pos)>& sink,
            read_budget* budget = nullptr) const;

  /// Number of distinct stored, unexpired events matching any of `fs`
  /// (NIP-45), using index keys only wherever the index covers the filter.
  /// With `budget`, each index entry or event examined takes a unit of it;
  /// when it runs out the count is incomplete (`budget->exhausted`).
  uint64_t count(const std::vector<nostr::filter>& fs, int64_t now,
                 read_budget* budget = nullptr) const;

  /// The (created_at, id) of every stored, unexpired event matching `f`; with
  /// `f.limit`, of its newest `limit` matches (the ones a REQ would get).
  /// Read from index keys alone wherever the index settles the filter (no
  /// ids, at most one tag condition, authors and kinds covered); otherwise
  /// the candidates' headers (and for extra tag conditions their JSON) are
  /// checked. Stops as soon as more than `max_items` match.
  caf::expected<item_scan> negentropy_items(const nostr::filter& f,
                                            int64_t now,
                                            size_t max_items) const;

  /// Number of stored events (an estimate from RocksDB's properties).
  uint64_t approximate_event_count() const;

  /// RocksDB's background compaction, all families together. A backlog that
  /// keeps growing means writes outpace the disk, and RocksDB will soon slow
  /// them down; on a store at rest both are 0.
  struct compaction_backlog {
    /// Compactions running now.
    uint64_t running = 0;
    /// Bytes RocksDB estimates it must still rewrite to bring every level
    /// within its target size.
    uint64_t pending_bytes = 0;
  };
  compaction_backlog compaction() const;

  // -- access for the other tables (sync state, peers, ...) -------------------

  rocksdb::DB* db() const;
  rocksdb::ColumnFamilyHandle* handle(cf family) const;

  /// Flushes memtables and syncs the WAL (orderly shutdown; a bulk import's
  /// store also merges its created_at index into one run). While RocksDB holds
  /// a background error the WAL is left as it is: it is replayed on next open.
  caf::error flush();

  // -- disk space (the writer checks, any thread reads) ----------------------

  /// Why the store takes no events for lack of disk space; "" while it does.
  /// Names the free bytes and the path.
  std::string space_problem() const;

  /// Before a commit: measures the free space (statvfs) unless the disk is
  /// already known full. @returns space_problem() after the check.
  std::string check_space();

  /// While the disk is full: once the free space is back above the reserve
  /// plus a quarter (at least 1 MiB), takes RocksDB out of its read-only
  /// state (DB::Resume) and clears the problem.
  /// @returns true when writes may go on.
  bool recheck_space();

  /// RocksDB holds a background error (the DB is read-only until it clears).
  bool background_error() const;

private:
  event_store() = default;
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace ferry::store
