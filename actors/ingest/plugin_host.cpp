#include "actors/ingest/plugin_host.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/hex.hpp"

#include <boost/json.hpp>

#include <caf/send.hpp>

#include <algorithm>
#include <array>
#include <string_view>

namespace ferry {

namespace {

using self_pointer = plugin_host_actor::stateful_pointer<plugin_host_state>;

/// strfry's `sourceType` and `sourceInfo` for our sources: clients by their
/// IP family, import as Import, relays we sync from as Sync, GRASP relays
/// (fetched because an announcement named them) as Stream.
std::pair<std::string_view, std::string_view> strfry_source(const ingest_item& item) {
  std::string_view source = item.source;
  if (source == "client")
    return {item.source_info.find(':') == std::string::npos ? "IP4" : "IP6",
            item.source_info};
  if (source == "import")
    return {"Import", ""};
  if (source.rfind("grasp:", 0) == 0)
    return {"Stream", item.source_info.empty() ? source.substr(6)
                                               : std::string_view{item.source_info}};
  return {"Sync", item.source_info.empty() ? source
                                           : std::string_view{item.source_info}};
}

/// NIP-01 machine-readable prefixes a plugin may already have put on its
/// message; anything else is prefixed with `blocked: `.
bool has_prefix(std::string_view msg) {
  constexpr std::array<std::string_view, 8> prefixes{
    "blocked:", "rate-limited:", "invalid:", "pow:", "restricted:",
    "auth-required:", "duplicate:", "error:"};
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [msg](std::string_view p) { return msg.rfind(p, 0) == 0; });
}

bool is_hex64(std::string_view text) {
  return text.size() == 64
         && std::all_of(text.begin(), text.end(), [](char c) {
              return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            });
}

bool is_path(const std::string& command) {
  return command.find(' ') == std::string::npos;
}

std::filesystem::file_time_type mtime_of(const std::string& path) {
  std::error_code ignored;
  return std::filesystem::last_write_time(path, ignored);
}

void start_process(self_pointer self) {
  auto& st = self->state;
  auto generation = ++st.generation;
  auto handle = caf::actor_cast<plugin_host_actor>(self);
  std::string error;
  if (is_path(st.config.command))
    st.mtime = mtime_of(st.config.command);
  st.mtime_checked_at = std::chrono::steady_clock::now();
  st.process = plugin_process::start(
    *st.ioc, st.config.command,
    [handle, generation](std::string line) {
      caf::anon_send(handle, atom::plugin_line_v, generation, std::move(line));
    },
    [handle, generation](std::string reason) {
      caf::anon_send(handle, atom::closed_v, generation, std::move(reason));
    },
    error);
  st.started_at = std::chrono::steady_clock::now();
  if (st.process) {
    log::info("{} started plugin {} (pid {})", self->name(), st.config.command,
              st.process->pid());
    return;
  }
  // Handled like a death: a command that cannot start retries with backoff.
  caf::anon_send(handle, atom::closed_v, generation, error);
}

/// Ends the running process (if any) and answers its requests with the
/// fallback.
void drop_process(self_pointer self, const std::string& why) {
  auto& st = self->state;
  if (st.process) {
    st.process->stop();
    st.process.reset();
  }
  ++st.generation;
  st.fail_waiting(why);
}

/// Restarts the plugin when its file changed since it was started, as
/// strfry does.
void reload_if_changed(self_pointer self) {
  auto& st = self->state;
  if (!is_path(st.config.command) || !st.process)
    return;
  auto now = std::chrono::steady_clock::now();
  if (now - st.mtime_checked_at < st.config.mtime_check)
    return;
  st.mtime_checked_at = now;
  if (mtime_of(st.config.command) == st.mtime)
    return;
  ++st.reloads;
  log::info("{} reloads plugin {}: its file changed", self->name(),
            st.config.command);
  drop_process(self, "the plugin is reloading");
  start_process(self);
  if (st.config.script_changed)
    st.config.script_changed();
}

/// The plugin is dead or broken: its requests get the fallback and it
/// starts again after the backoff.
void on_failure(self_pointer self, const std::string& why) {
  auto& st = self->state;
  drop_process(self, why);
  ++st.restarts;
  st.last_exit = why;
  auto ran = std::chrono::steady_clock::now() - st.started_at;
  if (ran >= st.config.stable_after || st.next_backoff.count() == 0)
    st.next_backoff = st.config.backoff_base;
  log::warn("{}: plugin {} failed ({}); restart {} in {} ms", self->name(),
            st.config.command, why, st.restarts, st.next_backoff.count());
  if (!st.restart_scheduled) {
    st.restart_scheduled = true;
    self->delayed_send(self, st.next_backoff, atom::restart_v);
  }
  st.next_backoff = std::min(st.config.backoff_cap, st.next_backoff * 2);
}

void on_line(self_pointer self, const std::string& line) {
  auto& st = self->state;
  std::string id;
  policy_verdict verdict;
  if (!parse_plugin_answer(line, id, verdict)) {
    ++st.garbage;
    auto shown = line.substr(0, 200);
    return on_failure(self, "it answered garbage: " + shown);
  }
  auto i = st.waiting_by_id.find(id);
  if (i == st.waiting_by_id.end()) {
    // Late: that request timed out and got the fallback already.
    log::debug("{}: answer for {} came after its timeout", self->name(), id);
    return;
  }
  auto w = std::move(i->second.front());
  i->second.pop_front();
  if (i->second.empty())
    st.waiting_by_id.erase(i);
  st.id_by_seq.erase(w.seq);
  switch (verdict.action) {
    case policy_action::accept:
      ++st.accepted;
      break;
    case policy_action::reject:
      ++st.rejected;
      break;
    case policy_action::shadow_reject:
      ++st.shadowed;
      break;
  }
  w.promise.deliver(std::move(verdict));
}

} // namespace

