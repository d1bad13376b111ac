#include "actors/relay/client_session.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/runtime/metrics.hpp"
#include "actors/relay/query_worker.hpp"
#include "messages/clock.hpp"
#include "messages/cluster/replication.hpp"
#include "messages/error.hpp"
#include "messages/nostr/client_message.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/nip42.hpp"
#include "messages/nostr/wire.hpp"
#include "messages/policy.hpp"
#include "net/ws_message_text.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include <openssl/rand.h>
#include <simdjson.h>

#include <chrono>

static_assert(simdjson::SIMDJSON_PADDING <= ferry::net::ws_message_padding,
              "a received frame has the room to be parsed where it is "
              "(nostr::open_client_frame)");

namespace ferry {

namespace {

/// Live events one subscription may hold back while its stored events stream.
constexpr size_t max_backlog = 10000;

using self_pointer = client_session_actor::stateful_pointer<client_session_state>;

/// What a handler did with a client message.
enum class frame_state {
  /// Answered; the connection may read the next message.
  done,
  /// Still in the pipeline; a later reply finishes it.
  pending,
};

frame_state notice(self_pointer self, std::string_view text) {
  self->state.send(nostr::notice_message(text));
  return frame_state::done;
}

frame_state closed(self_pointer self, std::string_view sub_id,
                   std::string_view text) {
  self->state.send(nostr::closed_message(sub_id, text));
  return frame_state::done;
}

/// NIP-42: true when this client may go on; otherwise it was told why.
bool authorized(self_pointer self) {
  auto& st = self->state;
  return !st.ctx->auth_required || !st.authenticated.empty();
}

/// The echo rule of cluster replication: an event that came from another
/// member (marked with that member's node key) is not sent live to a session
/// authenticated with that key, which is that member's own replication link.
bool is_echo(const client_session_state& st, const ingest_item& item) {
  if (st.authenticated.empty() || !cluster::is_peer_source(item.source))
    return false;
  nostr::bytes32 origin;
  return nostr::from_hex(item.authed, origin)
         && st.authenticated.count(origin) > 0;
}

constexpr const char* auth_required_text
  = "auth-required: this relay requires NIP-42 authentication";

/// Federation: why a peer node may not read from us (its link is not
/// active or is paused here, or we only receive); empty: it may.
std::string peer_read_refusal(self_pointer self) {
  const auto& gate = self->state.ctx->federation_peers;
  return gate ? gate->read_refusal(self->state.authenticated) : std::string{};
}

/// Federation: why a peer node may not send us events; empty: it may.
std::string peer_write_refusal(self_pointer self) {
  const auto& gate = self->state.ctx->federation_peers;
  return gate ? gate->write_refusal(self->state.authenticated) : std::string{};
}

/// Federation: a peer offered collections reads only within them.
bool beyond_collections(self_pointer self,
                        const std::vector<nostr::filter>& filters) {
  const auto& gate = self->state.ctx->federation_peers;
  return gate && gate->exceeds(self->state.authenticated, filters);
}

constexpr const char* beyond_collections_text
  = "restricted: a federation peer may read only the collections offered "
    "to it";

/// Keys one connection may authenticate as. NIP-42 lets a client add keys;
/// the bound keeps a client signing with fresh keys from growing the set
/// (it is scanned for every federation check and echo).
constexpr size_t max_authenticated_keys = 16;

frame_state on_auth(self_pointer self, const std::string& frame,
                    simdjson::ondemand::array_iterator& it,
                    const simdjson::ondemand::array_iterator& end) {
  auto& st = self->state;
  simdjson::ondemand::value value;
  nostr::event ev;
  if (it == end || (*it).get(value))
    return notice(self, "invalid: AUTH needs a signed event");
  if (auto reason = nostr::parse_event(value, ev); !reason.empty()) {
    // NIP-42: AUTH is answered with OK, like EVENT, whenever the id is known.
    if (auto id = nostr::salvage_event_id(frame)) {
      st.send(nostr::ok_message(*id, false, "invalid: " + reason));
      return frame_state::done;
    }
    return notice(self, "invalid: " + reason);
  }
  // Without a configured public URL the relay tag is taken as the client
  // names it: a relay reachable under several names cannot check it.
  std::string relay_url = st.ctx->public_url;
  if (relay_url.empty())
    for (const auto& tag : ev.tags)
      if (tag.size() >= 2 && tag[0] == "relay")
        relay_url = tag[1];
  auto reason = nostr::verify_auth_event(ev, relay_url, st.challenge,
                                         unix_now());
  if (!reason.empty()) {
    st.send(nostr::ok_message(ev.id, false, "invalid: " + reason));
    return frame_state::done;
  }
  if (st.authenticated.size() >= max_authenticated_keys
      && st.authenticated.count(ev.pubkey) == 0) {
    st.send(nostr::ok_message(
      ev.id, false,
      "blocked: this connection has authenticated "
        + std::to_string(max_authenticated_keys) + " keys, the most it may"));
    return frame_state::done;
  }
  st.authenticated.insert(ev.pubkey);
  st.send(nostr::ok_message(ev.id, true, ""));
  return frame_state::done;
}

frame_state on_event(self_pointer self, const std::string& frame,
                     simdjson::ondemand::array_iterator& it,
                     const simdjson::ondemand::array_iterator& end) {
  auto& st = self->state;
  if (it == end)
    return notice(self, "invalid: EVENT needs an event object");
  nostr::event ev;
  auto reason = nostr::read_event_element(it, end, ev);
  if (!reason.empty()) {
    if (auto id = nostr::salvage_event_id(frame)) {
      st.send(nostr::ok_message(*id, false, "invalid: " + reason));
      return frame_state::done;
    }
    return notice(self, "invalid: " + reason);
  }
  ++st.events_received;
  if (!authorized(self)) {
    st.send(nostr::ok_message(ev.id, false, auth_required_text));
    return frame_state::done;
  }
  if (auto refusal = peer_write_refusal(self); !refusal.empty()) {
    st.send(nostr::ok_message(ev.id, false, refusal));
    return frame_state::done;
  }
  auto max_future = st.ctx->limits.get()->max_future_seconds;
  if (ev.created_at > unix_now() + max_future) {
    st.send(nostr::ok_message(ev.id, false,
                              "invalid: created_at is more than "
                                + std::to_string(max_future)
                                + " seconds in the future"));
    return frame_state::done;
  }
  auto item = std::make_shared<ingest_item>();
  item->data.ev = std::move(ev);
  item->source = "client";
  item->source_info = address_of(st.conn->remote_address());
  if (!st.authenticated.empty())
    item->authed = nostr::to_hex(st.authenticated.count(item->data.ev.pubkey)
                                   ? item->data.ev.pubkey
                                   : *st.authenticated.begin());
  auto id = item->data.ev.id;
  // One stopped or restarting leaves its share to the others.
  auto verifier = next_running(st.ctx->verifiers, st.next_verifier);
  if (!verifier) {
    st.send(nostr::ok_message(id, false,
                              "error: no verifier is running; try again"));
    return frame_state::done;
  }
  self->request(verifier, caf::infinite, atom::ingest_v, std::move(item))
    .then(
      [self, id, frame_bytes = frame.size()](ingest_result& result) {
        auto& st = self->state;
        if (result.accepted())
          ++st.events_accepted;
        st.send(nostr::ok_message(id, result.accepted(), result.message));
        st.conn->frame_done(frame_bytes);
      },
      [self, id, frame_bytes = frame.size()](caf::error& err) {
        auto& st = self->state;
        st.send(nostr::ok_message(id, false, "error: " + render(err)));
        st.conn->frame_done(frame_bytes);
      });
  return frame_state::pending;
}

/// Reads the subscription id and the filters of a REQ or COUNT. On failure
/// it returns nullptr: without an id it has answered with a NOTICE;
/// otherwise `invalid` says why, for the caller's CLOSED (a REQ ends the
/// subscription it names first, so that its CLOSED comes after).
filter_set_ptr read_filters(self_pointer self, std::string_view verb,
                            std::string& sub_id, std::string& invalid,
                            simdjson::ondemand::array_iterator& it,
                            const simdjson::ondemand::array_iterator& end) {
  auto limits_now = self->state.ctx->limits.get();
  const auto& limits = *limits_now;
  std::string_view sid;
  if (it == end || (*it).get_string().get(sid)) {
    notice(self, std::string{"invalid: "} + std::string{verb}
                   + " needs a subscription id string");
    return nullptr;
  }
  sub_id = std::string{sid};
  if (sub_id.empty() || sub_id.size() > limits.max_subscription_id_length) {
    invalid = "invalid: subscription id must have 1 to "
              + std::to_string(limits.max_subscription_id_length)
              + " characters";
    return nullptr;
  }
  auto filters = std::make_shared<std::vector<nostr::filter>>();
  for (++it; it != end; ++it) {
    if (filters->size() == limits.max_filters) {
      invalid = "invalid: too many filters (max "
                + std::to_string(limits.max_filters) + ")";
      return nullptr;
    }
    nostr::filter f;
    auto reason = nostr::read_filter_element(it, f);
    if (!reason.empty()) {
      invalid = "invalid: " + reason;
      return nullptr;
    }
    filters->push_back(std::move(f));
  }
  if (filters->empty()) {
    invalid = "invalid: at least one filter is required";
    return nullptr;
  }
  return filters;
}

query_job_ptr make_job(self_pointer self, const std::string& sub_id,
                       filter_set_ptr filters, bool count_only) {
  auto& st = self->state;
  auto job = std::make_shared<query_job>();
  job->conn = st.conn;
  job->session = caf::actor_cast<client_session_actor>(self);
  job->sub_id = sub_id;
  job->job_id = st.next_job_id++;
  job->filters = std::move(filters);
  job->count_only = count_only;
  auto limits = st.ctx->limits.get();
  job->default_limit = limits->default_limit;
  job->max_count_scan = limits->max_count_scan;
  job->max_limit = limits->max_limit;
  job->now = unix_now();
  if (!count_only && st.ctx->queries.read_ahead) {
    if (!st.paging)
      st.paging = std::make_shared<paging_state>();
    job->paging = st.paging;
  }
  return job;
}

/// One connection always uses the same worker, so its queries keep their order.
const handle_slot_ptr<query_worker_actor>& worker_slot_for(self_pointer self) {
  const auto& workers = self->state.ctx->query_workers;
  return workers[self->id() % workers.size()];
}

query_worker_actor worker_for(self_pointer self) {
  return worker_slot_for(self)->get();
}

/// How often a session looks for the hub's next incarnation after it went
/// down.
constexpr auto hub_retry_delay = std::chrono::milliseconds{50};

/// Sends to the hub. Between two incarnations it is lost; the session
/// registers every subscription with the next one (`register_with_hub`).
template <class... Ts>
void to_hub(self_pointer self, Ts&&... xs) {
  if (auto hub = self->state.ctx->hub->get())
    self->send(hub, std::forward<Ts>(xs)...);
}

/// Watches the hub a subscription was just registered with: a new
/// incarnation knows none of the session's subscriptions.
void watch_hub(self_pointer self) {
  auto& st = self->state;
  auto hub = st.ctx->hub->get();
  if (!hub || st.hub_registered == hub.address())
    return;
  st.hub_registered = hub.address();
  self->monitor(hub);
}

/// Registers every open subscription with the hub's current incarnation,
/// after the one they were registered with went down; tries again shortly
/// while the supervisor has not started the next one. Events the hub took
/// in between reach no one, as for a client that reconnects.
void register_with_hub(self_pointer self) {
  auto& st = self->state;
  auto hub = st.ctx->hub->get();
  if (!hub || hub.address() == st.hub_registered) {
    ++st.hub_retries_pending;
    self->delayed_send(self, hub_retry_delay, atom::tick_v);
    return;
  }
  for (auto& [sub_id, sub] : st.subscriptions)
    self->send(hub, atom::subscribe_v,
               caf::actor_cast<client_session_actor>(self), sub_id,
               sub.job->filters);
  log::debug("{}: registered {} subscription(s) with the restarted hub",
            self->name(), st.subscriptions.size());
  st.hub_registered = hub.address();
  self->monitor(hub);
}

/// Notes a job handed to `worker`, and watches that incarnation.
void note_at_worker(self_pointer self, const query_worker_actor& worker,
                    uint64_t job_id, client_session_state::job_at_worker::kind what,
                    const std::string& sub_id,
                    std::shared_ptr<neg_session> neg = nullptr) {
  auto& st = self->state;
  st.at_worker.emplace(job_id, client_session_state::job_at_worker{
                                 what, sub_id, std::move(neg), worker.address(),
                                 st.frame_in_hand});
  if (worker.address() != st.worker_watched) {
    self->monitor(worker);
    st.worker_watched = worker.address();
  }
}

/// Takes a job's answer off `at_worker`: false when it was failed already
/// (its worker went down before this answer was read).
bool answered_by_worker(self_pointer self, uint64_t job_id) {
  auto& st = self->state;
  auto at = st.at_worker.find(job_id);
  if (at == st.at_worker.end())
    return false;
  st.conn->frame_done(at->second.frame_bytes);
  st.at_worker.erase(at);
  return true;
}

/// Starts a query job; false when no worker is running right now.
bool start_job(self_pointer self, query_job_ptr job) {
  auto worker = worker_for(self);
  if (!worker)
    return false;
  using kind = client_session_state::job_at_worker::kind;
  note_at_worker(self, worker, job->job_id,
                 job->count_only ? kind::count : kind::req, job->sub_id);
  self->send(worker, atom::query_v, std::move(job));
  return true;
}

/// The stored part of `sub` is out, its EOSE queued behind it: the live
/// events held back meanwhile follow, and later ones go straight out.
void go_live(self_pointer self, const std::string& sub_id,
             client_session_state::subscription& sub) {
  auto& st = self->state;
  sub.live = true;
  for (auto& item : sub.backlog)
    if (!sub.job->sent.contains(item->data.ev.id))
      st.send(nostr::event_message(sub_id, item->data.json));
  sub.backlog.clear();
  sub.backlog.shrink_to_fit();
}

void cancel_subscription(self_pointer self, const std::string& sub_id) {
  auto& st = self->state;
  auto i = st.subscriptions.find(sub_id);
  if (i == st.subscriptions.end())
    return;
  i->second.job->cancelled = true;
  st.subscriptions.erase(i);
  to_hub(self, atom::unsubscribe_v,
         caf::actor_cast<client_session_actor>(self), sub_id);
}

frame_state on_req(self_pointer self, simdjson::ondemand::array_iterator& it,
                   const simdjson::ondemand::array_iterator& end) {
  auto& st = self->state;
  std::string sub_id;
  std::string invalid;
  auto filters = read_filters(self, "REQ", sub_id, invalid, it, end);
  // NIP-01: a REQ with an open id replaces that subscription, and a CLOSED
  // ends it: a refused REQ leaves nothing of the one it named running, by
  // the time the client reads its CLOSED.
  auto refuse = [&](std::string_view text) {
    cancel_subscription(self, sub_id);
    return closed(self, sub_id, text);
  };
  if (!filters)
    return invalid.empty() ? frame_state::done : refuse(invalid);
  if (!authorized(self))
    return refuse(auth_required_text);
  if (auto refusal = peer_read_refusal(self); !refusal.empty())
    return refuse(refusal);
  if (beyond_collections(self, *filters))
    return refuse(beyond_collections_text);
  auto existing = st.subscriptions.find(sub_id);
  if (existing != st.subscriptions.end()) {
    // NIP-01: a REQ with an open id replaces that subscription.
    existing->second.job->cancelled = true;
    st.subscriptions.erase(existing);
  } else if (auto max = st.ctx->limits.get()->max_subscriptions;
             st.subscriptions.size() >= max) {
    return closed(self, sub_id,
                  "blocked: too many open subscriptions (max "
                    + std::to_string(max) + ")");
  }
  // Live first, then the stored part: nothing committed in between is missed.
  to_hub(self, atom::subscribe_v, caf::actor_cast<client_session_actor>(self),
         sub_id, filters);
  if (st.hub_retries_pending == 0)
    watch_hub(self);
  auto job = make_job(self, sub_id, std::move(filters), false);
  st.subscriptions[sub_id].job = job;
  // Every REQ, a small page too, is read by a worker: a session that served
  // a page's 500 events itself, on its scheduler thread (from memory only,
  // counting file reads), served `limit 500` pages slower than the worker
  // does, hand-off included, in 25 of 28 alternated bench_req pairs (by 14%
  // at the median), and no sooner to their first event. A page the worker
  // has already read ahead is only copied out, so the session sends it
  // itself: the client's next REQ then waits for no other thread to wake.
  // The job still goes to the worker, which reads the next page ahead.
  if (st.at_worker.empty() && worker_for(self))
    answer_from_handed_page(*st.ctx->store, st.ctx->queries, *job);
  if (!start_job(self, std::move(job))) {
    cancel_subscription(self, sub_id);
    return closed(self, sub_id, "error: the query worker is restarting; try again");
  }
  return frame_state::pending;
}

frame_state on_count(self_pointer self, simdjson::ondemand::array_iterator& it,
                     const simdjson::ondemand::array_iterator& end) {
  auto& st = self->state;
  std::string sub_id;
  std::string invalid;
  auto filters = read_filters(self, "COUNT", sub_id, invalid, it, end);
  if (!filters)
    return invalid.empty() ? frame_state::done : closed(self, sub_id, invalid);
  if (!authorized(self))
    return closed(self, sub_id, auth_required_text);
  if (auto refusal = peer_read_refusal(self); !refusal.empty())
    return closed(self, sub_id, refusal);
  if (beyond_collections(self, *filters))
    return closed(self, sub_id, beyond_collections_text);
  // Each COUNT is work its connection's worker does in one go: a client
  // gets as many answered at once as it may hold subscriptions.
  if (auto same = st.counts.find(sub_id); same != st.counts.end()) {
    same->second->cancelled = true;
    st.counts.erase(same);
  } else if (auto max = st.ctx->limits.get()->max_subscriptions;
             st.counts.size() >= max) {
    return closed(self, sub_id,
                  "blocked: too many COUNTs at once (max " + std::to_string(max)
                    + ")");
  }
  auto job = make_job(self, sub_id, std::move(filters), true);
  st.counts[sub_id] = job;
  if (!start_job(self, std::move(job))) {
    st.counts.erase(sub_id);
    return closed(self, sub_id, "error: the query worker is restarting; try again");
  }
  return frame_state::pending;
}

frame_state on_close(self_pointer self, simdjson::ondemand::array_iterator& it,
                     const simdjson::ondemand::array_iterator& end) {
  std::string_view sid;
  if (it == end || (*it).get_string().get(sid))
    return notice(self, "invalid: CLOSE needs a subscription id string");
  cancel_subscription(self, std::string{sid});
  return frame_state::done;
}

// -- negentropy (NIP-77) ------------------------------------------------------------

frame_state neg_err(self_pointer self, std::string_view sub_id,
                    std::string_view reason) {
  self->state.send(nostr::neg_err_message(sub_id, reason));
  return frame_state::done;
}

/// Forgets a negentropy session; a round still at the worker is dropped when
/// it comes back.
void close_negentropy(self_pointer self, const std::string& sub_id) {
  auto& sessions = self->state.negentropy;
  auto i = sessions.find(sub_id);
  if (i == sessions.end())
    return;
  i->second.state->closed = true;
  sessions.erase(i);
}

/// Reads the subscription id of a NEG-* message; on failure it has already
/// answered (with a NOTICE: without an id there is nothing to address a
/// NEG-ERR to).
bool read_neg_sub_id(self_pointer self, std::string_view verb,
                     std::string& sub_id,
                     simdjson::ondemand::array_iterator& it,
                     const simdjson::ondemand::array_iterator& end) {
  std::string_view sid;
  if (it == end || (*it).get_string().get(sid)) {
    notice(self, "invalid: " + std::string{verb}
                   + " needs a subscription id string");
    return false;
  }
  sub_id = std::string{sid};
  ++it;
  return true;
}

/// Reads the hex message that ends a NEG-OPEN or NEG-MSG. On failure it has
/// already answered with a NEG-ERR.
bool read_neg_message(self_pointer self, std::string_view verb,
                      const std::string& sub_id, std::string& binary,
                      simdjson::ondemand::array_iterator& it,
                      const simdjson::ondemand::array_iterator& end) {
  auto reason = nostr::read_neg_message_element(verb, it, end, binary);
  if (!reason.empty())
    neg_err(self, sub_id, "invalid: " + reason);
  return reason.empty();
}

void schedule_idle_check(self_pointer self, caf::timespan after) {
  auto& st = self->state;
  if (st.idle_check_scheduled || st.negentropy.empty())
    return;
  st.idle_check_scheduled = true;
  self->delayed_send(self, after, atom::tick_v);
}

/// A round of `sub_id` is on its way: the session is busy until it is
/// answered.
void round_started(self_pointer self, const std::string& sub_id) {
  auto& entry = self->state.negentropy[sub_id];
  ++entry.in_flight;
  entry.last_active = self->clock().now();
}

/// Hands one round to the connection's worker; false when none is running.
bool start_neg_job(self_pointer self, neg_job_ptr job) {
  auto worker = worker_for(self);
  if (!worker)
    return false;
  round_started(self, job->sub_id);
  job->job_id = self->state.next_job_id++;
  note_at_worker(self, worker, job->job_id,
                 client_session_state::job_at_worker::kind::negentropy,
                 job->sub_id, job->state);
  self->send(worker, atom::neg_v, std::move(job));
  return true;
}

frame_state on_neg_open(self_pointer self,
                        simdjson::ondemand::array_iterator& it,
                        const simdjson::ondemand::array_iterator& end) {
  auto& st = self->state;
  const auto& neg = st.ctx->negentropy;
  std::string sub_id;
  if (!read_neg_sub_id(self, "NEG-OPEN", sub_id, it, end))
    return frame_state::done;
  const auto max_id = st.ctx->limits.get()->max_subscription_id_length;
  if (sub_id.empty() || sub_id.size() > max_id)
    return neg_err(self, sub_id,
                   "invalid: subscription id must have 1 to "
                     + std::to_string(max_id) + " characters");
  // NIP-77: opening an id that is open replaces that session.
  close_negentropy(self, sub_id);
  nostr::filter f;
  if (it == end)
    return neg_err(self, sub_id, "invalid: NEG-OPEN needs a filter");
  auto reason = nostr::read_filter_element(it, f);
  if (!reason.empty())
    return neg_err(self, sub_id, "invalid: filter: " + reason);
  ++it;
  std::string query;
  if (!read_neg_message(self, "NEG-OPEN", sub_id, query, it, end))
    return frame_state::done;
  if (!authorized(self))
    return neg_err(self, sub_id, auth_required_text);
  if (auto refusal = peer_read_refusal(self); !refusal.empty())
    return neg_err(self, sub_id, refusal);
  if (beyond_collections(self, {f}))
    return neg_err(self, sub_id, beyond_collections_text);
  if (st.negentropy.size() >= neg.max_sessions_per_connection)
    return neg_err(self, sub_id,
                   "blocked: too many open negentropy sessions (max "
                     + std::to_string(neg.max_sessions_per_connection) + ")");
  // Its first round goes to the worker once the item set is there; the
  // incarnation running now is the one watched for it.
  auto worker = worker_for(self);
  if (!worker)
    return neg_err(self, sub_id, "error: the query worker is restarting; try again");
  auto job = std::make_shared<neg_job>();
  job->session = caf::actor_cast<client_session_actor>(self);
  job->sub_id = sub_id;
  job->job_id = st.next_job_id++;
  job->state = std::make_shared<neg_session>();
  job->frame_size_limit = neg.frame_size_limit;
  job->query = std::move(query);
  st.negentropy[sub_id].state = job->state;
  round_started(self, sub_id);
  note_at_worker(self, worker, job->job_id,
                 client_session_state::job_at_worker::kind::negentropy, sub_id,
                 job->state);
  // The item set is found or built off the actor threads; the first round
  // then goes to this connection's worker, like every later one.
  st.ctx->item_sets->acquire(
    f, unix_now(),
    [job, worker = worker_slot_for(self)](item_set_result result) mutable {
      if (result.lease && !job->state->closed) {
        if (auto w = worker->get()) {
          job->lease = std::move(result.lease);
          caf::anon_send(w, atom::neg_v, std::move(job));
          return;
        }
        result.error = "error: the query worker is restarting; try again";
      }
      if (!result.error.empty()) {
        job->failed = true;
        job->reply = nostr::neg_err_message(job->sub_id, result.error);
      }
      caf::anon_send(job->session, atom::neg_v, std::move(job));
    });
  schedule_idle_check(self, neg.idle_timeout);
  return frame_state::pending;
}

frame_state on_neg_msg(self_pointer self,
                       simdjson::ondemand::array_iterator& it,
                       const simdjson::ondemand::array_iterator& end) {
  auto& st = self->state;
  std::string sub_id;
  if (!read_neg_sub_id(self, "NEG-MSG", sub_id, it, end))
    return frame_state::done;
  std::string query;
  if (!read_neg_message(self, "NEG-MSG", sub_id, query, it, end)) {
    close_negentropy(self, sub_id);
    return frame_state::done;
  }
  auto i = st.negentropy.find(sub_id);
  if (i == st.negentropy.end())
    return neg_err(self, sub_id,
                   "closed: no open negentropy session with this id");
  if (!i->second.opened) {
    close_negentropy(self, sub_id);
    return neg_err(self, sub_id,
                   "invalid: NEG-MSG before the relay answered NEG-OPEN");
  }
  if (auto refusal = peer_read_refusal(self); !refusal.empty()) {
    close_negentropy(self, sub_id);
    return neg_err(self, sub_id, refusal);
  }
  auto job = std::make_shared<neg_job>();
  job->session = caf::actor_cast<client_session_actor>(self);
  job->sub_id = sub_id;
  job->state = i->second.state;
  job->query = std::move(query);
  if (!start_neg_job(self, std::move(job))) {
    close_negentropy(self, sub_id);
    return neg_err(self, sub_id,
                   "error: the query worker is restarting; try again");
  }
  return frame_state::pending;
}

frame_state on_neg_close(self_pointer self,
                         simdjson::ondemand::array_iterator& it,
                         const simdjson::ondemand::array_iterator& end) {
  std::string sub_id;
  if (read_neg_sub_id(self, "NEG-CLOSE", sub_id, it, end))
    close_negentropy(self, sub_id);
  return frame_state::done;
}

/// A worker's answer to one round.
void on_neg_answer(self_pointer self, neg_job& job) {
  auto& st = self->state;
  if (!answered_by_worker(self, job.job_id))
    return;
  auto i = st.negentropy.find(job.sub_id);
  // Closed or replaced while the worker was busy: the client no longer
  // expects this answer.
  if (i == st.negentropy.end() || i->second.state != job.state)
    return;
  st.send(std::move(job.reply));
  if (job.failed) {
    close_negentropy(self, job.sub_id);
    return;
  }
  --i->second.in_flight;
  i->second.opened = true;
  i->second.last_active = self->clock().now();
}

/// Closes the sessions idle for longer than the timeout; looks again when
/// the next one could expire.
void on_idle_check(self_pointer self) {
  auto& st = self->state;
  st.idle_check_scheduled = false;
  const auto timeout = st.ctx->negentropy.idle_timeout;
  const auto now = self->clock().now();
  auto next = caf::timespan{timeout};
  for (auto i = st.negentropy.begin(); i != st.negentropy.end();) {
    auto& entry = i->second;
    auto idle = now - entry.last_active;
    if (entry.in_flight == 0 && idle >= timeout) {
      st.send(nostr::neg_err_message(
        i->first, "closed: negentropy session idle for more than "
                    + std::to_string(timeout.count()) + " seconds"));
      entry.state->closed = true;
      i = st.negentropy.erase(i);
      continue;
    }
    if (entry.in_flight == 0)
      next = std::min(next, caf::timespan{timeout - idle});
    ++i;
  }
  schedule_idle_check(self, next);
}

frame_state on_frame(self_pointer self, std::string& frame) {
  nostr::client_frame msg;
  if (auto reason = nostr::open_client_frame(frame, msg); !reason.empty())
    return notice(self, "invalid: " + reason);
  auto verb = msg.verb;
  auto& it = msg.it;
  const auto& end = msg.end;
  metrics::message_received(verb);
  if (verb == "EVENT")
    return on_event(self, frame, it, end);
  if (verb == "REQ")
    return on_req(self, it, end);
  if (verb == "CLOSE")
    return on_close(self, it, end);
  if (verb == "COUNT")
    return on_count(self, it, end);
  if (verb == "AUTH")
    return on_auth(self, frame, it, end);
  if (self->state.ctx->negentropy.enabled) {
    if (verb == "NEG-OPEN")
      return on_neg_open(self, it, end);
    if (verb == "NEG-MSG")
      return on_neg_msg(self, it, end);
    if (verb == "NEG-CLOSE")
      return on_neg_close(self, it, end);
  }
  return notice(self, "invalid: unknown message type \"" + std::string{verb}
                        + "\"");
}

/// Worker incarnation `worker` has ended (a stop, a crash, a restart): the
/// answers of the jobs it held will never come. Each one is failed as its
/// client expects, CLOSED for a REQ or COUNT and NEG-ERR for a negentropy
/// round, and its message finished, so the connection keeps its in-flight
/// slots. Jobs sent to a later incarnation meanwhile are not its.
void fail_jobs_at(self_pointer self, const caf::actor_addr& worker) {
  auto& st = self->state;
  constexpr std::string_view stopped = "error: the query worker stopped; try again";
  using kind = client_session_state::job_at_worker::kind;
  if (worker == st.worker_watched)
    st.worker_watched = {};
  for (auto at = st.at_worker.begin(); at != st.at_worker.end();) {
    if (at->second.worker != worker) {
      ++at;
      continue;
    }
    auto job_id = at->first;
    auto job = std::move(at->second);
    at = st.at_worker.erase(at);
    st.conn->frame_done(job.frame_bytes);
    if (job.what == kind::req) {
      auto i = st.subscriptions.find(job.sub_id);
      if (i == st.subscriptions.end() || i->second.job->job_id != job_id)
        continue;
      st.send(nostr::closed_message(job.sub_id, stopped));
      cancel_subscription(self, job.sub_id);
    } else if (job.what == kind::count) {
      auto i = st.counts.find(job.sub_id);
      if (i == st.counts.end() || i->second->job_id != job_id)
        continue;
      st.counts.erase(i);
      st.send(nostr::closed_message(job.sub_id, stopped));
    } else {
      auto i = st.negentropy.find(job.sub_id);
      if (i == st.negentropy.end() || i->second.state != job.neg)
        continue;
      st.send(nostr::neg_err_message(job.sub_id, stopped));
      close_negentropy(self, job.sub_id);
    }
  }
}

} // namespace

client_session_state::~client_session_state() {
  if (ctx) {
    --ctx->live_sessions;
    metrics::connection_closed();
  }
}

void client_session_state::send(std::string frame) {
  conn->send(std::make_shared<const std::string>(std::move(frame)));
}

client_session_actor::behavior_type
client_session(client_session_actor::stateful_pointer<client_session_state> self,
               std::shared_ptr<net::ws_connection> conn,
               std::shared_ptr<const relay_context> ctx) {
  self->state.conn = std::move(conn);
  self->state.ctx = std::move(ctx);
  // Spread sessions over the verifiers from the start.
  self->state.next_verifier = self->id();
  metrics::connection_opened();
  // NIP-42: the challenge is announced on connect where authentication is
  // required or asked for; elsewhere clients that never authenticate see no
  // extra frame.
  nostr::bytes32 nonce;
  RAND_bytes(nonce.data(), static_cast<int>(nonce.size()));
  self->state.challenge = nostr::to_hex(nonce);
  if (self->state.ctx->auth_required || self->state.ctx->announce_auth)
    self->state.send("[\"AUTH\",\"" + self->state.challenge + "\"]");
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    // A query worker (any incarnation a job went to) or the hub.
    fail_jobs_at(self, dm.source);
    if (dm.source != st.hub_registered || st.hub_retries_pending > 0)
      return;
    ++st.hub_retries_pending;
    self->delayed_send(self, hub_retry_delay, atom::tick_v);
  });
  return {
    [self](atom::frame, std::string& frame) {
      self->state.frame_in_hand = frame.size();
      if (on_frame(self, frame) == frame_state::done)
        self->state.conn->frame_done(frame.size());
    },
    [self](atom::oversize, uint64_t bytes) {
      self->state.send(nostr::notice_message(
        "invalid: message too large (" + std::to_string(bytes)
        + " bytes, max " + std::to_string(self->state.ctx->limits.get()->max_frame_bytes)
        + ")"));
    },
    [self](atom::closed, const std::string&) {
      auto& st = self->state;
      for (auto& [sub_id, sub] : st.subscriptions)
        sub.job->cancelled = true;
      for (auto& [sub_id, job] : st.counts)
        job->cancelled = true;
      for (auto& [sub_id, neg] : st.negentropy)
        neg.state->closed = true;
      to_hub(self, atom::unsubscribe_v,
             caf::actor_cast<client_session_actor>(self));
      self->quit();
    },
    [self](atom::publish, const ingest_item_ptr& item,
           const std::vector<std::string>& sub_ids) {
      auto& st = self->state;
      // A link suspended while its subscriptions run ends them.
      if (auto refusal = peer_read_refusal(self); !refusal.empty()) {
        for (auto& sub_id : sub_ids)
          if (st.subscriptions.count(sub_id) != 0) {
            st.send(nostr::closed_message(sub_id, refusal));
            cancel_subscription(self, sub_id);
          }
        return;
      }
      if (is_echo(st, *item))
        return;
      for (auto& sub_id : sub_ids) {
        auto i = st.subscriptions.find(sub_id);
        if (i == st.subscriptions.end())
          continue;
        auto& sub = i->second;
        // The hub matched the filters it knew when it published: a REQ
        // that replaced this id since has its own.
        if (!nostr::matches_any(*sub.job->filters, item->data.ev))
          continue;
        if (sub.live) {
          // The writer hands an event to the hub after its commit, and the
          // hub reaches us later than the query worker may read the store:
          // an event the stored part already sent must not come again.
          if (!sub.job->sent.contains(item->data.ev.id))
            st.send(nostr::event_message(sub_id, item->data.json));
        } else if (sub.backlog.size() < max_backlog) {
          sub.backlog.push_back(item);
        } else {
          st.send(nostr::closed_message(
            sub_id, "error: too many live events while stored events were "
                    "being sent; subscribe again"));
          cancel_subscription(self, sub_id);
        }
      }
    },
    [self](atom::eose, const std::string& sub_id, uint64_t job_id) {
      auto& st = self->state;
      // Every query job finishes exactly one client message.
      if (!answered_by_worker(self, job_id))
        return;
      auto i = st.subscriptions.find(sub_id);
      if (i == st.subscriptions.end() || i->second.job->job_id != job_id)
        return;
      // The worker has queued the EOSE frame behind the stored events.
      go_live(self, sub_id, i->second);
    },
    [self](atom::count, const std::string& sub_id, uint64_t job_id,
           uint64_t n) {
      auto& st = self->state;
      if (!answered_by_worker(self, job_id))
        return;
      auto i = st.counts.find(sub_id);
      if (i == st.counts.end() || i->second->job_id != job_id)
        return;
      auto refused = i->second->count_refused;
      // The budget the worker counted with: a reload since may have changed
      // the limit.
      auto budget = i->second->max_count_scan;
      st.counts.erase(i);
      // NIP-45: a COUNT the relay will not fulfil is answered CLOSED.
      if (refused)
        st.send(nostr::closed_message(
          sub_id, "blocked: this count would examine more than "
                    + std::to_string(budget)
                    + " stored events; narrow its filters"));
      else
        st.send(nostr::count_message(sub_id, n));
    },
    [self](atom::neg, neg_job_ptr& job) { on_neg_answer(self, *job); },
    [self](atom::tick) {
      // Ticks are alike: each one does the job due first.
      if (self->state.hub_retries_pending > 0) {
        --self->state.hub_retries_pending;
        register_with_hub(self);
        return;
      }
      on_idle_check(self);
    },
  };
}

} // namespace ferry
