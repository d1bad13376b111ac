#pragma once

#include "messages/atoms.hpp"
#include "messages/status.hpp"

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ferry {

/// What became of one subscription of a batch.
enum class sub_outcome : uint8_t {
  /// Still waiting for EOSE.
  pending,
  /// The relay sent EOSE: every stored event it has for the filters came.
  eose,
  /// The relay sent CLOSED: done, but the events may be incomplete.
  closed,
  /// The connection to the relay was lost before EOSE.
  lost,
  /// The batch timed out before EOSE.
  timed_out,
};

/// @relates sub_outcome
inline std::string to_string(sub_outcome x) {
  switch (x) {
    case sub_outcome::pending:
      return "pending";
    case sub_outcome::eose:
      return "eose";
    case sub_outcome::closed:
      return "closed";
    case sub_outcome::lost:
      return "lost";
    case sub_outcome::timed_out:
      return "timed_out";
  }
  return "unknown";
}

/// One subscription of a batch and its outcome so far.
struct batch_subscription {
  /// The subscription id sent in the REQ.
  std::string id;
  sub_outcome outcome = sub_outcome::pending;
  /// The relay's CLOSED message, or why the subscription was given up.
  std::string reason;
};

/// @relates batch_subscription
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_subscription& x) {
  return f(caf::meta::type_name("batch_subscription"), x.id, x.outcome,
           x.reason);
}

/// A set of subscriptions sent together to one relay.
struct batch_info {
  /// Assigned by PENDING BATCHES, unique while the actor lives.
  uint64_t id = 0;
  /// The relay's server id.
  std::string relay;
  /// Opaque to PENDING BATCHES: handed back as given, e.g. the repositories
  /// or filters the batch covers.
  std::string payload;
  /// In the order they were opened.
  std::vector<batch_subscription> subscriptions;
  /// Unix time (s) the batch was opened.
  int64_t opened_at = 0;
  /// How long the batch has been open, or took until it settled.
  caf::timespan elapsed{0};
};

/// @relates batch_info
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_info& x) {
  return f(caf::meta::type_name("batch_info"), x.id, x.relay, x.payload,
           x.subscriptions, x.opened_at, x.elapsed);
}

/// What PENDING BATCHES tells its listener (the SYNC MANAGER) when a batch
/// settles. Each batch settles exactly once.
using batch_listener_actor = caf::typed_actor<
  // Every subscription had EOSE or was CLOSED; the outcomes say which.
  caf::reacts_to<atom::confirmed, batch_info>,
  // The relay was lost or the batch timed out; finished subscriptions keep
  // their outcome, the others read lost or timed_out.
  caf::reacts_to<atom::failed, batch_info>>;

/// The PENDING BATCHES actor interface: tracks subscriptions in flight until
/// each has its EOSE (or CLOSED), and confirms whole batches to its listener.
using pending_batches_actor = caf::typed_actor<
  // Opens a batch: relay, subscription ids (unique among the relay's open
  // batches), payload; replies with the batch id (ec::invalid_input when
  // the ids are empty or taken).
  caf::replies_to<atom::open, std::string, std::vector<std::string>,
                  std::string>::with<uint64_t>,
  // The same, told to the given listener instead of the default one (a
  // relay connection tracking its own catch-up).
  caf::replies_to<atom::open, batch_listener_actor, std::string,
                  std::vector<std::string>, std::string>::with<uint64_t>,
  // The relay sent EOSE for a subscription.
  caf::reacts_to<atom::eose, std::string, std::string>,
  // The relay sent CLOSED for a subscription, with its message.
  caf::reacts_to<atom::closed, std::string, std::string, std::string>,
  // The connection to the relay is gone: its open batches fail.
  caf::reacts_to<atom::lost, std::string>,
  // The open batches of one relay, oldest first.
  caf::replies_to<atom::get, atom::pending,
                  std::string>::with<std::vector<batch_info>>,
  // Every open batch, oldest first.
  caf::replies_to<atom::get, atom::pending>::with<std::vector<batch_info>>,
  // Counters, open batches per relay, and the mailbox.
  caf::replies_to<atom::get, atom::status>::with<status_map>,
  // INTERNAL: the deadline of a batch passed.
  caf::reacts_to<atom::timeout, uint64_t>>;

} // namespace ferry
