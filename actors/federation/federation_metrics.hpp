#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

/// Metrics of the federation manager in the node's registry
/// (`ferry::metrics::registry()`). Thread-safe. A peer's traffic is taken
/// from its sync server (`federation.NAME`, on the side that defined the
/// peer) once per `[federation] interval_seconds`.
namespace ferry::metrics::federation {

/// ferry_federation_handshakes_total{result="registered"|"pending"|"failed"|
/// "skipped"}: one per registration with a peer (skipped: its status said
/// federation is off, so none was sent).
void handshake(std::string_view result);

/// ferry_federation_registrations_total{status}: one per registration a
/// peer made with us, by the HTTP status it got.
void registration_answered(unsigned status);

/// ferry_federation_pin_mismatches_total{peer}: a peer proved a key other
/// than its pin (counted once per new key).
void pin_mismatch(std::string_view peer);

/// ferry_federation_events_total{peer, direction="in"|"out"} and
/// ferry_federation_bytes_total{peer, direction="in"|"out"}: what the link
/// with `peer` carried since the last call.
void exchanged(std::string_view peer, uint64_t events_in, uint64_t events_out,
               uint64_t bytes_in, uint64_t bytes_out);

/// ferry_federation_notices_total{kind="status"|"delete",
/// result="delivered"|"retry"}.
void notice(std::string_view kind, bool delivered);

/// ferry_federation_pulled_events_total{peer, result="imported"|"skipped"|
/// "replaced"|"refused"|"failed"}: the events of collection pulls from a
/// peer.
void pulled(std::string_view peer, uint64_t imported, uint64_t skipped,
            uint64_t replaced, uint64_t refused, uint64_t failed);

/// ferry_federation_peers{status} (gauge): links by status (and
/// "refused" for pin mismatches).
void set_peers(size_t active, size_t pending, size_t suspended,
               size_t revoked, size_t refused);

} // namespace ferry::metrics::federation
