#include "app/commands.hpp"
#include "app/console_federation.hpp"
#include "app/console_link.hpp"
#include "app/console_terminal.hpp"
#include "app/console_view.hpp"
#include "messages/clock.hpp"
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

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <iostream>
#include <sstream>
#include <vector>

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

/// Exit statuses of `ferry console`, as --help documents them.
constexpr int exit_ok = 0;
constexpr int exit_node_error = 1;
constexpr int exit_usage = 2;

void complain(const std::string& text) {
  std::fprintf(stderr, "ferry console: %s\n", text.c_str());
}

/// Renders a JSON answer of the node for people, given the current time.
using json_renderer
  = std::function<std::string(const boost::json::value&, int64_t)>;

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
  /// @returns why that failed (empty on success) and whether the node was
  ///          out of reach rather than refusing.
  answer<bool> ensure_login() {
    answer<bool> result;
    if (inspector_) {
      result.value = true;
      return result;
    }
    auto reply = login(self_, where_, secret_);
    if (!reply.value) {
      result.problem = reply.problem;
      result.unreachable = reply.unreachable;
      return result;
    }
    inspector_ = std::move(reply.value);
    result.value = true;
    return result;
  }

  /// Runs one command line, printing its result (stdout) or error (stderr).
  /// @returns exit_ok, exit_node_error, or exit_usage for an unknown command
  ///          or wrong arguments.
  int execute(const std::vector<std::string>& words);

  /// Asks the inspector; the reply, or why there is none.
  template <class T, class... Ts>
  answer<T> ask(caf::timespan timeout, Ts&&... xs) {
    answer<T> result;
    if (auto login = ensure_login(); !login.value) {
      result.problem = login.problem;
      return result;
    }
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

  /// Prints a JSON answer of the node: with --json as JSON with ISO times,
  /// else through `render` (verbatim when it is not JSON).
  /// @returns exit_ok, or exit_node_error with the problem on stderr.
  int show(const answer<std::string>& reply, const json_renderer& render) {
    if (!reply.value)
      return fail(reply.problem);
    boost::json::error_code ec;
    auto value = boost::json::parse(*reply.value, ec);
    if (ec)
      std::printf("%s\n", reply.value->c_str());
    else if (json_)
      print_json(console::with_iso_times(value));
    else
      std::fputs(render(value, unix_now()).c_str(), stdout);
    return exit_ok;
  }

  /// Prints a typed answer: with --json through `to_json`, else `render`.
  template <class T, class Render>
  int show_typed(const answer<T>& reply, Render render) {
    if (!reply.value)
      return fail(reply.problem);
    if (json_)
      print_json(console::to_json(*reply.value));
    else
      std::fputs(render(*reply.value).c_str(), stdout);
    return exit_ok;
  }

  /// Prints the one-line outcome of an action on actor `name`.
  int show_outcome(const std::string& command, const std::string& name,
                   const answer<std::string>& reply) {
    if (!reply.value)
      return fail(reply.problem);
    if (json_)
      print_json(boost::json::object{
        {"command", command}, {"actor", name}, {"outcome", *reply.value}});
    else
      std::printf("%s\n", reply.value->c_str());
    return exit_ok;
  }

  /// The `id` field of every object of a JSON array answer; empty when the
  /// node does not answer.
  template <class... Ts>
  std::vector<std::string> ids_of(Ts&&... xs) {
    std::vector<std::string> ids;
    auto reply = ask<std::string>(completion_timeout, std::forward<Ts>(xs)...);
    if (!reply.value)
      return ids;
    boost::json::error_code ec;
    auto items = boost::json::parse(*reply.value, ec);
    if (ec || !items.is_array())
      return ids;
    for (auto& item : items.as_array())
      if (auto id = item.is_object() ? item.as_object().if_contains("id")
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

  /// The full-screen view of health, actors, sync lag and stats, redrawn
  /// every second until q, Ctrl-C or a signal ends it; outlives a restart
  /// of the node.
  int watch();

private:
  int fail(const std::string& problem) {
    complain(problem);
    return exit_node_error;
  }

  void print_json(const boost::json::value& x) {
    std::printf("%s\n", boost::json::serialize(x).c_str());
  }

  caf::scoped_actor self_;
  endpoint where_;
  std::string secret_;
  /// Empty until logged in, and again once the node stops answering.
  std::optional<inspector_actor> inspector_;
  bool json_;
};

// -- the command table --------------------------------------------------------

/// What a command's one argument names; completion offers the node's
/// current ones.
enum class argument {
  none,
  actor,
  server,
  relay,
  /// Any text (a repository address).
  text,
  /// Any text, or nothing (a refused events' source).
  optional_text,
  /// Two or three words, handed on joined by single spaces (a pull's peer,
  /// collection and strategy).
  two_or_three_words,
};

/// One console command: its words for `help` and `--help`, and what it does
/// with its argument ("" when it takes none).
struct console_command {
  const char* name;
  /// The argument as help shows it: "NAME", "ID", "[SOURCE]", or "".
  const char* argument_text;
  /// One line, or several separated by '\n'.
  const char* help;
  argument takes;
  std::function<int(session&, const std::string&)> run;
};

std::string help_text();

/// A command whose answer is a JSON text from the node.
template <class Ask>
std::function<int(session&, const std::string&)>
json_command(Ask ask, json_renderer render) {
  return [ask, render](session& s, const std::string& arg) {
    return s.show(ask(s, arg), render);
  };
}

/// A `render_json` that ignores nothing: every JSON answer without a
/// table of its own.
std::string render_any(const boost::json::value& x, int64_t now) {
  return console::render_json(x, now);
}

/// A federation command: the FEDERATION MANAGER's answer through `render`.
std::function<int(session&, const std::string&)>
federation_command(const std::string& command, json_renderer render) {
  return json_command([command](session& s, const std::string& name) {
    return console::federation_text(s.ask<federation_reply>(
      request_timeout, console::federation_request(command, name)));
  }, std::move(render));
}

/// `pull NAME COLLECTION [STRATEGY]`: waits for the whole pull.
std::function<int(session&, const std::string&)> federation_pull() {
  return json_command(
    [](session& s, const std::string& words) {
      return console::federation_text(s.ask<federation_reply>(
        console::pull_timeout, console::pull_request_call(words)));
    },
    [](const boost::json::value& x, int64_t) {
      return console::render_pull(x);
    });
}

/// A federation command that changes a peer: its one-line outcome.
std::function<int(session&, const std::string&)>
federation_change(const std::string& command) {
  return federation_command(command,
                            [command](const boost::json::value& x, int64_t) {
                              return console::render_peer_change(command, x);
                            });
}

/// Every command of the console, in the order `help` lists them. A new
/// command is one more row here.
const std::vector<console_command>& commands() {
  using t = std::chrono::seconds;
  static const std::vector<console_command> table = {
    {"actors", "", "the actor tree: kind, state, mailbox, restarts, uptime, "
                   "last error",
     argument::none,
     [](session& s, const std::string&) {
       return s.show_typed(s.ask<std::vector<actor_info>>(
                             request_timeout, atom::get_v, atom::actors_v),
                           [](const std::vector<actor_info>& x) {
                             return console::render_actors(x);
                           });
     }},
    {"actor", "NAME", "everything about one actor, with its own status report",
     argument::actor,
     [](session& s, const std::string& name) {
       return s.show_typed(s.ask<actor_info>(request_timeout, atom::get_v,
                                             name),
                           [](const actor_info& x) {
                             return console::render_actor(x, unix_now());
                           });
     }},
    {"stats", "",
     "the figures to check first: ingest, relay, sync (state and lag per\n"
     "server), GRASP, infra and store",
     argument::none,
     [](session& s, const std::string&) {
       return s.show_typed(s.ask<status_map>(request_timeout, atom::stats_v),
                           [](const status_map& x) {
                             return console::render_stats(x, unix_now());
                           });
     }},
    {"health", "", "ok or degraded, with the reasons", argument::none,
     [](session& s, const std::string&) {
       return s.show_typed(s.ask<health_report>(request_timeout,
                                                atom::health_v),
                           [](const health_report& x) {
                             return console::render_health(x);
                           });
     }},
    {"restart", "NAME", "restart an actor now", argument::actor,
     [](session& s, const std::string& name) {
       return s.show_outcome("restart", name,
                             s.ask<std::string>(request_timeout,
                                                atom::restart_v, name));
     }},
    {"stop", "NAME", "stop an actor; it stays stopped until started",
     argument::actor,
     [](session& s, const std::string& name) {
       return s.show_outcome("stop", name,
                             s.ask<std::string>(request_timeout, atom::stop_v,
                                                name));
     }},
    {"start", "NAME", "start a stopped or failed actor", argument::actor,
     [](session& s, const std::string& name) {
       return s.show_outcome("start", name,
                             s.ask<std::string>(request_timeout, atom::start_v,
                                                name));
     }},
    {"fault", "NAME",
     "crash an actor on purpose (needs console.fault_injection)",
     argument::actor,
     [](session& s, const std::string& name) {
       return s.show_outcome("fault", name,
                             s.ask<std::string>(request_timeout, atom::fault_v,
                                                name));
     }},
    {"servers", "", "the sync servers: URL, enabled, running, state, counters",
     argument::none,
     json_command([](session& s, const std::string&) {
       return s.ask<std::string>(request_timeout, atom::servers_v);
     }, console::render_servers)},
    {"server", "ID", "one sync server: its definition and runtime state",
     argument::server,
     json_command([](session& s, const std::string& id) {
       return s.ask<std::string>(request_timeout, atom::server_v, id);
     }, render_any)},
    {"sync-now", "ID", "run a catch-up of sync server ID now", argument::server,
     json_command([](session& s, const std::string& id) {
       return s.ask<std::string>(request_timeout, atom::sync_now_v, id);
     }, render_any)},
    {"sync-start", "ID", "start sync server ID's connection (and enable it)",
     argument::server,
     json_command([](session& s, const std::string& id) {
       return s.ask<std::string>(request_timeout, atom::start_v,
                                 atom::server_v, id);
     }, render_any)},
    {"sync-stop", "ID",
     "stop sync server ID's connection for this run (it stays\n"
     "enabled; PUT enabled=false to keep it off)\n"
     "(start/stop NAME act on actors, never on sync servers)",
     argument::server,
     json_command([](session& s, const std::string& id) {
       return s.ask<std::string>(request_timeout, atom::stop_v, atom::server_v,
                                 id);
     }, render_any)},
    {"repos", "", "GRASP repositories synced here: relays, confirmed on,\n"
                  "pending on",
     argument::none,
     json_command([](session& s, const std::string&) {
       return s.ask<std::string>(request_timeout, atom::repos_v);
     }, [](const boost::json::value& x, int64_t) {
       return console::render_repos(x);
     })},
    {"repo", "ADDRESS",
     "one repository (30617:PUBKEY:D): its relays, where it is\n"
     "confirmed and pending, its root events",
     argument::text,
     json_command([](session& s, const std::string& address) {
       return s.ask<std::string>(request_timeout, atom::repo_v, address);
     }, render_any)},
    {"relays", "", "the hosted relays: subdomain, schema, status, synced,\n"
                   "failed attempts, sync error",
     argument::none,
     json_command([](session& s, const std::string&) {
       return s.ask<std::string>(request_timeout, atom::relays_v);
     }, [](const boost::json::value& x, int64_t) {
       return console::render_relays(x);
     })},
    {"relay", "ID", "one hosted relay with its activity log", argument::relay,
     json_command([](session& s, const std::string& id) {
       return s.ask<std::string>(request_timeout, atom::relay_v, id);
     }, render_any)},
    {"relay-members", "ID",
     "the members of hosted relay ID, from the management API",
     argument::relay,
     // The members come from the management API: it gets its own time.
     json_command([](session& s, const std::string& id) {
       return s.ask<std::string>(t{2 * request_timeout}, atom::members_v, id);
     }, render_any)},
    {"cluster", "",
     "the cluster: members (state, incarnation, heartbeat age,\n"
     "relay URL), which member owns which sync server and pushes\n"
     "which hosted relay, refusals",
     argument::none,
     json_command([](session& s, const std::string&) {
       return s.ask<std::string>(request_timeout, atom::get_v,
                                 atom::members_v);
     }, [](const boost::json::value& x, int64_t) {
       return console::render_cluster(x);
     })},
    {"cluster-leave", "",
     "hand this member's relays to the others and leave the\n"
     "cluster (it keeps serving its store; restart it to rejoin)",
     argument::none,
     // Each peer has a link's connect timeout to take the goodbye, then
     // the hand-over up to cluster.handover_timeout_ms (the node gives the
     // whole leave 40 s).
     json_command([](session& s, const std::string&) {
       return s.ask<std::string>(t{9 * request_timeout}, atom::leave_v);
     }, render_any)},
    {"peers", "", "federation peers: direction, status, mode, pinned key,\n"
                  "last seen, last handshake",
     argument::none, federation_command("peers", console::render_peers)},
    {"peer", "NAME", "one federation peer: its definition, link and pin",
     argument::text, federation_command("peer", render_any)},
    {"peer-reset", "NAME",
     "clear peer NAME's pin, cursor and last_seen (accepts a\n"
     "new node key); succeeds again on a reset peer",
     argument::text, federation_change("peer-reset")},
    {"peer-pause", "NAME", "stop exchanging events with NAME, keeping its cursor",
     argument::text, federation_change("peer-pause")},
    {"peer-resume", "NAME", "exchange with NAME again, from its cursor",
     argument::text, federation_change("peer-resume")},
    {"collections", "", "our federation collections: filters, events, bytes\n"
                        "and the peers each is offered to",
     argument::none,
     federation_command("collections", console::render_collections)},
    {"pull", "NAME COLLECTION [skip|merge|overwrite]",
     "pull COLLECTION of peer NAME over NIP-77 (merge: the\n"
     "newest version wins; skip: keep ours); prints what moved",
     argument::two_or_three_words, federation_pull()},
    {"refused", "[SOURCE]",
     "the latest events refused by validation or the write\n"
     "policy (of SOURCE only, e.g. sync:ID)",
     argument::optional_text,
     json_command([](session& s, const std::string& source) {
       return s.ask<std::string>(request_timeout, atom::refused_v, source);
     }, console::render_refused)},
    {"watch", "",
     "live view of health, actors, sync lag and stats; q or\n"
     "Ctrl-C leaves it",
     argument::none, [](session& s, const std::string&) { return s.watch(); }},
    {"help", "", "this list", argument::none,
     [](session&, const std::string&) {
       std::fputs(help_text().c_str(), stdout);
       return exit_ok;
     }},
  };
  return table;
}

const console_command* find_command(const std::string& name) {
  for (auto& command : commands())
    if (name == command.name)
      return &command;
  return nullptr;
}

/// Where help's text column starts.
constexpr size_t help_column = 18;

std::string help_text() {
  std::string out = "commands:\n";
  auto add = [&out](std::string usage, const std::string& help) {
    usage = "  " + usage;
    std::istringstream lines{help};
    auto first = true;
    for (std::string line; std::getline(lines, line); first = false) {
      auto left = first ? usage : std::string{};
      if (left.size() + 2 > help_column) {
        out += left + "\n";
        left.clear();
      }
      left.resize(help_column, ' ');
      out += left + line + "\n";
    }
  };
  for (auto& command : commands()) {
    std::string usage = command.name;
    if (*command.argument_text != '\0')
      usage += std::string{" "} + command.argument_text;
    add(usage, command.help);
  }
  add("quit, exit", "leave the prompt");
  return out;
}

int session::execute(const std::vector<std::string>& words) {
  if (words.empty())
    return exit_ok;
  auto command = find_command(words[0]);
  if (command == nullptr) {
    complain("unknown command '" + words[0] + "' (try help)");
    return exit_usage;
  }
  auto fits = command->takes == argument::none
                ? words.size() == 1
                : command->takes == argument::optional_text
                    ? words.size() <= 2
                    : command->takes == argument::two_or_three_words
                        ? words.size() == 3 || words.size() == 4
                        : words.size() == 2;
  if (!fits) {
    std::string usage = command->name;
    if (*command->argument_text != '\0')
      usage += std::string{" "} + command->argument_text;
    complain("usage: " + usage);
    return exit_usage;
  }
  std::string arg;
  for (size_t i = 1; i < words.size(); ++i)
    arg += (i > 1 ? " " : "") + words[i];
  return command->run(*this, arg);
}

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
    return exit_usage;
  }
  watch_terminal term;
  if (!term.ok()) {
    complain("watch cannot set up the terminal");
    return exit_node_error;
  }
  console::watch_screen view;
  view.node = where_.text();
  for (;;) {
    auto health_reply = ask<health_report>(watch_timeout, atom::health_v);
    auto actors_reply = ask<std::vector<actor_info>>(
      watch_timeout, atom::get_v, atom::actors_v);
    auto stats_reply = ask<status_map>(watch_timeout, atom::stats_v);
    // On a failed refresh the last good data stays, under the problem.
    if (health_reply.value)
      view.health = std::move(*health_reply.value);
    if (actors_reply.value)
      view.actors = std::move(*actors_reply.value);
    if (stats_reply.value)
      view.stats = std::move(*stats_reply.value);
    view.problem = !health_reply.problem.empty()   ? health_reply.problem
                   : !actors_reply.problem.empty() ? actors_reply.problem
                                                   : stats_reply.problem;
    view.clock = wall_clock();
    view.now = unix_now();
    auto [width, height] = term.size();
    auto screen = console::render_watch(view, width, height);
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
  candidates.clear();
  if (before.empty()) {
    for (auto& command : commands())
      candidates.emplace_back(command.name);
    candidates.insert(candidates.end(), {"quit", "exit"});
  } else if (auto command = find_command(before[0]);
             command != nullptr && before.size() == 1) {
    if (command->takes == argument::actor)
      candidates = completing->actor_names();
    else if (command->takes == argument::server)
      candidates = completing->ids_of(atom::servers_v);
    else if (command->takes == argument::relay)
      candidates = completing->ids_of(atom::relays_v);
  }
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
/// @returns 0, or the worst exit status of the piped commands.
int prompt(session& s) {
  if (!::isatty(STDIN_FILENO)) {
    int status = 0;
    for (std::string line; std::getline(std::cin, line);) {
      auto words = split_words(line);
      if (!words.empty() && (words[0] == "quit" || words[0] == "exit"))
        break;
      status = std::max(status, s.execute(words));
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

std::string console_address(const config::console_config& console) {
  auto host = console.address;
  if (host == "0.0.0.0" || host.empty())
    host = "127.0.0.1";
  else if (host == "::")
    host = "::1";
  endpoint where{host, console.port};
  return where.text();
}

std::string console_help() {
  return help_text()
         + "\nexit status: 0 ok, 1 the node failed, refused or cannot be "
           "reached,\n2 usage (unknown command or option, wrong arguments)\n";
}

int run_console(const console_options& options) {
  auto where = parse_endpoint(options.node);
  if (!where) {
    complain("--node " + options.node
             + ": expected HOST:PORT, e.g. 127.0.0.1:7449");
    return exit_usage;
  }
  auto& command = options.command;
  // Help needs no node, so it works while the node is down; a wrong
  // command is a usage error before any connection.
  if (!command.empty()) {
    auto known = find_command(command[0]);
    if (known == nullptr) {
      complain("unknown command '" + command[0] + "' (try help)");
      return exit_usage;
    }
    if (command.size() == 1 && command[0] == "help") {
      std::fputs(help_text().c_str(), stdout);
      return exit_ok;
    }
  }
  caf::actor_system_config cfg;
  add_message_types(cfg);
  cfg.load<caf::io::middleman>();
  // The console's output is its own; CAF must not add lines to it.
  cfg.set("logger.verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  session s{sys, *where, options.secret, options.json};
  if (auto login = s.ensure_login(); !login.value) {
    auto problem = login.problem;
    if (login.unreachable)
      problem += "; " + options.node_origin;
    complain(problem);
    return exit_node_error;
  }
  if (command.empty())
    return prompt(s);
  auto status = s.execute(command);
  std::fflush(stdout);
  return status;
}

} // namespace ferry::app
