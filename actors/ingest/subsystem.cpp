#include "actors/ingest/subsystem.hpp"

#include "actors/ingest/plugin_host.hpp"
#include "actors/ingest/policy.hpp"
#include "actors/ingest/verifier.hpp"
#include "actors/ingest/writer.hpp"

#include <algorithm>
#include <thread>

namespace ferry {

size_t verifier_count(const config::ingest_config& ingest) {
  if (ingest.verifiers > 0)
    return ingest.verifiers;
  return std::max(1u, std::thread::hardware_concurrency());
}

plugin_host_config plugin_host_config_from(const config::policy_plugin_config& cfg) {
  plugin_host_config result;
  result.command = cfg.command;
  result.timeout = cfg.timeout;
  result.fallback = cfg.fallback == "accept" ? policy_action::accept
                                             : policy_action::reject;
  return result;
}

bool runs_policy_step(const config::policy_config& cfg) {
  return cfg.has_rules() || !cfg.plugin.command.empty();
}

child_spec ingest_subsystem(const node_wiring& wiring, restart_policy policy) {
  writer_config wcfg;
  wcfg.batch_max = wiring.cfg.ingest.writer_batch_max;
  wcfg.purge_interval = wiring.cfg.store.purge_interval;
  wcfg.refused = wiring.cfg.policy.remember_refused;
  std::vector<child_spec> children;
  children.push_back(slotted(
    "writer", "writer", wiring.writer,
    [store = wiring.store, hub = wiring.relay->hub,
     wcfg](caf::local_actor* self) {
      return self->system().spawn<caf::detached>(writer, store, hub, wcfg);
    }));
  // The policy step exists only when there is something to decide: without
  // it the verifiers hand events straight to the writer.
  const auto& pcfg = wiring.cfg.policy;
  handle_slot_ptr<plugin_host_actor> plugin_slot;
  if (!pcfg.plugin.command.empty()) {
    plugin_slot = std::make_shared<handle_slot<plugin_host_actor>>();
    children.push_back(slotted(
      "policy-plugin", "policy-plugin", plugin_slot,
      [hcfg = plugin_host_config_from(pcfg.plugin), io = wiring.io,
       live = wiring.policy, store = wiring.store](caf::local_actor* self) {
        auto cfg = hcfg;
        cfg.script_changed = [sys = &self->system(), live, store] {
          follow_changed_plugin(*sys, live, store);
        };
        return self->system().spawn(plugin_host, cfg, &io->context());
      }));
  }
  handle_slot_ptr<policy_actor> policy_slot;
  if (runs_policy_step(pcfg)) {
    policy_slot = std::make_shared<handle_slot<policy_actor>>();
    children.push_back(slotted(
      "policy", "policy", policy_slot,
      [live = wiring.policy, store = wiring.store, writer_slot = wiring.writer,
       plugin_slot](caf::local_actor* self) {
        return self->system().spawn(ferry::policy, live, store, writer_slot,
                                    plugin_slot);
      }));
  }
  for (size_t i = 0; i < wiring.relay->verifiers.size(); ++i) {
    const auto& slot = wiring.relay->verifiers[i];
    auto spec = slotted(
      "verifier-" + std::to_string(i + 1), "verifier", slot,
      [store = wiring.store, writer_slot = wiring.writer, policy_slot,
       remember = pcfg.remember_refused.max_entries > 0](caf::local_actor* self) {
        return self->system().spawn<caf::detached>(verifier, store, writer_slot,
                                                   policy_slot, remember);
      });
    // An empty slot, not a dead handle, while this verifier is stopped or
    // restarting: senders (sessions, relay connections, pulls) pass over
    // it to the others instead of failing the events they hand it.
    spec.on_stopped = [slot] { slot->set({}); };
    children.push_back(std::move(spec));
  }
  return supervisor_spec("ingest", std::move(children), policy);
}

} // namespace ferry
