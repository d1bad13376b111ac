#pragma once

#include "messages/atoms.hpp"
#include "messages/grasp.hpp"
#include "messages/ingest.hpp"
#include "messages/pending_batches.hpp"
#include "messages/status.hpp"

#include <caf/expected.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace ferry {

namespace store {
struct item_scan;
} // namespace store

/// A negentropy window's local set, read on a worker thread for a RELAY
/// CONNECTION (its own thread would stall for the read).
using item_scan_result_ptr = std::shared_ptr<caf::expected<store::item_scan>>;

} // namespace ferry

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::item_scan_result_ptr)

namespace ferry {

/// How long the SYNC MANAGER waits for a connection's or the health
/// tracker's answer before falling back to what the store holds. Well below
/// what the manager's own askers wait (the cluster manager 2 s, the admin
/// routes 5 s): one slow connection costs its row's live figures, never
/// the whole answer.
inline constexpr auto sync_manager_ask_timeout = std::chrono::seconds{1};

/// The RELAY CONNECTION actor interface: one per sync server, it mirrors the
/// server's remote relay into the local store (direction down) and the local
/// store into the remote relay (direction up); both does both.
using relay_connection_actor = caf::typed_actor<
  // Connect now if idle; with a connection up, run a catch-up (sync-now).
  caf::reacts_to<atom::sync_now>,
  // Connection, catch-up progress, counters, cursor, last error.
  caf::replies_to<atom::get, atom::status>::with<status_map>,
  // INTERNAL: NIP-11 document fetched (generation, HTTP status or 0, body or error).
  caf::reacts_to<atom::info, uint64_t, uint32_t, std::string>,
  // INTERNAL: the WebSocket is open (generation).
  caf::reacts_to<atom::connected, uint64_t>,
  // INTERNAL: one message from the remote relay (generation).
  caf::reacts_to<atom::frame, uint64_t, std::string>,
  // INTERNAL: hand the events gathered from a burst of frames to a verifier.
  caf::reacts_to<atom::ingest>,
  // INTERNAL: the connection ended (generation, failure kind, reason).
  caf::reacts_to<atom::closed, uint64_t, uint8_t, std::string>,
  // INTERNAL: backoff elapsed; connect again (generation).
  caf::reacts_to<atom::reconnect, uint64_t>,
  // The hub's change feed: a local event matching the filters was committed
  // (wakes the up stream).
  caf::reacts_to<atom::feed, ingest_item_ptr>,
  // INTERNAL: check that the remote answers what we sent up (generation).
  caf::reacts_to<atom::tick, uint64_t>,
  // PENDING BATCHES: a catch-up batch had EOSE on every subscription, or
  // failed (lost, timed out).
  caf::reacts_to<atom::confirmed, batch_info>,
  caf::reacts_to<atom::failed, batch_info>,
  // GRASP (a driven connection): send these REQs, now when live, else once
  // connected (dialling when idle) — AddFilters without reconnecting.
  caf::reacts_to<atom::subscribe, std::vector<grasp::subscription>>,
  // GRASP: CLOSE these subscriptions.
  caf::reacts_to<atom::unsubscribe, std::vector<std::string>>,
  // GRASP: report `done` with this serial once every event received so far
  // is answered by the writer (stored).
  caf::reacts_to<atom::flush, uint64_t>,
  // INTERNAL: a negentropy answer is overdue (generation, request serial).
  caf::reacts_to<atom::timeout, uint64_t, uint64_t>,
  // INTERNAL: look whether the fetches by id open were answered
  // (generation).
  caf::reacts_to<atom::timeout, uint64_t>,
  // INTERNAL: look whether the pages and deletion histories open were
  // answered (generation).
  caf::reacts_to<atom::pending, uint64_t>,
  // INTERNAL: the local set of a negentropy window (generation, scan serial).
  caf::reacts_to<atom::neg, uint64_t, uint64_t, item_scan_result_ptr>,
  // INTERNAL: announce the authors whose deletions are followed (generation).
  caf::reacts_to<atom::deletions, uint64_t>,
  // INTERNAL: look again at the ids left to other connections' fetches
  // (generation).
  caf::reacts_to<atom::retry, uint64_t>>;

/// The SYNC MANAGER owns the sync server definitions (config + admin API,
/// persisted in `sync_servers`) and one RELAY CONNECTION per enabled server.
/// Bodies and answers are JSON text, so the admin API and the console relay
/// them as they are.
using sync_manager_actor = caf::typed_actor<
  // Creates or replaces a definition from a JSON body; returns its canonical
  // JSON (with `created`: true/false). ec::invalid_input names the field.
  caf::replies_to<atom::put, std::string, std::string>::with<std::string>,
  // One definition with its runtime state (ec::not_found when unknown).
  caf::replies_to<atom::get, atom::server, std::string>::with<std::string>,
  // Every definition with its runtime state, as a JSON array.
  caf::replies_to<atom::get, atom::servers>::with<std::string>,
  // Deletes a definition and stops its connection.
  caf::replies_to<atom::erase, std::string>::with<std::string>,
  // Starts / stops a server's connection (stop records the disconnect time).
  caf::replies_to<atom::start, std::string>::with<std::string>,
  caf::replies_to<atom::stop, std::string>::with<std::string>,
  // Runs a catch-up now.
  caf::replies_to<atom::sync_now, std::string>::with<std::string>,
  // Stats of one server / of all servers (JSON).
  caf::replies_to<atom::stats, std::string>::with<std::string>,
  caf::replies_to<atom::stats>::with<std::string>,
  // ok / degraded with the failing servers (JSON).
  caf::replies_to<atom::health>::with<std::string>,
  // Counters and mailbox size.
  caf::replies_to<atom::get, atom::status>::with<status_map>,
  // CLUSTER: the live members' names; in a cluster, the manager runs only
  // the connections of the servers this node owns among them.
  caf::reacts_to<atom::members, std::vector<std::string>>,
  // A one-shot negentropy sync a `ferry sync URL` hands over (its options as
  // JSON): runs it on the node's store and ingest path and answers, once
  // done, {"exit_code","stdout","stderr"}. ec::invalid_input names the field.
  caf::replies_to<atom::neg, std::string>::with<std::string>,
  // How far the one-shot sync with this `progress_id` is (JSON: events,
  // done, total, elapsed_seconds, running); ec::not_found when none runs or
  // ran lately.
  caf::replies_to<atom::get, atom::neg, std::string>::with<std::string>,
  // A one-shot sync's thread is done (its number, its answer).
  caf::reacts_to<atom::done, uint64_t, std::string>>;

} // namespace ferry
