// GRASP SYNC's state: its lookups and what it shows (the admin API's repos
// and repo views, the console's status). The decisions are in grasp_sync.cpp.

#include "actors/grasp/grasp_sync.hpp"

#include "messages/cluster/rendezvous.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace ferry {

namespace {

namespace json = boost::json;

bool contains(const std::vector<std::string>& sorted, const std::string& x) {
  return std::binary_search(sorted.begin(), sorted.end(), x);
}

} // namespace

grasp::relay_sync_entry& grasp_sync_state::relay(const std::string& url) {
  auto& entry = world.relays[url];
  entry.url = url;
  return entry;
}

bool grasp_sync_state::runs_here(const std::string& url) const {
  if (config.cluster_node.empty())
    return true;
  if (!live_members)
    return false;
  auto owner = cluster::rendezvous_owner(url, *live_members);
  return owner && *owner == config.cluster_node;
}

std::string grasp_sync_state::owner_of(const std::string& url) const {
  if (config.cluster_node.empty())
    return {};
  if (!live_members)
    return "nobody yet";
  return cluster::rendezvous_owner(url, *live_members).value_or("nobody");
}

void grasp_sync_state::refresh_pending() {
  world.pending.clear();
  for (const auto& [seq, batch] : open) {
    auto& items = world.pending[batch.relay];
    items.repos.insert(batch.items.repos.begin(), batch.items.repos.end());
    items.roots.insert(batch.items.roots.begin(), batch.items.roots.end());
    items.announcements |= batch.items.announcements;
  }
}

std::string grasp_sync_state::repos_json() const {
  json::array result;
  for (const auto& [address, repo] : world.wanted) {
    json::array confirmed_on;
    json::array pending_on;
    for (const auto& url : repo.relays) {
      if (auto i = world.relays.find(url);
          i != world.relays.end() && contains(i->second.repos, address))
        confirmed_on.emplace_back(url);
      if (auto i = world.pending.find(url);
          i != world.pending.end() && i->second.repos.count(address) > 0)
        pending_on.emplace_back(url);
    }
    json::array relays;
    for (const auto& url : repo.relays)
      relays.emplace_back(url);
    result.emplace_back(json::object{
      {"address", address},
      {"relays", std::move(relays)},
      {"roots", repo.roots.size()},
      {"confirmed_on", std::move(confirmed_on)},
      {"pending_on", std::move(pending_on)},
      {"announcement_created_at", repo.announcement_created_at},
    });
  }
  return json::serialize(result);
}

std::string grasp_sync_state::repo_json(const std::string& address) const {
  auto i = world.wanted.find(address);
  if (i == world.wanted.end())
    return {};
  const auto& repo = i->second;
  json::array relays;
  for (const auto& url : repo.relays) {
    json::object row{{"url", url}};
    auto link = world.links.find(url);
    row["link"] = to_string(link == world.links.end() ? grasp::link_state::idle
                                                      : link->second);
    if (!config.cluster_node.empty())
      row["owner"] = owner_of(url);
    auto entry = world.relays.find(url);
    auto pending = world.pending.find(url);
    row["confirmed"] = entry != world.relays.end()
                       && contains(entry->second.repos, address);
    row["pending"] = pending != world.pending.end()
                     && pending->second.repos.count(address) > 0;
    int64_t roots_confirmed = 0;
    if (entry != world.relays.end())
      for (const auto& root : repo.roots)
        roots_confirmed += contains(entry->second.roots, root) ? 1 : 0;
    row["roots_confirmed"] = roots_confirmed;
    if (entry != world.relays.end()) {
      row["last_connected"] = entry->second.last_connected;
      row["disconnected_at"] = entry->second.disconnected_at;
      row["full_sync_at"] = entry->second.full_sync_at;
      row["reconcile_at"] = entry->second.reconcile_at;
    }
    relays.emplace_back(std::move(row));
  }
  json::array roots;
  for (const auto& root : repo.roots)
    roots.emplace_back(root);
  return json::serialize(json::object{
    {"address", address},
    {"announcement_id", repo.announcement_id},
    {"announcement_created_at", repo.announcement_created_at},
    {"relays", std::move(relays)},
    {"roots", std::move(roots)},
  });
}

status_map grasp_sync_state::status() const {
  caf::settings relays;
  for (const auto& [url, entry] : world.relays) {
    status_map row;
    auto link = world.links.find(url);
    caf::put(row, "link",
             to_string(link == world.links.end() ? grasp::link_state::idle
                                                 : link->second));
    caf::put(row, "bootstrap", entry.is_bootstrap);
    if (!config.cluster_node.empty())
      caf::put(row, "owner", owner_of(url));
    caf::put(row, "repos_confirmed", static_cast<int64_t>(entry.repos.size()));
    caf::put(row, "roots_confirmed", static_cast<int64_t>(entry.roots.size()));
    int64_t filters = 0;
    if (auto i = live.find(url); i != live.end())
      for (const auto& [id, sub] : i->second)
        filters += static_cast<int64_t>(sub.filters.size());
    caf::put(row, "live_filters", filters);
    // Relay URLs hold dots, which caf::put reads as nesting.
    relays.emplace(url, caf::config_value{std::move(row)});
  }
  status_map result;
  caf::put(result, "repos", static_cast<int64_t>(world.wanted.size()));
  caf::put(result, "rebuilt", rebuilt);
  caf::put(result, "batches_open", static_cast<int64_t>(open.size()));
  caf::put(result, "total.decisions", static_cast<int64_t>(decisions));
  caf::put(result, "total.connects", static_cast<int64_t>(connects));
  caf::put(result, "total.adds", static_cast<int64_t>(adds));
  caf::put(result, "total.drops", static_cast<int64_t>(drops));
  caf::put(result, "total.releases", static_cast<int64_t>(releases));
  if (!config.cluster_node.empty()) {
    caf::put(result, "cluster.node", config.cluster_node);
    caf::put(result, "cluster.live",
             static_cast<int64_t>(live_members ? live_members->size() : 0));
  }
  caf::put(result, "total.forgets", static_cast<int64_t>(forgets));
  caf::put(result, "total.full_syncs", static_cast<int64_t>(full_syncs));
  caf::put(result, "total.consolidations",
           static_cast<int64_t>(consolidations));
  caf::put(result, "total.batches_confirmed",
           static_cast<int64_t>(batches_confirmed));
  caf::put(result, "total.batches_failed", static_cast<int64_t>(batches_failed));
  caf::put(result, "driver", driver != nullptr && static_cast<bool>(driver->get()));
  result.emplace("relays", caf::config_value{std::move(relays)});
  return result;
}

} // namespace ferry
