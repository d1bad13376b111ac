#pragma once

#include "actors/federation/peer_gate.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/live_value.hpp"
#include "actors/relay/item_set_cache.hpp"
#include "actors/relay/query_worker.hpp"
#include "config/config.hpp"
#include "messages/relay.hpp"
#include "net/ws_server.hpp"
#include "store/event_store.hpp"

#include <caf/actor_clock.hpp>

#include <atomic>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

/// What every client session of one relay shares: its limits and the actors
/// that do the work.
struct relay_context {
  /// Read by every session at each message: a config reload swaps in new
  /// values (those a session applies; the connection-level ones keep their
  /// start values).
  live_value<config::relay_limits> limits;
  /// NIP-77 sessions: whether they are served, and their bounds.
  config::negentropy_config negentropy;
  /// NIP-77 item sets, shared node-wide within one memory budget; null when
  /// negentropy is disabled.
  std::shared_ptr<item_set_cache> item_sets;
  /// NIP-42: clients must authenticate before REQ, COUNT and EVENT.
  bool auth_required = false;
  /// NIP-42: the challenge goes out on connect even when authentication is
  /// optional (in a cluster, members' replication links authenticate, which
  /// the echo rule needs).
  bool announce_auth = false;
  /// NIP-42: the URL AUTH events must name; empty: not checked.
  std::string public_url;
  const store::event_store* store = nullptr;
  std::vector<handle_slot_ptr<verifier_actor>> verifiers;
  std::vector<handle_slot_ptr<query_worker_actor>> query_workers;
  /// The query workers' tunables, and how much of a REQ a session serves
  /// itself.
  query_worker_config queries;
  handle_slot_ptr<hub_actor> hub;
  /// Federation peers refused while their link is not active; null when
  /// federation is off.
  std::shared_ptr<const peer_gate> federation_peers;
  /// Sessions alive; the node waits for zero before it stops the I/O threads
  /// their sockets belong to.
  mutable std::atomic<int64_t> live_sessions{0};
};

struct client_session_state {
  /// One open REQ.
  struct subscription {
    /// The job streaming its stored events; done once `live` is set.
    query_job_ptr job;
    /// EOSE has been sent; live events go straight out.
    bool live = false;
    /// Live events that arrived before EOSE, sent right after it.
    std::vector<ingest_item_ptr> backlog;
  };

  std::shared_ptr<net::ws_connection> conn;
  std::shared_ptr<const relay_context> ctx;
  std::map<std::string, subscription> subscriptions;
  /// Running COUNT jobs, by subscription id.
  std::map<std::string, query_job_ptr> counts;

  /// One open negentropy session (NIP-77); its ids are a namespace of their
  /// own, apart from REQ subscriptions.
  struct negentropy_session {
    std::shared_ptr<neg_session> state;
    /// Rounds at a worker (or NEG-OPEN waiting for its item set) and not
    /// answered yet; a busy session is not idle.
    size_t in_flight = 0;
    /// NEG-OPEN has been answered; a NEG-MSG before that is out of order.
    bool opened = false;
    caf::actor_clock::time_point last_active;
  };
  std::map<std::string, negentropy_session> negentropy;
  /// A tick to close idle negentropy sessions is on its way.
  bool idle_check_scheduled = false;

  /// A job handed to the query worker and not answered yet.
  struct job_at_worker {
    enum class kind { req, count, negentropy } what;
    std::string sub_id;
    /// The negentropy session of a round; null for REQ and COUNT.
    std::shared_ptr<neg_session> neg;
    /// The worker incarnation it went to.
    caf::actor_addr worker;
    /// Size of the client message it answers, for `frame_done`.
    size_t frame_bytes;
  };
  /// Jobs at the query worker (REQ, COUNT, negentropy rounds) by job id; the
  /// worker's answer finishes each one's client message. A worker that ends
  /// loses the jobs it holds (its mailbox and timers go with it), so the
  /// session monitors the incarnation it hands them to, and fails them when
  /// it goes down.
  std::map<uint64_t, job_at_worker> at_worker;
  /// The last worker incarnation a job went to (monitored).
  caf::actor_addr worker_watched;
  /// The hub incarnation the subscriptions are registered with (monitored).
  caf::actor_addr hub_registered;
  /// Ticks on their way to register the subscriptions with the hub again:
  /// after a hub restart, their live part would end otherwise. A tick does
  /// this job while one is due, else the idle check.
  size_t hub_retries_pending = 0;
  /// NIP-42 challenge sent to this client.
  std::string challenge;
  /// Pubkeys this client has proven (NIP-42).
  std::set<nostr::bytes32> authenticated;
  /// Size of the client message being handled: a job it starts at the
  /// query worker finishes it later, and gives its size back then.
  size_t frame_in_hand = 0;
  uint64_t next_job_id = 1;
  /// The connection's paging, followed by its query worker (made at the
  /// first REQ while read-ahead is on).
  paging_state_ptr paging;
  size_t next_verifier = 0;
  uint64_t events_received = 0;
  uint64_t events_accepted = 0;

  /// Queues one frame for the client.
  void send(std::string frame);

  ~client_session_state();

  static inline constexpr const char* name = "client-session";
};

/// A CLIENT SESSION: speaks NIP-01, NIP-42, NIP-45 and NIP-77 with one
/// WebSocket client.
/// Every message the client sends is finished (answered, or its query done)
/// before the connection's in-flight slot is released, so a client can never
/// have more than `max_inflight_messages` messages in the pipeline.
client_session_actor::behavior_type
client_session(client_session_actor::stateful_pointer<client_session_state> self,
               std::shared_ptr<net::ws_connection> conn,
               std::shared_ptr<const relay_context> ctx);

} // namespace ferry
