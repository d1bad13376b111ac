#pragma once

#include <caf/expected.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// Replicated sync cursors. A sync cursor says "every event the remote gave
/// us that the server's filters match, up to this created_at, is stored".
/// A member's cursor travels to the others as a *claim* (a replicated
/// control record of kind "sync_cursor", one per member and server, edited
/// only by that member): a statement about the claiming member's store, not
/// about the store of whoever reads it. A member may take a claim as its own
/// cursor (so a relay that moves to it resumes near where the old owner
/// was) only once the claim holds for its own store too; `adoptable_cursor`
/// says when.
namespace ferry::cluster {

/// The control-record kind of the cursor claims.
inline constexpr std::string_view sync_cursor_kind = "sync_cursor";

/// One member's cursor for one sync server.
struct cursor_claim {
  /// The member whose store the claim is about.
  std::string member;
  /// The sync server id.
  std::string server;
  /// The cursor (created_at, unix seconds).
  int64_t cursor = 0;
  /// Hex SHA-256 of the server definition the cursor was made under (the
  /// digest of its replicated record): a cursor made for other filters or
  /// another URL says nothing about this one.
  std::string definition;

  bool operator==(const cursor_claim& other) const {
    return member == other.member && server == other.server
           && cursor == other.cursor && definition == other.definition;
  }
};

/// The record id of `member`'s claim for `server`: "MEMBER/SERVER" (member
/// names hold no '/').
std::string cursor_claim_id(std::string_view member, std::string_view server);

/// The claim as canonical JSON: {"cursor","definition","member","server"}.
std::string to_json(const cursor_claim& claim);

/// Reads what `to_json` wrote; ec::invalid_input names the bad field.
caf::expected<cursor_claim> parse_cursor_claim(std::string_view json);

/// A claim of another member with the local time (unix milliseconds) this
/// node first held that version of it.
struct heard_claim {
  cursor_claim claim;
  int64_t heard_ms = 0;
};

/// Whether `h` is confirmed for this node's store (the rule is at
/// `adoptable_cursor`).
bool is_confirmed(const heard_claim& h,
                  const std::map<std::string, int64_t>& reconciled_from);

/// The cursor this node may take as its own for `server` (defined by the
/// record with digest `definition`), from the claims of the other members:
/// the greatest one that is *confirmed*, or nothing.
///
/// The rule. Member O stored the events its claim covers, then committed
/// the cursor, then read and sent the claim, so all of them were in O's
/// store before this node heard the claim (at `heard_ms`). This node's
/// replication link from O (NIP-77 reconciliation of everything O holds,
/// then a live tail) proves "I hold everything O held" only at the end of a
/// complete reconciliation, and only for what O held when it started. So a
/// claim is confirmed once a reconciliation of the link from O that
/// *started after the claim was heard* has completed
/// (`reconciled_from[O]`: the start, in local unix milliseconds, of the
/// link's last complete reconciliation): then every event below the cursor
/// is stored here too, and the claim is true of this store. The live tail
/// alone proves nothing: O may have been killed -9 between storing an event
/// and sending it, and then the tail never carried it while O's claim,
/// sent over the cluster link, arrived. Both times are this node's clock,
/// so no clock skew between members enters the rule.
std::optional<int64_t>
adoptable_cursor(const std::vector<heard_claim>& claims,
                 const std::map<std::string, int64_t>& reconciled_from,
                 const std::string& server, const std::string& definition);

/// The members whose replication link must reconcile again before some of
/// their claims in `claims` can be confirmed (heard after the start of
/// the link's last complete reconciliation, for a server with
/// `definitions[server]` the claim's definition), each with the greatest
/// such cursor.
std::map<std::string, int64_t>
awaiting_confirmation(const std::vector<heard_claim>& claims,
                      const std::map<std::string, int64_t>& reconciled_from,
                      const std::map<std::string, std::string>& definitions);

} // namespace ferry::cluster
