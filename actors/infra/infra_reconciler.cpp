#include "actors/infra/infra_reconciler.hpp"

#include "actors/infra/infra_metrics.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/cluster/rendezvous.hpp"
#include "messages/error.hpp"
#include "messages/nostr/hex.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include <boost/json.hpp>

#include <algorithm>

namespace ferry {

namespace {

namespace json = boost::json;

using self_pointer
  = infra_reconciler_actor::stateful_pointer<infra_reconciler_state>;
using track = infra_reconciler_state::track;

/// How long the reconciler waits for the relay registry.
constexpr auto registry_timeout = std::chrono::seconds{5};

/// How long a reconcile waits before asking an absent registry again.
constexpr auto reconcile_retry_delay = std::chrono::seconds{1};

/// The most of a response body a failure keeps (log, activity, /health).
constexpr size_t error_body_max = 300;

/// `[infra]` as it is now: the one way the reconciler reads its settings.
const config::infra_config& settings(self_pointer self) {
  auto& st = self->state;
  st.settings = st.deps.settings->get();
  return *st.settings;
}

relay_registry_actor current_registry(self_pointer self) {
  auto& slot = self->state.deps.registry;
  return slot ? slot->get() : relay_registry_actor{};
}

std::string relay_url(self_pointer self, const std::string& id) {
  return settings(self).api_url + "/relay/" + id;
}

uint32_t max_attempts(self_pointer self) {
  return static_cast<uint32_t>(settings(self).max_attempts);
}

/// A failure in one line: what was asked and what came back.
std::string describe_failure(const std::string& method, const std::string& id,
                             uint32_t status, std::string text) {
  for (auto& c : text)
    if (c == '\n' || c == '\r' || c == '\t')
      c = ' ';
  if (text.size() > error_body_max)
    text = text.substr(0, error_body_max) + "...";
  auto what = method + " /relay/" + id + ": ";
  if (status == 0)
    return what + text;
  return what + "HTTP " + std::to_string(status)
         + (text.empty() ? std::string{} : ": " + text);
}

void update_given_up(self_pointer self) {
  metrics::infra::set_given_up(self->state.given_up.size());
}

void give_up(self_pointer self, const std::string& id, uint32_t failures,
             const std::string& error) {
  auto reason = "hosted relay " + id + " given up after "
                + std::to_string(failures) + " failed attempts: " + error;
  if (self->state.given_up[id] != reason)
    log::warn("{}: {}", self->name(), reason);
  self->state.given_up[id] = std::move(reason);
  update_given_up(self);
}

void forget_given_up(self_pointer self, const std::string& id) {
  if (self->state.given_up.erase(id) > 0)
    update_given_up(self);
}

/// Asks for a reconcile (once, however often called before it runs).
void schedule_reconcile(self_pointer self, caf::timespan delay) {
  if (self->state.reconcile_due)
    return;
  self->state.reconcile_due = true;
  if (delay == caf::timespan{0})
    self->send(self, atom::reconcile_v);
  else
    self->delayed_send(self, delay, atom::reconcile_v);
}

/// Sends one signed request; its answer comes back as `done`.
void send_request(self_pointer self, const std::string& id, uint64_t gen,
                  const std::string& method, std::string body) {
  auto req = signed_request(self->state.deps.keys, method, relay_url(self, id),
                            std::move(body));
  caf::weak_actor_ptr weak{self->ctrl()};
  self->state.deps.transport(std::move(req), [weak, id,
                                              gen](infra_response res) {
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<infra_reconciler_actor>(strong),
                     atom::done_v, id, gen, res.status,
                     res.status != 0 ? std::move(res.body)
                                     : std::move(res.error));
  });
}

/// Pushes `job` now: POST with a fresh secret when the API never had the
/// relay, PATCH otherwise.
void start_sync(self_pointer self, relay_sync_job job) {
  auto id = job.relay.id;
  auto& t = self->state.relays[id];
  t.in_flight = true;
  t.retry_due = false;
  // Created again after a deletion: a DELETE still due is moot.
  t.deleting = false;
  t.delete_failures = 0;
  auto gen = ++t.generation;
  t.method = job.ever_synced ? "PATCH" : "POST";
  t.relay = std::move(job.relay);
  // The secret exists only in this body: never stored, never logged.
  auto secret = t.method == "POST" ? generate_relay_secret() : std::string{};
  log::info("{} sends {} /relay/{} (version {}, after {} failure(s))",
            self->name(), t.method, id, t.relay.changed_seq, job.failures);
  send_request(self, id, gen, t.method,
               management_body(t.relay, settings(self), secret));
}

void request_sync(self_pointer self, const std::string& id);

/// The request of `id` is over; a change that came meanwhile goes out now.
void finish_in_flight(self_pointer self, const std::string& id) {
  auto i = self->state.relays.find(id);
  if (i == self->state.relays.end())
    return;
  i->second.in_flight = false;
  if (i->second.rerun) {
    i->second.rerun = false;
    request_sync(self, id);
  }
}

/// Fetches the latest version of `id` and pushes it, unless it is synced
/// already, was deleted, or another member owns it.
void request_sync(self_pointer self, const std::string& id) {
  if (!self->state.owns(id)) {
    if (auto i = self->state.relays.find(id); i != self->state.relays.end())
      i->second.in_flight = false;
    return;
  }
  auto registry = current_registry(self);
  if (!registry) {
    schedule_reconcile(self, reconcile_retry_delay);
    return;
  }
  auto& t = self->state.relays[id];
  // Reserved while the registry answers: a change meanwhile sets rerun.
  t.in_flight = true;
  t.retry_due = false;
  auto gen = ++t.generation;
  self->request(registry, registry_timeout, atom::pending_v, id)
    .then(
      [self, id, gen](relay_sync_job& job) {
        auto i = self->state.relays.find(id);
        if (i == self->state.relays.end() || i->second.generation != gen)
          return;
        if (job.relay.synced) {
          finish_in_flight(self, id);
          return;
        }
        start_sync(self, std::move(job));
      },
      [self, id, gen](caf::error& err) {
        auto i = self->state.relays.find(id);
        if (i == self->state.relays.end() || i->second.generation != gen)
          return;
        if (err.category() == caf::atom("ferry")
            && err.code() == static_cast<uint8_t>(ec::not_found)) {
          log::info("{}: {} was deleted meanwhile; nothing to do",
                    self->name(), id);
          self->state.relays.erase(i);
          forget_given_up(self, id);
          return;
        }
        log::warn("{} cannot read {} from the relay registry: {}",
                  self->name(), id, render(err));
        i->second.in_flight = false;
        schedule_reconcile(self, reconcile_retry_delay);
      });
}

void schedule_retry(self_pointer self, const std::string& id,
                    uint32_t failures) {
  auto& st = self->state;
  auto& t = st.relays[id];
  auto gen = ++t.generation;
  t.retry_due = true;
  auto delay = retry_delay(failures,
                           std::chrono::milliseconds{settings(self).retry_base_ms},
                           std::chrono::milliseconds{settings(self).retry_cap_ms});
  ++st.retries_scheduled;
  metrics::infra::retry_scheduled();
  log::info("{} retries {} in {} ms (attempt {} of {})", self->name(), id,
            std::chrono::duration_cast<std::chrono::milliseconds>(delay).count(),
            failures + 1, max_attempts(self));
  self->delayed_send(self, delay, atom::retry_v, id, gen);
}

/// What a relay's failure count means now: a retry, or giving up.
void after_failure(self_pointer self, const std::string& id, uint32_t failures,
                   const std::string& error) {
  if (failures >= max_attempts(self)) {
    auto& t = self->state.relays[id];
    ++t.generation; // no timer of before applies any more
    t.retry_due = false;
    give_up(self, id, failures, error);
    return;
  }
  schedule_retry(self, id, failures);
}

void on_activity(self_pointer self, const activity_entry& e) {
  auto& st = self->state;
  if (st.reconcile_due || e.seq <= st.last_seq)
    return; // a reconcile covers it, or already did
  if (self->mailbox().size() > st.deps.backlog_limit) {
    log::warn("{} has {} messages waiting; reconciling instead of working "
              "through them",
              self->name(), self->mailbox().size());
    schedule_reconcile(self, caf::timespan{0});
    return;
  }
  if (e.seq != st.last_seq + 1) {
    log::warn("{} missed activities {}..{}; reconciling", self->name(),
              st.last_seq + 1, e.seq - 1);
    schedule_reconcile(self, caf::timespan{0});
    return;
  }
  st.last_seq = e.seq;
  if (!st.owns(e.relay)) {
    forget_given_up(self, e.relay);
    return; // its owner pushes it
  }
  if (is_change(e.type)) {
    forget_given_up(self, e.relay);
    auto& t = st.relays[e.relay];
    if (t.in_flight)
      t.rerun = true;
    else
      request_sync(self, e.relay);
    return;
  }
  if (e.type == activity_type::complete_relay_sync) {
    forget_given_up(self, e.relay);
    return;
  }
  // fail_relay_sync: retried later, never now. A request already out (a
  // change came in) makes this failure moot.
  auto i = st.relays.find(e.relay);
  if (i != st.relays.end() && i->second.in_flight)
    return;
  after_failure(self, e.relay, e.failures, e.error);
}

/// Sends `DELETE /relay/{id}` for a relay deleted here; what was out or due
/// for it is stale from now on.
void start_delete(self_pointer self, const std::string& id) {
  auto& t = self->state.relays[id];
  auto gen = ++t.generation;
  t.in_flight = true;
  t.rerun = false;
  t.retry_due = false;
  t.deleting = true;
  t.method = "DELETE";
  log::info("{} sends DELETE /relay/{} (after {} failure(s))", self->name(),
            id, t.delete_failures);
  send_request(self, id, gen, t.method, {});
}

void on_pending(self_pointer self, pending_relays& pending) {
  auto& st = self->state;
  st.reconcile_due = false;
  st.last_seq = std::max(st.last_seq, pending.last_seq);
  ++st.reconciles;
  // Rebuilt from the store's view: what synced or was deleted drops out.
  st.given_up.clear();
  for (auto& job : pending.jobs) {
    auto id = job.relay.id;
    if (!st.owns(id))
      continue; // its owner pushes it
    auto& t = st.relays[id];
    if (t.in_flight) {
      t.rerun = true;
      continue;
    }
    if (job.relay.sync_error.empty()) {
      start_sync(self, std::move(job));
      continue;
    }
    if (t.retry_due)
      continue; // its timer runs already
    after_failure(self, id, job.failures, job.relay.sync_error);
  }
  // Deleted here, not yet on the API: a DELETE lost to a restart, or owned
  // by a member that left.
  for (auto& id : pending.deletions) {
    if (!st.owns(id))
      continue;
    auto& t = st.relays[id];
    if (!t.in_flight && !t.retry_due)
      start_delete(self, id);
  }
  update_given_up(self);
  log::info("{} reconciled: {} relay(s) pending, {} given up", self->name(),
            pending.jobs.size(), st.given_up.size());
}

/// A DELETE finished: done (404 too: the API never had it or forgot it),
/// or retried like a push until `max_attempts`. A relay created again
/// meanwhile is pushed right after.
void on_delete_done(self_pointer self, track& t, const std::string& id,
                    uint32_t status, std::string text) {
  auto ok = (status >= 200 && status < 300) || status == 404;
  if (ok) {
    log::info("{} deleted {} on the management API (DELETE answered {})",
              self->name(), id, status);
    if (auto registry = current_registry(self))
      self->send(registry, atom::erase_v, atom::done_v, id);
    t.deleting = false;
    t.delete_failures = 0;
    if (!t.rerun) {
      self->state.relays.erase(id);
      return;
    }
    finish_in_flight(self, id);
    return;
  }
  auto error = describe_failure("DELETE", id, status, std::move(text));
  log::warn("{} failed to delete {}: {}", self->name(), id, error);
  auto failures = ++t.delete_failures;
  if (t.rerun) {
    // Created again meanwhile: the push replaces the relay anyway.
    t.deleting = false;
    t.delete_failures = 0;
    finish_in_flight(self, id);
    return;
  }
  t.in_flight = false;
  if (failures >= max_attempts(self)) {
    give_up(self, id, failures, error);
    self->state.relays.erase(id);
    return;
  }
  schedule_retry(self, id, failures);
}

void on_done(self_pointer self, const std::string& id, uint64_t gen,
             uint32_t status, std::string text) {
  auto& st = self->state;
  auto i = st.relays.find(id);
  if (i == st.relays.end() || i->second.generation != gen
      || !i->second.in_flight)
    return;
  auto& t = i->second;
  if (t.deleting) {
    on_delete_done(self, t, id, status, std::move(text));
    return;
  }
  if (t.method == "POST" && status == 409) {
    // The API has the relay already (an earlier POST went through but its
    // answer was lost): update it instead.
    log::info("{}: POST /relay/{} answered 409; sending PATCH", self->name(),
              id);
    t.method = "PATCH";
    send_request(self, id, gen, t.method,
                 management_body(t.relay, settings(self), {}));
    return;
  }
  auto ok = status >= 200 && status < 300;
  metrics::infra::sync_finished(ok);
  auto registry = current_registry(self);
  auto changed_seq = t.relay.changed_seq;
  std::string error;
  if (ok) {
    ++st.syncs_ok;
    log::info("{} synced {} ({} answered {})", self->name(), id, t.method,
              status);
  } else {
    ++st.syncs_failed;
    error = describe_failure(t.method, id, status, std::move(text));
    log::warn("{} failed to sync {}: {}", self->name(), id, error);
  }
  if (!registry) {
    log::warn("{} cannot record the outcome for {}: the relay registry is "
              "not running",
              self->name(), id);
    finish_in_flight(self, id);
    schedule_reconcile(self, reconcile_retry_delay);
    return;
  }
  auto on_error = [self, id](caf::error& err) {
    log::warn("{} could not record the outcome for {}: {}", self->name(), id,
              render(err));
    schedule_reconcile(self, reconcile_retry_delay);
  };
  if (ok)
    self
      ->request(registry, registry_timeout, atom::complete_v, id, changed_seq)
      .then([](activity_entry&) {}, on_error);
  else
    self
      ->request(registry, registry_timeout, atom::failed_v, id, changed_seq,
                error)
      .then([](activity_entry&) {}, on_error);
  // After the outcome, so a rerun reads the relay with it (the registry
  // answers in order): a first success turns the next POST into a PATCH.
  finish_in_flight(self, id);
}

caf::result<std::string> members(self_pointer self, const std::string& id) {
  if (!settings(self).active())
    return caf::make_error(ec::network_failure,
                           "the infra reconciler is idle (infra.api_url is "
                           "empty or infra.enabled is false)");
  auto registry = current_registry(self);
  if (!registry)
    return caf::make_error(ec::network_failure,
                           "the relay registry is not running");
  auto rp = self->make_response_promise<std::string>();
  self->request(registry, registry_timeout, atom::pending_v, id)
    .then(
      [self, id, rp](relay_sync_job&) mutable {
        auto& st = self->state;
        auto token = ++st.next_token;
        st.member_requests.emplace(
          token, infra_reconciler_state::member_request{id, rp});
        auto req = signed_request(st.deps.keys, "GET",
                                  relay_url(self, id) + "/members", {});
        caf::weak_actor_ptr weak{self->ctrl()};
        st.deps.transport(std::move(req), [weak,
                                           token](infra_response res) {
          if (auto strong = weak.lock())
            caf::anon_send(caf::actor_cast<infra_reconciler_actor>(strong),
                           atom::members_v, token, res.status,
                           res.status != 0 ? std::move(res.body)
                                           : std::move(res.error));
        });
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

void on_members(self_pointer self, uint64_t token, uint32_t status,
                std::string text) {
  auto& pending = self->state.member_requests;
  auto i = pending.find(token);
  if (i == pending.end())
    return;
  auto id = std::move(i->second.id);
  auto rp = std::move(i->second.promise);
  pending.erase(i);
  if (status >= 200 && status < 300) {
    json::error_code ec;
    json::parse(text, ec);
    if (!ec) {
      rp.deliver(std::move(text));
      return;
    }
    rp.deliver(caf::make_error(ec::upstream_failure,
                               "management API: GET /relay/" + id
                                 + "/members: the answer is not JSON"));
    return;
  }
  rp.deliver(caf::make_error(
    ec::upstream_failure,
    "management API: "
      + describe_failure("GET", id + "/members", status, std::move(text))));
}

} // namespace

// -- free functions -------------------------------------------------------------

bool infra_reconciler_state::owns(const std::string& id) const {
  if (deps.cluster_node.empty())
    return true;
  if (!live)
    return false;
  return cluster::rendezvous_owner(id, *live) == deps.cluster_node;
}

std::string management_body(const hosted_relay& relay,
                            const config::infra_config& settings,
                            const std::string& secret) {
  json::object body;
  body["host"] = relay.subdomain + "." + settings.relay_domain;
  body["schema"] = relay.schema;
  if (!secret.empty())
    body["secret"] = secret;
  body["inactive"] = relay.status != hosted_status::active;
  body["info"] = json::object{{"name", relay.info.name},
                              {"icon", relay.info.icon},
                              {"pubkey", relay.info.pubkey},
                              {"description", relay.info.description}};
  body["policy"] = json::parse(relay.policy_json);
  body["groups"] = json::parse(relay.groups_json);
  body["management"] = json::parse(relay.management_json);
  body["push"] = json::parse(relay.push_json);
  body["roles"] = json::parse(settings.roles_json);
  if (relay.blossom_enabled) {
    auto& s3 = settings.blossom;
    body["blossom"] = json::object{
      {"enabled", true},
      {"adapter", "s3"},
      {"s3", json::object{{"endpoint", s3.endpoint},
                          {"region", s3.region},
                          {"bucket", s3.bucket},
                          {"access_key", s3.access_key},
                          {"secret_key", s3.secret_key},
                          {"key_prefix", relay.schema}}},
    };
  } else {
    body["blossom"] = json::object{{"enabled", false}};
  }
  if (relay.livekit_enabled) {
    auto& lk = settings.livekit;
    body["livekit"] = json::object{{"enabled", true},
                                   {"server_url", lk.server_url},
                                   {"api_key", lk.api_key},
                                   {"api_secret", lk.api_secret}};
  } else {
    body["livekit"] = json::object{{"enabled", false}};
  }
  return json::serialize(body);
}

std::string generate_relay_secret() {
  return nostr::to_hex(nostr::generate_keypair().secret);
}

// -- the actor ------------------------------------------------------------------

infra_reconciler_actor::behavior_type
infra_reconciler(
  infra_reconciler_actor::stateful_pointer<infra_reconciler_state> self,
  infra_reconciler_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  if (settings(self).active()) {
    log::info("{} pushes hosted relays to {}", self->name(),
              settings(self).api_url);
    // Whatever happened while no reconciler ran, the store remembers.
    schedule_reconcile(self, caf::timespan{0});
  } else {
    log::info("{} is idle: no infra.api_url, or infra.enabled is false",
              self->name());
  }
  update_given_up(self);
  return {
    [self](atom::activity, const activity_entry& e) {
      if (settings(self).active())
        on_activity(self, e);
    },
    [self](atom::erase, const std::string& id) {
      auto& st = self->state;
      forget_given_up(self, id);
      if (settings(self).active() && st.owns(id)) {
        start_delete(self, id);
        return;
      }
      // Timers and answers of the deleted relay find no generation.
      st.relays.erase(id);
    },
    [self](atom::members, std::vector<std::string>& live) {
      auto& st = self->state;
      if (st.deps.cluster_node.empty() || (st.live && *st.live == live))
        return;
      st.live = std::move(live);
      // What moved to another member: its timers and answers are stale (a
      // DELETE out is let finish).
      for (auto& [id, t] : st.relays)
        if (!t.deleting && !st.owns(id)) {
          ++t.generation;
          t.in_flight = false;
          t.rerun = false;
          t.retry_due = false;
        }
      for (auto i = st.given_up.begin(); i != st.given_up.end();)
        i = st.owns(i->first) ? std::next(i) : st.given_up.erase(i);
      update_given_up(self);
      log::info("{}: {} live member(s); pushing the hosted relays owned here",
                self->name(), st.live->size());
      // What this node owns now and has not pushed goes out.
      if (settings(self).active())
        schedule_reconcile(self, caf::timespan{0});
    },
    [self](atom::members, const std::string& id) { return members(self, id); },
    [self](atom::health) {
      health_report report;
      for (auto& [id, reason] : self->state.given_up)
        report.reasons.push_back(reason);
      if (!report.reasons.empty())
        report.status = "degraded";
      return report;
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      int64_t in_flight = 0;
      int64_t retries_due = 0;
      for (auto& [id, t] : st.relays) {
        in_flight += t.in_flight ? 1 : 0;
        retries_due += t.retry_due ? 1 : 0;
      }
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      auto& now = settings(self);
      caf::put(result, "active", now.active());
      caf::put(result, "api_url", now.api_url);
      caf::put(result, "in_flight", in_flight);
      caf::put(result, "retries_due", retries_due);
      caf::put(result, "given_up", static_cast<int64_t>(st.given_up.size()));
      caf::put(result, "syncs_ok", static_cast<int64_t>(st.syncs_ok));
      caf::put(result, "syncs_failed", static_cast<int64_t>(st.syncs_failed));
      caf::put(result, "retries_scheduled",
               static_cast<int64_t>(st.retries_scheduled));
      caf::put(result, "reconciles", static_cast<int64_t>(st.reconciles));
      caf::put(result, "last_seq", static_cast<int64_t>(st.last_seq));
      return result;
    },
    [self](atom::reconcile) {
      if (!settings(self).active()) {
        self->state.reconcile_due = false;
        return;
      }
      // Activities until the answer are covered by it.
      self->state.reconcile_due = true;
      auto registry = current_registry(self);
      if (!registry) {
        self->state.reconcile_due = false;
        schedule_reconcile(self, reconcile_retry_delay);
        return;
      }
      self->request(registry, registry_timeout, atom::get_v, atom::pending_v)
        .then([self](pending_relays& pending) { on_pending(self, pending); },
              [self](caf::error& err) {
                log::warn("{} cannot reconcile: {}; trying again",
                          self->name(), render(err));
                self->state.reconcile_due = false;
                schedule_reconcile(self, reconcile_retry_delay);
              });
    },
    [self](atom::retry, const std::string& id, uint64_t gen) {
      auto& st = self->state;
      auto i = st.relays.find(id);
      if (i == st.relays.end() || i->second.generation != gen
          || i->second.in_flight)
        return;
      i->second.retry_due = false;
      // Turned off by a reload meanwhile: a reconcile picks it up once on.
      if (!settings(self).active())
        return;
      if (i->second.deleting) {
        if (st.owns(id))
          start_delete(self, id);
        else
          st.relays.erase(i);
        return;
      }
      request_sync(self, id);
    },
    [self](atom::done, const std::string& id, uint64_t gen, uint32_t status,
           std::string& text) {
      on_done(self, id, gen, status, std::move(text));
    },
    [self](atom::members, uint64_t token, uint32_t status, std::string& text) {
      on_members(self, token, status, std::move(text));
    },
  };
}

} // namespace ferry
