#include "messages/cluster/rendezvous.hpp"

#include "messages/nostr/relay_url.hpp"
#include "messages/nostr/sha256.hpp"

#include <tuple>

namespace ferry::cluster {

std::string rendezvous_key(std::string_view key) {
  nostr::relay_url url;
  if (!nostr::parse_relay_url(key, url).empty())
    return std::string{key};
  while (!url.path.empty() && url.path.back() == '/')
    url.path.pop_back();
  return url.to_string();
}

uint64_t rendezvous_weight(std::string_view key, std::string_view member) {
  std::string input;
  input.reserve(8 + key.size() + member.size());
  auto length = static_cast<uint64_t>(key.size());
  for (int shift = 56; shift >= 0; shift -= 8)
    input.push_back(static_cast<char>((length >> shift) & 0xff));
  input.append(key);
  input.append(member);
  auto digest = nostr::sha256(input);
  uint64_t result = 0;
  for (size_t i = 0; i < 8; ++i)
    result = (result << 8) | digest[i];
  return result;
}

std::optional<std::string>
rendezvous_owner(std::string_view key,
                 const std::vector<std::string>& members) {
  auto hashed = rendezvous_key(key);
  const std::string* best = nullptr;
  uint64_t best_weight = 0;
  for (const auto& member : members) {
    auto weight = rendezvous_weight(hashed, member);
    if (best == nullptr
        || std::tie(weight, member) > std::tie(best_weight, *best)) {
      best = &member;
      best_weight = weight;
    }
  }
  if (best == nullptr)
    return std::nullopt;
  return *best;
}

} // namespace ferry::cluster
