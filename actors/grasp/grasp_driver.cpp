#include "actors/grasp/grasp_driver.hpp"

#include "actors/runtime/logging.hpp"

#include <caf/actor_cast.hpp>

namespace ferry {

namespace {

using self_pointer
  = grasp_relay_driver_actor::stateful_pointer<grasp_driver_state>;

/// The definition a driven connection runs on: down only, its REQs come
/// from GRASP SYNC. The relay's identity is unknown, so NIP-11 is skipped.
sync_server definition_for(const std::string& url) {
  sync_server def;
  def.id = "grasp:" + url;
  def.url = url;
  def.direction = sync_direction::down;
  def.relay_info = relay_info_mode::disabled;
  def.auth = auth_mode::on_challenge;
  def.tls.mode = url.rfind("wss://", 0) == 0 ? "required" : "disabled";
  return def;
}

void tell_lost(self_pointer self, const std::string& url,
               const std::string& reason) {
  ++self->state.losses;
  if (auto listener = self->state.listener->get())
    self->send(listener, atom::lost_v, url, reason);
}

} // namespace

grasp_relay_driver_actor::behavior_type
grasp_driver(grasp_relay_driver_actor::stateful_pointer<grasp_driver_state> self,
             relay_connection_deps deps,
             handle_slot_ptr<grasp_sync_actor> listener) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.listener = std::move(listener);
  st.deps.driver = caf::actor_cast<grasp_relay_driver_actor>(self);
  st.deps.driver_listener = [slot = st.listener] {
    return grasp_driver_listener_actor{slot->get()};
  };
  // A connection that dies without saying why (a crash) is a loss too.
  self->set_down_handler([self](const caf::down_msg& msg) {
    auto& relays = self->state.relays;
    for (auto i = relays.begin(); i != relays.end(); ++i) {
      if (i->second.address() != msg.source)
        continue;
      auto url = i->first;
      relays.erase(i);
      tell_lost(self, url, "the connection stopped: " + to_string(msg.reason));
      return;
    }
  });
  return {
    [self](atom::connect, const std::string& url,
           std::vector<grasp::subscription>& subs) {
      auto& st = self->state;
      auto i = st.relays.find(url);
      if (i == st.relays.end()) {
        auto deps = st.deps;
        auto wait = st.not_before.find(url);
        if (wait != st.not_before.end()) {
          auto now = self->clock().now();
          if (wait->second > now)
            deps.start_after = wait->second - now;
          st.not_before.erase(wait);
        }
        auto connection = self->spawn(relay_connection, definition_for(url),
                                      std::move(deps));
        self->monitor(connection);
        i = st.relays.emplace(url, connection).first;
        ++st.connects;
        log::info("{} connects to {}", self->name(), url);
      }
      self->send(i->second, atom::subscribe_v, std::move(subs));
    },
    [self](atom::subscribe, const std::string& url,
           std::vector<grasp::subscription>& subs) {
      auto& st = self->state;
      auto i = st.relays.find(url);
      if (i == st.relays.end())
        return tell_lost(self, url, "not connected");
      self->send(i->second, atom::subscribe_v, std::move(subs));
    },
    [self](atom::unsubscribe, const std::string& url,
           std::vector<std::string>& ids) {
      auto& st = self->state;
      if (auto i = st.relays.find(url); i != st.relays.end())
        self->send(i->second, atom::unsubscribe_v, std::move(ids));
    },
    [self](atom::flush, const std::string& url, uint64_t serial) {
      auto& st = self->state;
      if (auto i = st.relays.find(url); i != st.relays.end())
        self->send(i->second, atom::flush_v, serial);
    },
    [self](atom::drop, const std::string& url) {
      auto& st = self->state;
      auto i = st.relays.find(url);
      if (i == st.relays.end())
        return;
      self->demonitor(i->second.address());
      self->send_exit(i->second, caf::exit_reason::user_shutdown);
      st.relays.erase(i);
      // The health tracker stops counting it as connected here (in a
      // cluster the relay's new owner reports it).
      if (auto health = st.deps.health ? st.deps.health->get()
                                       : health_tracker_actor{})
        self->send(health, atom::report_v, atom::stopped_v,
                   definition_for(url).id);
      log::info("{} dropped {}", self->name(), url);
    },
    [self](atom::lost, const std::string& url, const std::string& reason,
           caf::timespan backoff) {
      auto& st = self->state;
      auto i = st.relays.find(url);
      if (i == st.relays.end())
        return;
      self->demonitor(i->second.address());
      st.relays.erase(i);
      st.not_before[url] = self->clock().now() + backoff;
      tell_lost(self, url, reason);
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "relays", static_cast<int64_t>(st.relays.size()));
      caf::put(result, "backing_off", static_cast<int64_t>(st.not_before.size()));
      caf::put(result, "connects", static_cast<int64_t>(st.connects));
      caf::put(result, "losses", static_cast<int64_t>(st.losses));
      return result;
    },
  };
}

} // namespace ferry
