#include "actors/sync/sync_manager.hpp"

#include "actors/runtime/json_status.hpp"
#include "actors/runtime/logging.hpp"
#include "actors/sync/one_shot_sync.hpp"
#include "messages/clock.hpp"
#include "messages/cluster/rendezvous.hpp"
#include "messages/cluster/replication.hpp"
#include "messages/error.hpp"
#include "store/sync_store.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/typed_response_promise.hpp>

#include <boost/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <utility>

namespace ferry {

namespace {

namespace json = boost::json;

using self_pointer = sync_manager_actor::stateful_pointer<sync_manager_state>;
using entry = sync_manager_state::entry;

/// The counters a stats row carries, in the order it lists them.
constexpr const char* counter_keys[] = {"received", "accepted",  "duplicate",
                                        "rejected", "refused", "failed",
                                        "filtered", "bytes_received",
                                        "bytes_sent",
                                        "neg_need_refused", "sent", "sent_ok",
                                        "sent_refused", "echoes_skipped"};

caf::error unknown_server(const std::string& id) {
  return caf::make_error(ec::not_found, "no sync server named " + id);
}

/// The canonical JSON of a definition as an object, to add keys to.
json::object definition_object(const sync_server& def) {
  return json::parse(to_json(def)).as_object();
}

/// `{"id": ..., "result": ...}`: what the actions answer.
std::string outcome(const std::string& id, std::string_view result) {
  return json::serialize(json::object{{"id", id}, {"result", result}});
}

int64_t integer_of(const status_map& status, const char* key) {
  return caf::get_or(status, key, int64_t{0});
}

/// The persisted runtime state of `id` as JSON (`{"error": ...}` when the
/// store cannot read it).
json::value persisted_runtime(self_pointer self, const std::string& id) {
  auto runtime = store::get_sync_runtime(*self->state.deps.store, id);
  if (!runtime)
    return json::object{{"error", render(runtime.error())}};
  return json::parse(to_json(*runtime));
}

/// The current health tracker (invalid while it restarts or when none).
health_tracker_actor current_health(self_pointer self) {
  auto& slot = self->state.deps.health;
  return slot ? slot->get() : health_tracker_actor{};
}

void report_to_health(self_pointer self, const std::string& id, bool disabled) {
  auto health = current_health(self);
  if (!health)
    return;
  if (disabled)
    self->send(health, atom::report_v, atom::disabled_v, id,
               std::string{"disabled by the operator"});
  else
    self->send(health, atom::report_v, atom::stopped_v, id);
}

/// The era of a definition that syncs something else than the one before it
/// (store::put_sync_server): random, so that no cursor made before under
/// the same id, whatever was deleted and created since, carries it.
uint64_t fresh_era() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t era = 0;
  while (era == 0)
    era = rng();
  return era;
}

void spawn_connection(self_pointer self, entry& e) {
  e.respawn_due = false;
  e.connection = self->spawn(relay_connection, e.def, self->state.deps);
  self->monitor(e.connection);
  log::info("{} started the connection to {} ({})", self->name(), e.def.id,
            e.def.url);
}

/// Stops the connection on purpose: no respawn follows.
/// @returns whether one was running (or about to be respawned).
bool stop_connection(self_pointer self, entry& e) {
  auto was_active = e.respawn_due || e.connection;
  e.respawn_due = false;
  if (e.connection) {
    self->demonitor(e.connection.address());
    self->send_exit(e.connection, caf::exit_reason::user_shutdown);
    e.connection = relay_connection_actor{};
    log::info("{} stopped the connection to {}", self->name(), e.def.id);
  }
  return was_active;
}

/// Answers `(get, status)` of `e`'s connection to `then`, or nullopt when it
/// is not running or does not answer in time.
template <class Then>
void with_status(self_pointer self, const entry& e, Then then) {
  if (!e.connection) {
    then(std::optional<status_map>{});
    return;
  }
  self
    ->request(e.connection, sync_manager_ask_timeout, atom::get_v,
              atom::status_v)
    .then([then](status_map& status) mutable { then(std::move(status)); },
          [then](caf::error&) mutable { then(std::optional<status_map>{}); });
}

/// One definition with `running`, `restarts` and `runtime`.
void server_row(self_pointer self, const entry& e,
                std::function<void(json::value)> done) {
  auto def = e.def;
  auto restarts = e.restarts;
  auto last_exit = e.last_exit;
  with_status(self, e, [self, def, restarts, last_exit,
                        done](std::optional<status_map> status) {
    auto row = definition_object(def);
    row["running"] = status.has_value();
    row["restarts"] = restarts;
    if (!last_exit.empty())
      row["last_exit"] = last_exit;
    row["runtime"] = status ? status_json(*status)
                            : persisted_runtime(self, def.id);
    done(std::move(row));
  });
}

/// The counters of one server: from its connection when it runs, otherwise
/// from the store.
void stats_row(self_pointer self, const entry& e,
               std::function<void(json::value)> done) {
  auto id = e.def.id;
  auto enabled = e.def.enabled;
  with_status(self, e, [self, id, enabled,
                        done](std::optional<status_map> status) {
    json::object row{{"id", id}, {"enabled", enabled},
                     {"running", status.has_value()}};
    if (status) {
      for (auto key : counter_keys)
        row[key] = integer_of(*status, key);
      row["cursor"] = integer_of(*status, "cursor");
      row["up_cursor"] = integer_of(*status, "up_cursor");
      row["up_in_flight"] = integer_of(*status, "up_in_flight");
      for (auto key : {"neg_rounds", "neg_paged", "neg_rounds_held",
                       "neg_need", "neg_have", "neg_have_waiting", "neg_have_deferred",
                       "neg_reconciled_again",
                       "fetched_elsewhere",
                       "fetch_missing", "fetch_refused", "fetch_unanswered",
                       "reqs_asked_again", "last_catchup_ms"})
        row[key] = integer_of(*status, key);
      if (auto neg = caf::get_if<std::string>(&*status, "negentropy"))
        row["negentropy"] = *neg;
      row["connected"] = caf::get_or(*status, "connected", false);
      row["catchup_complete"] = caf::get_or(*status, "catchup_complete",
                                            false);
      row["last_error"] = caf::get_or(*status, "last_error", std::string{});
      row["last_connected"] = integer_of(*status, "last_connected");
      done(std::move(row));
      return;
    }
    auto runtime = store::get_sync_runtime(*self->state.deps.store, id);
    auto rt = runtime ? *runtime : sync_runtime_state{};
    row["received"] = rt.received;
    row["accepted"] = rt.accepted;
    row["duplicate"] = rt.duplicate;
    row["rejected"] = rt.rejected;
    row["refused"] = rt.refused;
    row["neg_need_refused"] = rt.neg_need_refused;
    row["failed"] = 0;
    row["filtered"] = rt.filtered;
    row["bytes_received"] = 0;
    row["bytes_sent"] = 0;
    row["sent"] = rt.sent;
    row["sent_ok"] = rt.sent_ok;
    row["sent_refused"] = rt.sent_refused;
    row["echoes_skipped"] = rt.echoes_skipped;
    row["up_cursor"] = rt.up_cursor;
    row["up_in_flight"] = 0;
    auto cursor = store::get_sync_cursor(*self->state.deps.store, id);
    row["cursor"] = cursor && *cursor ? (*cursor)->created_at : int64_t{0};
    row["connected"] = false;
    row["last_connected"] = rt.last_connected;
    row["catchup_complete"] = false;
    row["last_error"] = runtime ? rt.last_error : render(runtime.error());
    done(std::move(row));
  });
}

/// Runs `source` for every server (in id order) and hands the rows to `done`.
void collect(self_pointer self,
             std::function<void(const entry&,
                                std::function<void(json::value)>)>
               source,
             std::function<void(std::vector<json::value>)> done) {
  auto& servers = self->state.servers;
  if (servers.empty()) {
    done({});
    return;
  }
  auto rows = std::make_shared<std::vector<json::value>>(servers.size());
  auto pending = std::make_shared<size_t>(servers.size());
  size_t index = 0;
  for (auto& [id, e] : servers) {
    source(e, [rows, pending, index, done](json::value row) {
      (*rows)[index] = std::move(row);
      if (--*pending == 0)
        done(std::move(*rows));
    });
    ++index;
  }
}

/// The health reasons of one server's stats row and tracker entry.
json::array reasons_for(const json::object& stats, const relay_health* health,
                        const entry* e) {
  json::array reasons;
  if (health
      && (health->status == relay_status::backing_off
          || health->status == relay_status::dead)) {
    auto reason = to_string(health->status);
    if (health->status == relay_status::dead && !health->dead_reason.empty())
      reason += ": " + health->dead_reason;
    else if (!health->last_error.empty())
      reason += " after " + std::to_string(health->attempts)
                + " attempt(s): " + to_string(health->last_error_class) + ": "
                + health->last_error;
    reasons.emplace_back(reason);
  }
  if (stats.at("running").as_bool() && !stats.at("catchup_complete").as_bool())
    reasons.emplace_back("catch-up not complete");
  if (e && e->respawn_due)
    reasons.emplace_back("connection died (" + e->last_exit
                         + "); respawning");
  return reasons;
}

/// The health answer from the stats rows and the tracker's view.
std::string health_json(self_pointer self, const std::vector<json::value>& rows,
                        const std::vector<relay_health>& health,
                        const std::string& tracker_problem) {
  json::array degraded;
  size_t enabled = 0;
  for (auto& value : rows) {
    auto& row = value.as_object();
    if (!row.at("enabled").as_bool())
      continue;
    ++enabled;
    auto id = std::string{row.at("id").as_string()};
    const relay_health* h = nullptr;
    for (auto& candidate : health)
      if (candidate.server == id)
        h = &candidate;
    auto i = self->state.servers.find(id);
    auto* e = i == self->state.servers.end() ? nullptr : &i->second;
    auto reasons = reasons_for(row, h, e);
    if (reasons.empty())
      continue;
    degraded.push_back(json::object{
      {"id", id},
      {"health", h ? to_string(h->status) : std::string{"unknown"}},
      {"reasons", std::move(reasons)},
    });
  }
  json::object result{
    {"status", degraded.empty() && tracker_problem.empty() ? "ok"
                                                           : "degraded"},
    {"servers", enabled},
    {"degraded", std::move(degraded)},
  };
  if (!tracker_problem.empty())
    result["reasons"] = json::array{json::value{tracker_problem}};
  return json::serialize(result);
}

/// The owner of `def` among the live members, for the operator's answers.
std::string owner_of(const sync_manager_state& st, const sync_server& def) {
  if (!st.live)
    return "nobody yet (the cluster has not settled)";
  auto owner = cluster::rendezvous_owner(def.url, *st.live);
  return owner ? *owner : std::string{"nobody"};
}

/// Brings the connections in line with who owns what: starts the enabled
/// servers this node now owns, stops the ones that moved elsewhere.
void apply_ownership(self_pointer self) {
  for (auto& [id, e] : self->state.servers) {
    if (!e.def.enabled)
      continue;
    auto mine = self->state.owns(e.def);
    if (mine && !e.connection && !e.respawn_due) {
      log::info("{}: {} ({}) is ours now", self->name(), id, e.def.url);
      spawn_connection(self, e);
    } else if (!mine && stop_connection(self, e)) {
      log::info("{}: {} ({}) moved to {}", self->name(), id, e.def.url,
                owner_of(self->state, e.def));
      report_to_health(self, id, false);
    }
  }
}

/// The definitions from the config go into the store unless it has their
/// id already; then the store is the truth.
caf::expected<std::vector<sync_server>>
merge_config(self_pointer self, const std::vector<sync_server>& from_config) {
  auto& store = *self->state.deps.store;
  for (auto& def : from_config) {
    auto stored = store::get_sync_server(store, def.id);
    if (!stored)
      return stored.error();
    if (*stored) {
      if (**stored != def)
        log::warn("{} keeps the stored definition of {}, which differs from "
                  "the config's: the store holds the last one applied (by the "
                  "admin API or an earlier config); PUT or DELETE it through "
                  "the admin API to change it",
                  self->name(), def.id);
      continue;
    }
    if (auto err = store::put_sync_server(store, def, fresh_era()))
      return err;
    log::info("{} added {} from the config", self->name(), def.id);
  }
  return store::list_sync_servers(store);
}

} // namespace

