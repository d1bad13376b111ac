#include "actors/runtime/inspector.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/health_tracker.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/secret.hpp"
#include "store/column_families.hpp"
#include "store/refused_store.hpp"

#include <boost/json/parse.hpp>
#include <caf/actor_cast.hpp>
#include <caf/typed_response_promise.hpp>

#include <rocksdb/db.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string_view>
#include <vector>

namespace ferry {

namespace {

using self_pointer = inspector_actor::stateful_pointer<inspector_state>;

actor_info to_actor_info(const child_info& child, int64_t now) {
  actor_info row;
  row.name = child.name;
  row.kind = child.kind;
  row.parent = child.parent;
  row.state = child.state;
  row.restarts = child.restarts;
  row.last_error = child.last_error;
  row.last_error_at = child.last_error_at;
  row.uptime = child.state == child_state::running && child.started_at > 0
                 ? now - child.started_at
                 : 0;
  return row;
}

/// One walk of the tree: rows plus the handles needed to act on them.
struct tree_walk {
  std::vector<actor_info> rows;
  /// The supervisor of each row (same index).
  std::vector<supervisor_actor> owners;
  size_t pending = 0;
  std::function<void(tree_walk&)> done;

  void finish_one() {
    if (--pending == 0)
      done(*this);
  }
};

void visit(self_pointer self, supervisor_actor sup,
           std::shared_ptr<tree_walk> walk) {
  ++walk->pending;
  self->request(sup, std::chrono::seconds{2}, atom::get_v, atom::children_v)
    .then(
      [self, sup, walk](std::vector<child_info>& children) {
        auto now = unix_now();
        for (auto& child : children) {
          auto index = walk->rows.size();
          walk->rows.push_back(to_actor_info(child, now));
          walk->owners.push_back(sup);
          if (child.state != child_state::running || !child.handle)
            continue;
          // The cluster manager lists its member links as a supervisor
          // lists its children.
          if (child.kind == "supervisor" || child.kind == "cluster-manager")
            visit(self, caf::actor_cast<supervisor_actor>(child.handle), walk);
          if (child.handle.address() == self->address()) {
            // Asking ourselves would wait for this very request.
            walk->rows[index].mailbox
              = static_cast<int64_t>(self->mailbox().size());
            continue;
          }
          ++walk->pending;
          auto target = caf::actor_cast<status_client_actor>(child.handle);
          self
            ->request(target, self->state.config.status_timeout, atom::get_v,
                      atom::status_v)
            .then(
              [walk, index](status_map& status) {
                auto& row = walk->rows[index];
                if (auto mailbox = caf::get_if<int64_t>(&status, "mailbox"))
                  row.mailbox = *mailbox;
                row.status = std::move(status);
                walk->finish_one();
              },
              [walk, index](caf::error&) {
                walk->rows[index].mailbox = -1;
                walk->finish_one();
              });
        }
        walk->finish_one();
      },
      [walk](caf::error&) { walk->finish_one(); });
}

/// Puts the rows in depth-first order, each supervisor followed by its
/// children in spec order: the walk collects them in the order the
/// supervisors happen to answer.
void order_depth_first(tree_walk& walk) {
  std::map<std::string, std::vector<size_t>> children_of;
  for (size_t i = 1; i < walk.rows.size(); ++i)
    children_of[walk.rows[i].parent].push_back(i);
  std::vector<size_t> order;
  order.reserve(walk.rows.size());
  std::vector<size_t> pending{0};
  while (!pending.empty()) {
    auto i = pending.back();
    pending.pop_back();
    order.push_back(i);
    auto kids = children_of.find(walk.rows[i].name);
    if (kids != children_of.end())
      pending.insert(pending.end(), kids->second.rbegin(), kids->second.rend());
  }
  std::vector<actor_info> rows;
  std::vector<supervisor_actor> owners;
  for (auto i : order) {
    rows.push_back(std::move(walk.rows[i]));
    owners.push_back(std::move(walk.owners[i]));
  }
  walk.rows = std::move(rows);
  walk.owners = std::move(owners);
}

/// Walks the whole tree, then calls `done` with every row, depth first.
void walk_tree(self_pointer self, std::function<void(tree_walk&)> done) {
  auto walk = std::make_shared<tree_walk>();
  walk->done = [done = std::move(done)](tree_walk& w) {
    order_depth_first(w);
    done(w);
  };
  // The root itself, so the console shows the whole tree.
  actor_info root;
  root.name = "node";
  root.kind = "supervisor";
  root.mailbox = 0;
  if (self->state.config.node_started_at > 0)
    root.uptime = unix_now() - self->state.config.node_started_at;
  walk->rows.push_back(std::move(root));
  walk->owners.emplace_back();
  // The root is set once it runs; until then the tree is the root alone.
  auto root_handle
    = self->state.root ? self->state.root->get() : supervisor_actor{};
  if (!root_handle) {
    walk->pending = 1;
    walk->finish_one();
    return;
  }
  visit(self, root_handle, walk);
}

int64_t column_family_property(const store::event_store& store,
                               const std::string& property) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < store::cf_count; ++i) {
    uint64_t value = 0;
    if (store.db()->GetIntProperty(store.handle(static_cast<store::cf>(i)),
                                   property, &value))
      total += value;
  }
  return static_cast<int64_t>(total);
}

