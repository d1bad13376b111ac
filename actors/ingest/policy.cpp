#include "actors/ingest/policy.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/runtime/metrics.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/sha256.hpp"
#include "store/refused_store.hpp"

#include <caf/event_based_actor.hpp>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ferry {

namespace {

using self_pointer = policy_actor::stateful_pointer<policy_state>;

void remember(self_pointer self, const ingest_item& item,
              const policy_verdict& verdict) {
  auto& st = self->state;
  if (!st.store || item.source == "client" || is_temporary_refusal(verdict.message))
    return;
  auto reason = verdict.action == policy_action::shadow_reject
                  ? std::string{"shadow-rejected by the write policy"}
                  : verdict.message;
  if (auto err = store::remember_refused(*st.store, item.source,
                                         item.data.ev.id, unix_now(), reason))
    log::warn("{} could not remember a refused event: {}", self->name(),
              render(err));
}

/// The answer for a refused event, counted and remembered.
ingest_result refuse(self_pointer self, const ingest_item& item,
                     const policy_verdict& verdict) {
  auto& st = self->state;
  remember(self, item, verdict);
  auto result = to_ingest_result(verdict);
  if (verdict.action == policy_action::shadow_reject)
    ++st.shadowed;
  else
    ++st.rejected;
  metrics::event_ingested(item.data.ev.kind, item.source, to_string(result.status));
  return result;
}

const ingest_result writer_restarting{
  ingest_status::error, "error: the writer is restarting; try again"};
const ingest_result policy_stopped{ingest_status::error,
                                   "error: the write policy stopped before "
                                   "judging this event; try again"};

caf::result<ingest_result> to_writer(self_pointer self, ingest_item_ptr item) {
  auto writer = self->state.writer->get();
  if (!writer)
    return writer_restarting;
  ++self->state.accepted;
  return self->delegate(writer, atom::write_v, std::move(item));
}

/// `to_writer` once the plugin has spoken.
void to_writer(self_pointer self, caf::typed_response_promise<ingest_result>& promise,
               const ingest_item_ptr& item) {
  auto writer = self->state.writer->get();
  if (!writer) {
    promise.deliver(writer_restarting);
    return;
  }
  ++self->state.accepted;
  promise.delegate(writer, atom::write_v, item);
}

} // namespace

namespace {

/// The plugin's script, when the command is a path: its contents decide what
/// it refuses as much as its name. A command with spaces runs through the
/// shell and names no one file; only its text counts.
std::string plugin_script_digest(const std::string& command) {
  if (command.empty() || command.find(' ') != std::string::npos)
    return {};
  std::ifstream in{command, std::ios::binary};
  if (!in)
    return "unreadable";
  std::string content{std::istreambuf_iterator<char>{in},
                      std::istreambuf_iterator<char>{}};
  return nostr::to_hex(nostr::sha256(content));
}

} // namespace

std::string policy_fingerprint(const config::policy_config& cfg) {
  std::string out;
  auto field = [&out](std::string_view name, const auto& values) {
    out.append(name).push_back('=');
    for (const auto& x : values) {
      if constexpr (std::is_convertible_v<decltype(x), std::string_view>)
        out.append(x);
      else
        out.append(std::to_string(x));
      out.push_back(',');
    }
    out.push_back(';');
  };
  auto one = [&field](std::string_view name, const auto& value) {
    field(name, std::vector<std::decay_t<decltype(value)>>{value});
  };
  field("allowed_pubkeys", cfg.allowed_pubkeys);
  field("denied_pubkeys", cfg.denied_pubkeys);
  field("allowed_kinds", cfg.allowed_kinds);
  field("denied_kinds", cfg.denied_kinds);
  one("max_content_bytes", cfg.max_content_bytes);
  one("max_tags", cfg.max_tags);
  one("max_age_seconds", cfg.max_age_seconds);
  one("max_future_seconds", cfg.max_future_seconds);
  one("auth_required_for_writes", cfg.auth_required_for_writes ? 1 : 0);
  one("plugin", cfg.plugin.command);
  one("plugin_script", plugin_script_digest(cfg.plugin.command));
  return out;
}

