#include "app/commands.hpp"
#include "app/console_link.hpp"
#include "app/console_terminal.hpp"
#include "app/console_view.hpp"
#include "messages/error.hpp"
#include "messages/inspector.hpp"
#include "messages/type_ids.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <readline/history.h>
#include <readline/readline.h>

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <sstream>

namespace ferry::app {

namespace {

using namespace std::chrono_literals;
using console::answer;
using console::describe;
using console::endpoint;
using console::login;
using console::parse_endpoint;
using console::request_timeout;
using console::tcp_failure;
using console::signal_pipe;
using console::watch_terminal;

/// `watch` asks every second, so it gives up sooner to stay responsive.
constexpr auto watch_timeout = std::chrono::seconds{2};

/// Completion asks while the user waits at the prompt.
constexpr auto completion_timeout = std::chrono::seconds{2};

constexpr const char* help_text = R"(commands:
  actors          the actor tree: kind, state, mailbox, restarts, uptime, last error
  actor NAME      everything about one actor, with its own status report
  stats           node-wide counters
  health          ok or degraded, with the reasons
  restart NAME    restart an actor now
  stop NAME       stop an actor; it stays stopped until started
  start NAME      start a stopped or failed actor
  fault NAME      crash an actor on purpose (needs console.fault_injection)
  servers         the sync servers: URL, enabled, running, state, counters
  server ID       one sync server: its definition and runtime state
  sync-now ID     run a catch-up of sync server ID now
  sync-start ID   start sync server ID's connection (and enable it)
  sync-stop ID    stop sync server ID's connection for this run (it stays
                  enabled; PUT enabled=false to keep it off)
                  (start/stop NAME act on actors, never on sync servers)
  repos           GRASP repositories synced here: relays, confirmed on, pending on
  repo ADDRESS    one repository (30617:PUBKEY:D): its relays, where it is
                  confirmed and pending, its root events
  relays          the hosted relays: subdomain, schema, status, synced,
                  failed attempts, sync error
  relay ID        one hosted relay with its activity log
  relay-members ID  the members of hosted relay ID, from the management API
  cluster         the cluster: members (state, incarnation, heartbeat age,
                  relay URL), which member owns which sync server, refusals
  refused [SOURCE]  the latest events refused by validation or the write
                  policy (of SOURCE only, e.g. sync:ID)
  watch           live view of actors and stats; q or Ctrl-C leaves it
  help            this list
  quit, exit      leave the prompt
)";

/// Every command word, for TAB completion.
const std::vector<std::string> command_words
  = {"actors",  "actor",    "stats",      "health",    "restart",
     "stop",    "start",    "fault",      "servers",   "server",
     "sync-now", "sync-start", "sync-stop", "repos",   "repo",
     "relays",  "relay",    "relay-members", "cluster", "refused", "watch", "help",
     "quit",    "exit"};

/// Commands whose one argument is a hosted relay id.
bool takes_relay(const std::string& command) {
  return command == "relay" || command == "relay-members";
}

/// Commands whose one argument is a sync server id.
bool takes_server(const std::string& command) {
  return command == "server" || command == "sync-now"
         || command == "sync-start" || command == "sync-stop";
}

/// Commands whose one argument is an actor name.
bool takes_actor(const std::string& command) {
  return command == "actor" || command == "restart" || command == "stop"
         || command == "start" || command == "fault";
}

void complain(const std::string& text) {
  std::fprintf(stderr, "ferry console: %s\n", text.c_str());
}

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream in{line};
  std::vector<std::string> words;
  for (std::string word; in >> word;)
    words.push_back(std::move(word));
  return words;
}

/// A console logged in to a node: the node's INSPECTOR and the actor we ask
/// it with. When the node stops answering, the next question logs in again,
/// so the prompt and `watch` outlive a restart of the node.
class session {
public:
  session(caf::actor_system& sys, endpoint where, std::string secret,
          bool json)
    : self_(sys),
      where_(std::move(where)),
      secret_(std::move(secret)),
      json_(json) {
    // nop
  }

  /// Logs in unless logged in already.
  /// @returns why that failed, empty on success.
  std::string ensure_login() {
    if (inspector_)
      return {};
    auto reply = login(self_, where_, secret_);
    if (!reply.value)
      return reply.problem;
    inspector_ = std::move(reply.value);
    return {};
  }

