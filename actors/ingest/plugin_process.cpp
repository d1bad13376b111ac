#include "actors/ingest/plugin_process.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <istream>
#include <vector>

extern char** environ;

namespace ferry {

namespace {

std::vector<std::string> argv_of(const std::string& command) {
  if (command.find(' ') == std::string::npos)
    return {command};
  return {"/bin/sh", "-c", command};
}

} // namespace

std::shared_ptr<plugin_process>
plugin_process::start(boost::asio::io_context& ioc, const std::string& command,
                      line_handler on_line, exit_handler on_exit,
                      std::string& error) {
  // A plugin that dies while we write to it must not take the node along.
  ::signal(SIGPIPE, SIG_IGN);
  int to_child[2];
  int from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0) {
    error = std::strerror(errno);
    return nullptr;
  }
  if (::pipe2(from_child, O_CLOEXEC) != 0) {
    error = std::strerror(errno);
    ::close(to_child[0]);
    ::close(to_child[1]);
    return nullptr;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
  auto args = argv_of(command);
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  auto rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(),
                           environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(to_child[0]);
  ::close(from_child[1]);
  if (rc != 0) {
    error = "cannot start " + args[0] + ": " + std::strerror(rc);
    ::close(to_child[1]);
    ::close(from_child[0]);
    return nullptr;
  }
  auto result = std::make_shared<plugin_process>(
    ioc, pid, to_child[1], from_child[0], std::move(on_line), std::move(on_exit));
  boost::asio::post(result->strand_,
                    [self = result] { self->read_next(); });
  return result;
}

plugin_process::plugin_process(boost::asio::io_context& ioc, pid_t pid,
                               int stdin_fd, int stdout_fd,
                               line_handler on_line, exit_handler on_exit)
  : strand_(boost::asio::make_strand(ioc)),
    stdin_(ioc, stdin_fd),
    stdout_(ioc, stdout_fd),
    input_(max_line_bytes),
    reap_timer_(strand_),
    pid_(pid),
    on_line_(std::move(on_line)),
    on_exit_(std::move(on_exit)) {
  // nop
}

plugin_process::~plugin_process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void plugin_process::send_line(std::string line) {
  line += '\n';
  boost::asio::post(strand_, [self = shared_from_this(),
                              line = std::move(line)]() mutable {
    if (self->done_)
      return;
    self->outbox_.push_back(std::move(line));
    if (!self->writing_)
      self->write_next();
  });
}

void plugin_process::write_next() {
  if (outbox_.empty() || done_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  boost::asio::async_write(
    stdin_, boost::asio::buffer(outbox_.front()),
    boost::asio::bind_executor(
      strand_, [self = shared_from_this()](boost::system::error_code ec,
                                           size_t) {
        if (ec) {
          // The reader sees the end too and reports it; stop writing.
          self->writing_ = false;
          return;
        }
        self->outbox_.pop_front();
        self->write_next();
      }));
}

void plugin_process::read_next() {
  boost::asio::async_read_until(
    stdout_, input_, '\n',
    boost::asio::bind_executor(
      strand_, [self = shared_from_this()](boost::system::error_code ec,
                                           size_t n) {
        if (self->done_)
          return;
        if (ec) {
          self->ended(ec == boost::asio::error::not_found
                        ? "it wrote a line longer than "
                            + std::to_string(max_line_bytes) + " bytes"
                        : std::string{});
          return;
        }
        std::string line(n - 1, '\0');
        std::istream in{&self->input_};
        in.read(line.data(), static_cast<std::streamsize>(n - 1));
        in.ignore(1);
        self->on_line_(std::move(line));
        self->read_next();
      }));
}

void plugin_process::ended(const std::string& why) {
  done_ = true;
  boost::system::error_code ignored;
  stdin_.close(ignored);
  stdout_.close(ignored);
  reap_then_report(why, 0);
}

void plugin_process::reap_then_report(std::string why, int attempt) {
  // Its stdout closes as it exits; give it up to 100 ms to become a zombie
  // before the kill, so the real exit status is reported.
  constexpr int attempts = 50;
  auto how = reap(attempt >= attempts);
  if (!how) {
    reap_timer_.expires_after(std::chrono::milliseconds{2});
    reap_timer_.async_wait(boost::asio::bind_executor(
      strand_, [self = shared_from_this(), why = std::move(why),
                attempt](boost::system::error_code) mutable {
        self->reap_then_report(std::move(why), attempt + 1);
      }));
    return;
  }
  on_exit_(why.empty() ? *how : why + "; " + *how);
}

std::optional<std::string> plugin_process::reap(bool force) {
  if (pid_ <= 0)
    return "stopped";
  int status = 0;
  auto reaped = ::waitpid(pid_, &status, WNOHANG);
  if (reaped == 0 && !force)
    return std::nullopt;
  if (reaped == 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    return "it closed its stdout and was killed";
  }
  pid_ = 0;
  if (reaped < 0)
    return "it ended (status unknown)";
  if (WIFEXITED(status))
    return "it exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string{"it was killed by signal "} + strsignal(WTERMSIG(status));
  return "it ended";
}

void plugin_process::stop() {
  boost::asio::post(strand_, [self = shared_from_this()] {
    if (self->done_)
      return;
    self->done_ = true;
    boost::system::error_code ignored;
    self->stdin_.close(ignored);
    self->stdout_.close(ignored);
    if (self->pid_ > 0) {
      ::kill(self->pid_, SIGKILL);
      ::waitpid(self->pid_, nullptr, 0);
      self->pid_ = 0;
    }
  });
}

} // namespace ferry
