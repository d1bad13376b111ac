#include "actors/relay/query_worker.hpp"

#include "actors/runtime/metrics.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/nostr/wire.hpp"
#include "net/thread_name.hpp"
#include "store/expiry_window.hpp"

#include <caf/send.hpp>
#include <rocksdb/db.h>

#include <sched.h>

#include <algorithm>
#include <limits>

namespace ferry {

query_worker_config query_worker_config_for(size_t cap) {
  query_worker_config result;
  result.high_water_bytes = std::min(result.high_water_bytes, cap / 4);
  return result;
}

slice_result run_slice(const store::event_store& store,
                       const query_worker_config& config, query_job& job,
                       size_t max_events) {
  slice_result result;
  const auto& filters = *job.filters;
  if (job.sent.empty()) {
    // Growing a small set to a page's size showed up in profiles of pages.
    // Beyond a few slices it grows by doubling: a 100k-limit REQ's set,
    // reserved whole, took 2-9 ms before its first event left (traced in
    // bench_req), and a large limit is often far more than matches.
    uint64_t expected = 0;
    for (const auto& f : filters)
      expected += std::min<uint64_t>(f.limit.value_or(job.default_limit),
                                     job.max_limit);
    job.sent.reserve(std::min<uint64_t>(expected, 4 * config.slice_events));
  }
  const auto prefix = nostr::event_message_prefix(job.sub_id);
  // Every frame of a chunk goes into one buffer: one allocation and one post
  // per chunk, the stored JSON copied once and never re-serialised.
  net::frame_batch batch;
  size_t events_in_batch = 0;
  size_t events_in_slice = 0;
  size_t bytes = 0;
  // The first events go to the socket while the rest are read: a client
  // waits for one chunk of the store scan, not for the whole slice. Towards
  // the known end of a job the chunks shrink again: the last chunk is
  // written only once it is read whole, and the client waits for that
  // before it asks for its next page.
  size_t chunk = config.first_chunk_events;
  auto hand_over = [&](uint64_t events_left) {
    result.events += events_in_batch;
    events_in_batch = 0;
    job.conn->send_batch(std::move(batch));
    batch = {};
    chunk = std::min({chunk * 2, config.max_chunk_events,
                      std::max<uint64_t>(config.first_chunk_events,
                                         events_left / 2 + 1)});
    // Sized from the frames so far, so the buffer rarely grows while filled.
    batch.bytes.reserve(chunk * (bytes / std::max<size_t>(events_in_slice, 1) + 1));
  };
  auto limit_of = [&job](const nostr::filter& f) {
    return std::min<uint64_t>(f.limit.value_or(job.default_limit), job.max_limit);
  };
  auto next_filter = [&job] {
    if (job.filter_index == 0)
      job.delivered_in_first_filter = job.delivered_in_filter;
    ++job.filter_index;
    job.resume.reset();
    job.delivered_in_filter = 0;
  };
  size_t budget = max_events;
  store::read_budget examined{config.slice_examined};
  for (;;) {
    // Before the budget is looked at: a slice that read exactly the last
    // filter's limit has finished the job, and ends with its EOSE.
    while (job.filter_index < filters.size()
           && job.delivered_in_filter >= limit_of(filters[job.filter_index]))
      next_filter();
    if (budget == 0 || bytes >= config.high_water_bytes
        || job.filter_index >= filters.size())
      break;
    const auto& f = filters[job.filter_index];
    auto limit = limit_of(f);
    auto want = std::min<uint64_t>(budget, limit - job.delivered_in_filter);
    // The job ends in this slice once this last filter has its limit.
    const bool job_end_in_slice = job.filter_index + 1 == filters.size()
                                  && want == limit - job.delivered_in_filter;
    size_t taken = 0;
    auto on_event = [&](std::string_view json, const store::scan_position& pos) {
        job.resume = pos;
        ++taken;
        if (job.filter_index == 0)
          job.oldest_in_first_filter = std::min(job.oldest_in_first_filter,
                                                pos.created_at);
        // An event another filter already sent still counts toward this
        // filter's limit: each filter yields its own newest `limit` matches.
        ++job.delivered_in_filter;
        if (!job.sent.insert(pos.id))
          return true;
        auto before = batch.bytes.size();
        batch.bytes += prefix;
        batch.bytes += json;
        batch.bytes += ']';
        batch.end_frame();
        bytes += batch.bytes.size() - before;
        ++events_in_batch;
        ++events_in_slice;
        if (events_in_batch >= chunk)
          hand_over(job_end_in_slice ? limit - job.delivered_in_filter
                                     : std::numeric_limits<uint64_t>::max());
        return bytes < config.high_water_bytes;
      };
    // An `ids` filter examines its ids, which the relay's limits bound.
    auto more = store.scan(f, job.now, job.resume, want, on_event,
                           f.ids ? nullptr : &examined);
    if (examined.exhausted) {
      // Every match up to there is sent: the next slice starts after it.
      if (examined.examined_through)
        job.resume = examined.examined_through;
      break;
    }
    budget -= std::min(budget, std::max<size_t>(taken, 1));
    if (!more)
      next_filter();
  }
  result.done = job.filter_index >= filters.size();
  // EOSE travels with the last events: the client learns that the stored
  // part is over without a round through the session (which only switches
  // the subscription to live events).
  if (result.done && !job.cancelled) {
    batch.bytes += nostr::eose_message(job.sub_id);
    batch.end_frame();
  }
  if (!batch.empty())
    hand_over(0);
  return result;
}

bool read_ahead_budget::take(size_t n) {
  auto held = held_.load(std::memory_order_relaxed);
  do {
    if (n > max_bytes_ - std::min(held, max_bytes_))
      return false;
  } while (!held_.compare_exchange_weak(held, held + n, std::memory_order_relaxed));
  metrics::read_ahead_memory(static_cast<int64_t>(n));
  return true;
}

void read_ahead_budget::give_back(size_t n) {
  held_.fetch_sub(n, std::memory_order_relaxed);
  metrics::read_ahead_memory(-static_cast<int64_t>(n));
}

read_ahead_page::~read_ahead_page() {
  if (budget)
    budget->give_back(charged);
}

namespace {

uint64_t limit_of(const nostr::filter& f, size_t default_limit, size_t max_limit) {
  return std::min<uint64_t>(f.limit.value_or(default_limit), max_limit);
}

/// The most a job may find queued for its connection before it sends more:
/// the high-water mark, or the connection's allowance of the relay's
/// outbound budget when that is lower.
size_t water_for(const query_worker_config& config, const net::ws_connection& conn) {
  return std::min(config.high_water_bytes, conn.outbound_allowance());
}

/// A page goes out whole: below the high-water mark any page may, below a
/// lower allowance only one that fits in it.
bool page_fits(const read_ahead_page& page, const query_worker_config& config,
               size_t water) {
  return water >= config.high_water_bytes || page.json.size() <= water;
}

} // namespace

void note_query(paging_state& paging, const query_job& job) {
  ++paging.generation;
  paging.handed_over = false;
  std::optional<int64_t> step;
  if (job.filters->size() == 1 && paging.last_filter && paging.last_full
      && job.default_limit == paging.last_default_limit
      && job.max_limit == paging.last_max_limit) {
    const auto& f = job.filters->front();
    if (f.until) {
      auto offset = *f.until - paging.last_oldest_created_at;
      auto expected = *paging.last_filter;
      expected.until = f.until;
      if ((offset == 0 || offset == -1) && expected == f)
        step = offset;
    }
  }
  paging.until_step = step;
}

void paging_state::hand_over(std::unique_ptr<read_ahead_page> page) {
  std::lock_guard<std::mutex> guard{handed_lock_};
  handed_ = std::move(page);
}

std::unique_ptr<read_ahead_page> paging_state::take_handed() {
  std::lock_guard<std::mutex> guard{handed_lock_};
  return std::move(handed_);
}

std::optional<size_t> answer_from_page(const store::event_store& store,
                                       const query_worker_config& config,
                                       query_job& job,
                                       std::unique_ptr<read_ahead_page> page) {
  if (!page)
    return std::nullopt;
  // Any write since the read began may belong in this page (a new event, a
  // deletion, a replacement): then it is read afresh. The page's sequence
  // number was taken before its scan, so a write the scan may have missed
  // has always moved it.
  if (job.filters->size() != 1 || job.filters->front() != page->filter
      || job.default_limit != page->default_limit
      || job.max_limit != page->max_limit
      || store.db()->GetLatestSequenceNumber() != page->sequence)
    return std::nullopt;
  // The clock decides only which events have expired: a page read in an
  // earlier second is still this REQ's answer unless some event expired
  // since. Requiring the same second dropped about one page a second for a
  // client paging through a large store (a NIP-77 catch-up's pages).
  if (job.now != page->now
      && (job.now < page->now || store::expires_within(store, page->now, job.now)))
    return std::nullopt;
  const auto prefix = nostr::event_message_prefix(job.sub_id);
  const auto n = page->ends.size();
  size_t i = 0;
  size_t begin = 0;
  // Small first, as a slice's chunks: the socket's thread writes the first
  // events while the rest are framed (a session took ~87 us to frame a
  // 500-event page, its first 256 events about half of that).
  size_t chunk = config.first_chunk_events;
  do {
    auto last = std::min(n, i + chunk);
    chunk = std::min(chunk * 2, config.max_chunk_events);
    net::frame_batch batch;
    batch.bytes.reserve((last > i ? page->ends[last - 1] - begin : 0)
                        + (last - i) * (prefix.size() + 1) + prefix.size() + 16);
    batch.ends.reserve(last - i + 1);
    for (; i < last; ++i) {
      batch.bytes += prefix;
      batch.bytes.append(page->json, begin, page->ends[i] - begin);
      batch.bytes += ']';
      batch.end_frame();
      begin = page->ends[i];
    }
    if (i == n && page->complete && !job.cancelled) {
      batch.bytes += nostr::eose_message(job.sub_id);
      batch.end_frame();
    }
    if (!batch.empty())
      job.conn->send_batch(std::move(batch));
  } while (i < n);
  job.sent = std::move(page->seen);
  job.oldest_in_first_filter = page->oldest_created_at;
  if (page->complete) {
    job.delivered_in_first_filter = page->scanned;
    job.filter_index = 1;
  } else {
    job.delivered_in_filter = page->scanned;
    job.resume = page->resume;
  }
  return n;
}

void answer_from_handed_page(const store::event_store& store,
                             const query_worker_config& config, query_job& job) {
  if (!job.paging)
    return;
  auto page = job.paging->take_handed();
  if (!page)
    return;
  // Only what the worker would send now; else the worker takes it back and
  // decides.
  const auto water = water_for(config, *job.conn);
  if (job.conn->queued_bytes() > water || !page_fits(*page, config, water)) {
    job.paging->hand_over(std::move(page));
    return;
  }
  if (auto sent = answer_from_page(store, config, job, std::move(page))) {
    job.page_use = read_ahead_use::served;
    job.events_from_page = *sent;
    metrics::read_ahead_page(metrics::read_ahead_result::served);
  } else {
    job.page_use = read_ahead_use::dropped;
    metrics::read_ahead_page(metrics::read_ahead_result::dropped);
  }
}

bool note_finished(paging_state& paging, const query_job& job,
                   const query_worker_config& config) {
  if (job.filters->size() != 1) {
    paging.last_filter.reset();
    paging.until_step.reset();
    return false;
  }
  const auto& f = job.filters->front();
  auto limit = limit_of(f, job.default_limit, job.max_limit);
  paging.last_filter = f;
  paging.last_default_limit = job.default_limit;
  paging.last_max_limit = job.max_limit;
  paging.last_oldest_created_at = job.oldest_in_first_filter;
  paging.last_full = limit > 0 && job.delivered_in_first_filter >= limit;
  return config.read_ahead && paging.until_step && paging.last_full
         && !paging.ready;
}

std::unique_ptr<read_ahead_page> next_page(const store::event_store& store,
                                           const paging_state& paging,
                                           int64_t now) {
  if (!paging.last_filter || !paging.until_step)
    return nullptr;
  auto page = std::make_unique<read_ahead_page>();
  page->filter = *paging.last_filter;
  page->filter.until = paging.last_oldest_created_at + *paging.until_step;
  page->now = now;
  page->default_limit = paging.last_default_limit;
  page->max_limit = paging.last_max_limit;
  page->sequence = store.db()->GetLatestSequenceNumber();
  return page;
}

bool read_more(const store::event_store& store,
               const query_worker_config& config, read_ahead_page& page,
               size_t max_events) {
  if (!config.read_ahead)
    return false;
  const auto limit = limit_of(page.filter, page.default_limit, page.max_limit);
  if (page.ends.empty()) {
    // Room for a usual page; a larger limit grows it as read (each step's
    // growth is charged before the next).
    const auto expected = std::min<uint64_t>(limit, 1024);
    page.ends.reserve(expected);
    page.seen.reserve(expected);
  }
  // Served whole, a page must leave the connection's queue below its cap:
  // a worker serves only while at most `high_water_bytes` are queued, and
  // the cap is at least four times that.
  const auto max_json = 2 * config.high_water_bytes;
  // The same events, in the same order, that run_slice sends for this
  // filter: an event the scan meets twice counts toward the limit each time
  // and is sent once.
  bool fits = true;
  store::read_budget examined{config.slice_examined};
  auto more = store.scan(
    page.filter, page.now, page.resume,
    std::min<uint64_t>(max_events, limit - page.scanned),
    [&](std::string_view json, const store::scan_position& pos) {
      if (page.json.size() + json.size() > max_json) {
        fits = false;
        return false;
      }
      page.resume = pos;
      ++page.scanned;
      page.oldest_created_at = std::min(page.oldest_created_at, pos.created_at);
      if (!page.seen.insert(pos.id))
        return true;
      page.json += json;
      page.ends.push_back(page.json.size());
      return true;
    },
    page.filter.ids ? nullptr : &examined);
  if (!fits)
    return false;
  // The next step goes on after the last candidate examined.
  if (examined.exhausted && examined.examined_through)
    page.resume = examined.examined_through;
  page.complete = !more || page.scanned >= limit;
  // The id set keeps at most four slots per id.
  const auto charge = sizeof(read_ahead_page) + page.json.capacity()
                      + page.ends.capacity()
                          * (sizeof(size_t) + 4 * sizeof(nostr::bytes32));
  if (charge > page.charged) {
    if (!config.read_ahead->take(charge - page.charged))
      return false;
    page.budget = config.read_ahead;
    page.charged = charge;
  }
  return true;
}

void query_worker_state::answer(neg_job& job) {
  namespace neg = nostr::negentropy;
  auto fail = [&job](std::string reason) {
    job.failed = true;
    job.reply = nostr::neg_err_message(job.sub_id, reason);
  };
  auto& state = *job.state;
  if (job.lease) {
    state.engine.emplace(job.lease->items(), job.frame_size_limit);
    state.lease = std::move(job.lease);
  }
  if (!state.engine)
    return fail("closed: this negentropy session has failed");
  std::string response;
  if (auto reason = state.engine->reconcile(job.query, response);
      !reason.empty())
    return fail("invalid: negentropy message: " + reason);
  ++neg_rounds;
  job.reply = nostr::neg_msg_message(job.sub_id, neg::encode_hex(response));
}

namespace {

/// `config` with a lower high-water mark, for one slice.
query_worker_config with_high_water(const query_worker_config& config,
                                    size_t high_water_bytes) {
  auto result = config;
  result.high_water_bytes = high_water_bytes;
  return result;
}

} // namespace

query_worker_actor::behavior_type
query_worker(query_worker_actor::stateful_pointer<query_worker_state> self,
             const store::event_store* store, query_worker_config config) {
  // Detached, the worker has a thread of its own, which it may name and
  // yield (below); otherwise the thread is the scheduler's.
  const bool detached = self->getf(caf::abstract_actor::is_detached_flag);
  if (detached)
    net::name_this_thread("query");
  self->state.store = store;
  self->state.config = config;
  // A REQ has sent its EOSE: the session hears of it, and a paging
  // client's next page is read while the client reads this one.
  auto finished = [self](query_job_ptr& job) {
    caf::anon_send(job->session, atom::eose_v, job->sub_id, job->job_id);
    if (job->paging && note_finished(*job->paging, *job, self->state.config))
      self->send(self, atom::read_ahead_v, job->paging, job->paging->generation);
  };
  auto step = [self, finished](query_job_ptr& job) {
    auto& st = self->state;
    if (job->cancelled) {
      caf::anon_send(job->session, atom::eose_v, job->sub_id, job->job_id);
      return;
    }
    if (job->count_only) {
      // Bounded: a COUNT runs in one go on the worker that serves its
      // connection's REQs, and counting a large store's `{}` took seconds.
      store::read_budget budget{job->max_count_scan};
      auto n = st.store->count(*job->filters, job->now, &budget);
      job->count_refused = budget.exhausted;
      caf::anon_send(job->session, atom::count_v, job->sub_id, job->job_id, n);
      return;
    }
    // A slow reader's queue must drain below the high-water mark before
    // another slice is read for it, also after a backoff: a slice per
    // backoff outran a reader slower than high_water_bytes per backoff
    // (permessage-deflate on a 100k-event REQ) until the outbound cap cut
    // it off. The connection's allowance of the relay's outbound budget is
    // the mark when lower, so that slices never fill the budget (where a
    // connection past its share would be ended by its next frame).
    const auto water = water_for(st.config, *job->conn);
    if (job->conn->queued_bytes() > water) {
      job->stalled += st.config.backoff;
      if (job->stalled > st.config.stall_limit) {
        job->conn->close("slow reader: a query waited too long for the client");
        caf::anon_send(job->session, atom::eose_v, job->sub_id, job->job_id);
        return;
      }
      self->delayed_send(self, st.config.backoff, atom::resume_v,
                         std::move(job));
      return;
    }
    job->stalled = caf::timespan{0};
    // Only a job's first step finds a page waiting, being read or handed
    // over (its session could not answer from it): it is taken either way
    // (dropped when larger than the allowance, as it goes out whole).
    std::unique_ptr<read_ahead_page> page;
    if (job->paging) {
      page = std::move(job->paging->ready);
      if (!page)
        page = job->paging->take_handed();
    }
    if (page) {
      std::optional<size_t> sent;
      if (page_fits(*page, st.config, water))
        sent = answer_from_page(*st.store, st.config, *job, std::move(page));
      if (sent) {
        ++st.read_ahead_hits;
        metrics::read_ahead_page(metrics::read_ahead_result::served);
        st.events_sent += *sent;
        if (job->filter_index >= job->filters->size()) {
          finished(job);
          return;
        }
        // The page was still being read: the job reads on from there.
      } else {
        ++st.read_ahead_drops;
        metrics::read_ahead_page(metrics::read_ahead_result::dropped);
      }
    }
    const bool pressed = water < st.config.high_water_bytes;
    auto slice = pressed ? run_slice(*st.store, with_high_water(st.config, water),
                                     *job, st.config.slice_events)
                         : run_slice(*st.store, st.config, *job,
                                     st.config.slice_events);
    st.events_sent += slice.events;
    if (slice.done) {
      finished(job);
      return;
    }
    // Yield to other jobs.
    self->send(self, atom::resume_v, std::move(job));
  };
  return {
    [self, step, finished](atom::query, query_job_ptr& job) {
      auto& st = self->state;
      ++st.jobs;
      if (job->paging)
        note_query(*job->paging, *job);
      switch (job->page_use) {
        case read_ahead_use::served:
          ++st.read_ahead_hits;
          st.events_sent += job->events_from_page;
          finished(job);
          return;
        case read_ahead_use::dropped:
          ++st.read_ahead_drops;
          break;
        case read_ahead_use::none:
          break;
      }
      step(job);
    },
    [step](atom::resume, query_job_ptr& job) { step(job); },
    [self, detached](atom::read_ahead, paging_state_ptr& paging,
                     uint64_t generation) {
      auto& st = self->state;
      // The connection has sent another REQ since: that one decides.
      if (paging->generation != generation)
        return;
      auto drop = [&] {
        paging->ready.reset();
        ++st.read_ahead_drops;
        metrics::read_ahead_page(metrics::read_ahead_result::dropped);
      };
      // The page handed over has waited `read_ahead_keep` for its REQ: its
      // memory goes back to the budget (unless its session took it).
      if (paging->handed_over) {
        if (paging->take_handed()) {
          ++st.read_ahead_drops;
          metrics::read_ahead_page(metrics::read_ahead_result::dropped);
        }
        return;
      }
      if (!paging->ready) {
        paging->ready = next_page(*st.store, *paging, unix_now());
        if (!paging->ready)
          return;
        ++st.read_ahead_reads;
        metrics::read_ahead_page(metrics::read_ahead_result::read);
      }
      if (!read_more(*st.store, st.config, *paging->ready,
                     st.config.read_ahead_step_events))
        return drop();
      // A few events at a time, behind whatever came meanwhile: the REQ
      // for this page, or other connections' jobs. Once complete, the same
      // message later is the page's deadline.
      if (paging->ready->complete) {
        paging->handed_over = true;
        paging->hand_over(std::move(paging->ready));
        self->delayed_send(self, st.config.read_ahead_keep, atom::read_ahead_v,
                           std::move(paging), generation);
        return;
      }
      self->send(self, atom::read_ahead_v, std::move(paging), generation);
      // Reading ahead is a guess; the threads that have work now go first:
      // the I/O thread writing the page just served, the sessions, and on
      // a small machine the client itself. Between two steps this thread
      // gives the CPU to any of them that waits for it (with none waiting
      // the call returns at once). bench_req, 2 cores, 3 alternated pairs
      // of 3 runs: a Node.js client paging with limit 500 + until saw its
      // first event 0.64-0.74 ms after each REQ instead of 1.04-1.50 ms,
      // and paged 94-111k events/s instead of 83-93k (its own CPU then 95%
      // of the wall time); bench_req's C++ client was unchanged (274-314k
      // against 273-295k). A lower nice value for the whole thread did as
      // much, but it would also slow the REQs this thread answers, and an
      // unprivileged process cannot raise a thread's priority back.
      if (detached)
        sched_yield();
    },
    [self](atom::neg, neg_job_ptr& job) {
      // A closed session's job still goes back: its frame must be finished.
      if (!job->state->closed)
        self->state.answer(*job);
      caf::anon_send(job->session, atom::neg_v, std::move(job));
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "jobs", static_cast<int64_t>(st.jobs));
      caf::put(result, "events_sent", static_cast<int64_t>(st.events_sent));
      caf::put(result, "neg_rounds", static_cast<int64_t>(st.neg_rounds));
      caf::put(result, "read_ahead_reads", static_cast<int64_t>(st.read_ahead_reads));
      caf::put(result, "read_ahead_hits", static_cast<int64_t>(st.read_ahead_hits));
      caf::put(result, "read_ahead_drops", static_cast<int64_t>(st.read_ahead_drops));
      if (st.config.read_ahead)
        caf::put(result, "read_ahead_bytes",
                 static_cast<int64_t>(st.config.read_ahead->held()));
      return result;
    },
  };
}

} // namespace ferry
