#pragma once

#include "actors/cluster/control_replica.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

/// The control-record kind of the sync server definitions.
inline constexpr std::string_view sync_server_kind = "sync_server";

/// A server's cursor in this node's store (created_at), nothing when it has
/// none, or nullopt when the store could not be read.
using stored_cursor_reader
  = std::function<std::optional<std::optional<int64_t>>(const std::string& server)>;

/// The cursor-claim records this member holds (record id → body): the other
/// members' claims as the replica holds them, and this member's own, one per
/// replicated sync server with a cursor in this store, stamped with the
/// digest of the server's record.
///
/// The stamp says which definition the cursor was made under, so it must be
/// the definition the sync manager runs (`running`: id → its canonical
/// JSON), not merely the newest record: a definition merged into the replica
/// and not applied yet (in flight, or refused and retried) leaves the store's
/// cursor that of the one before. Such a server keeps the claim it had (or
/// none) until the two agree; stamped with the new digest, the old
/// definition's cursor would be taken by the other members as true of the
/// new one's filters.
/// @returns nullopt when a cursor could not be read.
std::optional<std::map<std::string, std::string>>
own_cursor_claims(const control_replica& replica,
                  const std::map<std::string, std::string>& running,
                  const stored_cursor_reader& cursor_of);

} // namespace ferry
