#pragma once

#include "messages/atoms.hpp"
#include "messages/status.hpp"
#include "store/event_store.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

/// One event on the ingest path, with where it came from. It travels by
/// pointer, from one owner to the next (session → verifier → writer → hub),
/// so its strings are never copied; after the writer it is read-only.
struct ingest_item {
  store::incoming_event data;
  /// "client", "import", "sync:<id>", "grasp:<url>", "peer:<name>", for
  /// policy and stats.
  std::string source;
  /// Where exactly it came from, for policy: the client's IP address, or
  /// the remote relay's URL; empty when unknown.
  std::string source_info;
  /// The NIP-42 pubkey (hex) the client proved on its connection, preferring
  /// the event's author; empty when it proved none.
  std::string authed;
};

using ingest_item_ptr = std::shared_ptr<ingest_item>;

/// A run of events: what one commit stored (or accepted as ephemeral), in
/// commit order, for the hub; or what a bulk sender ingests at once.
using ingest_batch = std::vector<ingest_item_ptr>;

/// Events a bulk sender (a relay connection, `ferry sync`, a federation
/// pull) hands to a verifier in one message at most: enough to share the
/// per-message costs, few enough that both verifiers get work from a burst
/// (~3 ms of signature checks).
inline constexpr size_t ingest_batch_max = 64;

/// What happened to one ingested event.
enum class ingest_status : uint8_t {
  stored,
  ephemeral,
  duplicate,
  /// Refused by policy or store semantics (deleted, expired, too new).
  refused,
  /// The write policy shadow-rejected it: the sender hears OK, nothing is
  /// stored.
  shadowed,
  /// Bad id or signature.
  invalid,
  /// The store failed; the event may be retried.
  error,
};

/// @relates ingest_status
std::string to_string(ingest_status x);

/// The answer to one ingested event: the NIP-01 OK flag and message follow.
struct ingest_result {
  ingest_status status = ingest_status::stored;
  /// "" or a message with a NIP-01 prefix ("duplicate:", "invalid:", ...).
  std::string message;

  bool accepted() const {
    return status == ingest_status::stored || status == ingest_status::ephemeral
           || status == ingest_status::duplicate
           || status == ingest_status::shadowed;
  }
};

/// @relates ingest_result
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ingest_result& x) {
  return f(caf::meta::type_name("ingest_result"), x.status, x.message);
}

/// The answers to an ingest_batch, in the batch's order.
using ingest_results = std::vector<ingest_result>;

/// A VERIFIER checks an event's id and signature (skipping events already
/// stored) and hands valid ones to the WRITER, which answers the sender.
using verifier_actor = caf::typed_actor<
  // Verifies one event; the reply comes from the writer, or from here when
  // the event is invalid or already stored.
  caf::replies_to<atom::ingest, ingest_item_ptr>::with<ingest_result>,
  // Verifies a batch of events from one bulk sender (`ferry import`): one
  // message and one answer for all of them, in the batch's order, once the
  // writer has committed the valid ones. One message per event kept the
  // sender, the verifiers and the writer waking each other up.
  caf::replies_to<atom::ingest, ingest_batch>::with<ingest_results>,
  // Counters and mailbox size.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

/// The WRITER is the only actor that writes events: it collects requests and
/// commits them in one RocksDB WriteBatch, then answers each and fans out.
using writer_actor = caf::typed_actor<
  // Stores one verified event; answered after its batch is committed.
  caf::replies_to<atom::write, ingest_item_ptr>::with<ingest_result>,
  // Stores verified events, in order; answered once all are committed.
  caf::replies_to<atom::write, ingest_batch>::with<ingest_results>,
  // INTERNAL: commit what has been collected so far.
  caf::reacts_to<atom::flush>,
  // INTERNAL: periodic NIP-40 purge of expired events.
  caf::reacts_to<atom::purge>,
  // INTERNAL: the next step of a change-log sweep, after this entry.
  caf::reacts_to<atom::purge, uint64_t>,
  // INTERNAL: while the disk is full, checks whether space returned.
  caf::reacts_to<atom::tick>,
  // Moves a sync server's down cursor to `created_at` (never backwards) in
  // the next commit; sent only once every event up to it is stored. Made
  // under the definition's era (store::get_sync_era); one of another era is
  // dropped.
  caf::reacts_to<atom::cursor, std::string, int64_t, uint64_t>,
  // Counters and mailbox size.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

} // namespace ferry

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::ingest_item_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::ingest_batch)