bool sync_manager_state::owns(const sync_server& def) const {
  // Replication from another member runs on every member.
  if (cluster_node.empty() || cluster::replicated_member(def.id))
    return true;
  if (!live)
    return false;
  auto owner = cluster::rendezvous_owner(def.url, *live);
  return owner && *owner == cluster_node;
}

sync_manager_state::~sync_manager_state() {
  for (auto& [id, e] : servers)
    if (e.connection)
      caf::anon_send_exit(e.connection, caf::exit_reason::user_shutdown);
  // A job sees `stopping` within a fifth of a second and ends.
  stopping->store(true);
  for (auto& [id, job] : one_shot_jobs)
    if (job.thread.joinable())
      job.thread.join();
}

namespace {

/// Runs a one-shot sync on its own thread and sends its answer to `manager`
/// as (done, job, JSON).
std::thread start_one_shot(caf::actor_system& sys, store::event_store& store,
                           sync_options opts, nostr::filter f,
                           size_t max_items,
                           std::vector<verifier_actor> verifiers,
                           std::shared_ptr<std::atomic<bool>> stopping,
                           std::shared_ptr<one_shot_progress> progress,
                           sync_manager_actor manager, uint64_t job) {
  return std::thread{[&sys, &store, opts = std::move(opts), f = std::move(f),
                      max_items, verifiers = std::move(verifiers),
                      stopping = std::move(stopping),
                      progress = std::move(progress), manager, job] {
    // What the command would have printed, in memory.
    char* out_text = nullptr;
    size_t out_size = 0;
    char* err_text = nullptr;
    size_t err_size = 0;
    FILE* out = ::open_memstream(&out_text, &out_size);
    FILE* err = ::open_memstream(&err_text, &err_size);
    int exit_code = 1;
    if (out != nullptr && err != nullptr) {
      one_shot_report report;
      report.out = out;
      report.err = err;
      report.stopping = stopping.get();
      report.progress = [&progress](uint64_t events, uint64_t done,
                                    uint64_t total) {
        progress->events = events;
        progress->done = done;
        progress->total = total;
      };
      exit_code = run_one_shot_sync(sys, store, opts, f, max_items, verifiers,
                                    report);
    }
    if (out != nullptr)
      std::fclose(out);
    if (err != nullptr)
      std::fclose(err);
    boost::json::object answer{
      {"exit_code", exit_code},
      {"stdout", out_text != nullptr ? std::string{out_text, out_size} : ""},
      {"stderr", err_text != nullptr ? std::string{err_text, err_size}
                                     : "ferry sync: out of memory\n"}};
    std::free(out_text);
    std::free(err_text);
    caf::anon_send(manager, atom::done_v, job,
                   boost::json::serialize(answer));
  }};
}

/// How many finished jobs' progress stays readable.
constexpr size_t finished_progress_kept = 16;

/// A one-shot job's progress as `GET /api/v1/sync/run/ID` shows it.
boost::json::object progress_of(const sync_manager_state::one_shot_job& job,
                                bool running) {
  auto& p = *job.progress;
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now()
                                          - job.started;
  return {{"progress_id", job.progress_id},
          {"url", job.url},
          {"direction", job.direction},
          {"running", running},
          {"events", p.events.load()},
          {"done", p.done.load()},
          {"total", p.total.load()},
          {"elapsed_seconds", elapsed.count()}};
}

} // namespace

