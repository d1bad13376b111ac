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

/// How long the relay registry may take to mark every hosted relay (one
/// synced write each). It goes on marking after that; the report then says
/// it did not answer in time.
constexpr auto registry_timeout = std::chrono::seconds{10};

// The requests of one reload run side by side, so the longest of these
// waits bounds the reload. Past the callers' timeout they would get a
// timeout instead of the report of what was applied and what failed.
static_assert(sync_manager_timeout + std::chrono::seconds{5}
                <= config_reload_timeout
              && registry_timeout + std::chrono::seconds{5}
                   <= config_reload_timeout,
              "a reload must answer well within its callers' timeout");

/// One key of a section: its name in `ferry.toml`, whether a new value
/// applies without a restart, and how to compare and take it.
template <class Section>
struct section_key {
  std::string name;
  bool live;
  std::function<bool(const Section&, const Section&)> same;
  std::function<void(Section&, const Section&)> take;
};

/// A key read through `field`, which returns the member (const or not) of a
/// section.
template <class Section, class Field>
section_key<Section> key(std::string name, bool live, Field field) {
  return {std::move(name), live,
          [field](const Section& x, const Section& y) {
            return field(x) == field(y);
          },
          [field](Section& x, const Section& y) { field(x) = field(y); }};
}

/// A key that is a member of the section.
template <class Section, class T>
section_key<Section> key(std::string name, bool live, T Section::*member) {
  return key<Section>(std::move(name), live,
                      [member](auto& section) -> auto& {
                        return section.*member;
                      });
}

/// A key of one of the section's sub-tables.
template <class Section, class Table, class T>
section_key<Section> key(std::string name, bool live, Table Section::*table,
                         T Table::*member) {
  return key<Section>(std::move(name), live,
                      [table, member](auto& section) -> auto& {
                        return section.*table.*member;
                      });
}

const std::vector<section_key<config::relay_limits>>& limit_keys() {
  using L = config::relay_limits;
  // The connection-level keys are the WebSocket server's options, fixed
  // when it starts.
  static const std::vector<section_key<L>> keys{
    key<L>("max_frame_bytes", false, &L::max_frame_bytes),
    key<L>("max_subscriptions", true, &L::max_subscriptions),
    key<L>("max_filters", true, &L::max_filters),
    key<L>("max_limit", true, &L::max_limit),
    key<L>("default_limit", true, &L::default_limit),
    key<L>("max_count_scan", true, &L::max_count_scan),
    key<L>("max_subscription_id_length", true, &L::max_subscription_id_length),
    key<L>("max_future_seconds", true, &L::max_future_seconds),
    key<L>("max_outbound_bytes", false, &L::max_outbound_bytes),
    key<L>("max_inflight_messages", false, &L::max_inflight_messages),
    key<L>("max_connections", false, &L::max_connections),
    key<L>("max_connections_per_ip", false, &L::max_connections_per_ip),
    key<L>("max_outbound_total_mb", false, &L::max_outbound_total_mb),
    key<L>("max_inbound_total_mb", false, &L::max_inbound_total_mb),
  };
  return keys;
}

const std::vector<section_key<config::grasp_config>>& grasp_keys() {
  using G = config::grasp_config;
  // GRASP SYNC reads the plan's tunables, the bootstrap relays and the tick
  // before each decision, the SELF SUBSCRIBER the window when it opens one.
  // Fixed at the start: whether the subsystem runs at all, which
  // announcements are ours (`repo_sync` is rebuilt from them at the start),
  // and the batch tracker's timeout.
  static const std::vector<section_key<G>> keys{
    key<G>("enabled", false, &G::enabled),
    key<G>("service_domain", false, &G::service_domain),
    key<G>("bootstrap_relays", true, &G::bootstrap_relays),
    key<G>("batch_window_ms", true, &G::batch_window),
    key<G>("tick_seconds", true, &G::tick),
    key<G>("resync_after_seconds", true, &G::resync_after),
    key<G>("overlap_window_seconds", true, &G::overlap_window),
    key<G>("reconcile_min_seconds", true, &G::reconcile_min),
    key<G>("reconcile_max_seconds", true, &G::reconcile_max),
    key<G>("group_size", true, &G::group_size),
    key<G>("max_filters_per_subscription", true,
           &G::max_filters_per_subscription),
    key<G>("max_filters_per_relay", true, &G::max_filters_per_relay),
    key<G>("batch_timeout_seconds", false, &G::batch_timeout),
  };
  return keys;
}

/// Every `[infra]` key applies live (the reconciler and the registry read
/// them at each use); `reshapes` marks those every pushed relay shows.
struct infra_key {
  section_key<config::infra_config> key;
  bool reshapes;
};