policy_verdict plugin_host_state::fallback(const std::string& why) const {
  if (config.fallback == policy_action::accept)
    return {};
  return {policy_action::reject,
          "error: the write policy plugin could not judge this event (" + why
            + ")"};
}

void plugin_host_state::fail_waiting(const std::string& why) {
  for (auto& [id, queue] : waiting_by_id)
    for (auto& w : queue) {
      ++fallbacks;
      w.promise.deliver(fallback(why));
    }
  waiting_by_id.clear();
  id_by_seq.clear();
}

plugin_host_state::~plugin_host_state() {
  // Its requesters wait without a timeout of their own (owed_answers.hpp).
  fail_waiting("the plugin host stopped");
  if (process)
    process->stop();
}

std::string plugin_request(const ingest_item& item, int64_t received_at) {
  auto [type, info] = strfry_source(item);
  std::string out = R"({"type":"new","event":)";
  if (item.data.json.empty())
    nostr::append_json(out, item.data.ev);
  else
    out += item.data.json;
  out += R"(,"receivedAt":)";
  out += std::to_string(received_at);
  out += R"(,"sourceType":)";
  nostr::append_json_string(out, type);
  out += R"(,"sourceInfo":)";
  nostr::append_json_string(out, info);
  if (!item.authed.empty()) {
    out += R"(,"authed":)";
    nostr::append_json_string(out, item.authed);
  }
  out += '}';
  return out;
}

bool parse_plugin_answer(const std::string& line, std::string& id,
                         policy_verdict& verdict) {
  boost::system::error_code ec;
  auto value = boost::json::parse(line, ec);
  if (ec || !value.is_object())
    return false;
  const auto& obj = value.get_object();
  auto id_field = obj.if_contains("id");
  auto action_field = obj.if_contains("action");
  if (!id_field || !id_field->is_string() || !action_field
      || !action_field->is_string())
    return false;
  std::string_view id_text = id_field->get_string();
  if (!is_hex64(id_text))
    return false;
  std::string_view action = action_field->get_string();
  std::string msg;
  if (auto msg_field = obj.if_contains("msg")) {
    if (msg_field->is_string())
      msg = std::string{msg_field->get_string()};
    else if (!msg_field->is_null())
      return false;
  }
  if (action == "accept") {
    verdict = {};
  } else if (action == "shadowReject") {
    verdict = {policy_action::shadow_reject, ""};
  } else if (action == "reject") {
    if (msg.empty())
      msg = "blocked: rejected by the write policy";
    else if (!has_prefix(msg))
      msg = "blocked: " + msg;
    verdict = {policy_action::reject, std::move(msg)};
  } else {
    return false;
  }
  id = std::string{id_text};
  return true;
}