/// A property of the block cache every family shares (asked of one).
int64_t block_cache_property(const store::event_store& store,
                             const std::string& property) {
  uint64_t value = 0;
  store.db()->GetIntProperty(store.handle(store::cf::events), property, &value);
  return static_cast<int64_t>(value);
}

/// Bytes of every file under the store's directory: tables, write-ahead
/// log, manifest. RocksDB's table-size properties miss what is still in
/// the log, so a store that holds data would read 0 until a flush.
int64_t store_disk_bytes(const store::event_store& store) {
  namespace fs = std::filesystem;
  std::error_code ec;
  uint64_t total = 0;
  for (fs::recursive_directory_iterator i{store.db()->GetName(), ec}, end;
       !ec && i != end; i.increment(ec)) {
    std::error_code size_ec;
    if (i->is_regular_file(size_ec))
      if (auto size = i->file_size(size_ec); !size_ec)
        total += size;
  }
  return static_cast<int64_t>(total);
}

/// The status report of actor `name` in `walk`; null when it is not there.
const status_map* status_of(const tree_walk& walk, std::string_view name) {
  for (auto& row : walk.rows)
    if (row.name == name)
      return &row.status;
  return nullptr;
}

int64_t integer_of(const status_map* status, std::string_view key) {
  return status != nullptr ? caf::get_or(*status, key, int64_t{0}) : 0;
}

/// The sum of `key` over the actors named `prefix`-something.
int64_t sum_of(const tree_walk& walk, std::string_view prefix,
               std::string_view key) {
  int64_t total = 0;
  for (auto& row : walk.rows)
    if (row.name.compare(0, prefix.size(), prefix) == 0)
      total += integer_of(&row.status, key);
  return total;
}

constexpr std::string_view grasp_prefix = "grasp:";

bool is_grasp_relay(const std::string& server) {
  return server.compare(0, grasp_prefix.size(), grasp_prefix) == 0;
}

/// Each relay the HEALTH TRACKER follows (sync servers, and GRASP relays as
/// "grasp:URL"), by id: its entry in the tracker's status.
std::vector<std::pair<std::string, const caf::settings*>>
tracked_relays(const tree_walk& walk) {
  std::vector<std::pair<std::string, const caf::settings*>> result;
  auto tracker = status_of(walk, "health-tracker");
  if (tracker == nullptr)
    return result;
  auto servers = tracker->find("servers");
  if (servers == tracker->end())
    return result;
  auto dict = caf::get_if<caf::settings>(&servers->second);
  if (dict == nullptr)
    return result;
  for (auto& [id, value] : *dict)
    if (auto entry = caf::get_if<caf::settings>(&value))
      result.emplace_back(id, entry);
  return result;
}

