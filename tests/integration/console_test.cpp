#include "net/simple_client.hpp"
#include "tests/fixtures/node_process.hpp"
#include "tests/integration/sync_helpers.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

/// How one `ferry console` run ended and what it printed where.
struct console_run {
  int status = -1;
  std::string out;
  std::string err;
};

/// Runs `ferry console ARGS...` with stdin at /dev/null and stdout and
/// stderr kept apart. A run that takes longer than `timeout` is killed and
/// fails the test.
console_run run_console(std::vector<std::string> args,
                        std::chrono::seconds timeout = 15s) {
  int out[2];
  int err[2];
  REQUIRE(::pipe(out) == 0);
  REQUIRE(::pipe(err) == 0);
  auto pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    for (int fd : {null, out[0], out[1], err[0], err[1]})
      ::close(fd);
    std::string binary = test::ferry_binary();
    std::string sub = "console";
    std::vector<char*> argv{binary.data(), sub.data()};
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  console_run result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<pollfd, 2> fds{{{out[0], POLLIN, 0}, {err[0], POLLIN, 0}}};
  std::array<std::string*, 2> sinks{&result.out, &result.err};
  bool timed_out = false;
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0)
      continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0)
        continue;
      char buf[4096];
      auto n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
      }
    }
  }
  for (auto& fd : fds)
    if (fd.fd >= 0)
      ::close(fd.fd);
  if (timed_out)
    ::kill(pid, SIGKILL);
  int raw = 0;
  ::waitpid(pid, &raw, 0);
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  INFO("ferry console " << Catch::Detail::stringify(args) << "\nstdout:\n"
                        << result.out << "stderr:\n"
                        << result.err);
  if (timed_out)
    FAIL("ferry console did not finish within " << timeout.count() << " s");
  return result;
}

/// A config like test::node_config's, with fault injection allowed; that
/// one already writes a [console] table, which TOML cannot reopen.
std::string console_node_config(const test::temp_dir& dir,
                                const std::string& secret) {
  auto path = dir.file("ferry.toml");
  test::write_file(path, "[relay]\nport = 0\n[admin]\nport = 0\n"
                         "token = \"console-test\"\n"
                         "[console]\nport = "
                           + std::to_string(test::free_port())
                           + "\nfault_injection = true\nsecret = \"" + secret
                           + "\"\n[store]\npath = \"" + dir.file("data")
                           + "\"\n");
  return path;
}

/// A real `ferry node` with its console gate on a free loopback port and
/// fault injection allowed.
struct console_node {
  explicit console_node(const std::string& secret = {})
    : config(console_node_config(dir, secret)),
      process({"node", "--config", config}) {
    // The relay's line comes first; waiting for it ends early when the node
    // exits instead.
    auto relay = process.wait_for_port();
    static const std::regex line{
      "console-gate listening on 127\\.0\\.0\\.1:([0-9]+)"};
    auto deadline = std::chrono::steady_clock::now() + 10s;
    std::smatch m;
    auto output = process.output();
    while (relay && !std::regex_search(output, m, line)
           && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
      output = process.output();
    }
    INFO("node output:\n" << output);
    REQUIRE(std::regex_search(output, m, line));
    node = "127.0.0.1:" + m[1].str();
  }

  /// `ferry console --node <this node> ARGS...`.
  console_run console(std::vector<std::string> args) {
    args.insert(args.begin(), {"--node", node});
    return run_console(std::move(args));
  }

  /// The actor `name` from `--json actors`.
  boost::json::object json_actor(const std::string& name) {
    auto run = console({"--json", "actors"});
    REQUIRE(run.status == 0);
    auto parsed = boost::json::parse(run.out);
    for (auto& x : parsed.as_array())
      if (x.as_object().at("name").as_string() == name)
        return x.as_object();
    FAIL("no actor " << name << " in " << run.out);
    return {};
  }

  test::temp_dir dir;
  std::string config;
  test::ferry_process process;
  /// HOST:PORT of the console gate.
  std::string node;
};

