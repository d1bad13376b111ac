#pragma once

// Helpers shared by the benchmarks: command-line options, a self-removing temp
// directory, synthetic signed events, and child processes measured with wait4.
// Header-only because CMake builds every bench/*.cpp as its own executable.

#include "messages/nostr/event.hpp"
#include "messages/nostr/keys.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <deque>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace ferry::bench {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// The body of every benchmark's main(): runs `run`, and reports an exception
/// as "<name>: <what>" on stderr (after what stdout already holds) with
/// status 1.
inline int run_main(const char* name, int (*run)(int, char**), int argc,
                    char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

/// 32 bytes from `rng`: an event id or a pubkey nobody signs with.
inline nostr::bytes32 random_bytes32(std::mt19937_64& rng) {
  nostr::bytes32 bytes;
  for (auto& b : bytes)
    b = static_cast<uint8_t>(rng());
  return bytes;
}

// -- command line -------------------------------------------------------------

struct options {
  size_t events = 100000;
  std::string ferry;
  /// `--only a,b`: run only these variants (for profiling one of them);
  /// empty: all. Benches without variants ignore it.
  std::vector<std::string> only;

  bool wanted(const std::string& variant) const {
    return only.empty() || std::find(only.begin(), only.end(), variant) != only.end();
  }
};

/// The directory of the running executable: the build dir, where `ferry` is.
inline fs::path self_dir() {
  return fs::read_symlink("/proc/self/exe").parent_path();
}

/// Parses `[--events N] [--ferry PATH] [--only VARIANT,...]`; exits with
/// usage on anything else.
inline options parse_options(int argc, char** argv) {
  options opts;
  opts.ferry = (self_dir() / "ferry").string();
  auto usage = [&](int status) {
    std::fprintf(status == 0 ? stdout : stderr,
                 "usage: %s [--events N=100000] [--ferry PATH] [--only VARIANT,...]\n", argv[0]);
    std::exit(status);
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h")
      usage(0);
    if (i + 1 >= argc)
      usage(2);
    std::string value = argv[++i];
    if (arg == "--events") {
      char* end = nullptr;
      auto n = std::strtoull(value.c_str(), &end, 10);
      if (*end != '\0' || n == 0)
        usage(2);
      opts.events = n;
    } else if (arg == "--ferry") {
      opts.ferry = value;
    } else if (arg == "--only") {
      std::istringstream names{value};
      for (std::string name; std::getline(names, name, ',');)
        opts.only.push_back(name);
    } else {
      usage(2);
    }
  }
  if (::access(opts.ferry.c_str(), X_OK) != 0)
    throw std::runtime_error(opts.ferry + ": not an executable (build target "
                             "`ferry`, or pass --ferry PATH)");
  return opts;
}

// -- files --------------------------------------------------------------------

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
/// when the benchmark ends, whether it succeeds or throws.
class temp_dir {
public:
  explicit temp_dir(const std::string& prefix) {
    auto pattern = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
    path_ = pattern;
  }

  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const fs::path& path() const {
    return path_;
  }

private:
  fs::path path_;
};

inline void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out.flush())
    throw std::runtime_error("cannot write " + path.string());
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The `p` quantile (0..1) of `xs`; 0 when empty.
inline double percentile(std::vector<double> xs, double p) {
  if (xs.empty())
    return 0;
  auto k = std::min(xs.size() - 1, static_cast<size_t>(p * xs.size()));
  std::nth_element(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(k), xs.end());
  return xs[k];
}

/// printf into a string (up to 255 characters).
template <class... Ts>
std::string format(const char* fmt, Ts... xs) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, xs...);
  return buf;
}

/// A row of the goal table bench/run.sh prints.
/// Many clients open a file descriptor or more each: take what the hard
/// limit allows.
inline void raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

inline void goal_row(const std::string& goal, const std::string& measured, bool met) {
  std::printf("goal-row|%s|%s|%s\n", goal.c_str(), measured.c_str(),
              met ? "met" : "not met");
}