  /// Runs one command line, printing its result (stdout) or error (stderr).
  /// @returns 0 on success, 1 on failure.
  int execute(const std::vector<std::string>& words) {
    if (words.empty())
      return 0;
    auto& command = words[0];
    if (command == "help") {
      std::fputs(help_text, stdout);
      return 0;
    }
    if (command == "actors" || command == "stats" || command == "health"
        || command == "watch")
      return words.size() == 1 ? run_plain(command) : usage(command, "");
    if (command == "servers")
      return words.size() == 1 ? run_servers() : usage(command, "");
    if (command == "repos")
      return words.size() == 1 ? run_repos() : usage(command, "");
    if (command == "repo")
      return words.size() == 2 ? run_repo(words[1]) : usage(command, " ADDRESS");
    if (command == "relays")
      return words.size() == 1 ? run_relays() : usage(command, "");
    if (command == "cluster")
      return words.size() == 1 ? run_cluster() : usage(command, "");
    if (command == "refused")
      return words.size() <= 2 ? run_refused(words.size() == 2 ? words[1] : "")
                               : usage(command, " [SOURCE]");
    if (takes_relay(command))
      return words.size() == 2 ? run_on_relay(command, words[1])
                               : usage(command, " ID");
    if (takes_server(command))
      return words.size() == 2 ? run_on_server(command, words[1])
                               : usage(command, " ID");
    if (takes_actor(command))
      return words.size() == 2 ? run_on_actor(command, words[1])
                               : usage(command, " NAME");
    complain("unknown command '" + command + "' (try help)");
    return 1;
  }

  /// The ids of every sync server; empty when the node does not answer.
  std::vector<std::string> server_ids() {
    std::vector<std::string> ids;
    auto reply = ask<std::string>(completion_timeout, atom::servers_v);
    if (!reply.value)
      return ids;
    boost::json::error_code ec;
    auto servers = boost::json::parse(*reply.value, ec);
    if (ec || !servers.is_array())
      return ids;
    for (auto& server : servers.as_array())
      if (auto id = server.is_object() ? server.as_object().if_contains("id")
                                       : nullptr;
          id && id->is_string())
        ids.emplace_back(id->as_string());
    return ids;
  }

  /// The ids of every hosted relay; empty when the node does not answer.
  std::vector<std::string> relay_ids() {
    std::vector<std::string> ids;
    auto reply = ask<std::string>(completion_timeout, atom::relays_v);
    if (!reply.value)
      return ids;
    boost::json::error_code ec;
    auto relays = boost::json::parse(*reply.value, ec);
    if (ec || !relays.is_array())
      return ids;
    for (auto& relay : relays.as_array())
      if (auto id = relay.is_object() ? relay.as_object().if_contains("id")
                                      : nullptr;
          id && id->is_string())
        ids.emplace_back(id->as_string());
    return ids;
  }

  /// The names of every actor of the node; empty when it does not answer.
  std::vector<std::string> actor_names() {
    std::vector<std::string> names;
    if (auto actors = ask<std::vector<actor_info>>(completion_timeout,
                                                   atom::get_v,
                                                   atom::actors_v);
        actors.value)
      for (auto& info : *actors.value)
        names.push_back(info.name);
    return names;
  }

private:
  template <class T, class... Ts>
  answer<T> ask(caf::timespan timeout, Ts&&... xs) {
    answer<T> result;
    if (result.problem = ensure_login(); !result.problem.empty())
      return result;
    caf::error failure;
    self_->request(*inspector_, timeout, std::forward<Ts>(xs)...)
      .receive([&](T& value) { result.value = std::move(value); },
               [&](caf::error& err) { failure = std::move(err); });
    if (!failure)
      return result;
    result.problem = describe(failure);
    if (failure == caf::sec::request_timeout
        || failure == caf::sec::request_receiver_down) {
      // CAF 0.17 often does not notice a closed connection and just lets
      // requests time out; a node that is gone shows in a plain connect.
      inspector_.reset();
        if (auto cause = tcp_failure(where_); !cause.empty())
        result.problem = "lost the node at " + where_.text() + " (" + cause
                         + ")";
    }
    return result;
  }

  int usage(const std::string& command, const char* args) {
    complain("usage: " + command + args);
    return 1;
  }

  void print_json(const boost::json::value& x) {
    std::printf("%s\n", boost::json::serialize(x).c_str());
  }

  template <class T>
  int report(const answer<T>& reply) {
    if (reply.value)
      return 0;
    complain(reply.problem);
    return 1;
  }

