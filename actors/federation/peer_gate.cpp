#include "actors/federation/peer_gate.hpp"

#include <algorithm>

namespace ferry {

namespace {

/// A list condition of `bound` (absent: anything) holds for `f`'s (absent:
/// anything) when `f`'s is present and a subset. Both are sorted.
template <class T>
bool narrower(const std::optional<std::vector<T>>& f,
              const std::optional<std::vector<T>>& bound) {
  if (!bound)
    return true;
  return f && std::includes(bound->begin(), bound->end(), f->begin(), f->end());
}

} // namespace

bool within(const nostr::filter& f, const nostr::filter& bound) {
  if (!narrower(f.ids, bound.ids) || !narrower(f.authors, bound.authors)
      || !narrower(f.kinds, bound.kinds))
    return false;
  for (const auto& condition : bound.tags) {
    auto ours = std::find_if(f.tags.begin(), f.tags.end(), [&](const auto& c) {
      return c.letter == condition.letter;
    });
    if (ours == f.tags.end()
        || !std::includes(condition.values.begin(), condition.values.end(),
                          ours->values.begin(), ours->values.end()))
      return false;
  }
  if (bound.since && (!f.since || *f.since < *bound.since))
    return false;
  if (bound.until && (!f.until || *f.until > *bound.until))
    return false;
  return true;
}

bool peer_gate::exceeds(const std::set<nostr::bytes32>& keys,
                        const std::vector<nostr::filter>& filters) const {
  if (keys.empty() || empty_.load(std::memory_order_relaxed))
    return false;
  std::lock_guard<std::mutex> guard{mutex_};
  for (const auto& key : keys) {
    auto limits = limited_.find(key);
    if (limits == limited_.end())
      continue;
    for (const auto& f : filters)
      if (std::none_of(limits->second.begin(), limits->second.end(),
                       [&f](const auto& bound) { return within(f, bound); }))
        return true;
  }
  return false;
}

} // namespace ferry
