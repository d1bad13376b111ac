#include "actors/sync/fetch_claims.hpp"

namespace ferry {

uint64_t fetch_claims::new_owner() {
  std::lock_guard<std::mutex> guard{mutex_};
  return next_owner_++;
}

bool fetch_claims::try_claim(const nostr::bytes32& id, uint64_t owner) {
  std::lock_guard<std::mutex> guard{mutex_};
  return owners_.emplace(id, owner).first->second == owner;
}

bool fetch_claims::held_by_other(const nostr::bytes32& id, uint64_t owner) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto i = owners_.find(id);
  return i != owners_.end() && i->second != owner;
}

void fetch_claims::release(const std::vector<nostr::bytes32>& ids, uint64_t owner) {
  std::lock_guard<std::mutex> guard{mutex_};
  for (const auto& id : ids)
    if (auto i = owners_.find(id); i != owners_.end() && i->second == owner)
      owners_.erase(i);
}

size_t fetch_claims::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return owners_.size();
}

} // namespace ferry
