#pragma once

#include "actors/relay/item_set_cache.hpp"
#include "messages/nostr/flat_id_set.hpp"
#include "messages/nostr/negentropy.hpp"
#include "messages/relay.hpp"
#include "net/ws_server.hpp"
#include "store/event_store.hpp"

#include <atomic>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace ferry {

/// The node's memory for pages read ahead, shared by its query workers. A
/// page is kept only while all pages held stay within the cap, so any
/// number of paging clients holds at most the cap.
class read_ahead_budget {
public:
  explicit read_ahead_budget(size_t max_bytes) : max_bytes_(max_bytes) {
    // nop
  }

  /// Takes `n` bytes; false, taking nothing, when they do not fit.
  bool take(size_t n);

  void give_back(size_t n);

  size_t held() const {
    return held_.load(std::memory_order_relaxed);
  }

  size_t max_bytes() const {
    return max_bytes_;
  }

private:
  std::atomic<size_t> held_{0};
  size_t max_bytes_;
};

/// A page read before its REQ came: the events a REQ with exactly `filter`
/// gets, as long as the store has not changed since `sequence` and the
/// query runs in the same second (NIP-40 expirations). It is read a few
/// events at a time, so that its REQ, when it comes early, waits for a few
/// events only: it takes what was read and goes on from there.
struct read_ahead_page {
  nostr::filter filter;
  int64_t now = 0;
  size_t default_limit = 0;
  size_t max_limit = 0;
  /// The store's last sequence number before the read; a REQ is answered
  /// from the page only while it is still the last one.
  uint64_t sequence = 0;
  /// The events' stored JSON back to back, newest first, each ending at its
  /// entry of `ends`, and their ids (the job's sent ids once served).
  std::string json;
  std::vector<size_t> ends;
  nostr::flat_id_set seen;
  /// Where the scan goes on, and the events it met (one met twice counted
  /// twice, as toward a REQ's limit).
  std::optional<store::scan_position> resume;
  uint64_t scanned = 0;
  int64_t oldest_created_at = std::numeric_limits<int64_t>::max();
  /// The page holds its whole answer.
  bool complete = false;
  /// What the page holds of the node's budget, given back on destruction.
  std::shared_ptr<read_ahead_budget> budget;
  size_t charged = 0;

  read_ahead_page() = default;
  read_ahead_page(const read_ahead_page&) = delete;
  read_ahead_page& operator=(const read_ahead_page&) = delete;
  ~read_ahead_page();
};

/// One connection's paging through a filter (`limit` + `until` = the oldest
/// created_at of the last page, or one second before it), as its query
/// worker follows it. Only that worker touches it: a connection's jobs all
/// go to one worker, in order.
struct paging_state {
  /// Counts the connection's REQs: a read-ahead posted before the latest
  /// one is dropped.
  uint64_t generation = 0;
  /// The last finished REQ, when it had one filter.
  std::optional<nostr::filter> last_filter;
  size_t last_default_limit = 0;
  size_t last_max_limit = 0;
  int64_t last_oldest_created_at = 0;
  /// It got its limit: more may follow.
  bool last_full = false;
  /// How the client's next `until` follows the oldest created_at of its
  /// last page (0 or -1), once two REQs in a row have shown it.
  std::optional<int64_t> until_step;
  /// The page being read ahead.
  std::unique_ptr<read_ahead_page> ready;
  /// The worker has handed this generation's page over (below); the next
  /// read-ahead message is its deadline.
  bool handed_over = false;

  /// Once read whole, the page waits here for its REQ: the connection's
  /// session answers from it at once, without waking the worker's thread
  /// first (a page boundary of a paging client waits for each thread woken
  /// on its way). Whoever takes it holds it alone.
  void hand_over(std::unique_ptr<read_ahead_page> page);
  std::unique_ptr<read_ahead_page> take_handed();

private:
  std::mutex handed_lock_;
  std::unique_ptr<read_ahead_page> handed_;
};

enum class read_ahead_use { none, served, dropped };