sync_manager_actor::behavior_type
sync_manager(sync_manager_actor::stateful_pointer<sync_manager_state> self,
             std::vector<sync_server> from_config, relay_connection_deps deps) {
  return clustered_sync_manager(self, std::move(from_config), std::move(deps),
                                std::string{});
}

sync_manager_actor::behavior_type clustered_sync_manager(
  sync_manager_actor::stateful_pointer<sync_manager_state> self,
  std::vector<sync_server> from_config, relay_connection_deps deps,
  std::string cluster_node) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.cluster_node = std::move(cluster_node);
  if (st.deps.store == nullptr) {
    self->quit(caf::make_error(ec::invalid_configuration,
                               "sync-manager needs a store"));
    return sync_manager_actor::behavior_type::make_empty_behavior();
  }
  auto servers = merge_config(self, from_config);
  if (!servers) {
    log::error("{} cannot start: {}", self->name(), render(servers.error()));
    self->quit(servers.error());
    return sync_manager_actor::behavior_type::make_empty_behavior();
  }
  for (auto& def : *servers) {
    auto& e = st.servers[def.id];
    e.def = std::move(def);
    if (e.def.enabled && st.owns(e.def))
      spawn_connection(self, e);
  }
  self->set_down_handler([self](caf::down_msg& msg) {
    for (auto& [id, e] : self->state.servers) {
      if (!e.connection || e.connection.address() != msg.source)
        continue;
      e.connection = relay_connection_actor{};
      if (!msg.reason || msg.reason == caf::exit_reason::user_shutdown
          || msg.reason == caf::exit_reason::normal) {
        log::info("{}: the connection to {} ended", self->name(), id);
        return;
      }
      ++e.restarts;
      e.respawn_due = true;
      e.last_exit = render(msg.reason);
      log::warn("{}: the connection to {} died ({}); respawning in {} s",
                self->name(), id, e.last_exit,
                relay_connection_respawn_delay.count());
      // Anonymous, so the start handler knows it is the respawn.
      caf::delayed_anon_send(caf::actor_cast<sync_manager_actor>(self),
                             relay_connection_respawn_delay, atom::start_v,
                             id);
      return;
    }
  });
  return {
    [self](atom::put, const std::string& id,
           const std::string& body) -> caf::result<std::string> {
      auto parsed = parse_sync_server(body, id);
      if (!parsed)
        return parsed.error();
      auto& st = self->state;
      auto known = st.servers.find(parsed->id);
      // A definition that syncs something else (other filters, another
      // remote) starts its cursors over: the old ones say nothing of it, and
      // resuming from them would never fetch the history it adds. A new one
      // does too, so that nothing of a deleted one of its id carries over.
      auto err = known != st.servers.end()
                     && keeps_cursors(known->second.def, *parsed)
                   ? store::put_sync_server(*st.deps.store, *parsed)
                   : store::put_sync_server(*st.deps.store, *parsed,
                                            fresh_era());
      if (err)
        return err;
      ++st.puts;
      auto [i, created] = st.servers.try_emplace(parsed->id);
      auto& e = i->second;
      auto changed = created || e.def != *parsed;
      e.def = std::move(*parsed);
      if (!e.def.enabled) {
        if (stop_connection(self, e))
          report_to_health(self, e.def.id, true);
      } else if (!st.owns(e.def)) {
        // The URL may have changed owner along with the definition.
        if (stop_connection(self, e))
          report_to_health(self, e.def.id, false);
      } else if (changed || !e.connection) {
        stop_connection(self, e);
        spawn_connection(self, e);
      }
      log::info("{} {} {}", self->name(), created ? "created" : "updated",
                e.def.id);
      auto result = definition_object(e.def);
      result["created"] = created;
      return json::serialize(result);
    },
    [self](atom::get, atom::server,
           const std::string& id) -> caf::result<std::string> {
      auto i = self->state.servers.find(id);
      if (i == self->state.servers.end())
        return unknown_server(id);
      auto rp = self->make_response_promise<std::string>();
      server_row(self, i->second, [rp](json::value row) mutable {
        rp.deliver(json::serialize(row));
      });
      return rp;
    },
    [self](atom::get, atom::servers) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      collect(
        self,
        [self](const entry& e, std::function<void(json::value)> done) {
          server_row(self, e, std::move(done));
        },
        [rp](std::vector<json::value> rows) mutable {
          rp.deliver(json::serialize(json::array(rows.begin(), rows.end())));
        });
      return rp;
    },
    [self](atom::erase, const std::string& id) -> caf::result<std::string> {
      auto& st = self->state;
      auto i = st.servers.find(id);
      if (i == st.servers.end())
        return unknown_server(id);
      if (stop_connection(self, i->second))
        report_to_health(self, id, false);
      if (auto err = store::delete_sync_server(*st.deps.store, id))
        return err;
      st.servers.erase(i);
      ++st.erases;
      log::info("{} deleted {}", self->name(), id);
      return outcome(id, "deleted");
    },
    [self](atom::start, const std::string& id) -> caf::result<std::string> {
      auto& st = self->state;
      auto i = st.servers.find(id);
      // No sender: the respawn the down handler scheduled.
      if (self->current_sender() == nullptr) {
        if (i != st.servers.end() && i->second.respawn_due
            && i->second.def.enabled && !i->second.connection
            && st.owns(i->second.def))
          spawn_connection(self, i->second);
        return std::string{};
      }
      if (i == st.servers.end())
        return unknown_server(id);
      auto& e = i->second;
      if (!e.def.enabled) {
        auto def = e.def;
        def.enabled = true;
        if (auto err = store::put_sync_server(*st.deps.store, def))
          return err;
        e.def = std::move(def);
      }
      if (e.connection)
        return outcome(id, "already running");
      if (!st.owns(e.def))
        return outcome(id, "enabled; owned by " + owner_of(st, e.def)
                             + ", which runs it");
      spawn_connection(self, e);
      return outcome(id, "started");
    },
    [self](atom::stop, const std::string& id) -> caf::result<std::string> {
      auto& st = self->state;
      auto i = st.servers.find(id);
      if (i == st.servers.end())
        return unknown_server(id);
      if (!stop_connection(self, i->second))
        return outcome(id, "already stopped");
      report_to_health(self, id, false);
      auto runtime = store::get_sync_runtime(*st.deps.store, id);
      if (!runtime)
        return runtime.error();
      runtime->disconnected_at = unix_now();
      if (auto err = store::put_sync_runtime(*st.deps.store, id, *runtime))
        return err;
      return outcome(id, "stopped");
    },
    [self](atom::sync_now, const std::string& id) -> caf::result<std::string> {
      auto i = self->state.servers.find(id);
      if (i == self->state.servers.end())
        return unknown_server(id);
      if (!i->second.connection)
        return caf::make_error(ec::invalid_input,
                               "sync server " + id + " is not running");
      self->send(i->second.connection, atom::sync_now_v);
      return outcome(id, "sync requested");
    },
    [self](atom::stats, const std::string& id) -> caf::result<std::string> {
      auto i = self->state.servers.find(id);
      if (i == self->state.servers.end())
        return unknown_server(id);
      auto rp = self->make_response_promise<std::string>();
      stats_row(self, i->second, [rp](json::value row) mutable {
        rp.deliver(json::serialize(row));
      });
      return rp;
    },
    [self](atom::stats) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      collect(
        self,
        [self](const entry& e, std::function<void(json::value)> done) {
          stats_row(self, e, std::move(done));
        },
        [rp](std::vector<json::value> rows) mutable {
          json::object totals;
          for (auto key : counter_keys)
            totals[key] = 0;
          int64_t running = 0;
          for (auto& row : rows) {
            auto& obj = row.as_object();
            if (obj.at("running").as_bool())
              ++running;
            for (auto key : counter_keys)
              totals[key] = totals[key].to_number<int64_t>()
                            + obj.at(key).to_number<int64_t>();
          }
          json::object result{
            {"servers", rows.size()},
            {"running", running},
            {"totals", std::move(totals)},
            {"per_server", json::array(rows.begin(), rows.end())},
          };
          rp.deliver(json::serialize(result));
        });
      return rp;
    },
    [self](atom::health) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      collect(
        self,
        [self](const entry& e, std::function<void(json::value)> done) {
          stats_row(self, e, std::move(done));
        },
        [self, rp](std::vector<json::value> rows) mutable {
          auto rows_ptr
            = std::make_shared<std::vector<json::value>>(std::move(rows));
          auto health = current_health(self);
          if (!health) {
            rp.deliver(health_json(self, *rows_ptr, {}, {}));
            return;
          }
          self
            ->request(health, sync_manager_ask_timeout, atom::get_v,
                      atom::health_v)
            .then(
              [self, rp, rows_ptr](std::vector<relay_health>& xs) mutable {
                rp.deliver(health_json(self, *rows_ptr, xs, {}));
              },
              [self, rp, rows_ptr](caf::error& err) mutable {
                rp.deliver(health_json(self, *rows_ptr, {},
                                       "the health tracker did not answer: "
                                         + render(err)));
              });
        });
      return rp;
    },
    [self](atom::get, atom::status) -> status_map {
      auto& st = self->state;
      int64_t running = 0;
      int64_t restarts = 0;
      for (auto& [id, e] : st.servers) {
        if (e.connection)
          ++running;
        restarts += static_cast<int64_t>(e.restarts);
      }
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "servers", static_cast<int64_t>(st.servers.size()));
      caf::put(result, "running", running);
      caf::put(result, "restarts", restarts);
      caf::put(result, "puts", static_cast<int64_t>(st.puts));
      caf::put(result, "erases", static_cast<int64_t>(st.erases));
      if (!st.cluster_node.empty()) {
        int64_t owned = 0;
        for (auto& [id, e] : st.servers)
          if (st.owns(e.def))
            ++owned;
        caf::put(result, "cluster.node", st.cluster_node);
        caf::put(result, "cluster.owned", owned);
        caf::put(result, "cluster.live",
                 static_cast<int64_t>(st.live ? st.live->size() : 0));
      }
      return result;
    },
    [self](atom::members, std::vector<std::string>& live) {
      auto& st = self->state;
      if (st.cluster_node.empty() || (st.live && *st.live == live))
        return;
      st.live = std::move(live);
      apply_ownership(self);
    },
    [self](atom::neg, const std::string& body) -> caf::result<std::string> {
      auto& st = self->state;
      sync_options opts;
      std::string field;
      if (auto why = parse_sync_options(body, opts, field); !why.empty())
        return caf::make_error(ec::invalid_input,
                               field.empty() ? why : field + ": " + why);
      nostr::filter f;
      if (auto wrong = check_sync_options(opts, f))
        return caf::make_error(ec::invalid_input,
                               wrong.field + ": " + wrong.message);
      std::vector<verifier_actor> verifiers;
      for (const auto& slot : st.deps.verifiers)
        if (auto v = slot ? slot->get() : verifier_actor{})
          verifiers.push_back(v);
      if (opts.writes() && verifiers.empty())
        return caf::make_error(ec::upstream_failure,
                               "the node's verifiers are not running");
      if (!opts.progress_id.empty())
        for (const auto& [n, running] : st.one_shot_jobs)
          if (running.progress_id == opts.progress_id)
            return caf::make_error(ec::conflict,
                                   "progress_id: a running sync has the id "
                                     + opts.progress_id);
      auto job = ++st.one_shot_started;
      auto& entry = st.one_shot_jobs[job];
      entry.reply = self->make_response_promise<std::string>();
      entry.progress_id = opts.progress_id;
      entry.url = opts.url;
      entry.direction = opts.direction;
      entry.started = std::chrono::steady_clock::now();
      entry.progress = std::make_shared<one_shot_progress>();
      log::info("{} runs a one-shot sync with {} ({})", self->name(), opts.url,
                opts.direction);
      entry.thread = start_one_shot(
        self->system(), *st.deps.store, std::move(opts), std::move(f),
        st.deps.one_shot_max_items, std::move(verifiers), st.stopping,
        entry.progress, caf::actor_cast<sync_manager_actor>(self), job);
      return entry.reply;
    },
    [self](atom::get, atom::neg,
           const std::string& id) -> caf::result<std::string> {
      auto& st = self->state;
      for (const auto& [n, job] : st.one_shot_jobs)
        if (job.progress_id == id)
          return boost::json::serialize(progress_of(job, true));
      for (auto i = st.one_shot_finished.rbegin();
           i != st.one_shot_finished.rend(); ++i)
        if (i->first == id)
          return i->second;
      return caf::make_error(ec::not_found, "no sync with progress_id " + id
                                              + " runs or ran lately");
    },
    [self](atom::done, uint64_t job, std::string& answer) {
      auto& jobs = self->state.one_shot_jobs;
      auto i = jobs.find(job);
      if (i == jobs.end())
        return;
      i->second.reply.deliver(std::move(answer));
      // Its last act was this message: the join is immediate.
      if (i->second.thread.joinable())
        i->second.thread.join();
      if (!i->second.progress_id.empty()) {
        auto& finished = self->state.one_shot_finished;
        finished.emplace_back(
          i->second.progress_id,
          boost::json::serialize(progress_of(i->second, false)));
        if (finished.size() > finished_progress_kept)
          finished.pop_front();
      }
      jobs.erase(i);
    },
  };
}

} // namespace ferry
