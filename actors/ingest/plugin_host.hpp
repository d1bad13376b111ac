#pragma once

#include "actors/ingest/plugin_process.hpp"
#include "messages/policy.hpp"

#include <caf/typed_response_promise.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace ferry {

/// How the PLUGIN HOST runs its plugin.
struct plugin_host_config {
  /// The plugin's command (strfry's `writePolicy.plugin`).
  std::string command;
  /// How long one event waits for its answer.
  std::chrono::milliseconds timeout{2000};
  /// What a timeout, a dead plugin or a garbage answer means.
  policy_action fallback = policy_action::reject;
  /// The first restart after a death waits this long, each further one
  /// twice as long, up to `backoff_cap`.
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_cap{30000};
  /// A plugin that ran this long before it died restarts after
  /// `backoff_base` again.
  std::chrono::milliseconds stable_after{30000};
  /// The plugin file's mtime is looked at most this often.
  std::chrono::milliseconds mtime_check{1000};
  /// Called once the plugin restarted because its file changed: what the
  /// old script refused is not the new one's to keep (the ingest subsystem
  /// points it at `follow_changed_plugin`).
  std::function<void()> script_changed;
};

struct plugin_host_state {
  /// One request waiting for the plugin's answer.
  struct waiting {
    uint64_t seq;
    caf::typed_response_promise<policy_verdict> promise;
  };

  plugin_host_config config;
  boost::asio::io_context* ioc = nullptr;
  std::shared_ptr<plugin_process> process;
  /// Numbers the processes, so lines and exits of an old one are ignored.
  uint64_t generation = 0;
  /// Waiting requests by event id (hex), oldest first: the same event may
  /// be asked about twice at once.
  std::unordered_map<std::string, std::deque<waiting>> waiting_by_id;
  /// The event id of each waiting request, for its timeout.
  std::unordered_map<uint64_t, std::string> id_by_seq;
  uint64_t next_seq = 1;
  std::chrono::steady_clock::time_point started_at;
  std::chrono::milliseconds next_backoff{0};
  bool restart_scheduled = false;
  /// The plugin file as last started (only for a command without spaces).
  std::filesystem::file_time_type mtime{};
  std::chrono::steady_clock::time_point mtime_checked_at;
  std::string last_exit;
  // counters
  uint64_t requests = 0;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t shadowed = 0;
  uint64_t timeouts = 0;
  uint64_t garbage = 0;
  uint64_t fallbacks = 0;
  uint64_t restarts = 0;
  uint64_t reloads = 0;

  /// The verdict for an event the plugin could not judge.
  policy_verdict fallback(const std::string& why) const;

  /// Answers every waiting request with the fallback.
  void fail_waiting(const std::string& why);

  /// Answers the waiting requests with the fallback, stops the plugin.
  ~plugin_host_state();

  static inline constexpr const char* name = "policy-plugin";
};

/// The request line strfry sends its plugins for `item` (type "new").
std::string plugin_request(const ingest_item& item, int64_t received_at);

/// Reads one answer line: the event id (hex), the verdict. False when the
/// line is not a valid answer.
bool parse_plugin_answer(const std::string& line, std::string& id,
                         policy_verdict& verdict);

/// The PLUGIN HOST: runs `config.command` as a strfry write-policy plugin
/// with its pipes on `ioc`. Answers every request: with the plugin's
/// verdict, or with the fallback when the plugin is down, too slow or
/// talks garbage.
plugin_host_actor::behavior_type
plugin_host(plugin_host_actor::stateful_pointer<plugin_host_state> self,
            plugin_host_config config, boost::asio::io_context* ioc);

} // namespace ferry
