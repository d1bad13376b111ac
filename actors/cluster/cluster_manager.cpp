#include "actors/cluster/cluster_manager.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/cluster/rendezvous.hpp"
#include "messages/error.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/typed_response_promise.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <memory>
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

template <class Handle>
Handle current(const handle_slot_ptr<Handle>& slot) {
  return slot ? slot->get() : Handle{};
}

std::string link_name(const std::string& address) {
  return "cluster-member@" + address;
}

void spawn_link(self_pointer self, const std::string& address,
                const handle_slot_ptr<cluster_manager_actor>& own_slot) {
  auto& st = self->state;
  auto& entry = st.links[address];
  entry.handle = self->spawn(cluster_member, address, st.config.member,
                             st.identity, st.membership, own_slot);
  entry.started_at = unix_now();
  self->monitor(entry.handle);
}

/// Hands the live set to the sync manager (idempotent on its side).
void pass_live_set(self_pointer self) {
  auto& st = self->state;
  if (!st.settled || st.live.empty())
    return;
  if (auto sync = current(st.sync_manager))
    self->send(sync, atom::members_v, st.live);
}

void settle(self_pointer self, const std::string& why) {
  if (self->state.settled)
    return;
  self->state.settled = true;
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

} // namespace

cluster_manager_state::~cluster_manager_state() {
  for (auto& [address, entry] : links)
    if (entry.handle)
      caf::anon_send_exit(entry.handle, caf::exit_reason::user_shutdown);
}

std::string cluster_view_json(const cluster::cluster_view& view,
                              const std::string& servers_json) {
  std::vector<std::string> live;
  json::array members;
  for (auto& m : view.members) {
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
    members.push_back(std::move(row));
  }
  json::array relays;
  json::value servers;
  if (!servers_json.empty()) {
    boost::system::error_code ec;
    servers = json::parse(servers_json, ec);
    if (ec)
      servers = json::array{};
  }
  if (servers.is_array())
    for (auto& value : servers.as_array()) {
      if (!value.is_object())
        continue;
      auto& server = value.as_object();
      auto url = server.if_contains("url") && server.at("url").is_string()
                   ? std::string{server.at("url").as_string()}
                   : std::string{};
      auto owner = cluster::rendezvous_owner(url, live);
      json::object row{
        {"id", server.if_contains("id") ? server.at("id") : json::value{}},
        {"url", url},
        {"enabled", server.if_contains("enabled") ? server.at("enabled")
                                                  : json::value{false}},
        {"owner", owner ? json::value(json::string(*owner)) : json::value()},
        {"running_here", server.if_contains("running")
                           ? server.at("running")
                           : json::value{false}},
      };
      relays.push_back(std::move(row));
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
  return json::serialize(json::object{
    {"self", view.self},
    {"live", std::move(live_json)},
    {"members", std::move(members)},
    {"relays", std::move(relays)},
    {"refused", std::move(refused)},
  });
}

cluster_manager_actor::behavior_type
cluster_manager(
  cluster_manager_actor::stateful_pointer<cluster_manager_state> self,
  cluster_manager_config config, cluster_identity_ptr identity,
  handle_slot_ptr<membership_actor> membership,
  handle_slot_ptr<sync_manager_actor> sync_manager,
  handle_slot_ptr<cluster_manager_actor> own_slot) {
  auto& st = self->state;
  st.config = std::move(config);
  st.identity = std::move(identity);
  st.membership = std::move(membership);
  st.sync_manager = std::move(sync_manager);
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
          || dm.reason == caf::exit_reason::normal)
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
  return {
    [self](atom::members, std::vector<std::string>& live) {
      if (live == self->state.live)
        return;
      self->state.live = std::move(live);
      pass_live_set(self);
    },
    [self, own_slot](atom::members,
                     const std::vector<cluster::member_info>& members) {
      auto& st = self->state;
      for (auto& info : members) {
        if (info.address.empty() || info.address == st.identity->self.address
            || info.name == st.identity->self.name
            || info.state == cluster::member_state::left)
          continue;
        auto i = st.links.find(info.address);
        if (i != st.links.end() && i->second.handle)
          continue;
        log::info("{}: dialling {} at {}", self->name(),
                  info.name.empty() ? std::string{"a member"} : info.name,
                  info.address);
        spawn_link(self, info.address, own_slot);
      }
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
            auto sync = current(self->state.sync_manager);
            if (!sync) {
              rp.deliver(cluster_view_json(view, {}));
              return;
            }
            self
              ->request(sync, cluster_manager_ask_timeout, atom::get_v,
                        atom::servers_v)
              .then(
                [rp, view](std::string& servers) mutable {
                  rp.deliver(cluster_view_json(view, servers));
                },
                [rp, view](caf::error&) mutable {
                  rp.deliver(cluster_view_json(view, {}));
                });
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
          [rp](cluster::cluster_view& view) mutable {
            health_report report;
            for (auto& r : view.refused)
              report.reasons.push_back("cluster: refused " + r.name
                                       + " (pubkey " + r.pubkey
                                       + "): " + r.reason + " ("
                                       + std::to_string(r.times) + "x)");
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
      self->delayed_send(self, st.config.member.heartbeat, atom::tick_v);
    },
  };
}

} // namespace ferry
