#pragma once

#include "messages/atoms.hpp"
#include "messages/ingest.hpp"
#include "messages/nostr/filter.hpp"
#include "messages/status.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

/// The filters of one REQ or COUNT, shared read-only between the session, the
/// hub and a query worker.
using filter_set_ptr = std::shared_ptr<const std::vector<nostr::filter>>;

/// A stored-events query in progress; defined in actors/query_worker.hpp.
struct query_job;
using query_job_ptr = std::shared_ptr<query_job>;

/// A connection's paging through a filter, as its query worker follows it to
/// read the next page ahead; defined in actors/query_worker.hpp.
struct paging_state;
using paging_state_ptr = std::shared_ptr<paging_state>;

/// One negentropy round (NIP-77) on its way to a query worker and back;
/// defined in actors/query_worker.hpp.
struct neg_job;
using neg_job_ptr = std::shared_ptr<neg_job>;
struct neg_session;

/// The CLIENT SESSION actor interface: one per WebSocket client.
using client_session_actor = caf::typed_actor<
  // One complete message from the client.
  caf::reacts_to<atom::frame, std::string>,
  // The client sent a message larger than the frame limit (it was discarded).
  caf::reacts_to<atom::oversize, uint64_t>,
  // The connection is gone, with the reason.
  caf::reacts_to<atom::closed, std::string>,
  // Live events from the hub for the listed subscriptions.
  caf::reacts_to<atom::publish, ingest_item_ptr, std::vector<std::string>>,
  // A query worker finished the stored part of subscription `sub` (job id).
  caf::reacts_to<atom::eose, std::string, uint64_t>,
  // A query worker counted `n` events for COUNT `sub` (job id).
  caf::reacts_to<atom::count, std::string, uint64_t, uint64_t>,
  // A query worker answered a negentropy round (its reply is in the job).
  caf::reacts_to<atom::neg, neg_job_ptr>,
  // INTERNAL: closes negentropy sessions that have been idle too long.
  caf::reacts_to<atom::tick>>;

/// A listener on the hub's change feed: an actor inside the node (an up
/// stream, the self-subscriber) that wants committed events as they land,
/// without a WebSocket loop-back.
using feed_listener_actor = caf::typed_actor<
  // A committed (or ephemeral) event that matches the listener's filters.
  caf::reacts_to<atom::feed, ingest_item_ptr>>;

/// The HUB fans committed events out to live subscriptions.
using hub_actor = caf::typed_actor<
  // The committed (and ephemeral) events of one commit, in commit order:
  // one message per commit, not per event.
  caf::reacts_to<atom::publish, ingest_batch>,
  // Opens or replaces subscription `sub` of a session.
  caf::reacts_to<atom::subscribe, client_session_actor, std::string,
                 filter_set_ptr>,
  // Closes subscription `sub` of a session.
  caf::reacts_to<atom::unsubscribe, client_session_actor, std::string>,
  // Closes every subscription of a session.
  caf::reacts_to<atom::unsubscribe, client_session_actor>,
  // Opens or replaces a listener's change feed (the filters select events).
  caf::reacts_to<atom::subscribe, atom::feed, feed_listener_actor,
                 filter_set_ptr>,
  // Closes a listener's change feed.
  caf::reacts_to<atom::unsubscribe, atom::feed, feed_listener_actor>,
  // Number of open subscriptions.
  caf::replies_to<atom::get, atom::count>::with<uint64_t>,
  // Counters and mailbox size.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

/// A QUERY WORKER streams stored events for REQs and counts them for COUNTs,
/// in slices, so one big query neither blocks others nor floods a socket.
using query_worker_actor = caf::typed_actor<
  // Starts a job.
  caf::reacts_to<atom::query, query_job_ptr>,
  // INTERNAL: continue a job after a slice.
  caf::reacts_to<atom::resume, query_job_ptr>,
  // INTERNAL: read the page a paging client is expected to ask for next,
  // unless its connection has sent another query since (the generation).
  caf::reacts_to<atom::read_ahead, paging_state_ptr, uint64_t>,
  // Answers a negentropy round (starting the engine on NEG-OPEN, with the
  // item set the job brings) and hands the job back to its session.
  caf::reacts_to<atom::neg, neg_job_ptr>,
  // Counters and mailbox size.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

} // namespace ferry

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::filter_set_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::query_job_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::paging_state_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::neg_job_ptr)

namespace ferry {

/// The RELAY SERVER owns the relay's listening socket; each accepted
/// WebSocket becomes a CLIENT SESSION.
using relay_server_actor = caf::typed_actor<
  // Open client connections.
  caf::replies_to<atom::get, atom::count>::with<uint64_t>,
  // Port, connections and mailbox size.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

} // namespace ferry