/// user + system CPU seconds in a /proc/<pid>[/task/<tid>]/stat text.
inline double stat_cpu_seconds(const std::string& stat) {
  auto close = stat.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::istringstream fields{stat.substr(close + 2)};
  std::string field;
  unsigned long utime = 0;
  unsigned long stime = 0;
  // Fields 3..13 come first; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 13; ++i)
    fields >> field;
  fields >> utime >> stime;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// user + system CPU seconds of process `pid` so far.
inline double process_cpu_seconds(pid_t pid) {
  return stat_cpu_seconds(read_file("/proc/" + std::to_string(pid) + "/stat"));
}

/// CPU seconds of process `pid`'s live threads so far, summed by thread
/// name (the node names its writer, verifiers, query workers and socket
/// threads; CAF's scheduler threads keep CAF's names).
inline std::map<std::string, double> thread_cpu_seconds(pid_t pid) {
  std::map<std::string, double> by_name;
  std::error_code ec;
  auto task = fs::path{"/proc"} / std::to_string(pid) / "task";
  for (const auto& entry : fs::directory_iterator{task, ec}) {
    auto stat = read_file(entry.path() / "stat");
    auto open = stat.find('(');
    auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos)
      continue;
    by_name[stat.substr(open + 1, close - open - 1)] += stat_cpu_seconds(stat);
  }
  return by_name;
}

/// One unlabelled sample of Prometheus text `metrics` (a node's /metrics),
/// e.g. `ferry_writer_commit_seconds_sum`; nothing when it is not there.
inline std::optional<double> metric_sample(const std::string& metrics,
                                           const std::string& name) {
  auto pos = metrics.find("\n" + name + " ");
  if (pos == std::string::npos)
    return std::nullopt;
  return std::strtod(metrics.c_str() + pos + name.size() + 2, nullptr);
}

// -- synthetic events -----------------------------------------------------------

/// Makes signed events shaped like real relay traffic: mostly kind-1 notes,
/// some reactions, profiles, contact lists, relay lists and long-form
/// articles, from 200 authors, with printable content that needs JSON escaping
/// (quotes, backslashes, newlines). Replaceable and addressable kinds repeat
/// per author, so some events supersede others as they would in the wild.
class event_generator {
public:
  static constexpr size_t author_count = 200;

  event_generator(size_t content_min, size_t content_max)
      : content_min_(content_min), content_max_(content_max) {
    keys_.reserve(author_count);
    for (size_t i = 0; i < author_count; ++i)
      keys_.push_back(nostr::generate_keypair());
    now_ = std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count();
  }

  /// `n` signed events, signed on `threads` threads (signing dominates).
  std::vector<nostr::event> events(size_t n, unsigned threads) const {
    std::vector<nostr::event> out(n);
    parallel(n, threads, [&](unsigned, size_t begin, size_t end, std::mt19937_64& rng) {
      for (size_t i = begin; i < end; ++i)
        out[i] = make(rng);
    });
    return out;
  }

