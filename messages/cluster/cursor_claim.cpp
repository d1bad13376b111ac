#include "messages/cluster/cursor_claim.hpp"

#include "messages/error.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace ferry::cluster {

namespace {

namespace json = boost::json;

caf::error invalid(const std::string& field, const std::string& why) {
  return caf::make_error(ec::invalid_input,
                         "cursor claim: " + field + ": " + why);
}

} // namespace

/// A complete reconciliation of the link from the claim's member started
/// after the claim was heard. A link that never completed one reads 0.
bool is_confirmed(const heard_claim& h,
                  const std::map<std::string, int64_t>& reconciled_from) {
  auto i = reconciled_from.find(h.claim.member);
  return i != reconciled_from.end() && i->second > 0
         && i->second >= h.heard_ms;
}

std::string cursor_claim_id(std::string_view member, std::string_view server) {
  return std::string{member} + "/" + std::string{server};
}

std::string to_json(const cursor_claim& claim) {
  // Keys in byte order: the body is canonical, so equal claims have equal
  // records.
  return json::serialize(json::object{
    {"cursor", claim.cursor},
    {"definition", claim.definition},
    {"member", claim.member},
    {"server", claim.server},
  });
}

caf::expected<cursor_claim> parse_cursor_claim(std::string_view text) {
  json::error_code ec;
  auto value = json::parse(text, ec);
  if (ec || !value.is_object())
    return invalid("", "expected a JSON object");
  auto& obj = value.as_object();
  cursor_claim claim;
  for (auto [key, out] :
       {std::pair{"member", &claim.member}, std::pair{"server", &claim.server},
        std::pair{"definition", &claim.definition}}) {
    auto v = obj.if_contains(key);
    if (!v || !v->is_string() || v->as_string().empty())
      return invalid(key, "expected a non-empty string");
    *out = std::string{v->as_string()};
  }
  if (claim.member.find('/') != std::string::npos)
    return invalid("member", "a member name holds no '/'");
  auto cursor = obj.if_contains("cursor");
  if (!cursor || !cursor->is_int64() || cursor->as_int64() <= 0)
    return invalid("cursor", "expected a created_at > 0");
  claim.cursor = cursor->as_int64();
  return claim;
}

std::optional<int64_t>
adoptable_cursor(const std::vector<heard_claim>& claims,
                 const std::map<std::string, int64_t>& reconciled_from,
                 const std::string& server, const std::string& definition) {
  std::optional<int64_t> best;
  for (auto& h : claims)
    if (h.claim.server == server && h.claim.definition == definition
        && is_confirmed(h, reconciled_from))
      best = std::max(best.value_or(0), h.claim.cursor);
  return best;
}

std::map<std::string, int64_t>
awaiting_confirmation(const std::vector<heard_claim>& claims,
                      const std::map<std::string, int64_t>& reconciled_from,
                      const std::map<std::string, std::string>& definitions) {
  std::map<std::string, int64_t> result;
  for (auto& h : claims) {
    auto def = definitions.find(h.claim.server);
    if (def == definitions.end() || def->second != h.claim.definition
        || is_confirmed(h, reconciled_from))
      continue;
    auto& cursor = result[h.claim.member];
    cursor = std::max(cursor, h.claim.cursor);
  }
  return result;
}

} // namespace ferry::cluster