const std::vector<infra_key>& infra_keys() {
  using I = config::infra_config;
  using B = config::infra_blossom_config;
  using K = config::infra_livekit_config;
  static const std::vector<infra_key> keys{
    {key<I>("enabled", true, &I::enabled), false},
    {key<I>("api_url", true, &I::api_url), true},
    {key<I>("relay_domain", true, &I::relay_domain), true},
    {key<I>("roles", true, &I::roles_json), true},
    {key<I>("request_timeout_ms", true, &I::request_timeout_ms), false},
    {key<I>("retry_base_ms", true, &I::retry_base_ms), false},
    {key<I>("retry_cap_ms", true, &I::retry_cap_ms), false},
    {key<I>("max_attempts", true, &I::max_attempts), false},
    {key<I>("blossom.endpoint", true, &I::blossom, &B::endpoint), true},
    {key<I>("blossom.region", true, &I::blossom, &B::region), true},
    {key<I>("blossom.bucket", true, &I::blossom, &B::bucket), true},
    {key<I>("blossom.access_key", true, &I::blossom, &B::access_key), true},
    {key<I>("blossom.secret_key", true, &I::blossom, &B::secret_key), true},
    {key<I>("livekit.server_url", true, &I::livekit, &K::server_url), true},
    {key<I>("livekit.api_key", true, &I::livekit, &K::api_key), true},
    {key<I>("livekit.api_secret", true, &I::livekit, &K::api_secret), true},
  };
  return keys;
}

/// Names each changed key of `keys` as `prefix.key`, in `applied` or in
/// `restart_required`.
template <class Section>
void plan_keys(const std::vector<section_key<Section>>& keys,
               const std::string& prefix, const Section& x, const Section& y,
               reload_plan& plan) {
  for (auto& k : keys)
    if (!k.same(x, y))
      (k.live ? plan.applied : plan.restart_required)
        .push_back(prefix + "." + k.name);
}

template <class Section>
Section with_live_keys(const std::vector<section_key<Section>>& keys,
                       Section current, const Section& next) {
  for (auto& k : keys)
    if (k.live)
      k.take(current, next);
  return current;
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
  /// Hosted relays marked to push again, or why the registry could not.
  uint64_t relays_repushed = 0;
  std::string repush_error;
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

/// Records what took effect: the file's log level, limits, rules, `[grasp]`
/// and `[infra]` keys that apply live, and its servers except
/// those the SYNC MANAGER refused (the running definition stays for them,
/// so the next reload tries again).
void commit(self_pointer self, reload_run& run) {
  auto& running = *self->state.deps.running;
  running.log = run.next.log;
  running.relay.limits = with_live_limits(running.relay.limits,
                                          run.next.relay.limits);
  if (self->state.deps.policy_step_runs)
    running.policy = with_live_rules(running.policy, run.next.policy);
  if (self->state.deps.grasp)
    running.grasp = with_live_grasp(running.grasp, run.next.grasp);
  if (self->state.deps.infra)
    running.infra = run.next.infra;
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
    {"file", st.deps.running->source},
    {"applied", strings(run->plan.applied)},
    {"restart_required", strings(run->plan.restart_required)},
    {"refusals_forgotten", run->refusals_forgotten},
    {"hosted_relays_repushed", run->relays_repushed},
    {"sync_servers",
     json::object{{"added", ids_of(run->plan.servers_added)},
                  {"changed", ids_of(run->plan.servers_changed)},
                  {"removed", strings(run->plan.servers_removed)},
                  {"failed", std::move(failed)}}},
  };
  log::info("{} reloaded {}: applied {}, waiting for a restart {}, "
            "{} sync server(s) refused",
            self->name(), st.deps.running->source,
            json::serialize(report["applied"]),
            json::serialize(report["restart_required"]), run->failed.size());
  if (!run->repush_error.empty())
    report["hosted_relays_error"] = run->repush_error;
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
  auto& slot = self->state.deps.sync_manager;
  auto manager = slot ? slot->get() : sync_manager_actor{};
  auto& plan = run->plan;
  std::vector<const sync_server*> puts;
  for (auto* list : {&plan.servers_added, &plan.servers_changed})
    for (auto& def : *list)
      puts.push_back(&def);
  run->pending += puts.size() + plan.servers_removed.size();
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
}

/// `[grasp]`: its live keys for GRASP SYNC (woken to take them at once) and
/// the SELF SUBSCRIBER.
void apply_grasp(self_pointer self, const config::grasp_config& next) {
  auto& deps = self->state.deps;
  if (!deps.grasp)
    return;
  deps.grasp->set(with_live_grasp(*deps.grasp->get(), next));
  auto& slot = deps.grasp_sync;
  if (auto grasp = slot ? slot->get() : grasp_sync_actor{})
    self->send(grasp, atom::changed_v, std::vector<std::string>{});
}

