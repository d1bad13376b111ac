#pragma once

// The write policy's interfaces: the POLICY step between the verifiers and
// the writer, and the PLUGIN HOST that runs a strfry write-policy plugin.

#include "messages/atoms.hpp"
#include "messages/ingest.hpp"
#include "messages/status.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>

namespace ferry {

namespace atom {

/// Asks the plugin host to judge one event.
using judge = caf::atom_constant<caf::atom("judge")>;
constexpr judge judge_v{};

/// The console's `refused [SOURCE]`: the latest refused events.
using refused = caf::atom_constant<caf::atom("refused")>;
constexpr refused refused_v{};

/// INTERNAL: one line the plugin wrote on its stdout.
using plugin_line = caf::atom_constant<caf::atom("plline")>;
constexpr plugin_line plugin_line_v{};

} // namespace atom

/// What the policy decided about one event (strfry's plugin actions).
enum class policy_action : uint8_t {
  accept,
  /// Refused; the sender hears `message`.
  reject,
  /// Refused silently: the sender hears OK, nothing is stored.
  shadow_reject,
};

/// @relates policy_action
std::string to_string(policy_action x);

struct policy_verdict {
  policy_action action = policy_action::accept;
  /// For `reject`: the NIP-01 prefixed message ("blocked: ...",
  /// "rate-limited: ...", "auth-required: ...").
  std::string message;
};

/// The ingest answer for a verdict that is not `accept`.
ingest_result to_ingest_result(const policy_verdict& x);

/// The IP address of a client's "ip:port" or "[ipv6]:port" remote address.
std::string address_of(const std::string& remote);

/// The POLICY step: built-in rules, then the plugin (when one is
/// configured); accepted events go on to the writer, whose answer comes back
/// to the original sender.
using policy_actor = caf::typed_actor<
  // Judges one verified event; the reply comes from the writer when it is
  // accepted, from here when it is not.
  caf::replies_to<atom::write, ingest_item_ptr>::with<ingest_result>,
  // Counters: accepted, rejected and shadowed events, rate-limited ones.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

/// The PLUGIN HOST owns one strfry write-policy plugin process: one JSON
/// request per line on its stdin, one answer per line on its stdout,
/// matched by event id. It restarts the plugin with backoff when it dies and
/// when its file changes, and answers with the fallback on a timeout.
using plugin_host_actor = caf::typed_actor<
  // Asks the plugin about one event.
  caf::replies_to<atom::judge, ingest_item_ptr>::with<policy_verdict>,
  // INTERNAL: a line from the plugin process of `generation`.
  caf::reacts_to<atom::plugin_line, uint64_t, std::string>,
  // INTERNAL: the plugin process of `generation` ended, for `reason`.
  caf::reacts_to<atom::closed, uint64_t, std::string>,
  // INTERNAL: request number `seq` ran out of time.
  caf::reacts_to<atom::timeout, uint64_t>,
  // INTERNAL: the backoff after a death is over; start the plugin again.
  caf::reacts_to<atom::restart>,
  // Counters: requests, answers, timeouts, garbage lines, restarts.
  caf::replies_to<atom::get, atom::status>::with<status_map>>;

} // namespace ferry

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::policy_verdict)