/// Sends `bytes` to the console port at `node` (HOST:PORT) as they are and
/// reads until the node closes the connection or 2 s pass.
void poke(const std::string& node, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(
    std::stoi(node.substr(node.rfind(':') + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
          == 0);
  for (size_t sent = 0; sent < bytes.size();) {
    auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent,
                    MSG_NOSIGNAL);
    if (n <= 0)
      break;
    sent += static_cast<size_t>(n);
  }
  char buf[4096];
  while (::recv(fd, buf, sizeof(buf), 0) > 0) {
    // nop: the node's side of the handshake, if any
  }
  ::close(fd);
}

/// Runs a shell command; returns its stdout.
std::string shell(const std::string& command) {
  std::string result;
  if (auto pipe = ::popen(command.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0)
      result.append(buf, n);
    ::pclose(pipe);
  }
  return result;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// A tmux server of our own (its own socket), so the test never touches a
/// user's sessions; the destructor ends it.
struct tmux_server {
  tmux_server() : socket("ferry-console-test-" + std::to_string(::getpid())) {
    // nop
  }

  ~tmux_server() {
    run("kill-server 2>/dev/null");
  }

  std::string run(const std::string& args) {
    return shell("tmux -L " + socket + " " + args);
  }

  std::string socket;
};

} // namespace

TEST_CASE("console actors prints the tree and actor prints one actor",
          "[integration][console]") {
  console_node n;
  auto actors = n.console({"actors"});
  CHECK(actors.status == 0);
  CHECK(actors.err.empty());
  CHECK(actors.out.rfind("NAME ", 0) == 0);
  CHECK(actors.out.find("LAST-ERROR") != std::string::npos);
  // The root, a subsystem's supervisor, its actors: one level each.
  CHECK(actors.out.find("\nnode ") != std::string::npos);
  CHECK(actors.out.find("\n  ingest ") != std::string::npos);
  CHECK(actors.out.find("\n    writer ") != std::string::npos);
  CHECK(actors.out.find("\n    verifier-1 ") != std::string::npos);
  auto writer = n.console({"actor", "writer"});
  CHECK(writer.status == 0);
  CHECK(writer.err.empty());
  CHECK(writer.out.find("name           writer\n") != std::string::npos);
  CHECK(writer.out.find("state          running\n") != std::string::npos);
  CHECK(writer.out.find("\nSTATUS\n") != std::string::npos);
  // The mailbox shows once, as a field.
  CHECK(writer.out.find("mailbox") == writer.out.rfind("mailbox"));
  auto health = n.console({"health"});
  CHECK(health.status == 0);
  CHECK((health.out.rfind("ok\n", 0) == 0
         || health.out.rfind("degraded\n", 0) == 0));
  auto stats = n.console({"stats"});
  CHECK(stats.status == 0);
  CHECK(stats.out.find("store.disk_bytes") != std::string::npos);
}

TEST_CASE("console relays, relay ID and relay-members ID",
          "[integration][console]") {
  console_node n;
  auto admin_port = test::wait_for_admin_port(n.process);
  REQUIRE(admin_port);
  auto created = test::create_hosted_relay(*admin_port, "console-test", "club");
  INFO(created.response.body << "\nnode output:\n"
                              << test::output_tail(n.process));
  REQUIRE(created.error.empty());
  REQUIRE(created.response.status == 201);
  auto relays = n.console({"relays"});
  CHECK(relays.status == 0);
  CHECK(relays.out.rfind("ID ", 0) == 0);
  CHECK(relays.out.find("\nclub  club       club_db  active  false") != std::string::npos);
  auto relay = n.console({"relay", "club"});
  CHECK(relay.status == 0);
  CHECK(relay.out.find("relay.schema") != std::string::npos);
  // The activity log is a table under the relay's fields.
  CHECK(relay.out.find("\nACTIVITY\nSEQ  ") != std::string::npos);
  CHECK(relay.out.find("create_relay") != std::string::npos);
  CHECK(relay.out.find("{\"") == std::string::npos);
  auto json = n.console({"--json", "relay", "club"});
  REQUIRE(json.status == 0);
  auto parsed = boost::json::parse(json.out);
  CHECK(parsed.at("relay").at("id").as_string() == "club");
  CHECK(parsed.at("activity").as_array().size() == 1);
  auto unknown = n.console({"relay", "nope"});
  CHECK(unknown.status == 1);
  CHECK(unknown.err.find("no hosted relay named nope") != std::string::npos);
  // No infra.api_url: the reconciler is idle and says so.
  auto members = n.console({"relay-members", "club"});
  CHECK(members.status == 1);
  CHECK(members.err.find("idle") != std::string::npos);
}

TEST_CASE("console restart writer counts one restart",
          "[integration][console]") {
  console_node n;
  auto restart = n.console({"restart", "writer"});
  CHECK(restart.status == 0);
  CHECK(restart.err.empty());
  CHECK_FALSE(restart.out.empty());
  CHECK(test::poll_until([&] {
    auto writer = n.console({"actor", "writer"});
    return writer.status == 0
           && writer.out.find("restarts       1\n") != std::string::npos
           && writer.out.find("state          running\n")
                != std::string::npos;
  }));
}

TEST_CASE("console fault crashes an actor and its supervisor restarts it",
          "[integration][console]") {
  console_node n;
  auto fault = n.console({"fault", "verifier-1"});
  CHECK(fault.status == 0);
  CHECK(fault.err.empty());
  auto verifier = n.json_actor("verifier-1");
  CHECK((verifier.at("state").as_string() == "restarting"
         || verifier.at("restarts").to_number<int64_t>() >= 1));
  CHECK(test::poll_until([&] {
    auto v = n.json_actor("verifier-1");
    return v.at("state").as_string() == "running"
           && v.at("restarts").to_number<int64_t>() >= 1
           && !v.at("last_error").as_string().empty();
  }));
  auto actors = n.console({"actors"});
  CHECK(actors.status == 0);
  CHECK(actors.out.find("verifier-1") != std::string::npos);
}

TEST_CASE("console --json actors is an array with every field",
          "[integration][console]") {
  console_node n;
  auto run = n.console({"--json", "actors"});
  REQUIRE(run.status == 0);
  CHECK(run.err.empty());
  auto parsed = boost::json::parse(run.out);
  REQUIRE(parsed.is_array());
  std::set<std::string> names;
  for (auto& x : parsed.as_array()) {
    auto& actor = x.as_object();
    for (auto key : {"name", "kind", "parent", "state", "mailbox", "restarts",
                     "uptime", "last_error", "last_error_at", "status"})
      CHECK(actor.contains(key));
    CHECK(actor.at("status").is_object());
    names.insert(std::string{actor.at("name").as_string()});
  }
  CHECK(names.count("writer") == 1);
  CHECK(names.count("verifier-1") == 1);
  auto stats = n.console({"--json", "stats"});
  REQUIRE(stats.status == 0);
  CHECK(boost::json::parse(stats.out).is_object());
}

TEST_CASE("console names an unknown actor and exits 1",
          "[integration][console]") {
  console_node n;
  for (auto command : {"actor", "restart", "stop", "start", "fault"}) {
    auto run = n.console({command, "no-such-actor"});
    INFO(command);
    CHECK(run.status == 1);
    CHECK(run.out.empty());
    CHECK(run.err.rfind("ferry console: ", 0) == 0);
    CHECK(run.err.find("no-such-actor") != std::string::npos);
    CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
  }
  auto unknown = n.console({"frobnicate"});
  CHECK(unknown.status == 2);
  CHECK(unknown.err
        == "ferry console: unknown command 'frobnicate' (try help)\n");
}

TEST_CASE("console says in one line that no node is there",
          "[integration][console]") {
  auto port = std::to_string(test::free_port());
  auto run = run_console({"--node", "127.0.0.1:" + port, "actors"});
  CHECK(run.status == 1);
  CHECK(run.out.empty());
  CHECK(run.err
        == "ferry console: cannot reach a node at 127.0.0.1:" + port
             + " (connection refused); is the node running, with its console "
               "on that --node address?\n");
}

TEST_CASE("console watch draws under a terminal and q or Ctrl-C end it",
          "[integration][console]") {
  if (std::system("tmux -V > /dev/null 2>&1") != 0)
    FAIL("tmux is missing: scripts/setup installs it; this test needs a "
         "pseudo-terminal to drive `ferry console watch`");
  console_node n;
  tmux_server tmux;
  test::temp_dir scratch;
  auto watch_in_tmux = [&](const std::string& session) {
    // The shell records the terminal settings around the console and its
    // exit status; it ignores SIGINT itself so Ctrl-C reaches only ferry,
    // which installs its own handler.
    auto script = "trap '' INT; stty -g > " + scratch.file(session + ".before")
                  + "; " + test::ferry_binary() + " console --node " + n.node
                  + " watch; status=$?; stty -g > "
                  + scratch.file(session + ".after")
                  + "; echo \"console exited $status\"; sleep 60";
    test::write_file(scratch.file(session + ".sh"), script);
    tmux.run("new-session -d -s " + session + " -x 120 -y 40 'sh "
             + scratch.file(session + ".sh") + "'");
    auto screen = [&tmux, session] {
      return tmux.run("capture-pane -p -t " + session);
    };
    std::string seen;
    auto drawn = test::poll_until(
      [&] {
        seen = screen();
        return seen.find("ferry console  " + n.node) != std::string::npos
               && (seen.find("\nHEALTH ok") != std::string::npos
                   || seen.find("\nHEALTH degraded") != std::string::npos)
               && seen.find("NAME ") != std::string::npos
               && seen.find("writer") != std::string::npos
               && seen.find("verifier-1") != std::string::npos
               && seen.find("STATS") != std::string::npos;
      },
      10s);
    INFO("screen:\n" << seen);
    CHECK(drawn);
    return screen;
  };

  // Either key leaves watch with the terminal as it was before.
  const std::pair<const char*, const char*> ways_out[] = {{"quit-q", "q"},
                                                          {"ctrl-c", "C-c"}};
  for (const auto& [session, key] : ways_out) {
    DYNAMIC_SECTION(key) {
      auto screen = watch_in_tmux(session);
      tmux.run(std::string{"send-keys -t "} + session + " " + key);
      std::string seen;
      auto ended = test::poll_until(
        [&] {
          seen = screen();
          return seen.find("console exited 0") != std::string::npos;
        },
        5s);
      INFO("screen:\n" << seen);
      CHECK(ended);
      CHECK(read_file(scratch.file(std::string{session} + ".before"))
            == read_file(scratch.file(std::string{session} + ".after")));
    }
  }
}

TEST_CASE("the console gate lets in only the right secret",
          "[integration][console]") {
  console_node n{"gate-secret"};
  CHECK(n.console({"--secret", "gate-secret", "actors"}).status == 0);
  for (std::string wrong :
       {"gate-secreT", "gate-secre", "gate-secret-", "gate-secret "}) {
    INFO("secret '" << wrong << "'");
    auto run = n.console({"--secret", wrong, "actors"});
    CHECK(run.status == 1);
    CHECK(run.out.empty());
    CHECK_THAT(run.err, Catch::Matchers::Contains(
                          "refused the login: wrong console secret"));
  }
  // Bytes that are no CAF handshake end only their own connection.
  poke(n.node, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  poke(n.node, std::string(1 << 20, '\xff'));
  poke(n.node, std::string(64 * 1024, 'A') + "\n");
  CHECK(n.process.is_running());
  CHECK(n.console({"--secret", "gate-secret", "actors"}).status == 0);
}

TEST_CASE("console --help and help list every command from one table",
          "[integration][console]") {
  // Neither needs a node.
  auto help = run_console({"--node", "127.0.0.1:" + std::to_string(test::free_port()),
                           "help"});
  REQUIRE(help.status == 0);
  auto full = run_console({"--help"});
  REQUIRE(full.status == 0);
  CHECK(full.out.find(help.out) != std::string::npos);
  CHECK(full.out.find("--config") != std::string::npos);
  CHECK(full.out.find("exit status: 0 ok, 1 ") != std::string::npos);
  for (auto command :
       {"actors", "actor NAME", "stats", "health", "restart NAME", "stop NAME",
        "start NAME", "fault NAME", "servers", "server ID", "sync-now ID",
        "sync-start ID", "sync-stop ID", "repos", "repo ADDRESS", "relays",
        "relay ID", "relay-members ID", "cluster", "refused [SOURCE]",
        "watch", "help"}) {
    INFO(command);
    auto at = help.out.find(std::string{"\n  "} + command);
    REQUIRE(at != std::string::npos);
    auto after = help.out[at + 3 + std::strlen(command)];
    CHECK((after == ' ' || after == '\n'));
  }
}

TEST_CASE("console exit statuses: 0 ok, 1 node error, 2 usage",
          "[integration][console]") {
  auto nowhere = "127.0.0.1:" + std::to_string(test::free_port());
  CHECK(run_console({"--no-such-option"}).status == 2);
  CHECK(run_console({"--node", "not a host:port:x", "actors"}).status == 2);
  CHECK(run_console({"--node", nowhere, "frobnicate"}).status == 2);
  CHECK(run_console({"--node", nowhere, "actors"}).status == 1);
  console_node n;
  CHECK(n.console({"actors"}).status == 0);
  auto missing = n.console({"actor"});
  CHECK(missing.status == 2);
  CHECK(missing.err == "ferry console: usage: actor NAME\n");
  CHECK(n.console({"health", "extra"}).status == 2);
  CHECK(n.console({"actor", "no-such-actor"}).status == 1);
}

TEST_CASE("console --config reads the node's console address and secret",
          "[integration][console]") {
  console_node n{"config-secret"};
  auto run = run_console({"--config", n.config, "actors"});
  CHECK(run.status == 0);
  CHECK(run.out.rfind("NAME ", 0) == 0);
  // --node still wins over the file.
  auto nowhere = "127.0.0.1:" + std::to_string(test::free_port());
  auto elsewhere = run_console({"--config", n.config, "--node", nowhere,
                                "actors"});
  CHECK(elsewhere.status == 1);
  // Unreachable: the hint names where the address came from.
  test::temp_dir other;
  auto stale = other.file("ferry.toml");
  test::write_file(stale, "[console]\nport = " + std::to_string(test::free_port())
                            + "\n");
  auto gone = run_console({"--config", stale, "actors"});
  CHECK(gone.status == 1);
  CHECK(gone.err.find("console.address and console.port of " + stale)
        != std::string::npos);
  auto defaulted = run_console({"actors"});
  if (defaulted.status == 1)
    CHECK(defaulted.err.find("--config FILE") != std::string::npos);
  auto bad = run_console({"--config", other.file("missing.toml"), "actors"});
  CHECK(bad.status == 2);
}

TEST_CASE("console stats show every subsystem and the store's real size",
          "[integration][console]") {
  console_node n;
  auto relay = n.process.wait_for_port();
  REQUIRE(relay);
  auto keys = nostr::generate_keypair();
  std::vector<nostr::event> events;
  for (int i = 0; i < 50; ++i)
    events.push_back(test::make_note(keys, test::unix_now() - i,
                                     "stats " + std::to_string(i)));
  sync_test::publish(*relay, events);
  auto json = n.console({"--json", "stats"});
  REQUIRE(json.status == 0);
  auto stats = boost::json::parse(json.out);
  for (auto section : {"ingest", "relay", "sync", "grasp", "infra", "store"}) {
    INFO(section);
    CHECK(stats.as_object().contains(section));
  }
  CHECK(stats.at("ingest").at("stored").as_int64() >= 50);
  CHECK(stats.at("store").at("disk_bytes").as_int64() > 0);
  CHECK(stats.at("store").at("compactions_running").as_int64() >= 0);
  CHECK(stats.at("store").at("compaction_pending_bytes").as_int64() >= 0);
  auto text = n.console({"stats"});
  REQUIRE(text.status == 0);
  CHECK(text.out.find("store.disk_bytes ") != std::string::npos);
  CHECK(text.out.find("sync.lag_max_seconds ") != std::string::npos);
}
