#include "actors/infra/relay_registry.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "store/hosted_relay_store.hpp"

#include <caf/send.hpp>

#include <boost/json.hpp>

namespace ferry {

namespace {

namespace json = boost::json;

using self_pointer
  = relay_registry_actor::stateful_pointer<relay_registry_state>;

caf::error unknown_relay(const std::string& id) {
  return caf::make_error(ec::not_found, "no hosted relay named " + id);
}

caf::error conflict(const std::string& field, const std::string& reason) {
  return caf::make_error(ec::conflict, field + ": " + reason);
}

/// The relay under `id`, or ec::not_found.
caf::expected<hosted_relay> load(self_pointer self, const std::string& id) {
  auto stored = store::get_hosted_relay(*self->state.store, id);
  if (!stored)
    return stored.error();
  if (!*stored)
    return unknown_relay(id);
  return std::move(**stored);
}

/// What the node can offer: a relay cannot enable what is not configured.
caf::error check_offer(self_pointer self, const hosted_relay& r) {
  auto cfg = self->state.settings->get();
  if (r.blossom_enabled && cfg->blossom.bucket.empty())
    return caf::make_error(ec::invalid_input,
                           "blossom_enabled: this node has no "
                           "[infra.blossom] bucket configured");
  if (r.livekit_enabled && cfg->livekit.server_url.empty())
    return caf::make_error(ec::invalid_input,
                           "livekit_enabled: this node has no "
                           "[infra.livekit] server configured");
  return {};
}

/// Zooid refuses a second relay with the same host or schema; so do we,
/// before anything reaches it.
caf::error check_unique(self_pointer self, const hosted_relay& r) {
  auto all = store::list_hosted_relays(*self->state.store);
  if (!all)
    return all.error();
  for (auto& other : *all) {
    if (other.id == r.id)
      continue;
    if (other.subdomain == r.subdomain)
      return conflict("subdomain",
                      "\"" + r.subdomain + "\" is in use by " + other.id);
    if (other.schema == r.schema)
      return conflict("schema", "\"" + r.schema + "\" is in use by " + other.id);
  }
  return {};
}

/// Records `entry` for `relay` and tells the reconciler; `entry.seq` and the
/// relay's change fields are filled in here.
caf::expected<activity_entry> record(self_pointer self, hosted_relay& relay,
                                     activity_entry entry) {
  auto& st = self->state;
  entry.seq = st.last_seq + 1;
  entry.relay = relay.id;
  entry.at = unix_now();
  if (is_change(entry.type)) {
    relay.synced = false;
    relay.sync_error.clear();
    relay.updated_at = entry.at;
    relay.changed_seq = entry.seq;
    if (relay.created_at == 0)
      relay.created_at = entry.at;
  }
  if (auto err = store::record_activity(*st.store, relay, entry))
    return err;
  st.last_seq = entry.seq;
  ++st.recorded;
  if (auto reconciler = st.reconciler ? st.reconciler->get()
                                      : infra_reconciler_actor{})
    self->send(reconciler, atom::activity_v, entry);
  return entry;
}

/// A change (create, update, activate, deactivate): recorded, then the
/// relay's JSON as the answer.
caf::result<std::string> change(self_pointer self, hosted_relay relay,
                                activity_type type) {
  activity_entry entry;
  entry.type = type;
  auto recorded = record(self, relay, std::move(entry));
  if (!recorded)
    return recorded.error();
  log::info("{} recorded {} of {} (seq {})", self->name(), to_string(type),
            relay.id, recorded->seq);
  return to_json(relay);
}

/// An update (PUT or PATCH) to `next`, checked against the stored `current`.
caf::result<std::string> update(self_pointer self, const hosted_relay& current,
                                hosted_relay next) {
  if (auto err = check_offer(self, next))
    return err;
  if (auto err = check_unique(self, next))
    return err;
  if (next.schema != current.schema) {
    auto history = store::read_sync_history(*self->state.store, current.id);
    if (!history)
      return history.error();
    if (history->ever_synced)
      return conflict("schema", "cannot change once the relay was synced (it "
                                "is \"" + current.schema + "\")");
  }
  next.synced = current.synced;
  next.sync_error = current.sync_error;
  next.created_at = current.created_at;
  next.changed_seq = current.changed_seq;
  return change(self, std::move(next), activity_type::update_relay);
}

caf::expected<relay_sync_job> job_for(self_pointer self, hosted_relay relay) {
  auto history = store::read_sync_history(*self->state.store, relay.id);
  if (!history)
    return history.error();
  relay_sync_job job;
  job.relay = std::move(relay);
  job.failures = history->trailing_failures;
  job.ever_synced = history->ever_synced;
  return job;
}

/// A relay as `get relay` shows it: its JSON plus what its log says.
caf::expected<json::object> relay_row(self_pointer self, hosted_relay relay) {
  auto job = job_for(self, std::move(relay));
  if (!job)
    return job.error();
  auto row = json::parse(to_json(job->relay)).as_object();
  row["failed_attempts"] = job->failures;
  auto max_attempts = self->state.settings->get()->max_attempts;
  row["given_up"] = !job->relay.synced
                    && static_cast<int64_t>(job->failures) >= max_attempts;
  return row;
}

/// Records a sync outcome of the version `changed_seq` of relay `id`.
caf::result<activity_entry> outcome(self_pointer self, const std::string& id,
                                    uint64_t changed_seq, bool ok,
                                    const std::string& error) {
  auto relay = load(self, id);
  if (!relay)
    return relay.error();
  activity_entry entry;
  if (ok) {
    entry.type = activity_type::complete_relay_sync;
    relay->sync_error.clear();
    // A change that arrived meanwhile is still to be pushed.
    relay->synced = relay->changed_seq == changed_seq;
  } else {
    auto history = store::read_sync_history(*self->state.store, id);
    if (!history)
      return history.error();
    entry.type = activity_type::fail_relay_sync;
    entry.error = error;
    entry.failures = history->trailing_failures + 1;
    relay->synced = false;
    relay->sync_error = error;
  }
  auto recorded = record(self, *relay, std::move(entry));
  if (!recorded)
    return recorded.error();
  return std::move(*recorded);
}

} // namespace

relay_registry_actor::behavior_type
relay_registry(relay_registry_actor::stateful_pointer<relay_registry_state> self,
               store::event_store* store,
               handle_slot_ptr<infra_reconciler_actor> reconciler,
               live_value_ptr<config::infra_config> settings) {
  auto& st = self->state;
  st.store = store;
  st.reconciler = std::move(reconciler);
  st.settings = std::move(settings);
  if (st.store == nullptr || !st.settings) {
    self->quit(caf::make_error(ec::invalid_configuration,
                               "relay-registry needs a store and settings"));
    return relay_registry_actor::behavior_type::make_empty_behavior();
  }
  auto last = store::last_activity_seq(*st.store);
  if (!last) {
    log::error("{} cannot start: {}", self->name(), render(last.error()));
    self->quit(last.error());
    return relay_registry_actor::behavior_type::make_empty_behavior();
  }
  st.last_seq = *last;
  return {
    [self](atom::create, const std::string& body) -> caf::result<std::string> {
      auto relay = parse_hosted_relay(body);
      if (!relay)
        return relay.error();
      auto existing = store::get_hosted_relay(*self->state.store, relay->id);
      if (!existing)
        return existing.error();
      if (*existing)
        return conflict("id", "a hosted relay named " + relay->id
                                + " exists already");
      if (auto err = check_offer(self, *relay))
        return err;
      if (auto err = check_unique(self, *relay))
        return err;
      return change(self, std::move(*relay), activity_type::create_relay);
    },
    [self](atom::put, const std::string& id,
           const std::string& body) -> caf::result<std::string> {
      auto current = load(self, id);
      if (!current)
        return current.error();
      auto next = parse_hosted_relay(body, id);
      if (!next)
        return next.error();
      return update(self, *current, std::move(*next));
    },
    [self](atom::patch, const std::string& id,
           const std::string& body) -> caf::result<std::string> {
      auto current = load(self, id);
      if (!current)
        return current.error();
      auto next = patch_hosted_relay(*current, body);
      if (!next)
        return next.error();
      return update(self, *current, std::move(*next));
    },
    [self](atom::activate, const std::string& id) -> caf::result<std::string> {
      auto relay = load(self, id);
      if (!relay)
        return relay.error();
      relay->status = hosted_status::active;
      return change(self, std::move(*relay), activity_type::activate_relay);
    },
    [self](atom::deactivate,
           const std::string& id) -> caf::result<std::string> {
      auto relay = load(self, id);
      if (!relay)
        return relay.error();
      relay->status = hosted_status::inactive;
      return change(self, std::move(*relay), activity_type::deactivate_relay);
    },
    [self](atom::erase, const std::string& id) -> caf::result<std::string> {
      auto relay = load(self, id);
      if (!relay)
        return relay.error();
      if (auto err = store::delete_hosted_relay(*self->state.store, id))
        return err;
      log::info("{} deleted {} and its activity log", self->name(), id);
      auto& slot = self->state.reconciler;
      if (auto reconciler = slot ? slot->get() : infra_reconciler_actor{})
        self->send(reconciler, atom::erase_v, id);
      return json::serialize(json::object{{"id", id}, {"result", "deleted"}});
    },
    [self](atom::erase, atom::done, const std::string& id) {
      if (auto err = store::forget_relay_deletion(*self->state.store, id))
        log::warn("{} cannot record that {} was deleted on the management "
                  "API: {}; its DELETE is sent again later",
                  self->name(), id, render(err));
    },
    [self](atom::get, atom::relay,
           const std::string& id) -> caf::result<std::string> {
      auto relay = load(self, id);
      if (!relay)
        return relay.error();
      auto row = relay_row(self, std::move(*relay));
      if (!row)
        return row.error();
      return json::serialize(*row);
    },
    [self](atom::get, atom::relays) -> caf::result<std::string> {
      auto all = store::list_hosted_relays(*self->state.store);
      if (!all)
        return all.error();
      json::array rows;
      for (auto& relay : *all) {
        auto row = relay_row(self, std::move(relay));
        if (!row)
          return row.error();
        rows.push_back(std::move(*row));
      }
      return json::serialize(rows);
    },
    [self](atom::get, atom::activity,
           const std::string& id) -> caf::result<std::string> {
      auto relay = load(self, id);
      if (!relay)
        return relay.error();
      auto log = store::list_activity(*self->state.store, id);
      if (!log)
        return log.error();
      json::array rows;
      for (auto& entry : *log)
        rows.push_back(json::parse(to_json(entry)));
      return json::serialize(rows);
    },
    [self](atom::get, atom::pending) -> caf::result<pending_relays> {
      auto all = store::list_hosted_relays(*self->state.store);
      if (!all)
        return all.error();
      auto deletions = store::pending_relay_deletions(*self->state.store);
      if (!deletions)
        return deletions.error();
      pending_relays result;
      result.last_seq = self->state.last_seq;
      result.deletions = std::move(*deletions);
      for (auto& relay : *all) {
        if (relay.synced)
          continue;
        auto job = job_for(self, std::move(relay));
        if (!job)
          return job.error();
        result.jobs.push_back(std::move(*job));
      }
      return result;
    },
    [self](atom::pending,
           const std::string& id) -> caf::result<relay_sync_job> {
      auto relay = load(self, id);
      if (!relay)
        return relay.error();
      auto job = job_for(self, std::move(*relay));
      if (!job)
        return job.error();
      return std::move(*job);
    },
    [self](atom::complete, const std::string& id, uint64_t changed_seq) {
      return outcome(self, id, changed_seq, true, {});
    },
    [self](atom::failed, const std::string& id, uint64_t changed_seq,
           const std::string& error) {
      return outcome(self, id, changed_seq, false, error);
    },
    [self](atom::get, atom::status) -> status_map {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "last_seq", static_cast<int64_t>(st.last_seq));
      caf::put(result, "recorded", static_cast<int64_t>(st.recorded));
      return result;
    },
    [self](atom::reload) -> caf::result<uint64_t> {
      auto all = store::list_hosted_relays(*self->state.store);
      if (!all)
        return all.error();
      for (auto& relay : *all) {
        activity_entry entry;
        entry.type = activity_type::reconfigure_relay;
        if (auto recorded = record(self, relay, std::move(entry)); !recorded)
          return recorded.error();
      }
      log::info("{} recorded reconfigure_relay for {} relay(s): each is "
                "pushed again",
                self->name(), all->size());
      return static_cast<uint64_t>(all->size());
    },
  };
}

} // namespace ferry
