#include "messages/cluster/version_vector.hpp"

#include <algorithm>
#include <tuple>
#include <vector>

namespace ferry::cluster {

std::string to_string(causal_order x) {
  switch (x) {
    case causal_order::before:
      return "before";
    case causal_order::after:
      return "after";
    case causal_order::equal:
      return "equal";
    case causal_order::concurrent:
      return "concurrent";
  }
  return "unknown";
}

// -- version_vector -----------------------------------------------------------

void version_vector::increment(std::string_view member) {
  auto i = counters_.find(member);
  if (i == counters_.end())
    counters_.emplace(std::string{member}, 1);
  else
    ++i->second;
}

void version_vector::set(std::string_view member, uint64_t counter) {
  if (counter == 0)
    counters_.erase(std::string{member});
  else
    counters_.insert_or_assign(std::string{member}, counter);
}

uint64_t version_vector::get(std::string_view member) const {
  auto i = counters_.find(member);
  return i == counters_.end() ? 0 : i->second;
}

void version_vector::fold(std::string_view member) {
  auto i = counters_.find(member);
  if (i == counters_.end())
    return;
  retired_ += i->second;
  counters_.erase(i);
}

uint64_t version_vector::total() const {
  auto result = retired_;
  for (const auto& [name, counter] : counters_)
    result += counter;
  return result;
}

void version_vector::drop_zero_counters() {
  for (auto i = counters_.begin(); i != counters_.end();) {
    if (i->second == 0)
      i = counters_.erase(i);
    else
      ++i;
  }
}

causal_order compare(const version_vector& a, const version_vector& b) {
  bool a_ahead = a.retired() > b.retired();
  bool b_ahead = b.retired() > a.retired();
  // One pass over both sorted maps; a name missing on one side counts zero
  // there, and no stored counter is zero, so a missing name means "behind".
  auto i = a.counters().begin();
  auto j = b.counters().begin();
  while (i != a.counters().end() || j != b.counters().end()) {
    if (j == b.counters().end()
        || (i != a.counters().end() && i->first < j->first)) {
      a_ahead = true;
      ++i;
    } else if (i == a.counters().end() || j->first < i->first) {
      b_ahead = true;
      ++j;
    } else {
      a_ahead = a_ahead || i->second > j->second;
      b_ahead = b_ahead || j->second > i->second;
      ++i;
      ++j;
    }
    if (a_ahead && b_ahead)
      return causal_order::concurrent;
  }
  if (a_ahead)
    return causal_order::after;
  if (b_ahead)
    return causal_order::before;
  return causal_order::equal;
}

version_vector merge(const version_vector& a, const version_vector& b) {
  auto result = a;
  for (const auto& [name, counter] : b.counters_) {
    auto& x = result.counters_[name];
    x = std::max(x, counter);
  }
  result.retired_ = std::max(a.retired_, b.retired_);
  return result;
}

namespace {

/// The most members only one side has that `align` considers folding (it
/// tries every subset of them).
constexpr size_t max_unmatched = 16;

/// Folds into `x` the members only `x` has whose counters `other` holds in
/// its `retired` beyond `x`'s: the first subset of them (in the order of
/// their names' bit masks) whose counters add up to exactly that
/// difference. True when it folded.
bool fold_if_covered(version_vector& x, const version_vector& other) {
  if (other.retired() <= x.retired())
    return false;
  auto missing = other.retired() - x.retired();
  std::vector<std::pair<std::string, uint64_t>> only_here;
  for (const auto& [name, counter] : x.counters())
    if (other.get(name) == 0)
      only_here.emplace_back(name, counter);
  if (only_here.empty() || only_here.size() > max_unmatched)
    return false;
  for (uint32_t mask = 1; mask < (uint32_t{1} << only_here.size()); ++mask) {
    uint64_t sum = 0;
    for (size_t i = 0; i < only_here.size(); ++i)
      if (mask & (uint32_t{1} << i))
        sum += only_here[i].second;
    if (sum != missing)
      continue;
    for (size_t i = 0; i < only_here.size(); ++i)
      if (mask & (uint32_t{1} << i))
        x.fold(only_here[i].first);
    return true;
  }
  return false;
}

} // namespace

std::pair<version_vector, version_vector> align(const version_vector& a,
                                                const version_vector& b) {
  auto result = std::make_pair(a, b);
  // At most one side can qualify: each needs the other's `retired` to be
  // the greater.
  if (!fold_if_covered(result.first, b))
    fold_if_covered(result.second, a);
  return result;
}

// -- record_version -----------------------------------------------------------

bool beats(const record_version& a, const record_version& b) {
  auto a_total = a.clock.total();
  auto b_total = b.clock.total();
  auto a_retired = a.clock.retired();
  auto b_retired = b.clock.retired();
  return std::tie(a_total, a.digest, a.clock.counters(), a_retired)
         > std::tie(b_total, b.digest, b.clock.counters(), b_retired);
}

resolution resolve(const record_version& stored_version,
                   const record_version& incoming_version) {
  auto [stored_clock, incoming_clock]
    = align(stored_version.clock, incoming_version.clock);
  record_version stored{std::move(stored_clock), stored_version.digest};
  record_version incoming{std::move(incoming_clock), incoming_version.digest};
  resolution result;
  result.order = compare(incoming.clock, stored.clock);
  switch (result.order) {
    case causal_order::after:
      result.result = std::move(incoming);
      return result;
    case causal_order::before:
      result.result = std::move(stored);
      return result;
    case causal_order::equal:
      if (incoming.digest == stored.digest) {
        result.result = std::move(stored);
        return result;
      }
      break;
    case causal_order::concurrent:
      break;
  }
  result.conflict = true;
  result.result.clock = merge(stored.clock, incoming.clock);
  result.result.digest = beats(incoming, stored) ? incoming.digest
                                                 : stored.digest;
  return result;
}

} // namespace ferry::cluster
