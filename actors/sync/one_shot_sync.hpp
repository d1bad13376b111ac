#pragma once

#include "messages/ingest.hpp"
#include "messages/nostr/filter.hpp"
#include "store/event_store.hpp"

#include <caf/actor_system.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

/// `ferry sync URL` in one place: one NIP-77 reconciliation of a store with
/// a relay, then the transfers the direction asks for. The command runs it on
/// a store it opened; a node runs it on its own store when the command hands
/// it the job (the node holds the store's lock). Either way the events it
/// fetches go through the verifiers and the policy like any other.
namespace ferry {

/// What one sync is asked to do.
struct sync_options {
  /// The relay, ws:// or wss://.
  std::string url;
  /// One NIP-01 filter: the events to reconcile.
  std::string filter_json = "{}";
  /// down (fetch what we lack), up (send what the relay lacks) or both.
  std::string direction = "down";
  /// Reconcile and print the counts only.
  bool dry_run = false;
  /// Largest negentropy message we send, in bytes before hex; 0 for none.
  size_t frame_size_limit = 60000;
  /// Longest wait for any answer of the relay.
  double timeout_seconds = 30;
  /// Extra trust anchors (PEM) for wss://.
  std::string ca_file;
  /// Names a sync run by a node, so its progress can be read meanwhile
  /// (`GET /api/v1/sync/run/ID`); empty: not readable.
  std::string progress_id;
  /// Reconcile even when the store holds nothing the filter matches; by
  /// default such a sync pages the relay with REQ instead (see
  /// `run_one_shot_sync`).
  bool reconcile_when_empty = false;
  /// Needed ids (down, not a dry run) that the reconciliation finds before
  /// its next round waits for them to be asked for: a relay holding
  /// millions the store lacks would otherwise have every id kept, ~100
  /// bytes each, until the reconciliation ends.
  size_t fetch_backlog = 50'000;

  /// It writes to the store (fetches); a dry run or `up` only reads.
  bool writes() const {
    return !dry_run && direction != "up";
  }
};

/// What is wrong with sync options: the JSON field and the command-line
/// option it is about (either may be empty), and why.
struct sync_option_error {
  std::string field;
  std::string option;
  std::string message;

  explicit operator bool() const {
    return !message.empty();
  }
};

/// How far a sync run by a node is: written by the run's thread, read by
/// the sync manager (`GET /api/v1/sync/run/ID`). The counts are those
/// `one_shot_report::progress` gets.
struct one_shot_progress {
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> total{0};
};

/// Whether `id` can name a sync's progress: 1 to 64 of A-Z, a-z, 0-9, `-`
/// and `_` (it is a path segment).
bool valid_progress_id(std::string_view id);

/// Checks `opts` as `ferry sync` takes them; the parsed filter goes to `f`.
sync_option_error check_sync_options(const sync_options& opts,
                                     nostr::filter& f);

/// `opts` as the JSON body of a sync job for a node (POST /api/v1/sync/run).
std::string to_json(const sync_options& opts);

/// Reads a sync job's JSON body: `url` (required), `filter` (an object),
/// `direction`, `dry_run`, `frame_size_limit`, `timeout_seconds`, `ca_file`,
/// `progress_id`, `reconcile_when_empty`, `fetch_backlog`.
/// @returns "" or what is wrong, with the field it is about in `field`.
std::string parse_sync_options(std::string_view json, sync_options& out,
                               std::string& field);

/// Where a sync reports.
struct one_shot_report {
  /// The summary line.
  FILE* out = stdout;
  /// Every other line, each starting with "ferry sync: ".
  FILE* err = stderr;
  /// Events done, and `done` of `total` units for the share left; may be
  /// empty.
  std::function<void(uint64_t events, uint64_t done, uint64_t total)> progress;
  /// Set from outside to end the run early (a node that stops); may be null.
  const std::atomic<bool>* stopping = nullptr;
};

/// Runs one sync of `store` with the relay `opts.url` (checked by
/// `check_sync_options`, `f` its filter). A sync that fetches into a store
/// holding nothing `f` matches pages the relay with REQ (`req_pager`)
/// instead of reconciling, unless `opts.reconcile_when_empty`: every id
/// would be needed, and the relay serves pages in index order for less than
/// it serves the same events by id. Fetched events go to `verifiers`
/// (source "sync:URL"); a run that fetches nothing may pass none.
/// `max_items` bounds the local item set, as `relay.negentropy.max_items`.
/// @returns 0 when it succeeded, 1 otherwise (the reason on `report.err`).
int run_one_shot_sync(caf::actor_system& sys, store::event_store& store,
                      const sync_options& opts, const nostr::filter& f,
                      size_t max_items,
                      const std::vector<verifier_actor>& verifiers,
                      const one_shot_report& report);

} // namespace ferry