/// `[infra]`: read by the registry and the reconciler at each use; every
/// hosted relay is marked to push again when what it shows changed, and a
/// reconciler turned on reconciles.
void apply_infra(self_pointer self, const std::shared_ptr<reload_run>& run) {
  auto& deps = self->state.deps;
  if (!deps.infra)
    return;
  deps.infra->set(run->next.infra);
  if (run->plan.repush_hosted_relays) {
    auto& slot = deps.relay_registry;
    auto registry = slot ? slot->get() : relay_registry_actor{};
    if (!registry) {
      run->repush_error = "the relay registry is not running: hosted relays "
                          "are pushed again only when they change";
      log::warn("{}: {}", self->name(), run->repush_error);
    } else {
      ++run->pending;
      self->request(registry, registry_timeout, atom::reload_v)
        .then(
          [self, run](uint64_t marked) {
            run->relays_repushed = marked;
            settle(self, run, {}, caf::error{});
          },
          [self, run](caf::error& err) {
            run->repush_error
              = err == caf::sec::request_timeout
                  ? "the relay registry did not answer within "
                      + std::to_string(registry_timeout.count())
                      + " s; it goes on marking the hosted relays to push "
                        "again"
                  : render(err);
            log::warn("{} could not mark the hosted relays to push again: {}",
                      self->name(), run->repush_error);
            settle(self, run, {}, caf::error{});
          });
    }
  }
  if (run->plan.infra_turned_on) {
    auto& slot = deps.infra_reconciler;
    if (auto reconciler = slot ? slot->get() : infra_reconciler_actor{})
      self->send(reconciler, atom::reconcile_v);
  }
}

} // namespace

config::relay_limits with_live_limits(config::relay_limits current,
                                      const config::relay_limits& next) {
  return with_live_keys(limit_keys(), std::move(current), next);
}

config::grasp_config with_live_grasp(config::grasp_config current,
                                     const config::grasp_config& next) {
  return with_live_keys(grasp_keys(), std::move(current), next);
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
  plan_keys(limit_keys(), "relay.limits", running.relay.limits,
            next.relay.limits, plan);
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
  plan_keys(grasp_keys(), "grasp", running.grasp, next.grasp, plan);
  for (auto& k : infra_keys())
    if (!k.key.same(running.infra, next.infra)) {
      plan.applied.push_back("infra." + k.key.name);
      plan.repush_hosted_relays |= k.reshapes;
    }
  plan.infra_turned_on = !running.infra.active() && next.infra.active();
  add_restart_required(running, next, plan.restart_required);
  plan_policy(running.policy, next.policy, policy_step_runs, plan);
  return plan;
}

config_reloader_actor::behavior_type
config_reloader(config_reloader_actor::stateful_pointer<config_reloader_state> self,
                config_reloader_deps deps) {
  self->state.deps = std::move(deps);
  return {
    [self](atom::reload) -> caf::result<std::string> {
      auto& st = self->state;
      auto& deps = st.deps;
      if (deps.running->source.empty())
        return caf::make_error(ec::conflict,
                               "the node runs on the embedded default config "
                               "(no --config file): there is nothing to "
                               "reload");
      if (st.busy)
        return caf::make_error(ec::conflict, "a reload is already applying");
      auto next = config::load_file(deps.running->source);
      if (!next) {
        ++st.failed;
        log::warn("{} keeps the running config: {}", self->name(),
                  render(next.error()));
        return std::move(next.error());
      }
      auto run = std::make_shared<reload_run>();
      run->plan = plan_reload(*deps.running, *next, deps.policy_step_runs);
      run->next = std::move(*next);
      run->reply = self->make_response_promise<std::string>();
      if (!(deps.running->log == run->next.log))
        log::get().set_level(spdlog::level::from_str(run->next.log.level));
      if (deps.relay)
        deps.relay->limits.set(
          with_live_limits(*deps.relay->limits.get(), run->next.relay.limits));
      if (deps.policy && deps.policy_step_runs) {
        auto rules = with_live_rules(*deps.policy->get(), run->next.policy);
        if (deps.store) {
          auto forgotten = store::follow_policy(*deps.store,
                                                policy_fingerprint(rules));
          if (forgotten)
            run->refusals_forgotten = *forgotten;
          else
            log::warn("{} keeps the refused events' memory: {}", self->name(),
                      render(forgotten.error()));
        }
        deps.policy->set(std::move(rules));
      }
      apply_grasp(self, run->next.grasp);
      st.busy = true;
      // One count more than the answers awaited, so that none finishes the
      // run before every request is out.
      run->pending = 1;
      apply_infra(self, run);
      apply_servers(self, run);
      settle(self, run, {}, caf::error{});
      return run->reply;
    },
    [self](atom::get, atom::status) -> status_map {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "file", st.deps.running->source);
      caf::put(result, "reloads", static_cast<int64_t>(st.reloads));
      caf::put(result, "failed", static_cast<int64_t>(st.failed));
      caf::put(result, "last_reload", st.last_reload);
      return result;
    },
  };
}

} // namespace ferry
