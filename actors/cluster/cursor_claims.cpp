#include "actors/cluster/cursor_claims.hpp"

#include "messages/cluster/cursor_claim.hpp"
#include "messages/nostr/hex.hpp"

namespace ferry {

std::optional<std::map<std::string, std::string>>
own_cursor_claims(const control_replica& replica,
                  const std::map<std::string, std::string>& running,
                  const stored_cursor_reader& cursor_of) {
  const auto& self_name = replica.self_name();
  const std::string claim_kind{cluster::sync_cursor_kind};
  std::map<std::string, std::string> claims;
  auto own_prefix = cluster::cursor_claim_id(self_name, "");
  for (auto& r : replica.all())
    if (r.kind == claim_kind && !r.deleted && r.id.rfind(own_prefix, 0) != 0)
      claims.emplace(r.id, r.body);
  for (auto& [id, definition] : running) {
    auto record = replica.find(std::string{sync_server_kind}, id);
    if (!record || record->deleted)
      continue;
    auto claim_id = cluster::cursor_claim_id(self_name, id);
    if (record->body != definition) {
      if (auto held = replica.find(claim_kind, claim_id); held && !held->deleted)
        claims.emplace(claim_id, held->body);
      continue;
    }
    auto cursor = cursor_of(id);
    if (!cursor)
      return std::nullopt;
    if (!*cursor)
      continue;
    cluster::cursor_claim claim{self_name, id, **cursor,
                                nostr::to_hex(record->version.digest)};
    claims.emplace(claim_id, cluster::to_json(claim));
  }
  return claims;
}

} // namespace ferry
