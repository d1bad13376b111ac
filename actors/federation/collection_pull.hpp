#pragma once

#include "actors/federation/collections.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/signed_http.hpp"
#include "actors/sync/id_fetcher.hpp"
#include "actors/sync/neg_catchup.hpp"
#include "messages/federation_call.hpp"
#include "messages/ingest.hpp"
#include "messages/nostr/keys.hpp"
#include "net/io_runtime.hpp"
#include "net/ws_client.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

namespace pull_atom {
// Local to the pull: what its connection's callbacks tell it.
using listed = caf::atom_constant<caf::atom("pulllisted")>;
using opened = caf::atom_constant<caf::atom("pullopened")>;
using frame = caf::atom_constant<caf::atom("pullframe")>;
using closed = caf::atom_constant<caf::atom("pullclosed")>;
using expired = caf::atom_constant<caf::atom("pullexpire")>;
using look = caf::atom_constant<caf::atom("pulllook")>;
using hand_over = caf::atom_constant<caf::atom("pullhand")>;
} // namespace pull_atom

/// What one COLLECTION PULL needs.
struct collection_pull_deps {
  store::event_store* store = nullptr;
  std::vector<handle_slot_ptr<verifier_actor>> verifiers;
  /// Signs the call that lists the peer's collections.
  nostr::keypair keys;
  signed_http_transport transport;
  std::shared_ptr<net::io_runtime> io;
  /// The peer: its name (the ingest source is `federation:NAME`), admin
  /// API, relay, CA file and the node key pinned for it.
  std::string peer;
  std::string admin_url;
  std::string endpoint;
  std::string ca;
  std::string pinned;
  pull_request request;
  /// The whole pull, from the listing to the last event stored.
  caf::timespan deadline = std::chrono::seconds{60};
  /// How often open REQs by ids are looked at for ones the peer's relay
  /// leaves unanswered (id_fetcher::look_for_quiet), as a node's fetch does.
  caf::timespan quiet_interval = std::chrono::seconds{5};
};

/// The report of a pull.
struct pull_counts {
  /// Stored, with no version of ours it replaced.
  uint64_t imported = 0;
  /// Kept ours: `skip` found a version of ours, or `merge` found ours newer.
  uint64_t skipped = 0;
  /// Stored in place of an older version of ours.
  uint64_t replaced = 0;
  /// Refused by our policy or the store, invalid, or outside the collection.
  uint64_t refused = 0;
  /// Not stored because our ingest path failed (no verifier took the batch,
  /// a store error): nothing refused them, so the next pull fetches them.
  uint64_t failed = 0;
};

struct collection_pull_state {
  collection_pull_deps deps;
  caf::typed_response_promise<federation_reply> promise;
  /// The listing call as signed, to check the peer's proof of identity.
  signed_http_request listing;
  std::vector<nostr::filter> filters;
  std::shared_ptr<net::ws_client_connection> conn;
  std::optional<neg_catchup> reconciliation;
  bool reconciled = false;
  std::optional<id_fetcher> fetcher;
  /// Events received and not yet answered by the ingest pipeline, the
  /// gathered ones included.
  size_t in_flight = 0;
  /// Events not yet handed to a verifier: one batch per burst of frames
  /// (at most ingest_batch_max), as a relay connection hands them over;
  /// per event, whether we held a version of it (then it counts as
  /// replaced).
  ingest_batch gathered;
  std::vector<bool> gathered_ours;
  bool hand_over_due = false;
  size_t next_verifier = 0;
  pull_counts counts;
  bool finished = false;
  /// NIP-42: the id (hex) of the AUTH event we sent, whether the relay took
  /// it, and whether the reconciliation waits for it (the relay refused the
  /// NEG-OPEN with `auth-required:`).
  std::string auth_event;
  bool authenticated = false;
  bool restart_after_auth = false;
  /// The reconciliation started over after AUTH once; a second
  /// `auth-required:` is the relay's final answer.
  bool restarted_after_auth = false;
  /// A fetch by ids was closed with `auth-required:` while our AUTH was on
  /// its way: no REQ goes out until the relay takes it.
  bool fetch_after_auth = false;
  /// A quiet look is on its way (one at a time while REQs are open).
  bool look_scheduled = false;
  static inline constexpr const char* name = "collection-pull";
};

using collection_pull_actor = caf::typed_actor<
  // Runs the pull (op "pull"); answers with the report once every event is
  // stored, or with why it failed.
  caf::replies_to<federation_call>::with<federation_reply>,
  // INTERNAL: the peer's admin API listed its collections (status 0: no
  // answer, the body says why).
  caf::reacts_to<pull_atom::listed, uint32_t, std::string>,
  // INTERNAL: the peer's relay: connected, one message, gone.
  caf::reacts_to<pull_atom::opened>,
  caf::reacts_to<pull_atom::frame, std::string>,
  caf::reacts_to<pull_atom::closed, std::string>,
  // INTERNAL: the deadline passed.
  caf::reacts_to<pull_atom::expired>,
  // INTERNAL: time to look for REQs by ids left unanswered.
  caf::reacts_to<pull_atom::look>,
  // INTERNAL: the burst of frames that gathered events is read: they go to
  // a verifier.
  caf::reacts_to<pull_atom::hand_over>>;

/// A COLLECTION PULL fetches one collection of one peer: asks the peer's
/// admin API (signed by our node key, its answer proven by the pinned key)
/// for the collection's filters, reconciles them with the peer's relay over
/// NIP-77 (neg_catchup, id_fetcher: the code `ferry sync` and the sync
/// connections use; answering a NIP-42 challenge with our node key), and
/// ingests what we lack with source `federation:NAME`,
/// settling replaceable and addressable events by the conflict strategy.
/// One actor per pull; it quits after answering.
collection_pull_actor::behavior_type
collection_pull(collection_pull_actor::stateful_pointer<collection_pull_state>
                  self,
                collection_pull_deps deps);

} // namespace ferry