/// One REQ's stored part (or one COUNT), with its progress between slices.
struct query_job {
  /// Where EVENT frames go, directly from the worker's thread.
  std::shared_ptr<net::ws_connection> conn;
  /// Who hears about the end (EOSE) or the count.
  client_session_actor session;
  std::string sub_id;
  /// Tells answers for a replaced subscription from the current one.
  uint64_t job_id = 0;
  filter_set_ptr filters;
  bool count_only = false;
  /// A COUNT: the index entries and events it may examine
  /// (`max_count_scan`); the worker sets `count_refused` when it needed more.
  uint64_t max_count_scan = 0;
  bool count_refused = false;
  /// `limit` for filters without one, and the cap on any filter's limit.
  size_t default_limit = 500;
  size_t max_limit = 5000;
  /// Unix time the query runs at (for NIP-40).
  int64_t now = 0;
  /// Set by the session on CLOSE, replacement or disconnect.
  std::atomic<bool> cancelled{false};
  /// The connection's paging, for REQs while read-ahead is on.
  paging_state_ptr paging;
  /// The session answered this REQ, EOSE included, from the page handed
  /// over (`events_from_page` events), or dropped that page as not its
  /// answer; the worker only counts it and reads the next page ahead.
  read_ahead_use page_use = read_ahead_use::none;
  size_t events_from_page = 0;

  // -- progress ---------------------------------------------------------------
  size_t filter_index = 0;
  std::optional<store::scan_position> resume;
  uint64_t delivered_in_filter = 0;
  /// The first filter's count once it is done, and the oldest created_at
  /// read for it (where its next page begins).
  uint64_t delivered_in_first_filter = 0;
  int64_t oldest_in_first_filter = std::numeric_limits<int64_t>::max();
  /// Time spent waiting for the socket since the last slice went out.
  caf::timespan stalled{0};
  /// Ids sent: several filters may match one event, and a live event that
  /// arrived during the query may already have been sent from the store.
  nostr::flat_id_set sent;
};

/// One open negentropy session of a client, shared by its CLIENT SESSION
/// (which only flags it closed) and its QUERY WORKER (which alone touches the
/// engine). A connection's jobs all go to one worker, in order, so the engine
/// is never used from two threads.
struct neg_session {
  /// Built by the worker on NEG-OPEN; empty when that failed.
  std::optional<nostr::negentropy::server> engine;
  /// The engine's item set and its share of the node's negentropy memory
  /// budget, both given back when the session is destroyed.
  item_set_lease_ptr lease;
  /// NEG-CLOSE, a replacing NEG-OPEN, a timeout or the disconnect.
  std::atomic<bool> closed{false};
};

/// One negentropy round: the client's message in, the relay's frame out.
struct neg_job {
  /// Who gets the job back with its reply.
  client_session_actor session;
  std::string sub_id;
  /// The session's id for this round (a namespace shared with query jobs).
  uint64_t job_id = 0;
  std::shared_ptr<neg_session> state;
  /// NEG-OPEN only: the item set to reconcile (from the node's cache), and
  /// the largest reply.
  item_set_lease_ptr lease;
  size_t frame_size_limit = 0;
  /// The client's negentropy message (binary).
  std::string query;

  // -- filled in by the worker ---------------------------------------------
  /// The frame for the client: NEG-MSG, or NEG-ERR when `failed`.
  std::string reply;
  /// The session is over (the reply is a NEG-ERR).
  bool failed = false;
};

/// Tunables of the query workers.
struct query_worker_config {
  /// Events per slice; between slices other jobs get their turn.
  size_t slice_events = 1000;
  /// Candidates a slice (or a read-ahead step) examines at most, matching
  /// or not. A filter its index does not cover (several tags, say) may
  /// examine a whole index to find a few matches; bounded, such a REQ
  /// yields the worker to the other connections' jobs and goes on from the
  /// last candidate examined.
  size_t slice_examined = 10000;
  /// Events handed to the socket in the first chunk of a slice; each later
  /// chunk doubles, up to `max_chunk_events`.
  size_t first_chunk_events = 8;
  size_t max_chunk_events = 256;
  /// When a connection has more bytes queued than this, its job waits; a
  /// slice also stops at this many bytes. Keep it well below the relay's
  /// outbound cap, so a query alone never disconnects a reader.
  size_t high_water_bytes = 4 * 1024 * 1024;
  /// How long a job waits for a slow socket before looking again.
  caf::timespan backoff = std::chrono::milliseconds{2};
  /// A reader that takes nothing for this long is disconnected.
  caf::timespan stall_limit = std::chrono::seconds{60};
  /// Memory for pages read ahead; none are read without it.
  std::shared_ptr<read_ahead_budget> read_ahead;
  /// A page read ahead and not asked for within this long is dropped.
  caf::timespan read_ahead_keep = std::chrono::seconds{1};
  /// Events read ahead per step: a REQ that comes while its page is read
  /// waits for at most this many.
  size_t read_ahead_step_events = 16;
};