/// Counts and the largest lag of one kind of tracked relay into `prefix`.
void put_relay_figures(status_map& result, const std::string& prefix,
                       const tree_walk& walk, bool grasp) {
  int64_t live = 0;
  int64_t catching_up = 0;
  int64_t failing = 0;
  int64_t given_up = 0;
  int64_t max_lag = 0;
  for (auto& [id, entry] : tracked_relays(walk)) {
    if (is_grasp_relay(id) != grasp)
      continue;
    auto status = caf::get_or(*entry, "status", std::string{});
    live += status == "live" ? 1 : 0;
    catching_up += status == "syncing" || status == "connecting" ? 1 : 0;
    failing += status == "backing_off" ? 1 : 0;
    given_up += status == "dead" ? 1 : 0;
    // A relay stopped on purpose is not behind by anyone's fault.
    if (status != "stopped")
      max_lag = std::max(max_lag, integer_of(entry, "lag_seconds"));
  }
  caf::put(result, prefix + ".live", live);
  caf::put(result, prefix + ".catching_up", catching_up);
  caf::put(result, prefix + ".failing", failing);
  caf::put(result, prefix + ".given_up", given_up);
  caf::put(result, prefix + ".lag_max_seconds", max_lag);
}

/// The figures an operator checks first, from one walk of the tree: what
/// each actor reports, the relay's sessions and the store.
status_map node_stats(const inspector_state& st, const tree_walk& walk) {
  status_map result;
  auto writer = status_of(walk, "writer");
  caf::put(result, "ingest.stored", integer_of(writer, "committed"));
  caf::put(result, "ingest.pending", integer_of(writer, "pending"));
  caf::put(result, "ingest.failed", integer_of(writer, "failed_events"));
  caf::put(result, "ingest.verified", sum_of(walk, "verifier-", "verified"));
  caf::put(result, "ingest.invalid", sum_of(walk, "verifier-", "invalid"));
  auto policy = status_of(walk, "policy");
  caf::put(result, "ingest.policy_rejected", integer_of(policy, "rejected"));
  auto hub = status_of(walk, "hub");
  caf::put(result, "relay.connections",
           static_cast<int64_t>(st.relay->live_sessions.load()));
  caf::put(result, "relay.subscriptions", integer_of(hub, "subscriptions"));
  auto relay_server = status_of(walk, "relay-server");
  caf::put(result, "relay.queued_bytes",
           integer_of(relay_server, "outbound_queued_bytes"));
  caf::put(result, "relay.inbound_bytes",
           integer_of(relay_server, "inbound_held_bytes"));
  caf::put(result, "relay.delivered", integer_of(hub, "delivered"));
  auto manager = status_of(walk, "sync-manager");
  caf::put(result, "sync.configured", integer_of(manager, "servers"));
  caf::put(result, "sync.running", integer_of(manager, "running"));
  put_relay_figures(result, "sync", walk, false);
  auto grasp = status_of(walk, "grasp-sync");
  caf::put(result, "grasp.enabled", grasp != nullptr);
  caf::put(result, "grasp.repos", integer_of(grasp, "repos"));
  caf::put(result, "grasp.relays",
           integer_of(status_of(walk, "grasp-driver"), "relays"));
  put_relay_figures(result, "grasp", walk, true);
  auto reconciler = status_of(walk, "infra-reconciler");
  caf::put(result, "infra.active",
           reconciler != nullptr && caf::get_or(*reconciler, "active", false));
  caf::put(result, "infra.syncs_ok", integer_of(reconciler, "syncs_ok"));
  caf::put(result, "infra.syncs_failed",
           integer_of(reconciler, "syncs_failed"));
  caf::put(result, "infra.retries_due", integer_of(reconciler, "retries_due"));
  caf::put(result, "infra.given_up", integer_of(reconciler, "given_up"));
  caf::put(result, "store.events",
           static_cast<int64_t>(st.store->approximate_event_count()));
  caf::put(result, "store.disk_bytes", store_disk_bytes(*st.store));
  caf::put(result, "store.memtable_bytes",
           column_family_property(*st.store,
                                  "rocksdb.cur-size-all-mem-tables"));
  auto compaction = st.store->compaction();
  caf::put(result, "store.compactions_running",
           static_cast<int64_t>(compaction.running));
  caf::put(result, "store.compaction_pending_bytes",
           static_cast<int64_t>(compaction.pending_bytes));
  caf::put(result, "store.block_cache_bytes",
           block_cache_property(*st.store, "rocksdb.block-cache-usage"));
  caf::put(result, "store.block_cache_pinned_bytes",
           block_cache_property(*st.store, "rocksdb.block-cache-pinned-usage"));
  // Per relay, under its id as one key (ids hold dots and colons).
  caf::settings servers;
  for (auto& [id, entry] : tracked_relays(walk)) {
    status_map row;
    caf::put(row, "status", caf::get_or(*entry, "status", std::string{}));
    caf::put(row, "lag_seconds", integer_of(entry, "lag_seconds"));
    caf::put(row, "attempts", integer_of(entry, "attempts"));
    caf::put(row, "last_error", caf::get_or(*entry, "last_error",
                                            std::string{}));
    servers.emplace(id, caf::config_value{std::move(row)});
  }
  caf::put(result, "sync.servers", std::move(servers));
  return result;
}

