#include "actors/grasp/grasp_plan.hpp"

#include <algorithm>
#include <iterator>

namespace ferry::grasp {

namespace {

const item_set nothing;

template <class Map>
const typename Map::mapped_type* find_in(const Map& map,
                                         const std::string& key) {
  auto i = map.find(key);
  return i == map.end() ? nullptr : &i->second;
}

/// `xs` without what is in `minus1` or `minus2`, sorted.
std::vector<std::string> without(const std::set<std::string>& xs,
                                 const std::set<std::string>& minus1,
                                 const std::vector<std::string>& minus2) {
  std::vector<std::string> result;
  for (const auto& x : xs)
    if (minus1.count(x) == 0
        && !std::binary_search(minus2.begin(), minus2.end(), x))
      result.push_back(x);
  return result;
}

/// `xs` that are also in `ys` (sorted), sorted.
std::vector<std::string> within(const std::set<std::string>& xs,
                                const std::vector<std::string>& ys) {
  std::vector<std::string> result;
  for (const auto& x : xs)
    if (std::binary_search(ys.begin(), ys.end(), x))
      result.push_back(x);
  return result;
}

/// True when the relay was away so long (or never connected) that what it
/// confirmed no longer counts.
bool away_too_long(const relay_sync_entry& entry, int64_t now,
                   const plan_config& config) {
  auto left = entry.disconnected_at != 0 ? entry.disconnected_at
                                         : entry.last_connected;
  return left == 0 || now - left > config.resync_after.count();
}

bool reconcile_due(const relay_sync_entry& entry, int64_t now) {
  return entry.reconcile_at > 0 && now >= entry.reconcile_at;
}

fetch everything(const item_set& target) {
  fetch f;
  f.repos.assign(target.repos.begin(), target.repos.end());
  f.roots.assign(target.roots.begin(), target.roots.end());
  f.announcements = true;
  return f;
}

relay_action connect_action(const std::string& url,
                            const relay_sync_entry* entry,
                            const item_set& target, int64_t now,
                            const plan_config& config) {
  relay_action action;
  action.kind = action_kind::connect;
  action.relay = url;
  action.full = entry == nullptr || entry->full_sync_at == 0
                || away_too_long(*entry, now, config)
                || reconcile_due(*entry, now);
  if (action.full) {
    action.fetches.push_back(everything(target));
    return action;
  }
  fetch catchup;
  catchup.repos = within(target.repos, entry->repos);
  catchup.roots = within(target.roots, entry->roots);
  catchup.announcements = true;
  catchup.since = std::max<int64_t>(0, entry->last_connected
                                         - config.overlap.count());
  action.fetches.push_back(std::move(catchup));
  fetch fresh;
  fresh.repos = without(target.repos, {}, entry->repos);
  fresh.roots = without(target.roots, {}, entry->roots);
  if (!fresh.repos.empty() || !fresh.roots.empty())
    action.fetches.push_back(std::move(fresh));
  return action;
}

/// Filters naming `values` in groups, one filter per group and letter.
void add_tag_filters(std::vector<nostr::filter>& out,
                     const std::vector<std::string>& values,
                     std::initializer_list<char> letters,
                     std::optional<int64_t> since, size_t group_size) {
  for (size_t first = 0; first < values.size(); first += group_size) {
    auto last = std::min(values.size(), first + group_size);
    std::vector<std::string> group(values.begin() + first,
                                   values.begin() + last);
    for (char letter : letters) {
      nostr::filter f;
      f.tags.push_back({letter, group});
      f.since = since;
      out.push_back(std::move(f));
    }
  }
}

nostr::filter announcement_filter(std::optional<int64_t> since) {
  nostr::filter f;
  f.kinds = std::vector<uint32_t>{kind_state, kind_announcement};
  std::sort(f.kinds->begin(), f.kinds->end());
  f.since = since;
  return f;
}

bool is_announcement_filter(const nostr::filter& f) {
  return f.tags.empty() && f.kinds
         && *f.kinds == announcement_filter(std::nullopt).kinds;
}

} // namespace

const std::vector<uint32_t> broad_kinds{1111, 1617, 1618, 1619, 1621,
                                        1622, 1630, 1631, 1632, 1633};

std::string to_string(link_state x) {
  switch (x) {
    case link_state::idle:
      return "idle";
    case link_state::connecting:
      return "connecting";
    case link_state::connected:
      return "connected";
  }
  return "unknown";
}

std::string to_string(action_kind x) {
  switch (x) {
    case action_kind::connect:
      return "connect";
    case action_kind::add:
      return "add";
    case action_kind::drop:
      return "drop";
    case action_kind::release:
      return "release";
    case action_kind::forget:
      return "forget";
  }
  return "unknown";
}

std::map<std::string, item_set>
wanted_by_relay(const std::map<std::string, repo_sync_entry>& wanted) {
  std::map<std::string, item_set> result;
  for (const auto& [address, entry] : wanted)
    for (const auto& relay : entry.relays) {
      auto& target = result[relay];
      target.repos.insert(address);
      target.roots.insert(entry.roots.begin(), entry.roots.end());
    }
  return result;
}

std::vector<relay_action>
decide(const plan_state& state, int64_t now, const plan_config& config,
       const std::function<bool(const std::string&)>& runs_here) {
  auto targets = wanted_by_relay(state.wanted);
  std::set<std::string> urls;
  for (const auto& [url, _] : targets)
    urls.insert(url);
  for (const auto& [url, _] : state.relays)
    urls.insert(url);
  for (const auto& [url, _] : state.links)
    urls.insert(url);
  std::vector<relay_action> result;
  for (const auto& url : urls) {
    const auto* entry = find_in(state.relays, url);
    const auto* link_ptr = find_in(state.links, url);
    auto link = link_ptr ? *link_ptr : link_state::idle;
    const auto* target_ptr = find_in(targets, url);
    const auto& target = target_ptr ? *target_ptr : nothing;
    const auto* pending_ptr = find_in(state.pending, url);
    const auto& pending = pending_ptr ? *pending_ptr : nothing;
    auto bootstrap = entry != nullptr && entry->is_bootstrap;
    if (target_ptr == nullptr && !bootstrap) {
      if (link != link_state::idle)
        result.push_back({action_kind::drop, url, false, {}});
      else if (entry != nullptr && away_too_long(*entry, now, config))
        result.push_back({action_kind::forget, url, false, {}});
      continue;
    }
    if (runs_here && !runs_here(url)) {
      if (link != link_state::idle)
        result.push_back({action_kind::release, url, false, {}});
      continue;
    }
    if (link == link_state::connecting)
      continue;
    if (link == link_state::idle) {
      result.push_back(connect_action(url, entry, target, now, config));
      continue;
    }
    if (entry != nullptr && reconcile_due(*entry, now) && pending.empty()) {
      result.push_back({action_kind::add, url, true, {everything(target)}});
      continue;
    }
    static const std::vector<std::string> none;
    fetch missing;
    missing.repos = without(target.repos, pending.repos,
                            entry ? entry->repos : none);
    missing.roots = without(target.roots, pending.roots,
                            entry ? entry->roots : none);
    missing.announcements = (entry == nullptr || entry->full_sync_at == 0)
                            && !pending.announcements;
    if (!missing.repos.empty() || !missing.roots.empty()
        || missing.announcements)
      result.push_back({action_kind::add, url, false, {std::move(missing)}});
  }
  return result;
}

int64_t next_reconcile_at(int64_t now, uint64_t random,
                          const plan_config& config) {
  auto min = config.reconcile_min.count();
  auto span = static_cast<uint64_t>(config.reconcile_max.count() - min);
  return now + min + static_cast<int64_t>(random % (span + 1));
}

std::vector<nostr::filter> build_filters(const fetch& f,
                                         const plan_config& config) {
  std::vector<nostr::filter> result;
  if (f.announcements)
    result.push_back(announcement_filter(f.since));
  add_tag_filters(result, f.repos, {'A', 'a'}, f.since, config.group_size);
  add_tag_filters(result, f.roots, {'E', 'e'}, f.since, config.group_size);
  return result;
}

item_set items_of(const std::vector<nostr::filter>& filters) {
  item_set result;
  for (const auto& f : filters) {
    if (is_announcement_filter(f))
      result.announcements = true;
    for (const auto& condition : f.tags) {
      if (condition.letter == 'a' || condition.letter == 'A')
        result.repos.insert(condition.values.begin(), condition.values.end());
      else if (condition.letter == 'e' || condition.letter == 'E')
        result.roots.insert(condition.values.begin(), condition.values.end());
    }
  }
  return result;
}

std::vector<std::vector<nostr::filter>>
split_filters(std::vector<nostr::filter> filters, const plan_config& config) {
  std::vector<std::vector<nostr::filter>> result;
  auto per = std::max<size_t>(1, config.max_filters_per_subscription);
  for (size_t first = 0; first < filters.size(); first += per) {
    auto last = std::min(filters.size(), first + per);
    result.emplace_back(std::make_move_iterator(filters.begin() + first),
                        std::make_move_iterator(filters.begin() + last));
  }
  return result;
}

std::vector<nostr::filter> live_tail(std::vector<nostr::filter> filters) {
  for (auto& f : filters) {
    f.since.reset();
    f.limit = 0;
  }
  return filters;
}

std::optional<consolidation>
consolidate(const std::vector<live_subscription>& live, size_t incoming,
            const plan_config& config) {
  auto total = incoming;
  for (const auto& sub : live)
    if (sub.role != sub_role::catchup)
      total += sub.filters.size();
  if (total <= config.max_filters_per_relay)
    return std::nullopt;
  std::vector<const live_subscription*> mergeable;
  auto has_broad = false;
  size_t merged_filters = 0;
  for (const auto& sub : live)
    if (sub.settled && sub.layer != sub_layer::announcements
        && sub.role != sub_role::catchup) {
      // A broad subscription already carries everything the others do.
      if (sub.layer == sub_layer::broad) {
        has_broad = true;
        continue;
      }
      mergeable.push_back(&sub);
      merged_filters += sub.filters.size();
    }
  if (mergeable.empty())
    return std::nullopt;
  consolidation result;
  std::vector<nostr::filter> all;
  for (const auto* sub : mergeable) {
    result.close.push_back(sub->id);
    all.insert(all.end(), sub->filters.begin(), sub->filters.end());
  }
  if (has_broad)
    return result;
  auto items = items_of(all);
  fetch merged;
  merged.repos.assign(items.repos.begin(), items.repos.end());
  merged.roots.assign(items.roots.begin(), items.roots.end());
  // Live only: what the merged subscriptions fetched is here already, and
  // a `since` would hide back-dated arrivals.
  result.open = live_tail(build_filters(merged, config));
  if (total - merged_filters + result.open.size()
      > config.max_filters_per_relay) {
    nostr::filter broad;
    broad.kinds = broad_kinds;
    broad.limit = 0;
    result.open = {std::move(broad)};
    result.broad = true;
  }
  return result;
}

} // namespace ferry::grasp
