#include "actors/relay/query_worker.hpp"

#include "messages/error.hpp"
#include "messages/nostr/wire.hpp"

#include <caf/send.hpp>

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
    ++job.filter_index;
    job.resume.reset();
    job.delivered_in_filter = 0;
  };
  size_t budget = max_events;
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
    auto more = store.scan(f, job.now, job.resume, want, on_event);
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

query_worker_actor::behavior_type
query_worker(query_worker_actor::stateful_pointer<query_worker_state> self,
             const store::event_store* store, query_worker_config config) {
  self->state.store = store;
  self->state.config = config;
  auto step = [self](query_job_ptr& job) {
    auto& st = self->state;
    if (job->cancelled) {
      caf::anon_send(job->session, atom::eose_v, job->sub_id, job->job_id);
      return;
    }
    if (job->count_only) {
      auto n = st.store->count(*job->filters, job->now);
      caf::anon_send(job->session, atom::count_v, job->sub_id, job->job_id, n);
      return;
    }
    // A slow reader's queue must drain below the high-water mark before
    // another slice is read for it, also after a backoff: a slice per
    // backoff outran a reader slower than high_water_bytes per backoff
    // (permessage-deflate on a 100k-event REQ) until the outbound cap cut
    // it off.
    if (job->conn->queued_bytes() > st.config.high_water_bytes) {
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
    auto slice = run_slice(*st.store, st.config, *job, st.config.slice_events);
    st.events_sent += slice.events;
    if (slice.done) {
      caf::anon_send(job->session, atom::eose_v, job->sub_id, job->job_id);
      return;
    }
    // Yield to other jobs.
    self->send(self, atom::resume_v, std::move(job));
  };
  return {
    [self, step](atom::query, query_job_ptr& job) {
      ++self->state.jobs;
      step(job);
    },
    [step](atom::resume, query_job_ptr& job) { step(job); },
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
      return result;
    },
  };
}

} // namespace ferry