/// Why the node is degraded by lag: each sync server (GRASP relay) behind
/// by more than its `[health]` limit, unless stopped on purpose or given up
/// (which says so itself).
std::vector<std::string> lag_reasons(const tree_walk& walk,
                                     const config::health_config& limits) {
  std::vector<std::string> reasons;
  for (auto& [id, entry] : tracked_relays(walk)) {
    auto grasp = is_grasp_relay(id);
    auto limit = grasp ? limits.grasp_max_lag_seconds
                       : limits.sync_max_lag_seconds;
    auto status = caf::get_or(*entry, "status", std::string{});
    auto lag = integer_of(entry, "lag_seconds");
    if (limit <= 0 || status == "stopped" || status == "dead" || lag <= limit)
      continue;
    reasons.push_back((grasp ? "GRASP relay " + id.substr(grasp_prefix.size())
                             : "sync server " + id)
                      + " is " + std::to_string(lag)
                      + " s behind (not caught up since then; limit "
                      + std::to_string(limit) + " s)");
  }
  return reasons;
}

caf::error unknown_actor(const std::string& name) {
  return caf::make_error(ec::invalid_input, "no actor named " + name);
}

/// Finds `name` in a fresh walk and lets `act` ask its supervisor something.
template <class Act>
caf::result<std::string> act_on(self_pointer self, const std::string& name,
                                 Act act) {
  auto rp = self->make_response_promise<std::string>();
  walk_tree(self, [self, rp, name, act](tree_walk& walk) mutable {
    for (size_t i = 0; i < walk.rows.size(); ++i)
      if (walk.rows[i].name == name && walk.owners[i]) {
        act(walk.owners[i], rp);
        return;
      }
    rp.deliver(unknown_actor(name));
  });
  return rp;
}

/// Asks `owner` to do `Atom` to `name` and words the outcome.
template <class Atom>
auto supervisor_command(self_pointer self, const std::string& name,
                        std::string done_text, std::string noop_text) {
  return [self, name, done_text, noop_text](
           supervisor_actor owner,
           caf::typed_response_promise<std::string> rp) mutable {
    self->request(owner, std::chrono::seconds{5}, Atom{}, name)
      .then(
        [rp, name, done_text, noop_text](bool changed) mutable {
          rp.deliver((changed ? done_text : noop_text) + " " + name);
        },
        [rp](caf::error& err) mutable { rp.deliver(err); });
  };
}