  /// Writes `n` signed events as JSONL to `path`. @returns the bytes written.
  size_t write_jsonl(const fs::path& path, size_t n, unsigned threads) const {
    std::vector<std::string> chunks(threads);
    parallel(n, threads, [&](unsigned t, size_t begin, size_t end, std::mt19937_64& rng) {
      auto& chunk = chunks[t];
      for (size_t i = begin; i < end; ++i) {
        nostr::append_json(chunk, make(rng));
        chunk += '\n';
      }
    });
    std::ofstream out(path, std::ios::binary);
    size_t bytes = 0;
    for (auto& chunk : chunks) {
      out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      bytes += chunk.size();
    }
    if (!out.flush())
      throw std::runtime_error("cannot write " + path.string());
    return bytes;
  }

private:
  template <class Work>
  static void parallel(size_t n, unsigned threads, Work work) {
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&work, n, threads, t] {
        std::mt19937_64 rng{0x5eed0000u + t};
        work(t, n * t / threads, n * (t + 1) / threads, rng);
      });
    for (auto& th : pool)
      th.join();
  }

  static size_t uniform(std::mt19937_64& rng, size_t lo, size_t hi) {
    return std::uniform_int_distribution<size_t>{lo, hi}(rng);
  }

  static std::string random_hex(std::mt19937_64& rng) {
    return nostr::to_hex(random_bytes32(rng));
  }

  std::string content(std::mt19937_64& rng) const {
    std::string text(uniform(rng, content_min_, content_max_), ' ');
    for (auto& c : text) {
      // Printable ASCII includes '"' and '\\'; newlines add the other common escape.
      auto roll = uniform(rng, 0, 99);
      c = roll == 0 ? '\n' : roll < 16 ? ' ' : static_cast<char>(uniform(rng, 0x21, 0x7e));
    }
    return text;
  }

  nostr::event make(std::mt19937_64& rng) const {
    const auto& keys = keys_[uniform(rng, 0, author_count - 1)];
    auto other_author = [&] {
      return nostr::to_hex(keys_[uniform(rng, 0, author_count - 1)].pubkey);
    };
    nostr::event ev;
    ev.created_at = now_ - static_cast<int64_t>(uniform(rng, 0, 30 * 86400));
    ev.content = content(rng);
    auto roll = uniform(rng, 0, 999);
    if (roll < 800) {
      ev.kind = 1;
      if (uniform(rng, 0, 2) == 0)
        ev.tags.push_back({"e", random_hex(rng), "wss://relay.example.com", "reply"});
      if (uniform(rng, 0, 2) == 0)
        ev.tags.push_back({"p", other_author()});
      if (uniform(rng, 0, 4) == 0)
        ev.tags.push_back({"t", "topic" + std::to_string(uniform(rng, 0, 49))});
    } else if (roll < 900) {
      ev.kind = 7;
      ev.tags.push_back({"e", random_hex(rng)});
      ev.tags.push_back({"p", other_author()});
    } else if (roll < 920) {
      ev.kind = 0;
    } else if (roll < 940) {
      ev.kind = 3;
      for (size_t i = uniform(rng, 1, 5); i > 0; --i)
        ev.tags.push_back({"p", other_author()});
    } else if (roll < 980) {
      ev.kind = 30023;
      auto article = std::to_string(uniform(rng, 0, 19));
      ev.tags.push_back({"d", "article-" + article});
      ev.tags.push_back({"title", "Article " + article});
      ev.tags.push_back({"t", "topic" + std::to_string(uniform(rng, 0, 49))});
    } else {
      ev.kind = 10002;
      ev.tags.push_back({"r", "wss://relay" + std::to_string(uniform(rng, 0, 9)) + ".example.com"});
      ev.tags.push_back({"r", "wss://relay" + std::to_string(uniform(rng, 10, 19)) + ".example.com",
                         "read"});
    }
    nostr::sign_event(ev, keys);
    return ev;
  }

  size_t content_min_;
  size_t content_max_;
  std::vector<nostr::keypair> keys_;
  int64_t now_ = 0;
};

// -- child processes -------------------------------------------------------------

/// A "<field> <n> kB" line of /proc/<pid>/status; 0 when unknown.
inline long proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string status{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  auto pos = status.find(field);
  if (pos == std::string::npos)
    return 0;
  return std::strtol(status.c_str() + pos + field.size(), nullptr, 10);
}

/// How a child ended, with its peak resident set size (VmHWM while it ran).
struct child_exit {
  int status = 0;
  long max_rss_kib = 0;
  /// User and system CPU the child used, from wait4.
  double cpu_seconds = 0;

  bool success() const {
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  std::string describe() const {
    if (WIFEXITED(status))
      return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
      return std::string{"killed by signal "} + ::strsignal(WTERMSIG(status));
    return "status " + std::to_string(status);
  }
};

/// A child process started with posix_spawn. stdout goes to a file; stderr to
/// a file, or to a pipe the caller reads when `stderr_path` is empty. A child
/// still running when this object dies is killed and reaped, so a failing
/// benchmark leaves no process behind.
class child_process {
public:
  /// `stdin_path`: a file opened as the child's stdin; empty: it inherits ours.
  child_process(const std::vector<std::string>& argv, const fs::path& stdout_path,
                const fs::path& stderr_path, const fs::path& stdin_path = {}) {
    int pipe_fds[2] = {-1, -1};
    if (stderr_path.empty() && ::pipe2(pipe_fds, O_CLOEXEC) != 0)
      throw std::runtime_error(std::string{"pipe: "} + std::strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!stdin_path.empty())
      posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, stdin_path.c_str(),
                                       O_RDONLY, 0);
    if (stderr_path.empty())
      posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
    else
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (auto& arg : argv)
      args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (pipe_fds[1] >= 0)
      ::close(pipe_fds[1]);
    if (rc != 0) {
      if (pipe_fds[0] >= 0)
        ::close(pipe_fds[0]);
      throw std::runtime_error("spawn " + argv[0] + ": " + std::strerror(rc));
    }
    stderr_fd_ = pipe_fds[0];
  }