/// The worker config that fits a relay whose outbound cap is `cap` bytes.
query_worker_config query_worker_config_for(size_t cap);

/// What one slice of a query did.
struct slice_result {
  /// The job is finished; its EOSE is queued unless it was cancelled.
  bool done = false;
  /// EVENT frames handed to the socket.
  size_t events = 0;
};

/// Runs one slice of `job` on the calling thread: reads at most `max_events`
/// events (and at most `config.high_water_bytes`) and hands their EVENT
/// frames to the job's connection; the last slice ends with the EOSE frame
/// (unless the job was cancelled).
slice_result run_slice(const store::event_store& store,
                       const query_worker_config& config, query_job& job,
                       size_t max_events);

// -- reading the next page ahead ---------------------------------------------
//
// A client paging with `limit` + `until` waits for each page's EOSE before
// it asks for the next one; meanwhile the worker would idle. Once a
// connection's REQs have shown how its `until` follows its pages, the worker
// reads the next page as soon as it has answered one, and answers the REQ
// from memory when it comes: the same events, or it is read afresh.

/// Called as a REQ job starts: bumps the generation and learns the client's
/// `until` step when this REQ is the page after the last one.
void note_query(paging_state& paging, const query_job& job);

/// Answers `job` from `page`, read ahead, when that page is exactly its
/// answer so far: the same filter, `now` and limits, and no write to the
/// store since the page's read began. Sends its EVENT frames; a complete
/// page also the EOSE, and the job is done; otherwise the job goes on from
/// where the page's scan stopped. Drops the page either way.
/// @returns the events sent, or nothing when the job must be read.
std::optional<size_t> answer_from_page(const store::event_store& store,
                                       const query_worker_config& config,
                                       query_job& job,
                                       std::unique_ptr<read_ahead_page> page);

/// The session's part: answers a new REQ `job` from the page handed over,
/// when the connection's queue has room for it whole (as a worker's step
/// would), and notes in `job.page_use` what became of the page. Call it only
/// while the connection has no job at its worker: that job's frames would
/// otherwise still be going out (a replaced subscription's among them).
void answer_from_handed_page(const store::event_store& store,
                             const query_worker_config& config, query_job& job);

/// Called when a REQ job has sent its EOSE: remembers where its page ended.
/// @returns true when the next page is worth reading ahead.
bool note_finished(paging_state& paging, const query_job& job,
                   const query_worker_config& config);

/// Starts the page `paging` expects next: empty, its store sequence taken.
std::unique_ptr<read_ahead_page> next_page(const store::event_store& store,
                                           const paging_state& paging,
                                           int64_t now);

/// Reads up to `max_events` more of `page`, within the budget and twice
/// the high-water mark. @returns false when the page does not fit (drop it).
bool read_more(const store::event_store& store,
               const query_worker_config& config, read_ahead_page& page,
               size_t max_events);

struct query_worker_state {
  const store::event_store* store = nullptr;
  query_worker_config config;
  uint64_t jobs = 0;
  uint64_t events_sent = 0;

  uint64_t neg_rounds = 0;

  /// Pages read ahead; of them, REQs answered from memory, and pages
  /// dropped (stale, not asked for, or another REQ came).
  uint64_t read_ahead_reads = 0;
  uint64_t read_ahead_hits = 0;
  uint64_t read_ahead_drops = 0;

  /// Answers one negentropy round, filling in `job.reply` and `job.failed`.
  void answer(neg_job& job);

  static inline constexpr const char* name = "query-worker";
};

/// A QUERY WORKER: reads the store and writes EVENT frames to the client's
/// socket, a slice at a time. Spawn it detached (RocksDB reads block).
query_worker_actor::behavior_type
query_worker(query_worker_actor::stateful_pointer<query_worker_state> self,
             const store::event_store* store, query_worker_config config);

} // namespace ferry
