#include "actors/cluster/cluster_manager.hpp"

#include "actors/cluster/cursor_claims.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/cluster/cursor_claim.hpp"
#include "messages/cluster/rendezvous.hpp"
#include "messages/cluster/replication.hpp"
#include "messages/error.hpp"
#include "messages/hosted_relay.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/sync.hpp"
#include "store/control_plane_store.hpp"
#include "store/sync_store.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/typed_response_promise.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

namespace ferry {

namespace {

namespace json = boost::json;

using self_pointer
  = cluster_manager_actor::stateful_pointer<cluster_manager_state>;

/// What the manager tells itself once every seed had its first attempt and
/// the members they named had a heartbeat to be dialled too (no address
/// looks like it).
constexpr std::string_view seeds_answered = "(seeds answered)";

/// How long the manager waits before respawning a link that died.
constexpr auto link_respawn_delay = std::chrono::seconds{1};

/// A goodbye may take a link's connect timeout, plus this.
constexpr auto leave_margin = std::chrono::seconds{1};

template <class Handle>
Handle current(const handle_slot_ptr<Handle>& slot) {
  return slot ? slot->get() : Handle{};
}

std::string link_name(const std::string& address) {
  return "cluster-member@" + address;
}

void spawn_link(self_pointer self, const std::string& address,
                const handle_slot_ptr<cluster_manager_actor>& own_slot,
                cluster_gate_actor joined_us = {},
                std::string expected_peer = {}) {
  auto& st = self->state;
  auto& entry = st.links[address];
  entry.handle = self->spawn(cluster_member, address, st.config.member,
                             st.identity, st.membership, own_slot,
                             std::move(joined_us), std::move(expected_peer));
  entry.started_at = unix_now();
  self->monitor(entry.handle);
}

/// Tells the sync manager, GRASP SYNC and the infra reconciler which
/// members are live (each runs or pushes what this node owns among them).
void tell_owners(self_pointer self, const std::vector<std::string>& live) {
  auto& st = self->state;
  if (auto sync = current(st.sync_manager))
    self->send(sync, atom::members_v, live);
  if (auto grasp = current(st.grasp))
    self->send(grasp, atom::members_v, live);
  if (auto reconciler = current(st.infra.reconciler))
    self->send(reconciler, atom::members_v, live);
}

/// Hands the live set on (idempotent on the receiving side).
void pass_live_set(self_pointer self) {
  auto& st = self->state;
  if (!st.settled || st.live.empty() || st.left)
    return;
  tell_owners(self, st.live);
}

void settle(self_pointer self, const std::string& why) {
  if (self->state.settled)
    return;
  self->state.settled = true;
  self->state.settled_tick = self->state.ticks;
  log::info("{}: start-up settled ({}); live set {}", self->name(), why,
            [&] {
              std::string text;
              for (auto& name : self->state.live)
                text += (text.empty() ? "" : ", ") + name;
              return text;
            }());
  pass_live_set(self);
}

bool owns_relays(cluster::member_state x) {
  return x == cluster::member_state::alive
         || x == cluster::member_state::suspect;
}

/// Removes the replication server of `name`, a forgotten member, once; it
/// is put anew if the member returns.
void forget_replication(self_pointer self, const sync_manager_actor& sync,
                        const std::string& name) {
  if (self->state.replication.erase(name) == 0)
    return;
  auto id = cluster::replication_server_id(name);
  self->request(sync, cluster_manager_ask_timeout, atom::erase_v, id)
    .then(
      [self, id](std::string&) {
        log::info("{}: replication server {} removed: its member is forgotten",
                  self->name(), id);
      },
      [self, id](caf::error& err) {
        log::warn("{}: could not remove replication server {}: {}",
                  self->name(), id, render(err));
      });
}

/// Puts each other member's replication server where its body changed:
/// enabled while the member owns relays (alive or suspect), disabled (the
/// cursor kept) once it is dead or left, removed once it is forgotten.
void apply_replication(self_pointer self, const cluster::cluster_view& view) {
  auto sync = current(self->state.sync_manager);
  if (!sync)
    return;
  for (auto& m : view.members) {
    if (m.name == view.self || m.relay_url.empty() || m.pubkey.empty())
      continue;
    if (m.state == cluster::member_state::forgotten) {
      forget_replication(self, sync, m.name);
      continue;
    }
    auto body = replication_server_body(m, owns_relays(m.state));
    auto& applied = self->state.replication[m.name];
    if (applied == body)
      continue;
    applied = body;
    auto id = cluster::replication_server_id(m.name);
    auto name = m.name;
    self->request(sync, cluster_manager_ask_timeout, atom::put_v, id, body)
      .then(
        [self, id](std::string&) {
          log::debug("{}: replication server {} updated", self->name(), id);
        },
        [self, id, name](caf::error& err) {
          // Put again on the next tick.
          self->state.replication.erase(name);
          log::warn("{}: could not put replication server {}: {}",
                    self->name(), id, render(err));
        });
  }
}

// -- the replicated control plane ---------------------------------------------

/// The kind of the replicated hosted relays.
constexpr std::string_view hosted_relay_kind = "hosted_relay";

/// How long a conflict stays among the /health reasons.
constexpr int64_t conflict_health_seconds = 600;

/// Every this many heartbeats, each member gets every record again, so one
/// that missed an update (down, partitioned, restarted) converges.
constexpr uint64_t anti_entropy_ticks = 5;

/// Whether the sync server `id` is node-local: a replication link
/// (`cluster.`) or a federation link (`federation.`, the federation
/// manager's), neither of which other members run.
bool node_local_server(const std::string& id) {
  return cluster::replicated_member(id).has_value()
         || id.rfind("federation.", 0) == 0;
}

// -- graceful leave -----------------------------------------------------------

/// How often a leaving member asks the others which of its relays they run.
constexpr auto handover_poll_interval = std::chrono::milliseconds{100};

/// The ids of the relays connected here, from the sync manager's server
/// list: every server whose connection is up, except the node-local links.
std::set<std::string> connected_relays(const std::string& list) {
  std::set<std::string> ids;
  json::error_code ec;
  auto rows = json::parse(list, ec);
  if (ec || !rows.is_array())
    return ids;
  for (auto& row : rows.as_array()) {
    auto* server = row.if_object();
    auto* id = server ? server->if_contains("id") : nullptr;
    auto* runtime = server ? server->if_contains("runtime") : nullptr;
    if (!id || !id->is_string() || !runtime || !runtime->is_object())
      continue;
    auto* connected = runtime->as_object().if_contains("connected");
    std::string name{id->as_string()};
    if (connected && connected->is_bool() && connected->as_bool()
        && !node_local_server(name))
      ids.insert(std::move(name));
  }
  return ids;
}

/// The relays connected here, as the hand-over names them: the sync
/// manager's servers whose connection is up (node-local links left out) and
/// GRASP SYNC's relays as `grasp:URL` (the name their connections report
/// under). An actor that does not answer adds nothing: its relays count as
/// not connected here.
void read_connected(self_pointer self,
                    std::function<void(std::set<std::string>)> done) {
  auto with_grasp = [self, done](std::set<std::string> ids) {
    auto grasp = current(self->state.grasp);
    if (!grasp)
      return done(std::move(ids));
    self->request(grasp, cluster_manager_ask_timeout, atom::get_v,
                  atom::connected_v)
      .then(
        [done, ids](std::vector<std::string>& urls) mutable {
          for (auto& url : urls)
            ids.insert("grasp:" + url);
          done(std::move(ids));
        },
        [done, ids](caf::error&) mutable { done(std::move(ids)); });
  };
  auto sync = current(self->state.sync_manager);
  if (!sync)
    return with_grasp({});
  self->request(sync, cluster_manager_ask_timeout, atom::get_v, atom::servers_v)
    .then(
      [with_grasp](std::string& list) { with_grasp(connected_relays(list)); },
      [with_grasp](caf::error&) { with_grasp({}); });
}

json::array json_strings(const std::set<std::string>& xs) {
  json::array result;
  for (auto& x : xs)
    result.emplace_back(x);
  return result;
}

/// Ends the leave: stops the links, gives up every relay (they run on the
/// others now) and answers who took the goodbye and which relays were
/// handed over.
void finish_leave(self_pointer self) {
  auto& st = self->state;
  auto round = std::move(*st.leaving);
  st.leaving.reset();
  log::info("{}: left; {} peer(s) took the goodbye, {} did not; {} relay(s) "
            "handed over, {} not",
            self->name(), round.acknowledged.size(), round.failed.size(),
            round.handed_over.size(), round.pending.size());
  for (auto& [address, entry] : st.links)
    if (entry.handle)
      self->send_exit(entry.handle, caf::exit_reason::user_shutdown);
  tell_owners(self, std::vector<std::string>{});
  json::array acknowledged;
  for (auto& name : round.acknowledged)
    acknowledged.emplace_back(name);
  json::array failed;
  for (auto& [address, error] : round.failed)
    failed.push_back(json::object{{"address", address}, {"error", error}});
  round.promise.deliver(json::serialize(json::object{
    {"left", true},
    {"acknowledged", std::move(acknowledged)},
    {"failed", std::move(failed)},
    {"handed_over", json_strings(round.handed_over)},
    {"not_handed_over", json_strings(round.pending)},
  }));
}

/// One hand-over round: asks every member that took the goodbye which of
/// the relays still pending run connected there. The leave ends once none
/// is pending, when nobody is left to ask, or at the deadline (logged with
/// the relays nobody reported).
void poll_handover(self_pointer self) {
  auto& round = *self->state.leaving;
  if (round.pending.empty() || round.took.empty()) {
    finish_leave(self);
    return;
  }
  auto now = self->clock().now();
  if (now >= round.deadline) {
    std::string ids;
    for (auto& id : round.pending)
      ids += (ids.empty() ? "" : ", ") + id;
    log::warn("{}: gave up waiting for the others to connect {} relay(s) "
              "after {} ms: {}",
              self->name(), round.pending.size(),
              std::chrono::duration_cast<std::chrono::milliseconds>(
                self->state.config.handover_timeout)
                .count(),
              ids);
    finish_leave(self);
    return;
  }
  std::vector<std::string> ids{round.pending.begin(), round.pending.end()};
  auto timeout = std::min<caf::timespan>(
    cluster_manager_ask_timeout,
    std::max<caf::timespan>(round.deadline - now, handover_poll_interval));
  round.outstanding = round.took.size();
  auto answered = [self](const std::vector<std::string>* connected) {
    auto& st = self->state;
    if (!st.leaving)
      return;
    auto& r = *st.leaving;
    if (connected)
      for (auto& id : *connected)
        if (r.pending.erase(id) > 0)
          r.handed_over.insert(id);
    if (--r.outstanding > 0)
      return;
    if (r.pending.empty() || self->clock().now() >= r.deadline)
      poll_handover(self);
    else
      self->delayed_send(self, handover_poll_interval, atom::leave_v,
                         atom::tick_v);
  };
  for (auto& link : round.took)
    self
      ->request(link, timeout, atom::get_v, atom::connected_v, ids)
      .then([answered](std::vector<std::string>& connected) {
        answered(&connected);
      },
            [answered](caf::error&) { answered(nullptr); });
}

/// Says goodbye on every joined link: the peers move this node's relays at
/// once instead of after `failure_timeout`. Then the hand-over starts.
void say_goodbyes(self_pointer self) {
  auto& st = self->state;
  auto& round = *st.leaving;
  auto goodbyes_done = [self] {
    auto& st = self->state;
    auto& r = *st.leaving;
    if (--r.outstanding > 0)
      return;
    r.deadline = self->clock().now() + st.config.handover_timeout;
    if (!r.pending.empty())
      log::info("{}: {} peer(s) took the goodbye; waiting for them to "
                "connect {} relay(s)",
                self->name(), r.acknowledged.size(), r.pending.size());
    poll_handover(self);
  };
  // One extra count, dropped below, so a round without links still ends.
  round.outstanding = 1;
  for (auto& [address, entry] : st.links) {
    if (!entry.handle)
      continue;
    ++round.outstanding;
    auto link = entry.handle;
    auto where = address;
    self
      ->request(link, st.config.member.connect_timeout + leave_margin,
                atom::leave_v)
      .then(
        [self, link, goodbyes_done](std::string& peer) {
          auto& r = *self->state.leaving;
          r.acknowledged.push_back(std::move(peer));
          r.took.push_back(link);
          goodbyes_done();
        },
        [self, where, goodbyes_done](caf::error& err) {
          self->state.leaving->failed.emplace_back(where, render(err));
          goodbyes_done();
        });
  }
  goodbyes_done();
}

/// Graceful leave: notes which relays are connected here, says goodbye on
/// every link, and waits (at most `handover_timeout`) until the members
/// that took the goodbye report each of those relays connected, running
/// them here meanwhile; then stops the links and gives up every relay.
caf::result<std::string> leave(self_pointer self) {
  auto& st = self->state;
  if (st.left)
    return std::string{R"({"left":true,"acknowledged":[],"failed":[],)"
                       R"("handed_over":[],"not_handed_over":[]})"};
  st.left = true;
  log::info("{}: leaving the cluster", self->name());
  st.leaving.emplace();
  auto rp = self->make_response_promise<std::string>();
  st.leaving->promise = rp;
  read_connected(self, [self](std::set<std::string> relays) {
    self->state.leaving->pending = std::move(relays);
    say_goodbyes(self);
  });
  return rp;
}

/// The definitions in an actor's JSON list (id → canonical JSON), each row
/// read by `read(row, result)`, which adds it, skips it, or says it cannot
/// read it (false). Nothing when the list or a row is unreadable: a
/// definition missing from the result counts as deleted here.
template <class Read>
std::optional<std::map<std::string, std::string>>
definitions_in(const std::string& list, Read read) {
  json::error_code ec;
  auto rows = json::parse(list, ec);
  if (ec || !rows.is_array())
    return std::nullopt;
  std::map<std::string, std::string> result;
  for (auto& row : rows.as_array())
    if (!row.is_object() || !read(row.as_object(), result))
      return std::nullopt;
  return result;
}

/// The canonical definition of each replicated server in the sync manager's
/// list (its rows carry runtime keys besides the definition).
std::optional<std::map<std::string, std::string>>
sync_server_definitions(const std::string& list) {
  return definitions_in(list, [](json::object def,
                                 std::map<std::string, std::string>& result) {
    for (auto key : {"running", "restarts", "last_exit", "runtime"})
      def.erase(key);
    // A node-local row (a replication or federation link) is skipped.
    auto parsed = parse_sync_server(json::serialize(def));
    if (parsed && !node_local_server(parsed->id))
      result.emplace(parsed->id, to_json(*parsed));
    return true;
  });
}

/// The editable fields of each hosted relay in the relay registry's list
/// (its rows carry what this node set besides: synced, sync_error, ...,
/// which stays each node's own).
std::optional<std::map<std::string, std::string>>
hosted_relay_definitions(const std::string& list) {
  return definitions_in(list, [](json::object row,
                                 std::map<std::string, std::string>& result) {
    for (auto key : {"failed_attempts", "given_up"})
      row.erase(key);
    auto parsed = parse_stored_hosted_relay(json::serialize(row));
    if (!parsed)
      return false;
    result.emplace(parsed->id, to_editable_json(*parsed));
    return true;
  });
}

using definitions_callback
  = std::function<void(std::optional<std::map<std::string, std::string>>)>;
using applied_callback = std::function<void(const caf::error&)>;

/// Where one replicated kind lives on this node: how its definitions are
/// read (id → canonical JSON) and how a merged record is applied.
struct replicated_kind {
  std::string_view kind;
  /// Calls back with the definitions, or nothing when their owner is not
  /// running or did not answer.
  void (*read)(self_pointer self, definitions_callback done);
  /// Calls back once the record is applied; false when there is nobody to
  /// apply it to now.
  bool (*apply)(self_pointer self, const cluster::control_record& r,
                applied_callback done);
};

bool is_not_found(const caf::error& err) {
  return err.category() == caf::atom("ferry")
         && err.code() == static_cast<uint8_t>(ec::not_found);
}

void read_sync_servers(self_pointer self, definitions_callback done) {
  auto sync = current(self->state.sync_manager);
  if (!sync) {
    done(std::nullopt);
    return;
  }
  self->request(sync, cluster_manager_ask_timeout, atom::get_v, atom::servers_v)
    .then([done](std::string& list) { done(sync_server_definitions(list)); },
          [done](caf::error&) { done(std::nullopt); });
}

/// A tombstone deletes the definition, anything else replaces it.
bool apply_sync_server(self_pointer self, const cluster::control_record& r,
                       applied_callback done) {
  auto sync = current(self->state.sync_manager);
  if (!sync)
    return false;
  if (r.deleted)
    self->request(sync, cluster_manager_ask_timeout, atom::erase_v, r.id)
      .then([done](std::string&) { done({}); },
            [done](caf::error& err) {
              // Deleting what is not here is done already.
              done(is_not_found(err) ? caf::error{} : err);
            });
  else
    self->request(sync, cluster_manager_ask_timeout, atom::put_v, r.id, r.body)
      .then([done](std::string&) { done({}); },
            [done](caf::error& err) { done(err); });
  return true;
}

void read_hosted_relays(self_pointer self, definitions_callback done) {
  auto& slot = self->state.infra.registry;
  auto registry = current(slot);
  if (!registry) {
    done(std::nullopt);
    return;
  }
  self
    ->request(registry, cluster_manager_ask_timeout, atom::get_v,
              atom::relays_v)
    .then([done](std::string& list) { done(hosted_relay_definitions(list)); },
          [done](caf::error&) { done(std::nullopt); });
}

/// A tombstone deletes the relay; anything else updates it, or creates it
/// when this node has none yet. The registry records each as an activity,
/// so the member that owns the relay pushes it.
bool apply_hosted_relay(self_pointer self, const cluster::control_record& r,
                        applied_callback done) {
  auto registry = current(self->state.infra.registry);
  if (!registry)
    return false;
  if (r.deleted) {
    self->request(registry, cluster_manager_ask_timeout, atom::erase_v, r.id)
      .then([done](std::string&) { done({}); },
            [done](caf::error& err) {
              done(is_not_found(err) ? caf::error{} : err);
            });
    return true;
  }
  auto body = r.body;
  self->request(registry, cluster_manager_ask_timeout, atom::put_v, r.id, body)
    .then([done](std::string&) { done({}); },
          [self, registry, body, done](caf::error& err) {
            if (!is_not_found(err)) {
              done(err);
              return;
            }
            self
              ->request(registry, cluster_manager_ask_timeout, atom::create_v,
                        body)
              .then([done](std::string&) { done({}); },
                    [done](caf::error& err) { done(err); });
          });
  return true;
}

/// The cursor claims of the other members, as this node holds them.
std::vector<std::pair<const cluster::control_record*, cluster::cursor_claim>>
others_claims(const cluster_manager_state& st,
              const std::vector<cluster::control_record>& records) {
  std::vector<std::pair<const cluster::control_record*, cluster::cursor_claim>>
    result;
  for (auto& r : records) {
    if (r.kind != cluster::sync_cursor_kind || r.deleted)
      continue;
    auto claim = cluster::parse_cursor_claim(r.body);
    if (claim && claim->member != st.replica.self_name())
      result.emplace_back(&r, std::move(*claim));
  }
  return result;
}

/// This node's cursor claims: its stored cursor of every replicated sync
/// server (whoever runs it now: the cursor stays true of this store) under
/// the definition running here (own_cursor_claims); the other members'
/// claims are theirs to change and pass unchanged. A server deleted here
/// takes its claim with it (a tombstone).
void read_cursor_claims(self_pointer self, definitions_callback done) {
  auto sync = current(self->state.sync_manager);
  auto* store = self->state.config.store;
  if (!sync || !store) {
    done(std::nullopt);
    return;
  }
  self->request(sync, cluster_manager_ask_timeout, atom::get_v, atom::servers_v)
    .then(
      [self, store, done](std::string& list) {
        auto servers = sync_server_definitions(list);
        if (!servers) {
          done(std::nullopt);
          return;
        }
        done(own_cursor_claims(
          self->state.replica, *servers,
          [store](const std::string& id)
            -> std::optional<std::optional<int64_t>> {
            auto cursor = store::get_sync_cursor(*store, id);
            if (!cursor)
              return std::nullopt;
            if (!*cursor)
              return std::optional<int64_t>{};
            return std::optional<int64_t>{(*cursor)->created_at};
          }));
      },
      [done](caf::error&) { done(std::nullopt); });
}

/// A claim is a statement about its member's store: applying it only notes
/// when this node first held this version of it (see adopt_cursors).
bool apply_cursor_claim(self_pointer self, const cluster::control_record& r,
                        applied_callback done) {
  auto& heard = self->state.claims_heard;
  if (r.deleted)
    heard.erase(r.id);
  else
    heard[r.id] = unix_now_ms();
  done({});
  return true;
}

/// Every replicated kind, in the order they are read each heartbeat (the
/// cursor claims after the servers, whose records' digests they carry).
const std::vector<replicated_kind>& replicated_kinds() {
  static const std::vector<replicated_kind> kinds{
    {sync_server_kind, read_sync_servers, apply_sync_server},
    {hosted_relay_kind, read_hosted_relays, apply_hosted_relay},
    {cluster::sync_cursor_kind, read_cursor_claims, apply_cursor_claim},
  };
  return kinds;
}

const replicated_kind* find_kind(std::string_view kind) {
  for (auto& k : replicated_kinds())
    if (k.kind == kind)
      return &k;
  return nullptr;
}

void persist(self_pointer self,
             const std::vector<cluster::control_record>& records) {
  auto* store = self->state.config.store;
  if (!store || records.empty())
    return;
  if (auto err = store::put_control_records(*store, records))
    log::error("{}: could not persist {} control-plane record(s): {}",
               self->name(), records.size(), render(err));
}

/// Sends `records` to every member this node is joined with.
void broadcast(self_pointer self,
               const std::vector<cluster::control_record>& records) {
  if (records.empty() || self->state.left)
    return;
  auto text = cluster::to_json(cluster::control_message{records, self->state.forgotten});
  for (auto& [address, entry] : self->state.links)
    if (entry.handle)
      self->send(entry.handle, atom::put_v, text);
}

/// Applies merged records locally, each to the actor that holds its kind.
void apply_records(self_pointer self,
                   const std::vector<cluster::control_record>& records) {
  for (auto& r : records) {
    auto* kind = find_kind(r.kind);
    if (!kind || (r.kind == sync_server_kind && node_local_server(r.id)))
      continue;
    auto& st = self->state;
    auto key = std::make_pair(r.kind, r.id);
    ++st.applies_in_flight;
    ++st.apply_generation;
    auto done = [self, key](const caf::error& err) {
      auto& st = self->state;
      --st.applies_in_flight;
      if (err) {
        st.refused_records[key] = render(err);
        // Tried again every anti-entropy round: warned about once.
        if (st.unapplied.insert(key).second)
          log::warn("{}: could not apply the replicated {} {}: {}",
                    self->name(), key.first, key.second, render(err));
        else
          log::debug("{}: still cannot apply the replicated {} {}: {}",
                     self->name(), key.first, key.second, render(err));
      } else {
        st.unapplied.erase(key);
        st.refused_records.erase(key);
        if (key.first == cluster::sync_cursor_kind)
          log::debug("{}: holds the replicated {} {}", self->name(),
                     key.first, key.second);
        else
          log::info("{}: applied the replicated {} {}", self->name(),
                    key.first, key.second);
      }
    };
    if (!kind->apply(self, r, done)) {
      // Applied when its actor is back: its definitions then differ from
      // the records, which the next poll must not take for local edits.
      --st.applies_in_flight;
      st.unapplied.insert(key);
    }
  }
}

/// Applies again what did not apply (its actor was restarting or refused
/// it), so a member converges once it can take the record.
void apply_unapplied(self_pointer self) {
  auto& st = self->state;
  if (st.applies_in_flight > 0)
    return;
  std::vector<cluster::control_record> records;
  for (auto& [kind, id] : st.unapplied)
    if (auto record = st.replica.find(kind, id))
      records.push_back(*record);
  apply_records(self, records);
}

/// Counts the local edits in `current`, the definitions of `kind` here: a
/// difference from the records is an edit made here (admin API, config,
/// console), counted for this node, persisted and sent to every member.
void observe_local(self_pointer self, std::string_view kind,
                   std::map<std::string, std::string> current) {
  auto& st = self->state;
  // What failed to apply is not an edit here.
  for (auto& [unapplied_kind, id] : st.unapplied) {
    if (unapplied_kind != kind)
      continue;
    auto record = st.replica.find(unapplied_kind, id);
    if (!record)
      continue;
    if (record->deleted)
      current.erase(id);
    else
      current[id] = record->body;
  }
  auto changed = st.replica.observe_local(std::string{kind}, current);
  if (changed.empty())
    return;
  for (auto& r : changed) {
    // A cursor moves all the time: not news for the log.
    if (r.kind == cluster::sync_cursor_kind)
      log::debug("{}: {} {} {} here; replicating it", self->name(), r.kind,
                 r.id, r.deleted ? "deleted" : "changed");
    else
      log::info("{}: {} {} {} here; replicating it", self->name(), r.kind,
                r.id, r.deleted ? "deleted" : "changed");
  }
  persist(self, changed);
  broadcast(self, changed);
}

/// Reads the definitions of every kind from `index` on, counting the edits
/// made here, then runs `then`. An apply since `generation` makes the local
/// state uncertain: then nothing is counted (the next tick looks again).
void read_kinds(self_pointer self, size_t index, uint64_t generation,
                std::function<void()> then) {
  auto& kinds = replicated_kinds();
  if (index == kinds.size()) {
    then();
    return;
  }
  auto kind = kinds[index].kind;
  kinds[index].read(
    self, [self, index, generation, kind,
           then](std::optional<std::map<std::string, std::string>> current) {
      auto& st = self->state;
      // An apply since the question: the answer may predate it.
      if (current && generation == st.apply_generation
          && st.applies_in_flight == 0)
        observe_local(self, kind, std::move(*current));
      read_kinds(self, index + 1, generation, then);
    });
}

/// Reads the local definitions, counts the edits made here, then runs
/// `then`. An apply in flight makes the local state uncertain: then nothing
/// is counted (the next tick looks again).
void with_local_edits(self_pointer self, std::function<void()> then) {
  auto& st = self->state;
  if (st.applies_in_flight > 0) {
    then();
    return;
  }
  read_kinds(self, 0, st.apply_generation, std::move(then));
}

/// Folds the members a peer has forgotten that this node had not: the
/// members forgotten while this node was down, and this node itself when it
/// returns after the cluster forgot it (its own view shows it alive). Before
/// the peer's records are merged, so both sides compare folded versions.
void learn_forgotten(self_pointer self, const std::set<std::string>& names) {
  auto& st = self->state;
  std::string learned;
  for (auto& name : names)
    if (st.forgotten.insert(name).second)
      learned += (learned.empty() ? "" : ", ") + name;
  if (learned.empty())
    return;
  auto restamped = st.replica.forget(st.forgotten);
  log::info("{}: a member has forgotten {}; folded {} record(s)", self->name(),
            learned, restamped.size());
  persist(self, restamped);
}

/// Merges a member's records: what changed is persisted and applied,
/// conflicts are logged and kept for /health and the view. Local edits are
/// counted first, so an operator's change made here since the last tick is
/// a version of its own, not overwritten.
void merge_records(self_pointer self, const std::string& text) {
  auto message = cluster::parse_control_message(text);
  if (!message) {
    log::warn("{}: dropped malformed control-plane records from a member: {}",
              self->name(), render(message.error()));
    return;
  }
  learn_forgotten(self, message->forgotten);
  with_local_edits(self, [self, records = std::move(message->records)] {
    auto outcome = self->state.replica.merge(records, unix_now());
    for (auto& c : outcome.conflicts)
      log::warn("{}: {}", self->name(), conflict_reason(c));
    auto to_persist = outcome.changed;
    to_persist.insert(to_persist.end(), outcome.restamped.begin(),
                      outcome.restamped.end());
    persist(self, to_persist);
    apply_records(self, outcome.changed);
  });
}

/// Counts the edits made here since the last tick.
void poll_local(self_pointer self) {
  with_local_edits(self, [] {});
}

/// Calls `then` with the sync manager's server list and the relay
/// registry's relay list (empty when no registry runs: nothing is hosted),
/// or `failed` with what did not answer: a view without the lists would
/// show relays as gone that are only late.
void with_definition_lists(
  self_pointer self,
  std::function<void(const std::string&, const std::string&)> then,
  std::function<void(caf::error)> failed) {
  static_assert(sync_manager_ask_timeout < cluster_manager_ask_timeout,
                "the sync manager must answer with what it has before the "
                "cluster manager gives up on it");
  auto hosted = [self, then, failed](std::string servers) {
    auto registry = current(self->state.infra.registry);
    if (!registry) {
      then(servers, {});
      return;
    }
    self
      ->request(registry, cluster_manager_ask_timeout, atom::get_v,
                atom::relays_v)
      .then([then, servers](std::string& list) { then(servers, list); },
            [failed](caf::error& err) {
              failed(caf::make_error(ec::network_failure,
                                     "the relay registry did not answer: "
                                       + render(err)));
            });
  };
  auto sync = current(self->state.sync_manager);
  if (!sync) {
    failed(
      caf::make_error(ec::network_failure, "the sync manager is restarting"));
    return;
  }
  self->request(sync, cluster_manager_ask_timeout, atom::get_v, atom::servers_v)
    .then([hosted](std::string& servers) { hosted(std::move(servers)); },
          [failed](caf::error& err) {
            failed(caf::make_error(ec::network_failure,
                                   "the sync manager did not answer: "
                                     + render(err)));
          });
}

/// Folds every member the view has said is forgotten since this node
/// started (those back since included) out of the replicated records'
/// version vectors (and persists what that changed).
void fold_forgotten(self_pointer self, const cluster::cluster_view& view) {
  auto& forgotten = self->state.forgotten;
  for (auto& m : view.members)
    if (m.state == cluster::member_state::forgotten)
      forgotten.insert(m.name);
  auto restamped = self->state.replica.forget(forgotten);
  if (restamped.empty())
    return;
  log::info("{}: folded {} forgotten member(s) out of {} record(s)",
            self->name(), forgotten.size(), restamped.size());
  persist(self, restamped);
}

/// Heartbeat ticks after the start-up settled by which every live member's
/// gossip has reached this node's view.
constexpr uint64_t gossip_ticks = 5;

/// Removes, once per run, the replication servers of members that no live
/// member lists: forgotten while this node was down, so it never saw them
/// forgotten (`forget_replication` handles the ones it sees). The view lists
/// every member any live peer knows, dead ones too, so a member missing from
/// it some heartbeats after start-up, while another member is live, is
/// forgotten cluster-wide; if it ever returns, its server is put anew.
void drop_unknown_replication(self_pointer self,
                              const cluster::cluster_view& view) {
  auto& st = self->state;
  if (!st.settled || st.unknown_replication_dropped
      || st.ticks < st.settled_tick + gossip_ticks)
    return;
  std::set<std::string> listed;
  bool peer_live = false;
  for (auto& m : view.members) {
    listed.insert(m.name);
    if (m.name != view.self && m.state == cluster::member_state::alive)
      peer_live = true;
  }
  auto sync = current(st.sync_manager);
  if (!peer_live || !sync)
    return;
  st.unknown_replication_dropped = true;
  self->request(sync, cluster_manager_ask_timeout, atom::get_v, atom::servers_v)
    .then(
      [self, sync, listed](std::string& servers) {
        auto rows = json::parse(servers);
        if (!rows.is_array())
          return;
        for (auto& row : rows.as_array()) {
          auto id = row.is_object() && row.as_object().contains("id")
                        && row.at("id").is_string()
                      ? std::string{row.at("id").as_string()}
                      : std::string{};
          auto name = cluster::replicated_member(id);
          if (!name || listed.count(*name) > 0)
            continue;
          self->request(sync, cluster_manager_ask_timeout, atom::erase_v, id)
            .then(
              [self, id](std::string&) {
                log::info("{}: replication server {} removed: no live member "
                          "lists its member any more",
                          self->name(), id);
              },
              [self, id](caf::error& err) {
                log::warn("{}: could not remove replication server {}: {}",
                          self->name(), id, render(err));
              });
        }
      },
      [self](caf::error& err) {
        // Tried again on a later tick.
        self->state.unknown_replication_dropped = false;
        log::warn("{}: could not list the sync servers: {}", self->name(),
                  render(err));
      });
}

/// Asks the membership for the view, applies the replication servers and
/// folds the forgotten members away.
void refresh_replication(self_pointer self) {
  auto membership = current(self->state.membership);
  if (!membership)
    return;
  self
    ->request(membership, cluster_manager_ask_timeout, atom::get_v,
              atom::members_v)
    .then([self](cluster::cluster_view& view) {
      apply_replication(self, view);
      fold_forgotten(self, view);
      drop_unknown_replication(self, view);
    },
          [](caf::error&) {
            // The next tick asks again.
          });
}

} // namespace

cluster_manager_state::~cluster_manager_state() {
  for (auto& [address, entry] : links)
    if (entry.handle)
      caf::anon_send_exit(entry.handle, caf::exit_reason::user_shutdown);
}

namespace {

/// An integer field of a JSON object; 0 when absent or not a number.
int64_t integer_in(const json::object& obj, std::string_view key) {
  auto value = obj.if_contains(key);
  return value && value->is_number() ? value->to_number<int64_t>() : 0;
}

/// The member's replication link as the view shows it: whether it runs, is
/// connected and caught up, its counters and cursor, and `lag_seconds`: 0
/// while the link is connected with its catch-up complete (every event the
/// member holds is here or on its way by the live tail), else the age of
/// the cursor (everything below it is here); null when nothing was ever
/// replicated.
json::value replication_json(const json::object* server, int64_t now) {
  if (!server)
    return nullptr;
  json::object runtime;
  if (auto rt = server->if_contains("runtime"); rt && rt->is_object())
    runtime = rt->as_object();
  auto connected = runtime.if_contains("connected")
                   && runtime.at("connected").is_bool()
                   && runtime.at("connected").as_bool();
  auto caught_up = runtime.if_contains("catchup_complete")
                   && runtime.at("catchup_complete").is_bool()
                   && runtime.at("catchup_complete").as_bool();
  auto cursor = integer_in(runtime, "cursor");
  json::object row{
    {"server", server->if_contains("id") ? server->at("id") : json::value{}},
    {"enabled", server->if_contains("enabled") ? server->at("enabled")
                                              : json::value{false}},
    {"running", server->if_contains("running") ? server->at("running")
                                               : json::value{false}},
    {"connected", connected},
    {"catchup_complete", caught_up},
    {"cursor", cursor},
    {"received", integer_in(runtime, "received")},
    {"accepted", integer_in(runtime, "accepted")},
    {"duplicate", integer_in(runtime, "duplicate")},
  };
  if (connected && caught_up)
    row["lag_seconds"] = 0;
  else if (cursor > 0)
    row["lag_seconds"] = std::max<int64_t>(0, now - cursor);
  else
    row["lag_seconds"] = nullptr;
  if (auto err = runtime.if_contains("last_error");
      err && err->is_string() && !err->as_string().empty())
    row["last_error"] = *err;
  return row;
}

/// Asks each replication link that is connected with its catch-up complete
/// to reconcile everything with its member again (the catch-up it runs on
/// connect, the live tail subscribed anew): the live tail carries what
/// reaches the member from now on, never what it missed (a dropped frame,
/// a member's relay restarted under an open subscription). A link still
/// catching up is left alone, so a long reconciliation is never restarted.
void reconcile_links(self_pointer self) {
  auto sync = current(self->state.sync_manager);
  if (!sync || self->state.left)
    return;
  self->request(sync, cluster_manager_ask_timeout, atom::get_v, atom::servers_v)
    .then(
      [self, sync](std::string& list) {
        json::error_code ec;
        auto rows = json::parse(list, ec);
        if (ec || !rows.is_array())
          return;
        for (auto& row : rows.as_array()) {
          auto* server = row.if_object();
          auto* id = server ? server->if_contains("id") : nullptr;
          if (!id || !id->is_string()
              || !cluster::replicated_member(std::string{id->as_string()}))
            continue;
          auto link = replication_json(server, unix_now());
          if (!link.at("connected").as_bool()
              || !link.at("catchup_complete").as_bool())
            continue;
          std::string name{id->as_string()};
          self->request(sync, cluster_manager_ask_timeout, atom::sync_now_v, name)
            .then([](std::string&) {},
                  [self, name](caf::error& err) {
                    log::debug("{}: could not reconcile {}: {}", self->name(),
                               name, render(err));
                  });
        }
      },
      [](caf::error&) {
        // The next round asks again.
      });
}

} // namespace

std::string replication_server_body(const cluster::member_info& m,
                                    bool enabled) {
  return json::serialize(json::object{
    {"id", cluster::replication_server_id(m.name)},
    {"url", m.relay_url},
    {"enabled", enabled},
    {"auth_pubkey", m.pubkey},
    {"filters", json::array{json::object{}}},
    {"direction", "down"},
    {"mode", "negentropy"},
    // Reconnects reconcile everything (relay_catchup), so no window.
    {"overlap_window_seconds", 0},
    // Kind 5 is in the filter already.
    {"follow_deletions", false},
    {"relay_info_mode", "required"},
    {"auth", json::object{{"type", "nip42"}, {"mode", "always"}}},
    {"metadata", json::object{{"cluster_member", m.name}}},
  });
}

namespace {

json::object version_json(const cluster::control_record& r) {
  return json::object{
    {"clock", json::parse(cluster::to_json(r.version.clock))},
    {"digest", nostr::to_hex(r.version.digest)},
    {"deleted", r.deleted},
    {"definition", r.deleted ? json::value{} : json::parse(r.body)},
  };
}

} // namespace

std::string conflict_reason(const control_conflict& c) {
  return "cluster: concurrent edits of " + c.kind + " " + c.id
         + ": every member keeps the version " + cluster::to_json(c.kept.version.clock)
         + (c.kept.deleted ? " (deleted)" : "") + ", dropped "
         + cluster::to_json(c.dropped.version.clock)
         + (c.dropped.deleted ? " (deleted)" : "");
}

std::string cluster_view_json(const cluster::cluster_view& view,
                              const std::string& servers_json,
                              const std::string& hosted_json, int64_t now,
                              const std::vector<control_conflict>& conflicts) {
  json::value servers;
  if (!servers_json.empty()) {
    boost::system::error_code ec;
    servers = json::parse(servers_json, ec);
    if (ec)
      servers = json::array{};
  }
  // Replication links by member name; every other server is a relay.
  std::map<std::string, const json::object*> links;
  std::vector<const json::object*> relay_servers;
  if (servers.is_array())
    for (auto& value : servers.as_array()) {
      if (!value.is_object())
        continue;
      auto& server = value.as_object();
      auto id = server.if_contains("id") && server.at("id").is_string()
                  ? std::string{server.at("id").as_string()}
                  : std::string{};
      if (auto member = cluster::replicated_member(id))
        links[*member] = &server;
      else
        relay_servers.push_back(&server);
    }
  std::vector<std::string> live;
  json::array members;
  for (auto& m : view.members) {
    // Out of the cluster as operators see it: only the control plane still
    // folds its counters.
    if (m.state == cluster::member_state::forgotten)
      continue;
    if (owns_relays(m.state))
      live.push_back(m.name);
    json::object row{
      {"name", m.name},
      {"pubkey", m.pubkey},
      {"state", to_string(m.state)},
      {"incarnation", m.incarnation},
      {"address", m.address},
      {"relay_url", m.relay_url},
      {"admin_url", m.admin_url},
      {"last_heartbeat", m.last_heartbeat},
      {"self", m.name == view.self},
    };
    row["heartbeat_age_ms"]
      = m.name == view.self
          ? int64_t{0}
          : std::chrono::duration_cast<std::chrono::milliseconds>(m.silent_for)
              .count();
    if (m.name != view.self) {
      auto link = links.find(m.name);
      row["replication"]
        = replication_json(link == links.end() ? nullptr : link->second, now);
    }
    members.push_back(std::move(row));
  }
  json::array relays;
  for (auto* server : relay_servers) {
    auto url = server->if_contains("url") && server->at("url").is_string()
                 ? std::string{server->at("url").as_string()}
                 : std::string{};
    auto owner = cluster::rendezvous_owner(url, live);
    json::object row{
      {"id", server->if_contains("id") ? server->at("id") : json::value{}},
      {"url", url},
      {"enabled", server->if_contains("enabled") ? server->at("enabled")
                                                 : json::value{false}},
      {"owner", owner ? json::value(json::string(*owner)) : json::value()},
      {"running_here", server->if_contains("running")
                         ? server->at("running")
                         : json::value{false}},
    };
    relays.push_back(std::move(row));
  }
  json::array hosted;
  json::error_code hosted_ec;
  auto hosted_rows = hosted_json.empty() ? json::value{}
                                         : json::parse(hosted_json, hosted_ec);
  if (!hosted_ec && hosted_rows.is_array())
    for (auto& value : hosted_rows.as_array()) {
      auto id = value.is_object() ? value.as_object().if_contains("id")
                                  : nullptr;
      if (!id || !id->is_string())
        continue;
      auto owner = cluster::rendezvous_owner(id->as_string(), live);
      hosted.push_back(json::object{
        {"id", *id},
        {"owner", owner ? json::value(json::string(*owner)) : json::value()},
        {"pushed_here", owner && *owner == view.self},
      });
    }
  json::array refused;
  for (auto& r : view.refused)
    refused.push_back(json::object{
      {"name", r.name},
      {"pubkey", r.pubkey},
      {"reason", r.reason},
      {"times", r.times},
      {"last_refused", r.last_refused},
    });
  json::array live_json;
  for (auto& name : live)
    live_json.emplace_back(name);
  json::array conflicts_json;
  for (auto& c : conflicts)
    conflicts_json.push_back(json::object{
      {"kind", c.kind},
      {"id", c.id},
      {"detected_at", c.detected_at},
      {"kept", version_json(c.kept)},
      {"dropped", version_json(c.dropped)},
    });
  return json::serialize(json::object{
    {"self", view.self},
    {"live", std::move(live_json)},
    {"members", std::move(members)},
    {"relays", std::move(relays)},
    {"hosted_relays", std::move(hosted)},
    {"refused", std::move(refused)},
    {"conflicts", std::move(conflicts_json)},
  });
}

namespace {

// -- replicated cursors -------------------------------------------------------

/// How often (in heartbeats) at most this node asks its replication link
/// from a member to reconcile again so that member's newer cursor claims
/// are confirmed. A relay that moves here re-fetches about this much more
/// than the overlap window; each ask is a NIP-77 reconciliation of the two
/// stores, so not every heartbeat.
constexpr uint64_t cursor_confirm_ticks = 30;

/// A boolean field of a JSON object; false when absent or not a boolean.
bool flag_in(const json::object& obj, std::string_view key) {
  auto value = obj.if_contains(key);
  return value && value->is_bool() && value->as_bool();
}

/// Raises this node's stored cursor of `id` to `to`, a claim of `member`
/// confirmed for this store. Written beside the writer, which caches
/// cursors: its next write for `id` moves the cursor only past its own last
/// one, so at worst it lowers this again (repeated work, never a skip).
void adopt_cursor(self_pointer self, const std::string& id, int64_t to) {
  auto* store = self->state.config.store;
  auto own = store::get_sync_cursor(*store, id);
  auto era = store::get_sync_era(*store, id);
  if (!own || !era || (*own && (*own)->created_at >= to))
    return;
  // Under the era this node's definition has: the claim was confirmed for
  // that definition (its digest), so the cursor is this one's.
  sync_cursor cursor;
  cursor.created_at = to;
  cursor.era = *era;
  if (auto err = store::put_sync_cursor(*store, id, cursor)) {
    log::warn("{}: could not store the confirmed cursor of {}: {}",
              self->name(), id, render(err));
    return;
  }
  log::debug("{}: cursor of {} raised from {} to {}, confirmed by the "
             "replication links",
             self->name(), id, *own ? (*own)->created_at : int64_t{0}, to);
}

/// What the cursor rule reads: the sync manager's server list (`list`;
/// the replication links' rows say when their last complete reconciliation
/// from the beginning started) and the claims this node holds.
struct cursor_inputs {
  std::map<std::string, int64_t> reconciled_from;
  /// Members whose link is connected with its catch-up complete.
  std::set<std::string> links_caught_up;
  /// Replicated server id -> digest of its definition's record.
  std::map<std::string, std::string> definitions;
  /// Servers whose connection runs here.
  std::set<std::string> running;
  std::vector<cluster::heard_claim> claims;
};

cursor_inputs read_cursor_inputs(self_pointer self, const std::string& list) {
  auto& st = self->state;
  cursor_inputs in;
  json::error_code ec;
  auto rows = json::parse(list, ec);
  if (ec || !rows.is_array())
    return in;
  for (auto& row : rows.as_array()) {
    if (!row.is_object() || !row.as_object().if_contains("id")
        || !row.at("id").is_string())
      continue;
    auto& obj = row.as_object();
    std::string id{obj.at("id").as_string()};
    json::object runtime;
    if (auto rt = obj.if_contains("runtime"); rt && rt->is_object())
      runtime = rt->as_object();
    if (auto member = cluster::replicated_member(id)) {
      in.reconciled_from[*member]
        = integer_in(runtime, "full_catchup_started_ms");
      if (flag_in(runtime, "connected") && flag_in(runtime, "catchup_complete"))
        in.links_caught_up.insert(*member);
      continue;
    }
    if (flag_in(obj, "running"))
      in.running.insert(id);
    if (auto r = st.replica.find(std::string{sync_server_kind}, id);
        r && !r->deleted)
      in.definitions[id] = nostr::to_hex(r->version.digest);
  }
  auto now = unix_now_ms();
  auto records = st.replica.all();
  for (auto& [record, claim] : others_claims(st, records)) {
    // Held since before this run (persisted): heard now, so only a
    // reconciliation from here on confirms it.
    auto heard = st.claims_heard.emplace(record->id, now).first->second;
    in.claims.push_back({std::move(claim), heard});
  }
  return in;
}

/// Takes the other members' confirmed cursor claims as this node's own
/// cursors, for the servers it does not run, so a relay that moves here
/// resumes near where its last owner was (messages/cluster/cursor_claim.hpp
/// has the rule), and asks a replication link to reconcile again when a
/// member's claims wait for it.
void adopt_cursors(self_pointer self, const std::string& list) {
  auto& st = self->state;
  auto in = read_cursor_inputs(self, list);
  for (auto& [id, definition] : in.definitions)
    if (!in.running.count(id))
      if (auto to = cluster::adoptable_cursor(in.claims, in.reconciled_from,
                                              id, definition))
        adopt_cursor(self, id, *to);
  auto sync = current(st.sync_manager);
  auto now = unix_now_ms();
  auto every = std::chrono::duration_cast<std::chrono::milliseconds>(
                 st.config.member.heartbeat * cursor_confirm_ticks)
                 .count();
  for (auto& [member, cursor] : cluster::awaiting_confirmation(
         in.claims, in.reconciled_from, in.definitions)) {
    auto& asked = st.confirm_asked[member];
    if (!sync || !in.links_caught_up.count(member) || now - asked < every)
      continue;
    asked = now;
    log::debug("{}: reconciling with {} to confirm its cursors (up to {})",
               self->name(), member, cursor);
    self
      ->request(sync, cluster_manager_ask_timeout, atom::sync_now_v,
                cluster::replication_server_id(member))
      .then([](std::string&) {},
            [](caf::error&) {
              // Asked again after the next interval.
            });
  }
}

/// The other members' cursor claims as the view shows them (`cursors`):
/// server, member, cursor, and whether it is confirmed for this store.
json::array cursors_json(self_pointer self, const std::string& list) {
  auto in = read_cursor_inputs(self, list);
  json::array rows;
  for (auto& h : in.claims)
    rows.push_back(json::object{
      {"server", h.claim.server},
      {"member", h.claim.member},
      {"cursor", h.claim.cursor},
      {"current", in.definitions.count(h.claim.server)
                    && in.definitions[h.claim.server] == h.claim.definition},
      {"confirmed", cluster::is_confirmed(h, in.reconciled_from)},
    });
  return rows;
}

/// Reads the sync manager's server list and adopts what is confirmed.
void refresh_cursors(self_pointer self) {
  auto sync = current(self->state.sync_manager);
  if (!sync || !self->state.config.store || self->state.left)
    return;
  self->request(sync, cluster_manager_ask_timeout, atom::get_v, atom::servers_v)
    .then([self](std::string& list) { adopt_cursors(self, list); },
          [](caf::error&) {
            // The next tick asks again.
          });
}

} // namespace

cluster_manager_actor::behavior_type
cluster_manager(
  cluster_manager_actor::stateful_pointer<cluster_manager_state> self,
  cluster_manager_config config, cluster_identity_ptr identity,
  handle_slot_ptr<membership_actor> membership,
  handle_slot_ptr<sync_manager_actor> sync_manager, infra_handles infra,
  handle_slot_ptr<grasp_sync_actor> grasp,
  handle_slot_ptr<cluster_manager_actor> own_slot) {
  auto& st = self->state;
  st.infra = std::move(infra);
  st.grasp = std::move(grasp);
  st.config = std::move(config);
  st.identity = std::move(identity);
  st.membership = std::move(membership);
  st.sync_manager = std::move(sync_manager);
  st.replica = control_replica{st.identity->self.name};
  if (st.config.store) {
    auto stored = store::list_control_records(*st.config.store);
    if (!stored) {
      self->quit(stored.error());
      return cluster_manager_actor::behavior_type::make_empty_behavior();
    }
    st.replica.load(std::move(*stored));
  }
  for (auto& seed : st.config.seeds) {
    if (seed == st.identity->self.address)
      continue;
    st.seeds_pending.insert(seed);
    spawn_link(self, seed, own_slot);
  }
  if (st.seeds_pending.empty())
    st.settled = true;
  else
    self->delayed_send(self, st.config.settle_limit, atom::done_v,
                       std::string{});
  self->set_down_handler([self, own_slot](caf::down_msg& dm) {
    for (auto& [address, entry] : self->state.links) {
      if (!entry.handle || entry.handle.address() != dm.source)
        continue;
      entry.handle = cluster_member_actor{};
      if (!dm.reason || dm.reason == caf::exit_reason::user_shutdown
          || dm.reason == caf::exit_reason::normal || self->state.left)
        return;
      ++entry.restarts;
      entry.last_error = render(dm.reason);
      log::warn("{}: the link to {} died ({}); respawning in {} s",
                self->name(), address, entry.last_error,
                link_respawn_delay.count());
      // A gossip naming the address again respawns it; so does this.
      self->delayed_send(self, link_respawn_delay, atom::members_v,
                         std::vector<cluster::member_info>{[&] {
                           cluster::member_info info;
                           info.address = address;
                           return info;
                         }()});
      return;
    }
  });
  self->send(self, atom::tick_v);
  st.last_reconcile = self->clock().now();
  return {
    [self](atom::members, std::vector<std::string>& live) {
      if (live == self->state.live)
        return;
      self->state.live = std::move(live);
      pass_live_set(self);
      refresh_replication(self);
    },
    [self, own_slot](atom::members,
                     const std::vector<cluster::member_info>& members) {
      auto& st = self->state;
      if (st.left)
        return;
      for (auto& info : members) {
        if (info.address.empty() || info.address == st.identity->self.address
            || info.name == st.identity->self.name
            || info.state == cluster::member_state::left
            || info.state == cluster::member_state::forgotten)
          continue;
        auto i = st.links.find(info.address);
        if (i != st.links.end() && i->second.handle) {
          // Up by someone's account: a link in backoff dials now.
          if (info.state == cluster::member_state::alive)
            self->send(i->second.handle, atom::connect_v, dial_now);
          continue;
        }
        log::info("{}: dialling {} at {}", self->name(),
                  info.name.empty() ? std::string{"a member"} : info.name,
                  info.address);
        spawn_link(self, info.address, own_slot, {}, info.name);
      }
    },
    [self, own_slot](atom::join, const cluster::member_info& info,
                     cluster_gate_actor& gate) {
      auto& st = self->state;
      if (st.left || info.address.empty()
          || info.address == st.identity->self.address)
        return;
      auto i = st.links.find(info.address);
      if (i != st.links.end() && i->second.handle) {
        self->send(i->second.handle, atom::join_v, std::move(gate));
        return;
      }
      log::info("{}: {} joined us; joining it back at {} over its connection",
                self->name(), info.name, info.address);
      spawn_link(self, info.address, own_slot, std::move(gate));
    },
    [self](atom::done, const std::string& address) {
      auto& st = self->state;
      if (st.settled)
        return;
      if (address.empty()) {
        settle(self, "not every seed answered in time");
        return;
      }
      if (address == seeds_answered) {
        settle(self, "every seed answered");
        return;
      }
      // The members the seeds named get one heartbeat to be dialled too.
      if (st.seeds_pending.erase(address) > 0 && st.seeds_pending.empty())
        self->delayed_send(self, st.config.member.heartbeat, atom::done_v,
                           std::string{seeds_answered});
    },
    [self](atom::leave) -> caf::result<std::string> {
      return leave(self);
    },
    [self](atom::leave, atom::tick) {
      if (self->state.leaving)
        poll_handover(self);
    },
    [self](atom::get, atom::connected, std::vector<std::string>& ids)
      -> caf::result<std::vector<std::string>> {
      auto rp = self->make_response_promise<std::vector<std::string>>();
      read_connected(self, [rp, ids](std::set<std::string> here) mutable {
        std::vector<std::string> result;
        for (auto& id : ids)
          if (here.count(id) > 0)
            result.push_back(id);
        rp.deliver(std::move(result));
      });
      return rp;
    },
    [self](atom::put, const std::string& records) {
      merge_records(self, records);
    },
    [self](atom::get, atom::members) -> caf::result<std::string> {
      auto membership = current(self->state.membership);
      if (!membership)
        return caf::make_error(ec::network_failure,
                               "the membership is restarting");
      auto rp = self->make_response_promise<std::string>();
      self
        ->request(membership, cluster_manager_ask_timeout, atom::get_v,
                  atom::members_v)
        .then(
          [self, rp](cluster::cluster_view& view) mutable {
            with_definition_lists(
              self, [self, rp, view](const std::string& servers,
                                     const std::string& hosted) mutable {
                auto text = cluster_view_json(view, servers, hosted,
                                              unix_now(),
                                              self->state.replica.conflicts());
                // The claims are this actor's state, not the view's.
                auto with_cursors = json::parse(text);
                with_cursors.as_object()["cursors"] = cursors_json(self,
                                                                   servers);
                rp.deliver(json::serialize(with_cursors));
              },
              [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [self](atom::health) -> caf::result<health_report> {
      auto membership = current(self->state.membership);
      if (!membership)
        return health_report{"degraded",
                             {"cluster: the membership is restarting"}};
      auto rp = self->make_response_promise<health_report>();
      self
        ->request(membership, cluster_manager_ask_timeout, atom::get_v,
                  atom::members_v)
        .then(
          [self, rp](cluster::cluster_view& view) mutable {
            health_report report;
            for (auto& r : view.refused)
              report.reasons.push_back("cluster: refused " + r.name
                                       + " (pubkey " + r.pubkey
                                       + "): " + r.reason + " ("
                                       + std::to_string(r.times) + "x)");
            // A conflict is settled the moment it is found: it stays in
            // /health long enough to be seen, and in the view for good.
            auto recent = unix_now() - conflict_health_seconds;
            for (auto& c : self->state.replica.conflicts())
              if (c.detected_at >= recent)
                report.reasons.push_back(conflict_reason(c));
            // This member differs from the cluster until it can take them.
            for (auto& [key, why] : self->state.refused_records)
              report.reasons.push_back("cluster: cannot apply the replicated "
                                       + key.first + " " + key.second + ": "
                                       + why + " (tried again every five "
                                               "heartbeats)");
            if (!report.reasons.empty())
              report.status = "degraded";
            rp.deliver(std::move(report));
          },
          [rp](caf::error& err) mutable {
            rp.deliver(health_report{
              "degraded",
              {"cluster: the membership did not answer: " + render(err)}});
          });
      return rp;
    },
    [self](atom::get, atom::children) {
      std::vector<child_info> result;
      for (auto& [address, entry] : self->state.links) {
        child_info info;
        info.name = link_name(address);
        info.kind = "cluster-member";
        info.parent = self->name();
        info.state = entry.handle ? child_state::running
                                  : child_state::restarting;
        info.restarts = entry.restarts;
        info.last_error = entry.last_error;
        info.started_at = entry.started_at;
        info.handle = caf::actor_cast<caf::actor>(entry.handle);
        result.push_back(std::move(info));
      }
      return result;
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "self", st.identity->self.name);
      caf::put(result, "incarnation",
               static_cast<int64_t>(st.identity->self.incarnation));
      caf::put(result, "links", static_cast<int64_t>(st.links.size()));
      caf::put(result, "settled", st.settled);
      caf::put(result, "live", static_cast<int64_t>(st.live.size()));
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      return result;
    },
    [self](atom::tick) {
      auto& st = self->state;
      if (auto membership = current(st.membership))
        self->send(membership, atom::subscribe_v,
                   caf::actor_cast<membership_listener_actor>(self));
      pass_live_set(self);
      refresh_replication(self);
      poll_local(self);
      refresh_cursors(self);
      if (++st.ticks % anti_entropy_ticks == 0) {
        broadcast(self, st.replica.all());
        apply_unapplied(self);
      }
      if (self->clock().now() - st.last_reconcile
          >= st.config.reconcile_interval) {
        st.last_reconcile = self->clock().now();
        reconcile_links(self);
      }
      self->delayed_send(self, st.config.member.heartbeat, atom::tick_v);
    },
  };
}

} // namespace ferry