  ~child_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stderr_fd_ >= 0)
      ::close(stderr_fd_);
  }

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// The read end of the stderr pipe; -1 when stderr goes to a file.
  int stderr_fd() const {
    return stderr_fd_;
  }

  void signal(int sig) const {
    if (pid_ > 0)
      ::kill(pid_, sig);
  }

  /// Waits for the child to end.
  child_exit wait() {
    for (;;)
      if (auto exit = wait_for(std::chrono::hours{1}))
        return *exit;
  }

  /// Waits up to `limit`; nullopt if the child is still running then.
  std::optional<child_exit> wait_for(std::chrono::milliseconds limit) {
    auto deadline = clock_type::now() + limit;
    for (;;) {
      child_exit result;
      rusage usage{};
      auto rc = ::wait4(pid_, &result.status, WNOHANG, &usage);
      if (rc == pid_) {
        pid_ = -1;
        // wait4's ru_maxrss also counts this process's pages, which
        // posix_spawn's child shares until its exec: a bench holding a
        // generated corpus reported twice the import's peak.
        result.max_rss_kib = peak_rss_kib_ > 0 ? peak_rss_kib_ : usage.ru_maxrss;
        result.cpu_seconds = cpu_seconds_of(usage);
        return result;
      }
      if (rc < 0 && errno != EINTR)
        throw std::runtime_error(std::string{"wait4: "} + std::strerror(errno));
      // A high-water mark: the last reading before the exit is the peak.
      peak_rss_kib_ = std::max(peak_rss_kib_, proc_status_kib(pid_, "VmHWM:"));
      if (clock_type::now() >= deadline)
        return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
  }

private:
  static double cpu_seconds_of(const rusage& usage) {
    auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
  }

  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  /// The child's VmHWM, as last read while it ran.
  long peak_rss_kib_ = 0;
};

// -- ferry import ---------------------------------------------------------------

struct import_run {
  double seconds = 0;
  child_exit exit;
  std::string summary; // the command's stdout, trimmed
};

/// Runs `ferry import <jsonl> --config <config>` and measures its wall time
/// (process start to exit, so store open and final flush count too).
/// `from_stdin`: the corpus comes on stdin (`ferry import < corpus`), as
/// strfry's import reads it, instead of by name.
inline import_run run_import(const std::string& ferry, const fs::path& jsonl,
                             const fs::path& config, const fs::path& work_dir,
                             bool from_stdin = false) {
  auto out_path = work_dir / "import.stdout";
  auto err_path = work_dir / "import.stderr";
  import_run run;
  auto start = clock_type::now();
  std::vector<std::string> argv{ferry, "import", "--config", config.string()};
  if (!from_stdin)
    argv.push_back(jsonl.string());
  child_process child(argv, out_path, err_path, from_stdin ? jsonl : fs::path{});
  run.exit = child.wait();
  run.seconds = seconds_since(start);
  run.summary = read_file(out_path);
  while (!run.summary.empty() && run.summary.back() == '\n')
    run.summary.pop_back();
  if (!run.exit.success())
    throw std::runtime_error("ferry import failed (" + run.exit.describe()
                             + "): " + read_file(err_path) + run.summary);
  return run;
}

/// A TOML basic string: quoted, with quotes and backslashes escaped.
inline std::string toml_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + '"';
}

/// How long a node may take to log its ports, and to exit after SIGTERM
/// (it gives sessions up to 5 s on shutdown).
constexpr auto node_startup_timeout = std::chrono::seconds{30};
constexpr auto node_stop_timeout = std::chrono::seconds{30};
/// Log lines kept for error messages.
constexpr size_t node_log_tail_lines = 40;

/// A running `ferry node` whose stderr (the log) is drained on a thread; the
/// relay and admin ports are read from it.
class node_process {
public:
  node_process(const std::string& ferry, const fs::path& config, const fs::path& dir,
               const std::string& name)
      : config_(config.string()),
        child_({ferry, "node", "--config", config.string()},
               dir / (name + ".stdout"), fs::path{}) {
    drainer_ = std::thread([this] { drain(); });
  }

