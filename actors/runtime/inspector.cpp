#include "actors/runtime/inspector.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/health_tracker.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/secret.hpp"
#include "store/column_families.hpp"
#include "store/refused_store.hpp"

#include <caf/actor_cast.hpp>
#include <caf/typed_response_promise.hpp>

#include <rocksdb/db.h>

#include <chrono>
#include <functional>
#include <map>
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
caf::result<std::string> ask_infra(self_pointer self,
                                   const handle_slot_ptr<Handle>& slot,
                                   const char* what, Ts... xs) {
  auto handle = slot ? slot->get() : Handle{};
  if (!handle)
    return caf::make_error(ec::not_found,
                           std::string{"the "} + what + " is not running");
  auto rp = self->make_response_promise<std::string>();
  self->request(handle, std::chrono::seconds{10}, xs...)
    .then([rp](std::string& answer) mutable { rp.deliver(std::move(answer)); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

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

/// Adds the INFRA RECONCILER's relays given up to `report`, then the
/// cluster's refusals.
void with_infra_health(self_pointer self, health_report report,
                       caf::typed_response_promise<health_report> rp) {
  auto& slot = self->state.infra.reconciler;
  auto reconciler = slot ? slot->get() : infra_reconciler_actor{};
  if (!reconciler) {
    with_cluster_health(self, std::move(report), rp);
    return;
  }
  auto shared = std::make_shared<health_report>(std::move(report));
  self->request(reconciler, self->state.config.status_timeout, atom::health_v)
    .then(
      [self, shared, rp](health_report& infra) mutable {
        for (auto& reason : infra.reasons)
          shared->reasons.push_back(std::move(reason));
        with_cluster_health(self, std::move(*shared), rp);
      },
      [self, shared, rp](caf::error&) mutable {
        // A reconciler too busy to answer shows in the tree walk already.
        with_cluster_health(self, std::move(*shared), rp);
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
        for (auto& reason : sync_health_reasons(relays))
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
    [self](atom::stats) -> status_map {
      auto& st = self->state;
      status_map result;
      caf::put(result, "store.events",
               static_cast<int64_t>(st.store->approximate_event_count()));
      caf::put(result, "store.disk_bytes",
               column_family_property(*st.store,
                                      "rocksdb.total-sst-files-size"));
      caf::put(result, "store.memtable_bytes",
               column_family_property(*st.store,
                                      "rocksdb.cur-size-all-mem-tables"));
      caf::put(result, "relay.connections",
               static_cast<int64_t>(st.relay->live_sessions.load()));
      return result;
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