plugin_host_actor::behavior_type
plugin_host(plugin_host_actor::stateful_pointer<plugin_host_state> self,
            plugin_host_config config, boost::asio::io_context* ioc) {
  self->state.config = std::move(config);
  self->state.ioc = ioc;
  self->state.next_backoff = self->state.config.backoff_base;
  start_process(self);
  return {
    [self](atom::judge, ingest_item_ptr& item) -> caf::result<policy_verdict> {
      auto& st = self->state;
      ++st.requests;
      reload_if_changed(self);
      if (!st.process) {
        ++st.fallbacks;
        return st.fallback("the plugin is restarting after: " + st.last_exit);
      }
      auto id = nostr::to_hex(item->data.ev.id);
      auto seq = st.next_seq++;
      auto promise = self->make_response_promise<policy_verdict>();
      st.waiting_by_id[id].push_back({seq, promise});
      st.id_by_seq.emplace(seq, id);
      self->delayed_send(self, st.config.timeout, atom::timeout_v, seq);
      st.process->send_line(plugin_request(*item, unix_now()));
      return promise;
    },
    [self](atom::plugin_line, uint64_t generation, const std::string& line) {
      if (generation == self->state.generation)
        on_line(self, line);
    },
    [self](atom::closed, uint64_t generation, const std::string& reason) {
      if (generation == self->state.generation)
        on_failure(self, reason.empty() ? "it ended" : reason);
    },
    [self](atom::timeout, uint64_t seq) {
      auto& st = self->state;
      auto s = st.id_by_seq.find(seq);
      if (s == st.id_by_seq.end())
        return; // answered in time
      auto id = std::move(s->second);
      st.id_by_seq.erase(s);
      auto& queue = st.waiting_by_id[id];
      auto w = std::find_if(queue.begin(), queue.end(),
                            [seq](const auto& x) { return x.seq == seq; });
      if (w != queue.end()) {
        ++st.timeouts;
        ++st.fallbacks;
        log::warn("{}: plugin {} did not answer about {} within {} ms",
                  self->name(), st.config.command, id,
                  st.config.timeout.count());
        w->promise.deliver(st.fallback("timeout after "
                                       + std::to_string(st.config.timeout.count())
                                       + " ms"));
        queue.erase(w);
      }
      if (queue.empty())
        st.waiting_by_id.erase(id);
    },
    [self](atom::restart) {
      auto& st = self->state;
      st.restart_scheduled = false;
      if (!st.process)
        start_process(self);
    },
    [self](atom::get, atom::status) {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "command", st.config.command);
      caf::put(result, "running", st.process != nullptr);
      if (st.process)
        caf::put(result, "pid", static_cast<int64_t>(st.process->pid()));
      caf::put(result, "waiting", static_cast<int64_t>(st.id_by_seq.size()));
      caf::put(result, "requests", static_cast<int64_t>(st.requests));
      caf::put(result, "accepted", static_cast<int64_t>(st.accepted));
      caf::put(result, "rejected", static_cast<int64_t>(st.rejected));
      caf::put(result, "shadowed", static_cast<int64_t>(st.shadowed));
      caf::put(result, "timeouts", static_cast<int64_t>(st.timeouts));
      caf::put(result, "garbage", static_cast<int64_t>(st.garbage));
      caf::put(result, "fallbacks", static_cast<int64_t>(st.fallbacks));
      caf::put(result, "restarts", static_cast<int64_t>(st.restarts));
      caf::put(result, "reloads", static_cast<int64_t>(st.reloads));
      if (!st.last_exit.empty())
        caf::put(result, "last_exit", st.last_exit);
      return result;
    },
  };
}

} // namespace ferry