  ~node_process() {
    child_.signal(SIGKILL);
    drainer_.join();
  }

  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  std::optional<uint16_t> wait_for_relay_port() {
    std::unique_lock<std::mutex> lock{mutex_};
    changed_.wait_for(lock, node_startup_timeout, [this] { return relay_port_ || ended_; });
    return relay_port_;
  }

  std::optional<uint16_t> wait_for_admin_port() {
    std::unique_lock<std::mutex> lock{mutex_};
    changed_.wait_for(lock, node_startup_timeout, [this] { return admin_port_ || ended_; });
    return admin_port_;
  }

  std::string log_tail() {
    std::lock_guard<std::mutex> lock{mutex_};
    std::string text;
    for (auto& line : tail_)
      text += "  | " + line + "\n";
    return text;
  }

  bool ended() {
    std::lock_guard<std::mutex> lock{mutex_};
    return ended_;
  }

  /// The node's pid, found among this process's children by its config path
  /// (child_process does not expose it); -1 if not found.
  pid_t find_pid() {
    if (pid_ > 0)
      return pid_;
    auto self = ::getpid();
    std::error_code ec;
    for (auto& entry : fs::directory_iterator("/proc", ec)) {
      auto name = entry.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
        continue;
      auto stat = read_file(entry.path() / "stat");
      auto close = stat.rfind(')');
      if (close == std::string::npos)
        continue;
      int ppid = 0;
      char state = 0;
      if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2
          || ppid != self)
        continue;
      auto cmdline = read_file(entry.path() / "cmdline");
      if (cmdline.find(config_) != std::string::npos) {
        pid_ = static_cast<pid_t>(std::stol(name));
        break;
      }
    }
    return pid_;
  }

  /// VmHWM of the running node in KiB; 0 when unknown.
  long peak_rss_kib() {
    return status_kib("VmHWM:");
  }

  /// VmRSS of the running node in KiB; 0 when unknown.
  long rss_kib() {
    return status_kib("VmRSS:");
  }

  child_exit stop() {
    child_.signal(SIGTERM);
    auto exit = child_.wait_for(node_stop_timeout);
    if (!exit)
      throw std::runtime_error("node did not exit within "
                               + std::to_string(node_stop_timeout.count())
                               + " s of SIGTERM; log tail:\n" + log_tail());
    return *exit;
  }

  /// `stop`, and throws (with the log's tail) unless the node exited cleanly.
  child_exit stop_cleanly() {
    auto exit = stop();
    if (!exit.success())
      throw std::runtime_error("node failed on SIGTERM; log tail:\n" + log_tail());
    return exit;
  }

private:
  /// A "<field> <n> kB" line of the node's /proc status.
  long status_kib(const std::string& field) {
    auto pid = find_pid();
    return pid > 0 ? proc_status_kib(pid, field) : 0;
  }

  void drain() {
    std::string partial;
    char buf[4096];
    for (;;) {
      auto n = ::read(child_.stderr_fd(), buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      partial.append(buf, static_cast<size_t>(n));
      size_t eol;
      while ((eol = partial.find('\n')) != std::string::npos) {
        add_line(partial.substr(0, eol));
        partial.erase(0, eol + 1);
      }
    }
    std::lock_guard<std::mutex> lock{mutex_};
    ended_ = true;
    changed_.notify_all();
  }

  static std::optional<uint16_t> port_after(const std::string& line, const char* marker) {
    auto pos = line.find(marker);
    if (pos == std::string::npos)
      return std::nullopt;
    auto colon = line.find(':', pos + std::strlen(marker));
    if (colon == std::string::npos)
      return std::nullopt;
    return static_cast<uint16_t>(std::strtoul(line.c_str() + colon + 1, nullptr, 10));
  }

  void add_line(std::string line) {
    std::lock_guard<std::mutex> lock{mutex_};
    if (!relay_port_)
      if ((relay_port_ = port_after(line, "listening on ws://")))
        changed_.notify_all();
    if (!admin_port_)
      if ((admin_port_ = port_after(line, "listening on http://")))
        changed_.notify_all();
    tail_.push_back(std::move(line));
    if (tail_.size() > node_log_tail_lines)
      tail_.pop_front();
  }

  std::string config_;
  child_process child_;
  std::thread drainer_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<uint16_t> relay_port_;
  std::optional<uint16_t> admin_port_;
  bool ended_ = false;
  std::deque<std::string> tail_;
  pid_t pid_ = -1;
};

} // namespace ferry::bench