  int run_plain(const std::string& command) {
    if (command == "watch")
      return watch();
    if (command == "actors") {
      auto reply = ask<std::vector<actor_info>>(request_timeout, atom::get_v,
                                                atom::actors_v);
      if (reply.value) {
        if (json_)
          print_json(console::to_json(*reply.value));
        else
          std::fputs(console::render_actors(*reply.value).c_str(), stdout);
      }
      return report(reply);
    }
    if (command == "stats") {
      auto reply = ask<status_map>(request_timeout, atom::stats_v);
      if (reply.value) {
        if (json_)
          print_json(console::to_json(*reply.value));
        else
          std::fputs(console::render_status(*reply.value).c_str(), stdout);
      }
      return report(reply);
    }
    auto reply = ask<health_report>(request_timeout, atom::health_v);
    if (reply.value) {
      if (json_)
        print_json(console::to_json(*reply.value));
      else
        std::fputs(console::render_health(*reply.value).c_str(), stdout);
    }
    return report(reply);
  }

  int run_on_actor(const std::string& command, const std::string& name) {
    if (command == "actor") {
      auto reply = ask<actor_info>(request_timeout, atom::get_v, name);
      if (reply.value) {
        if (json_)
          print_json(console::to_json(*reply.value));
        else
          std::fputs(console::render_actor(*reply.value).c_str(), stdout);
      }
      return report(reply);
    }
    answer<std::string> reply;
    if (command == "restart")
      reply = ask<std::string>(request_timeout, atom::restart_v, name);
    else if (command == "stop")
      reply = ask<std::string>(request_timeout, atom::stop_v, name);
    else if (command == "start")
      reply = ask<std::string>(request_timeout, atom::start_v, name);
    else
      reply = ask<std::string>(request_timeout, atom::fault_v, name);
    if (reply.value) {
      if (json_)
        print_json(boost::json::object{
          {"command", command}, {"actor", name}, {"outcome", *reply.value}});
      else
        std::printf("%s\n", reply.value->c_str());
    }
    return report(reply);
  }

  /// Prints a JSON answer of the sync manager: as it is with --json, else
  /// through `render` (or verbatim when it is not JSON).
  template <class Render>
  void print_sync_answer(const std::string& text, Render render) {
    if (json_) {
      std::printf("%s\n", text.c_str());
      return;
    }
    boost::json::error_code ec;
    auto value = boost::json::parse(text, ec);
    if (ec)
      std::printf("%s\n", text.c_str());
    else
      std::fputs(render(value).c_str(), stdout);
  }

  int run_servers() {
    auto reply = ask<std::string>(request_timeout, atom::servers_v);
    if (reply.value)
      print_sync_answer(*reply.value, [](const boost::json::value& x) {
        return console::render_servers(x);
      });
    return report(reply);
  }

  int run_repos() {
    auto reply = ask<std::string>(request_timeout, atom::repos_v);
    if (reply.value)
      print_sync_answer(*reply.value, [](const boost::json::value& x) {
        return console::render_repos(x);
      });
    return report(reply);
  }

  int run_repo(const std::string& address) {
    auto reply = ask<std::string>(request_timeout, atom::repo_v, address);
    if (reply.value)
      print_sync_answer(*reply.value, [](const boost::json::value& x) {
        return console::render_json(x);
      });
    return report(reply);
  }

  int run_on_server(const std::string& command, const std::string& id) {
    answer<std::string> reply;
    if (command == "server")
      reply = ask<std::string>(request_timeout, atom::server_v, id);
    else if (command == "sync-now")
      reply = ask<std::string>(request_timeout, atom::sync_now_v, id);
    else if (command == "sync-start")
      reply = ask<std::string>(request_timeout, atom::start_v, atom::server_v,
                               id);
    else
      reply = ask<std::string>(request_timeout, atom::stop_v, atom::server_v,
                               id);
    if (reply.value)
      print_sync_answer(*reply.value, [](const boost::json::value& x) {
        return console::render_json(x);
      });
    return report(reply);
  }

  int run_relays() {
    auto reply = ask<std::string>(request_timeout, atom::relays_v);
    if (reply.value)
      print_sync_answer(*reply.value, [](const boost::json::value& x) {
        return console::render_relays(x);
      });
    return report(reply);
  }

  int run_cluster() {
    auto reply
      = ask<std::string>(request_timeout, atom::get_v, atom::members_v);
    if (reply.value)
      print_sync_answer(*reply.value, [](const boost::json::value& x) {
        return console::render_cluster(x);
      });
    return report(reply);
  }

  int run_refused(const std::string& source) {
    auto reply = ask<std::string>(request_timeout, atom::refused_v, source);
    if (reply.value)
      print_sync_answer(*reply.value, [](const boost::json::value& x) {
        return console::render_refused(x);
      });
    return report(reply);
  }

