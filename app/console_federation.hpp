#pragma once

// The console's federation commands (`peers`, `peer`, `peer-reset`,
// `peer-pause`, `peer-resume`): the call each makes through the INSPECTOR
// and how its answer reads.

#include "app/console_link.hpp"
#include "messages/federation_call.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace ferry::console {

/// The FEDERATION MANAGER call of console command `command` ("peers",
/// "peer", "peer-reset", "peer-pause", "peer-resume", "collections") on
/// peer `name`.
federation_call federation_request(const std::string& command,
                                   const std::string& name);

/// How long the console waits for a pull (the manager gives up at 60 s).
inline constexpr auto pull_timeout = std::chrono::seconds{75};

/// The call of `pull NAME COLLECTION [STRATEGY]`, from those words joined
/// by spaces.
federation_call pull_request_call(const std::string& words);

/// A pull's report as one line, e.g. "a/profiles (merge): 2 imported, 2
/// skipped, 2 replaced, 0 refused".
std::string render_pull(const boost::json::value& report);

/// The manager's answer as JSON text, or, for an HTTP status of 400 and
/// above, the problem its error message names.
answer<std::string> federation_text(const answer<federation_reply>& reply);

/// The `peers` table from `{"peers": [...]}`: one line per link with its
/// name, direction, status, mode, pinned key (short, or "MISMATCH" while the
/// peer proves another), last seen, the last handshake and the endpoint;
/// "(no federation peers)" when there is none.
std::string render_peers(const boost::json::value& peers, int64_t now);

/// The `collections` table from `{"collections": [...]}`: one line per
/// collection with its name, events, bytes, the peers it is offered to and
/// its filters; "(no federation collections)" when there is none.
std::string render_collections(const boost::json::value& collections,
                               int64_t now);

/// The one-line outcome of `peer-reset`, `peer-pause` or `peer-resume` from
/// the peer's view after it, e.g. "b: paused (link active)".
std::string render_peer_change(const std::string& command,
                               const boost::json::value& peer);

} // namespace ferry::console
