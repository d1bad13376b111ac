#include "actors/runtime/config_reloader.hpp"

#include "actors/ingest/policy.hpp"
#include "actors/relay/client_session.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "store/refused_store.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <utility>

namespace ferry {

namespace json = boost::json;

namespace {

/// How long the SYNC MANAGER may take to apply one definition.
constexpr auto sync_manager_timeout = std::chrono::seconds{5};

/// One key of `[relay.limits]`: its name, whether sessions apply a new
/// value at once, and how to compare and take it.
struct limit_key {
  const char* name;
  bool live;
  std::function<bool(const config::relay_limits&, const config::relay_limits&)>
    same;
  std::function<void(config::relay_limits&, const config::relay_limits&)> take;
};

template <class T>
limit_key limit(const char* name, bool live, T config::relay_limits::*member) {
  return {name, live,
          [member](const config::relay_limits& x,
                   const config::relay_limits& y) {
            return x.*member == y.*member;
          },
          [member](config::relay_limits& x, const config::relay_limits& y) {
            x.*member = y.*member;
          }};
}

const std::vector<limit_key>& limit_keys() {
  using L = config::relay_limits;
  // The connection-level keys are the WebSocket server's options, fixed
  // when it starts.
  static const std::vector<limit_key> keys{
    limit("max_frame_bytes", false, &L::max_frame_bytes),
    limit("max_subscriptions", true, &L::max_subscriptions),
    limit("max_filters", true, &L::max_filters),
    limit("max_limit", true, &L::max_limit),
    limit("default_limit", true, &L::default_limit),
    limit("max_subscription_id_length", true, &L::max_subscription_id_length),
    limit("max_future_seconds", true, &L::max_future_seconds),
    limit("max_outbound_bytes", false, &L::max_outbound_bytes),
    limit("max_inflight_messages", false, &L::max_inflight_messages),
  };
  return keys;
}

/// `[policy]` apart from its plugin and its memory of refused events.
bool same_rules(config::policy_config x, const config::policy_config& y) {
  x.plugin = y.plugin;
  x.remember_refused = y.remember_refused;
  return x == y;
}

/// The policy's part of a plan: the rules apply live when a POLICY step
/// runs; the plugin and the refused-event memory wait for a restart.
void plan_policy(const config::policy_config& x, const config::policy_config& y,
                 bool policy_step_runs, reload_plan& plan) {
  if (!same_rules(x, y))
    (policy_step_runs ? plan.applied : plan.restart_required)
      .emplace_back("policy");
  config::policy_config only_plugin = x;
  only_plugin.plugin = y.plugin;
  if (!(only_plugin == x))
    plan.restart_required.emplace_back("policy.plugin");
  config::policy_config only_memory = x;
  only_memory.remember_refused = y.remember_refused;
  if (!(only_memory == x))
    plan.restart_required.emplace_back("policy.remember_refused");
}

/// The `relay` section apart from its sub-tables.
bool same_relay_top(config::relay_config x, const config::relay_config& y) {
  x.limits = y.limits;
  x.negentropy = y.negentropy;
  x.tls = y.tls;
  return x == y;
}

/// Every section that reloads only with a restart, by the name `ferry.toml`
/// gives it.
void add_restart_required(const config::config& x, const config::config& y,
                          std::vector<std::string>& out) {
  auto check = [&out](const char* name, bool same) {
    if (!same)
      out.emplace_back(name);
  };
  check("relay", same_relay_top(x.relay, y.relay));
  check("relay.negentropy", x.relay.negentropy == y.relay.negentropy);
  check("relay.tls", x.relay.tls == y.relay.tls);
  check("admin", x.admin == y.admin);
  check("console", x.console == y.console);
  check("health", x.health == y.health);
  check("store", x.store == y.store);
  check("ingest", x.ingest == y.ingest);
  check("node", x.node == y.node);
  check("supervision", x.supervision == y.supervision);
  check("grasp", x.grasp == y.grasp);
  check("infra", x.infra == y.infra);
  check("cluster", x.cluster == y.cluster);
  check("federation", x.federation == y.federation);
}

bool is_not_found(const caf::error& err) {
  return err.category() == caf::atom("ferry")
         && err.code() == static_cast<uint8_t>(ec::not_found);
}

using self_pointer
  = config_reloader_actor::stateful_pointer<config_reloader_state>;

/// The outcome of applying one plan, filled in as the SYNC MANAGER answers.
struct reload_run {
  reload_plan plan;
  config::config next;
  caf::typed_response_promise<std::string> reply;
  /// Servers the SYNC MANAGER refused (id, reason).
  std::vector<std::pair<std::string, std::string>> failed;
  size_t pending = 0;
  /// Refused events the memory forgot because the rules changed.
  size_t refusals_forgotten = 0;
};

json::array ids_of(const std::vector<sync_server>& servers) {
  json::array out;
  for (auto& def : servers)
    out.emplace_back(def.id);
  return out;
}

json::array strings(const std::vector<std::string>& xs) {
  json::array out;
  for (auto& x : xs)
    out.emplace_back(x);
  return out;
}

/// Records what took effect: the file's log level, and its servers except
/// those the SYNC MANAGER refused (the running definition stays for them,
/// so the next reload tries again).
void commit(self_pointer self, reload_run& run) {
  auto& running = *self->state.running;
  running.log = run.next.log;
  running.relay.limits = with_live_limits(running.relay.limits,
                                          run.next.relay.limits);
  if (self->state.policy_step_runs)
    running.policy = with_live_rules(running.policy, run.next.policy);
  std::map<std::string, sync_server> kept;
  for (auto& def : running.sync.servers)
    kept.emplace(def.id, def);
  std::vector<sync_server> servers;
  for (auto& def : run.next.sync.servers) {
    auto refused = std::any_of(run.failed.begin(), run.failed.end(),
                               [&](auto& f) { return f.first == def.id; });
    if (!refused)
      servers.push_back(def);
    else if (auto i = kept.find(def.id); i != kept.end())
      servers.push_back(i->second);
  }
  for (auto& id : run.plan.servers_removed)
    if (std::any_of(run.failed.begin(), run.failed.end(),
                    [&](auto& f) { return f.first == id; }))
      servers.push_back(kept.at(id));
  running.sync.servers = std::move(servers);
}

void finish(self_pointer self, const std::shared_ptr<reload_run>& run) {
  auto& st = self->state;
  commit(self, *run);
  st.busy = false;
  ++st.reloads;
  st.last_reload = unix_now();
  json::array failed;
  for (auto& [id, reason] : run->failed)
    failed.emplace_back(json::object{{"id", id}, {"error", reason}});
  json::object report{
    {"file", st.running->source},
    {"applied", strings(run->plan.applied)},
    {"restart_required", strings(run->plan.restart_required)},
    {"refusals_forgotten", run->refusals_forgotten},
    {"sync_servers",
     json::object{{"added", ids_of(run->plan.servers_added)},
                  {"changed", ids_of(run->plan.servers_changed)},
                  {"removed", strings(run->plan.servers_removed)},
                  {"failed", std::move(failed)}}},
  };
  log::info("{} reloaded {}: applied {}, waiting for a restart {}, "
            "{} sync server(s) refused",
            self->name(), st.running->source,
            json::serialize(report["applied"]),
            json::serialize(report["restart_required"]), run->failed.size());
  run->reply.deliver(json::serialize(report));
}

/// One answer from the SYNC MANAGER came in (`err` empty: applied).
void settle(self_pointer self, const std::shared_ptr<reload_run>& run,
            const std::string& id, const caf::error& err) {
  if (err) {
    log::warn("{} could not apply sync server {}: {}", self->name(), id,
              render(err));
    run->failed.emplace_back(id, render(err));
  }
  if (--run->pending == 0)
    finish(self, run);
}

void apply_servers(self_pointer self, const std::shared_ptr<reload_run>& run) {
  auto& slot = self->state.sync_manager;
  auto manager = slot ? slot->get() : sync_manager_actor{};
  auto& plan = run->plan;
  std::vector<const sync_server*> puts;
  for (auto* list : {&plan.servers_added, &plan.servers_changed})
    for (auto& def : *list)
      puts.push_back(&def);
  run->pending = puts.size() + plan.servers_removed.size() + 1;
  auto unavailable = caf::make_error(ec::not_found,
                                     "the sync manager is not running");
  for (auto* def : puts) {
    if (!manager) {
      settle(self, run, def->id, unavailable);
      continue;
    }
    auto id = def->id;
    self->request(manager, sync_manager_timeout, atom::put_v, id, to_json(*def))
      .then([self, run, id](const std::string&) {
              settle(self, run, id, caf::error{});
            },
            [self, run, id](caf::error& err) { settle(self, run, id, err); });
  }
  for (auto& id : plan.servers_removed) {
    if (!manager) {
      settle(self, run, id, unavailable);
      continue;
    }
    self->request(manager, sync_manager_timeout, atom::erase_v, id)
      .then([self, run, id](const std::string&) {
              settle(self, run, id, caf::error{});
            },
            [self, run, id](caf::error& err) {
              // Deleted through the admin API already: the file agrees.
              settle(self, run, id,
                     is_not_found(err) ? caf::error{} : std::move(err));
            });
  }
  // The count started one high so that no answer finishes the run early.
  settle(self, run, {}, caf::error{});
}

} // namespace

config::relay_limits with_live_limits(config::relay_limits current,
                                      const config::relay_limits& next) {
  for (auto& key : limit_keys())
    if (key.live)
      key.take(current, next);
  return current;
}

config::policy_config with_live_rules(config::policy_config current,
                                      const config::policy_config& next) {
  auto plugin = std::move(current.plugin);
  auto memory = current.remember_refused;
  current = next;
  current.plugin = std::move(plugin);
  current.remember_refused = memory;
  return current;
}

reload_plan plan_reload(const config::config& running,
                        const config::config& next, bool policy_step_runs) {
  reload_plan plan;
  if (!(running.log == next.log))
    plan.applied.emplace_back("log.level");
  for (auto& key : limit_keys())
    if (!key.same(running.relay.limits, next.relay.limits))
      (key.live ? plan.applied : plan.restart_required)
        .push_back(std::string{"relay.limits."} + key.name);
  std::map<std::string, const sync_server*> before;
  for (auto& def : running.sync.servers)
    before.emplace(def.id, &def);
  for (auto& def : next.sync.servers) {
    auto i = before.find(def.id);
    if (i == before.end())
      plan.servers_added.push_back(def);
    else if (*i->second != def)
      plan.servers_changed.push_back(def);
    if (i != before.end())
      before.erase(i);
  }
  for (auto& [id, def] : before)
    plan.servers_removed.push_back(id);
  if (!plan.servers_added.empty() || !plan.servers_changed.empty()
      || !plan.servers_removed.empty())
    plan.applied.emplace_back("sync.server");
  add_restart_required(running, next, plan.restart_required);
  plan_policy(running.policy, next.policy, policy_step_runs, plan);
  return plan;
}

config_reloader_actor::behavior_type
config_reloader(config_reloader_actor::stateful_pointer<config_reloader_state> self,
                running_config_ptr running,
                handle_slot_ptr<sync_manager_actor> sync_manager,
                std::shared_ptr<relay_context> relay,
                live_value_ptr<config::policy_config> policy,
                bool policy_step_runs, store::event_store* store) {
  self->state.store = store;
  self->state.running = std::move(running);
  self->state.sync_manager = std::move(sync_manager);
  self->state.relay = std::move(relay);
  self->state.policy = std::move(policy);
  self->state.policy_step_runs = policy_step_runs;
  return {
    [self](atom::reload) -> caf::result<std::string> {
      auto& st = self->state;
      if (st.running->source.empty())
        return caf::make_error(ec::conflict,
                               "the node runs on the embedded default config "
                               "(no --config file): there is nothing to "
                               "reload");
      if (st.busy)
        return caf::make_error(ec::conflict, "a reload is already applying");
      auto next = config::load_file(st.running->source);
      if (!next) {
        ++st.failed;
        log::warn("{} keeps the running config: {}", self->name(),
                  render(next.error()));
        return std::move(next.error());
      }
      auto run = std::make_shared<reload_run>();
      run->plan = plan_reload(*st.running, *next, st.policy_step_runs);
      run->next = std::move(*next);
      run->reply = self->make_response_promise<std::string>();
      if (!(st.running->log == run->next.log))
        log::get().set_level(spdlog::level::from_str(run->next.log.level));
      if (st.relay)
        st.relay->limits.set(
          with_live_limits(*st.relay->limits.get(), run->next.relay.limits));
      if (st.policy && st.policy_step_runs) {
        auto rules = with_live_rules(*st.policy->get(), run->next.policy);
        if (st.store) {
          auto forgotten = store::follow_policy(*st.store,
                                                policy_fingerprint(rules));
          if (forgotten)
            run->refusals_forgotten = *forgotten;
          else
            log::warn("{} keeps the refused events' memory: {}", self->name(),
                      render(forgotten.error()));
        }
        st.policy->set(std::move(rules));
      }
      st.busy = true;
      apply_servers(self, run);
      return run->reply;
    },
    [self](atom::get, atom::status) -> status_map {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "file", st.running->source);
      caf::put(result, "reloads", static_cast<int64_t>(st.reloads));
      caf::put(result, "failed", static_cast<int64_t>(st.failed));
      caf::put(result, "last_reload", st.last_reload);
      return result;
    },
  };
}

} // namespace ferry