  int run_on_relay(const std::string& command, const std::string& id) {
    // The members come from the management API: give it its own time.
    auto reply = command == "relay"
                   ? ask<std::string>(request_timeout, atom::relay_v, id)
                   : ask<std::string>(2 * request_timeout, atom::members_v,
                                      id);
    if (reply.value)
      print_sync_answer(*reply.value, [](const boost::json::value& x) {
        return console::render_json(x);
      });
    return report(reply);
  }

  /// The full-screen view of `actors` and `stats`, redrawn every second
  /// until q, Ctrl-C or a signal ends it; outlives a restart of the node.
  int watch();

  caf::scoped_actor self_;
  endpoint where_;
  std::string secret_;
  /// Empty until logged in, and again once the node stops answering.
  std::optional<inspector_actor> inspector_;
  bool json_;
};

// -- watch --------------------------------------------------------------------

/// The local time as HH:MM:SS, for the header of `watch`.
std::string wall_clock() {
  auto now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &local);
  return buf;
}

int session::watch() {
  if (!::isatty(STDIN_FILENO) || !::isatty(STDOUT_FILENO)) {
    complain("watch needs a terminal");
    return 1;
  }
  watch_terminal term;
  if (!term.ok()) {
    complain("watch cannot set up the terminal");
    return 1;
  }
  std::vector<actor_info> actors;
  status_map stats;
  for (;;) {
    auto actors_reply = ask<std::vector<actor_info>>(
      watch_timeout, atom::get_v, atom::actors_v);
    auto stats_reply = ask<status_map>(watch_timeout, atom::stats_v);
    // On a failed refresh the last good data stays, under the problem.
    if (actors_reply.value)
      actors = std::move(*actors_reply.value);
    if (stats_reply.value)
      stats = std::move(*stats_reply.value);
    auto problem = !actors_reply.problem.empty() ? actors_reply.problem
                                                  : stats_reply.problem;
    auto [width, height] = term.size();
    auto screen = console::render_watch(where_.text(), wall_clock(), actors,
                                        stats, problem, width, height);
    // Home, then each line cleared to its end and the rest of the screen
    // cleared: a redraw without the flicker of a full clear.
    std::string frame = "\x1b[H";
    std::istringstream lines{screen};
    for (std::string line; std::getline(lines, line);)
      frame += line + "\x1b[K\n";
    frame.pop_back();
    frame += "\x1b[J";
    std::fwrite(frame.data(), 1, frame.size(), stdout);
    std::fflush(stdout);
    // Wait out the second, leaving early for a key or a signal.
    auto next = std::chrono::steady_clock::now() + 1s;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        next - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        break;
      pollfd fds[] = {{STDIN_FILENO, POLLIN, 0},
                      {term.signals().fd(), POLLIN, 0}};
      if (::poll(fds, 2, static_cast<int>(left.count())) < 0) {
        if (errno == EINTR)
          continue;
        return 0;
      }
      if (fds[1].revents & POLLIN) {
        if (term.signals().next() != SIGWINCH)
          return 0;
        break;
      }
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        char keys[64];
        auto n = ::read(STDIN_FILENO, keys, sizeof(keys));
        // End of input leaves as well: nothing could ever press q.
        if (n <= 0)
          return 0;
        for (ssize_t i = 0; i < n; ++i)
          if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3)
            return 0;
      }
    }
  }
}

// -- prompt -------------------------------------------------------------------

/// The session and candidates readline's C callbacks complete from.
session* completing = nullptr;
std::vector<std::string> candidates;

/// readline's generator: the next candidate that starts with `text`, as a
/// malloc'd string readline frees; `state` is 0 on the first call.
char* next_candidate(const char* text, int state) {
  static size_t index = 0;
  if (state == 0)
    index = 0;
  auto prefix_length = std::strlen(text);
  while (index < candidates.size()) {
    auto& candidate = candidates[index++];
    if (candidate.compare(0, prefix_length, text) == 0)
      return ::strdup(candidate.c_str());
  }
  return nullptr;
}

/// Completes a command word first, then an actor name for the commands that
/// take one, asking the node for its current actors.
char** complete(const char* text, int start, int) {
  // Never fall back to file names: nothing here takes a path.
  rl_attempted_completion_over = 1;
  auto before = split_words(std::string(rl_line_buffer, start));
  if (before.empty())
    candidates = command_words;
  else if (before.size() == 1 && takes_actor(before[0]))
    candidates = completing->actor_names();
  else if (before.size() == 1 && takes_server(before[0]))
    candidates = completing->server_ids();
  else if (before.size() == 1 && takes_relay(before[0]))
    candidates = completing->relay_ids();
  else
    candidates.clear();
  return rl_completion_matches(text, next_candidate);
}