/// Forwards a sync server command to the SYNC MANAGER and relays its answer.
template <class... Ts>
caf::result<std::string> ask_sync_manager(self_pointer self, Ts... xs) {
  auto& slot = self->state.sync_manager;
  auto manager = slot ? slot->get() : sync_manager_actor{};
  if (!manager)
    return caf::make_error(ec::not_found, "the sync manager is not running");
  auto rp = self->make_response_promise<std::string>();
  self->request(manager, std::chrono::seconds{5}, xs...)
    .then([rp](std::string& answer) mutable { rp.deliver(std::move(answer)); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

/// Forwards a repository command to GRASP SYNC and relays its answer.
template <class... Ts>
caf::result<std::string> ask_grasp(self_pointer self, Ts... xs) {
  auto& slot = self->state.grasp;
  auto grasp = slot ? slot->get() : grasp_sync_actor{};
  if (!grasp)
    return caf::make_error(ec::not_found,
                           "GRASP sync is not running (grasp.enabled = false, "
                           "or it is restarting)");
  auto rp = self->make_response_promise<std::string>();
  self->request(grasp, std::chrono::seconds{5}, xs...)
    .then([rp](std::string& answer) mutable { rp.deliver(std::move(answer)); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

/// Forwards a hosted relay command to the actor in `slot` and relays its
/// answer.
template <class Handle, class... Ts>
caf::result<std::string> ask_infra_within(self_pointer self,
                                          const handle_slot_ptr<Handle>& slot,
                                          const char* what,
                                          caf::timespan timeout, Ts... xs) {
  auto handle = slot ? slot->get() : Handle{};
  if (!handle)
    return caf::make_error(ec::not_found,
                           std::string{"the "} + what + " is not running");
  auto rp = self->make_response_promise<std::string>();
  self->request(handle, timeout, xs...)
    .then([rp](std::string& answer) mutable { rp.deliver(std::move(answer)); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

template <class Handle, class... Ts>
caf::result<std::string> ask_infra(self_pointer self,
                                   const handle_slot_ptr<Handle>& slot,
                                   const char* what, Ts... xs) {
  return ask_infra_within(self, slot, what, std::chrono::seconds{10}, xs...);
}

/// A graceful leave asks the sync manager (at most 2 s), its goodbyes take
/// at most a link's connect timeout and a second (6 s), its hand-over at
/// most the largest `handover_timeout_ms` (30 s).
constexpr auto cluster_leave_limit = std::chrono::seconds{40};

/// Adds the federation peers refused for a changed key to `report`, and
/// settles its status.
void with_federation_health(self_pointer self, health_report report,
                            caf::typed_response_promise<health_report> rp) {
  auto settle = [](health_report& x) {
    if (!x.reasons.empty())
      x.status = "degraded";
  };
  auto& slot = self->state.federation;
  auto manager = slot ? slot->get() : federation_actor{};
  if (!manager) {
    settle(report);
    rp.deliver(std::move(report));
    return;
  }
  auto shared = std::make_shared<health_report>(std::move(report));
  self->request(manager, self->state.config.status_timeout, atom::health_v)
    .then(
      [shared, rp, settle](health_report& federation) mutable {
        for (auto& reason : federation.reasons)
          shared->reasons.push_back(std::move(reason));
        settle(*shared);
        rp.deliver(std::move(*shared));
      },
      [shared, rp, settle](caf::error&) mutable {
        // A manager too busy to answer shows in the tree walk already.
        settle(*shared);
        rp.deliver(std::move(*shared));
      });
}

/// Adds the cluster's refused nodes to `report`, then federation's refusals.
void with_cluster_health(self_pointer self, health_report report,
                         caf::typed_response_promise<health_report> rp) {
  auto& slot = self->state.cluster;
  auto manager = slot ? slot->get() : cluster_manager_actor{};
  if (!manager) {
    with_federation_health(self, std::move(report), rp);
    return;
  }
  auto shared = std::make_shared<health_report>(std::move(report));
  self->request(manager, self->state.config.status_timeout, atom::health_v)
    .then(
      [self, shared, rp](health_report& cluster) mutable {
        for (auto& reason : cluster.reasons)
          shared->reasons.push_back(std::move(reason));
        with_federation_health(self, std::move(*shared), rp);
      },
      [self, shared, rp](caf::error&) mutable {
        // A manager too busy to answer shows in the tree walk already.
        with_federation_health(self, std::move(*shared), rp);
      });
}

/// Why the node is degraded by hosted relays that fail to sync to the
/// management API `threshold` times in a row but are not given up yet (the
/// reconciler names those), from the RELAY REGISTRY's JSON list.
std::vector<std::string> failing_hosted_relays(const std::string& relays_json,
                                               int64_t threshold) {
  std::vector<std::string> reasons;
  boost::json::error_code ec;
  auto relays = boost::json::parse(relays_json, ec);
  if (ec || !relays.is_array())
    return reasons;
  for (auto& item : relays.as_array()) {
    auto relay = item.if_object();
    if (relay == nullptr)
      continue;
    auto attempts = relay->if_contains("failed_attempts");
    auto given_up = relay->if_contains("given_up");
    auto id = relay->if_contains("id");
    if (attempts == nullptr || !attempts->is_number() || id == nullptr
        || !id->is_string()
        || (given_up != nullptr && given_up->is_bool() && given_up->as_bool()))
      continue;
    auto count = attempts->to_number<int64_t>();
    if (count < threshold)
      continue;
    auto reason = "hosted relay " + std::string{id->as_string()}
                  + " fails to sync to the management API ("
                  + std::to_string(count) + " attempt(s) in a row)";
    if (auto error = relay->if_contains("sync_error");
        error != nullptr && error->is_string() && !error->as_string().empty())
      reason += ": " + std::string{error->as_string()};
    reasons.push_back(std::move(reason));
  }
  return reasons;
}

/// Adds the hosted relays that keep failing (see `failing_hosted_relays`)
/// to `report`, then the cluster's refusals.
void with_hosted_relay_health(self_pointer self, health_report report,
                              caf::typed_response_promise<health_report> rp) {
  auto& slot = self->state.infra.registry;
  auto registry = slot ? slot->get() : relay_registry_actor{};
  if (!registry) {
    with_cluster_health(self, std::move(report), rp);
    return;
  }
  auto shared = std::make_shared<health_report>(std::move(report));
  self
    ->request(registry, self->state.config.status_timeout, atom::get_v,
              atom::relays_v)
    .then(
      [self, shared, rp](std::string& relays) mutable {
        for (auto& reason : failing_hosted_relays(
               relays, self->state.config.health.infra_failing_attempts))
          shared->reasons.push_back(std::move(reason));
        with_cluster_health(self, std::move(*shared), rp);
      },
      [self, shared, rp](caf::error&) mutable {
        // A registry too busy to answer shows in the tree walk already.
        with_cluster_health(self, std::move(*shared), rp);
      });
}

/// Adds the INFRA RECONCILER's relays given up to `report`, then the
/// hosted relays that keep failing.
void with_infra_health(self_pointer self, health_report report,
                       caf::typed_response_promise<health_report> rp) {
  auto& slot = self->state.infra.reconciler;
  auto reconciler = slot ? slot->get() : infra_reconciler_actor{};
  if (!reconciler) {
    with_hosted_relay_health(self, std::move(report), rp);
    return;
  }
  auto shared = std::make_shared<health_report>(std::move(report));
  self->request(reconciler, self->state.config.status_timeout, atom::health_v)
    .then(
      [self, shared, rp](health_report& infra) mutable {
        for (auto& reason : infra.reasons)
          shared->reasons.push_back(std::move(reason));
        with_hosted_relay_health(self, std::move(*shared), rp);
      },
      [self, shared, rp](caf::error&) mutable {
        // A reconciler too busy to answer shows in the tree walk already.
        with_hosted_relay_health(self, std::move(*shared), rp);
      });
}

/// Adds the sync servers that fail for good to `report`, then the infra
/// reconciler's relays given up.
void with_sync_health(self_pointer self, health_report report,
                      caf::typed_response_promise<health_report> rp) {
  auto& slot = self->state.sync_health;
  auto tracker = slot ? slot->get() : health_tracker_actor{};
  if (!tracker) {
    with_infra_health(self, std::move(report), rp);
    return;
  }
  auto shared = std::make_shared<health_report>(std::move(report));
  self->request(tracker, self->state.config.status_timeout, atom::get_v,
                atom::health_v)
    .then(
      [self, shared, rp](std::vector<relay_health>& relays) mutable {
        auto& limits = self->state.config.health;
        sync_health_limits sync_limits{
          static_cast<uint32_t>(limits.sync_failing_attempts),
          static_cast<uint32_t>(limits.grasp_failing_attempts)};
        for (auto& reason : sync_health_reasons(relays, sync_limits))
          shared->reasons.push_back(std::move(reason));
        with_infra_health(self, std::move(*shared), rp);
      },
      [self, shared, rp](caf::error&) mutable {
        // A tracker too busy to answer shows in the tree walk already.
        with_infra_health(self, std::move(*shared), rp);
      });
}

} // namespace

inspector_actor::behavior_type
inspector(inspector_actor::stateful_pointer<inspector_state> self,
          handle_slot_ptr<supervisor_actor> root,
          const store::event_store* store,
          std::shared_ptr<const relay_context> relay,
          handle_slot_ptr<sync_manager_actor> sync_manager,
          handle_slot_ptr<health_tracker_actor> sync_health,
          handle_slot_ptr<grasp_sync_actor> grasp, infra_handles infra,
          handle_slot_ptr<cluster_manager_actor> cluster,
          handle_slot_ptr<federation_actor> federation,
          inspector_config config) {
  self->state.root = std::move(root);
  self->state.cluster = std::move(cluster);
  self->state.federation = std::move(federation);
  self->state.sync_manager = std::move(sync_manager);
  self->state.sync_health = std::move(sync_health);
  self->state.grasp = std::move(grasp);
  self->state.infra = std::move(infra);
  self->state.store = store;
  self->state.relay = std::move(relay);
  self->state.config = config;
  return {
    [self](atom::get, atom::actors) -> caf::result<std::vector<actor_info>> {
      auto rp = self->make_response_promise<std::vector<actor_info>>();
      walk_tree(self, [rp](tree_walk& walk) mutable {
        rp.deliver(std::move(walk.rows));
      });
      return rp;
    },
    [self](atom::get, const std::string& name) -> caf::result<actor_info> {
      auto rp = self->make_response_promise<actor_info>();
      walk_tree(self, [rp, name](tree_walk& walk) mutable {
        for (auto& row : walk.rows)
          if (row.name == name) {
            rp.deliver(std::move(row));
            return;
          }
        rp.deliver(unknown_actor(name));
      });
      return rp;
    },
    [self](atom::stats) -> caf::result<status_map> {
      auto rp = self->make_response_promise<status_map>();
      walk_tree(self, [self, rp](tree_walk& walk) mutable {
        rp.deliver(node_stats(self->state, walk));
      });
      return rp;
    },
    [self](atom::health) -> caf::result<health_report> {
      auto rp = self->make_response_promise<health_report>();
      walk_tree(self, [self, rp](tree_walk& walk) mutable {
        health_report report;
        for (auto& row : walk.rows) {
          if (row.state == child_state::running)
            continue;
          if (row.state == child_state::stopped) {
            report.reasons.push_back(row.name + " is stopped");
            continue;
          }
          auto reason = row.name + " is " + to_string(row.state);
          if (!row.last_error.empty())
            reason += " (" + row.last_error + ")";
          report.reasons.push_back(std::move(reason));
        }
        if (auto problem = self->state.store->space_problem(); !problem.empty())
          report.reasons.push_back("disk_full: " + problem
                                   + "; new events are refused and sync is "
                                     "paused until space returns");
        for (auto& reason : lag_reasons(walk, self->state.config.health))
          report.reasons.push_back(std::move(reason));
        with_sync_health(self, std::move(report), rp);
      });
      return rp;
    },
    [self](atom::restart, const std::string& name) {
      return act_on(self, name,
                    supervisor_command<atom::restart>(self, name, "restarted",
                                                      "could not restart"));
    },
    [self](atom::stop, const std::string& name) {
      return act_on(self, name,
                    supervisor_command<atom::stop>(self, name, "stopped",
                                                   "already stopped:"));
    },
    [self](atom::start, const std::string& name) {
      return act_on(self, name,
                    supervisor_command<atom::start>(self, name, "started",
                                                    "already running:"));
    },
    [self](atom::fault, const std::string& name) -> caf::result<std::string> {
      if (!self->state.config.fault_injection)
        return caf::make_error(ec::invalid_input,
                               "fault injection is disabled "
                               "(console.fault_injection = false)");
      log::warn("inspector injects a fault into {}", name);
      return act_on(self, name,
                    supervisor_command<atom::fault>(self, name,
                                                    "injected a fault into",
                                                    "not running:"));
    },
    [self](atom::servers) {
      return ask_sync_manager(self, atom::get_v, atom::servers_v);
    },
    [self](atom::server, const std::string& id) {
      return ask_sync_manager(self, atom::get_v, atom::server_v, id);
    },
    [self](atom::sync_now, const std::string& id) {
      return ask_sync_manager(self, atom::sync_now_v, id);
    },
    [self](atom::start, atom::server, const std::string& id) {
      return ask_sync_manager(self, atom::start_v, id);
    },
    [self](atom::stop, atom::server, const std::string& id) {
      return ask_sync_manager(self, atom::stop_v, id);
    },
    [self](atom::repos) {
      return ask_grasp(self, atom::get_v, atom::repos_v);
    },
    [self](atom::refused, const std::string& source) {
      return store::refused_json(*self->state.store, source, 50);
    },
    [self](atom::repo, const std::string& address) {
      return ask_grasp(self, atom::get_v, atom::repo_v, address);
    },
    [self](atom::relays) {
      return ask_infra(self, self->state.infra.registry, "relay registry",
                       atom::get_v, atom::relays_v);
    },
    [self](atom::relay, const std::string& id) -> caf::result<std::string> {
      auto& slot = self->state.infra.registry;
      auto registry = slot ? slot->get() : relay_registry_actor{};
      if (!registry)
        return caf::make_error(ec::not_found,
                               "the relay registry is not running");
      // The relay, then its log: the console's view of one relay.
      auto rp = self->make_response_promise<std::string>();
      self->request(registry, std::chrono::seconds{5}, atom::get_v,
                    atom::relay_v, id)
        .then(
          [self, registry, id, rp](std::string& relay) mutable {
            self
              ->request(registry, std::chrono::seconds{5}, atom::get_v,
                        atom::activity_v, id)
              .then(
                [relay, rp](std::string& log) mutable {
                  rp.deliver("{\"relay\":" + relay + ",\"activity\":" + log
                             + "}");
                },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [self](atom::members, const std::string& id) {
      return ask_infra(self, self->state.infra.reconciler, "infra reconciler",
                       atom::members_v, id);
    },
    [self](atom::get, atom::members) -> caf::result<std::string> {
      if (!self->state.cluster)
        return caf::make_error(ec::not_found,
                               "this node is not in a cluster "
                               "(cluster.enabled = false)");
      return ask_infra(self, self->state.cluster, "cluster manager",
                       atom::get_v, atom::members_v);
    },
    [self](atom::leave) -> caf::result<std::string> {
      if (!self->state.cluster)
        return caf::make_error(ec::not_found,
                               "this node is not in a cluster "
                               "(cluster.enabled = false)");
      return ask_infra_within(self, self->state.cluster, "cluster manager",
                              cluster_leave_limit, atom::leave_v);
    },
    [self](federation_call& call) -> caf::result<federation_reply> {
      // The console is an operator: only operators' calls, and never in a
      // peer's name.
      static const std::set<std::string> console_ops{
        "list", "get", "reset", "pause", "resume", "our_collections", "pull"};
      if (console_ops.count(call.op) == 0)
        return caf::make_error(ec::invalid_input,
                               "federation: the console does not run "
                                 + call.op);
      auto& slot = self->state.federation;
      auto manager = slot ? slot->get() : federation_actor{};
      if (!manager)
        return caf::make_error(ec::not_found,
                               slot ? "the federation manager is not running"
                                    : "federation is disabled "
                                      "(federation.enabled = false)");
      call.caller.clear();
      auto rp = self->make_response_promise<federation_reply>();
      // A pull lasts a whole reconciliation (the manager gives up at 60 s).
      auto timeout = call.op == "pull" ? std::chrono::seconds{70}
                                       : std::chrono::seconds{10};
      self->request(manager, timeout, std::move(call))
        .then([rp](federation_reply& answer) mutable {
                rp.deliver(std::move(answer));
              },
              [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
  };
}

console_gate_actor::behavior_type
console_gate(console_gate_actor::stateful_pointer<console_gate_state> self,
             handle_slot_ptr<inspector_actor> inspector, std::string secret) {
  self->state.inspector = std::move(inspector);
  self->state.secret = std::move(secret);
  return {
    [self](atom::login, const std::string& secret)
      -> caf::result<inspector_actor> {
      auto& st = self->state;
      // Constant time, also in the length: a wrong guess tells nothing
      // about how close it was.
      if (!secret_equal(secret, st.secret)) {
        ++st.refused;
        log::warn("console-gate refused a console: wrong secret");
        return caf::make_error(ec::invalid_input, "wrong console secret");
      }
      auto handle = st.inspector->get();
      if (!handle)
        return caf::make_error(ec::invalid_input,
                               "the inspector is restarting; try again");
      ++st.logins;
      return handle;
    },
    [self](atom::get, atom::status) {
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "logins", static_cast<int64_t>(self->state.logins));
      caf::put(result, "refused", static_cast<int64_t>(self->state.refused));
      return result;
    },
  };
}

} // namespace ferry