void follow_changed_plugin(caf::actor_system& sys,
                           live_value_ptr<config::policy_config> config,
                           store::event_store* store) {
  // Arguments, not captures: CAF 0.17 binds a reference to a null argument
  // tuple for an actor function that takes none, which UBSan aborts on.
  sys.spawn<caf::detached>([](live_value_ptr<config::policy_config> config,
                              store::event_store* store) {
    auto forgotten = store::follow_policy(*store,
                                          policy_fingerprint(*config->get()));
    if (!forgotten)
      log::warn("policy keeps the refused events' memory after its plugin "
                "changed: {}",
                render(forgotten.error()));
    else if (*forgotten > 0)
      log::info("policy forgets {} refused event(s): its plugin's script "
                "changed since they were refused",
                *forgotten);
  }, std::move(config), store);
}

policy_state::~policy_state() {
  judging.pay_all([](caf::typed_response_promise<ingest_result>& promise) {
    promise.deliver(policy_stopped);
  });
}

policy_actor::behavior_type
policy(policy_actor::stateful_pointer<policy_state> self,
       live_value_ptr<config::policy_config> config, store::event_store* store,
       handle_slot_ptr<writer_actor> writer,
       handle_slot_ptr<plugin_host_actor> plugin) {
  auto& st = self->state;
  st.config = std::move(config);
  st.rules_source = st.config->get();
  const auto& cfg = *st.rules_source;
  st.rules = policy_rules{cfg};
  if (cfg.remember_refused.max_entries > 0)
    st.store = store;
  st.writer = std::move(writer);
  st.plugin = std::move(plugin);
  if (cfg.plugin.fallback == "reject")
    st.plugin_fallback = {policy_action::reject,
                          "error: the write policy plugin is restarting"};
  return {
    [self](atom::write, ingest_item_ptr& item) -> caf::result<ingest_result> {
      auto& st = self->state;
      if (auto current = st.config->get(); current != st.rules_source) {
        st.rules = policy_rules{*current};
        st.rules_source = std::move(current);
        ++st.rules_reloaded;
      }
      auto verdict = st.rules.judge(*item, unix_now(), steady_seconds());
      if (verdict.action != policy_action::accept)
        return refuse(self, *item, verdict);
      auto plugin = st.plugin ? st.plugin->get() : plugin_host_actor{};
      if (!st.plugin)
        return to_writer(self, std::move(item));
      if (!plugin) {
        ++st.plugin_unreachable;
        if (st.plugin_fallback.action == policy_action::accept)
          return to_writer(self, std::move(item));
        return refuse(self, *item, st.plugin_fallback);
      }
      auto promise = st.judging.owe(self->make_response_promise<ingest_result>());
      // The plugin host answers every request (its own timeout, or its end,
      // gives the fallback), so no timeout is needed here.
      self->request(plugin, caf::infinite, atom::judge_v, item)
        .then(
          [self, item, promise](policy_verdict& verdict) {
            if (verdict.action == policy_action::accept)
              to_writer(self, *promise, item);
            else
              promise->deliver(refuse(self, *item, verdict));
          },
          [self, item, promise](caf::error&) {
            // The plugin host had ended: its fallback applies.
            auto& st = self->state;
            ++st.plugin_unreachable;
            if (st.plugin_fallback.action == policy_action::accept)
              to_writer(self, *promise, item);
            else
              promise->deliver(refuse(self, *item, st.plugin_fallback));
          });
      return *promise;
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "accepted", static_cast<int64_t>(st.accepted));
      caf::put(result, "rejected", static_cast<int64_t>(st.rejected));
      caf::put(result, "shadowed", static_cast<int64_t>(st.shadowed));
      caf::put(result, "rate_limited",
               static_cast<int64_t>(st.rules.counts().rate_limited));
      caf::put(result, "plugin_unreachable",
               static_cast<int64_t>(st.plugin_unreachable));
      caf::put(result, "rules_reloaded",
               static_cast<int64_t>(st.rules_reloaded));
      return result;
    },
  };
}

} // namespace ferry