/// What the prompt shows.
constexpr const char* prompt_text = "ferry> ";

/// What readline's line callback handed over since the last look: a line,
/// or nullopt for end of input.
std::optional<std::optional<std::string>> entered;

void take_line(char* raw) {
  // Until the prompt loop installs it again: the command that follows gets
  // the terminal as it was, and no new prompt appears under it.
  ::rl_callback_handler_remove();
  if (raw == nullptr) {
    entered.emplace(std::nullopt);
    return;
  }
  entered.emplace(std::string{raw});
  std::free(raw);
}

/// Where the prompt keeps its history between runs ("" without a HOME).
std::string history_file() {
  auto home = std::getenv("HOME");
  return home != nullptr && *home != '\0'
           ? std::string{home} + "/.ferry_console_history"
           : std::string{};
}

/// The `ferry> ` prompt. Without a terminal it reads commands line by line
/// with no prompt, so scripts can pipe them in.
/// @returns 0, or 1 if a piped command failed.
int prompt(session& s) {
  if (!::isatty(STDIN_FILENO)) {
    int status = 0;
    for (std::string line; std::getline(std::cin, line);) {
      auto words = split_words(line);
      if (!words.empty() && (words[0] == "quit" || words[0] == "exit"))
        break;
      if (s.execute(words) != 0)
        status = 1;
      std::fflush(stdout);
    }
    return status;
  }
  completing = &s;
  rl_readline_name = "ferry";
  rl_attempted_completion_function = complete;
  // Signals come through our pipe instead, so Ctrl-C can drop the line being
  // typed rather than end the console.
  rl_catch_signals = 0;
  rl_catch_sigwinch = 0;
  auto history = history_file();
  if (!history.empty())
    ::read_history(history.c_str());
  signal_pipe signals;
  ::rl_callback_handler_install(prompt_text, take_line);
  for (bool done = false; !done;) {
    pollfd fds[] = {{STDIN_FILENO, POLLIN, 0}, {signals.fd(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (fds[1].revents & POLLIN) {
      auto sig = signals.next();
      if (sig == SIGWINCH) {
        ::rl_resize_terminal();
      } else if (sig == SIGINT) {
        ::rl_free_line_state();
        ::rl_crlf();
        ::rl_replace_line("", 0);
        ::rl_on_new_line();
        ::rl_redisplay();
      } else {
        ::rl_crlf();
        done = true;
      }
      continue;
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP)))
      continue;
    ::rl_callback_read_char();
    if (!entered)
      continue;
    auto line = std::move(*entered);
    entered.reset();
    if (!line) {
      std::printf("\n");
      break;
    }
    auto words = split_words(*line);
    if (!words.empty()) {
      ::add_history(line->c_str());
      if (words[0] == "quit" || words[0] == "exit")
        break;
      s.execute(words);
      std::fflush(stdout);
    }
    ::rl_callback_handler_install(prompt_text, take_line);
  }
  ::rl_callback_handler_remove();
  if (!history.empty()) {
    ::write_history(history.c_str());
    ::history_truncate_file(history.c_str(), 1000);
  }
  completing = nullptr;
  return 0;
}

} // namespace

int run_console(const std::string& node, const std::string& secret, bool json,
                std::vector<std::string> command) {
  auto where = parse_endpoint(node);
  if (!where) {
    complain("--node " + node + ": expected HOST:PORT, e.g. 127.0.0.1:7449");
    return 1;
  }
  // Help needs no node, so it works while the node is down.
  if (command.size() == 1 && command[0] == "help") {
    std::fputs(help_text, stdout);
    return 0;
  }
  auto key = secret;
  if (key.empty())
    if (auto from_env = std::getenv("FERRY_CONSOLE_SECRET"))
      key = from_env;
  caf::actor_system_config cfg;
  add_message_types(cfg);
  cfg.load<caf::io::middleman>();
  // The console's output is its own; CAF must not add lines to it.
  cfg.set("logger.verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  session s{sys, *where, key, json};
  if (auto problem = s.ensure_login(); !problem.empty()) {
    complain(problem);
    return 1;
  }
  if (command.empty())
    return prompt(s);
  auto status = s.execute(command);
  std::fflush(stdout);
  return status;
}

} // namespace ferry::app
