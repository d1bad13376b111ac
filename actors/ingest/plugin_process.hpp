#pragma once

// One running plugin process with its stdin and stdout as Asio pipes, so no
// CAF worker ever blocks on it. Used by the PLUGIN HOST only.

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/streambuf.hpp>

#include <sys/types.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace ferry {

class plugin_process : public std::enable_shared_from_this<plugin_process> {
public:
  /// Longest line read from a plugin; a longer one ends the process.
  static constexpr size_t max_line_bytes = 1 << 20;

  /// Called on an I/O thread for every line the plugin writes.
  using line_handler = std::function<void(std::string line)>;
  /// Called once, on an I/O thread, when the plugin's stdout ends.
  using exit_handler = std::function<void(std::string reason)>;

  /// Starts `command`: without spaces it is executed directly, otherwise
  /// through `/bin/sh -c`. The plugin inherits the node's stderr, so what it
  /// logs there shows up beside the node's log. Returns null and sets
  /// `error` when the process could not be started.
  static std::shared_ptr<plugin_process>
  start(boost::asio::io_context& ioc, const std::string& command,
        line_handler on_line, exit_handler on_exit, std::string& error);

  plugin_process(boost::asio::io_context& ioc, pid_t pid, int stdin_fd,
                 int stdout_fd, line_handler on_line, exit_handler on_exit);

  ~plugin_process();

  /// Queues one line (a newline is added) for the plugin's stdin.
  void send_line(std::string line);

  /// Kills the process and reaps it; the exit handler is not called.
  void stop();

  pid_t pid() const {
    return pid_;
  }

private:
  void read_next();
  void write_next();
  /// Reaps the process and words how it ended; nullopt while it has not
  /// exited yet, unless `force` (then it is killed).
  std::optional<std::string> reap(bool force);
  /// Polls `reap` on a timer until the process is gone, then calls the exit
  /// handler: never blocks the I/O thread.
  void reap_then_report(std::string why, int attempt);
  void ended(const std::string& why);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::posix::stream_descriptor stdin_;
  boost::asio::posix::stream_descriptor stdout_;
  boost::asio::streambuf input_;
  boost::asio::steady_timer reap_timer_;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool done_ = false;
  pid_t pid_;
  line_handler on_line_;
  exit_handler on_exit_;
};

} // namespace ferry
