#pragma once

// The terminal under `watch`: signals as bytes on a pipe, and the raw,
// alternate-screen mode that the destructor undoes.

#include <csignal>
#include <cstddef>
#include <iterator>
#include <utility>

#include <termios.h>

namespace ferry::console {

/// Turns SIGINT, SIGTERM, SIGHUP and SIGWINCH into bytes on a pipe that
/// poll() can wait on next to stdin: a signal may land on any of CAF's
/// threads, so a flag alone would not wake the main thread. The destructor
/// puts back what was there before, so `watch` can nest inside the prompt.
class signal_pipe {
public:
  signal_pipe();

  ~signal_pipe();

  signal_pipe(const signal_pipe&) = delete;
  signal_pipe& operator=(const signal_pipe&) = delete;

  bool ok() const {
    return pipe_[0] >= 0;
  }

  /// Read end of the pipe.
  int fd() const {
    return pipe_[0];
  }

  /// The next signal that arrived (call when fd() is readable), 0 if none.
  int next() const;

private:
  static constexpr int signals_[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
  struct sigaction saved_actions_[std::size(signals_)] {};
  int pipe_[2] = {-1, -1};
  int previous_write_ = -1;
};

/// Puts the terminal into non-canonical, no-echo mode on the alternate
/// screen with its signals on a pipe; the destructor undoes all of it, on
/// every way out of `watch`.
class watch_terminal {
public:
  watch_terminal();

  ~watch_terminal();

  watch_terminal(const watch_terminal&) = delete;
  watch_terminal& operator=(const watch_terminal&) = delete;

  /// Whether stdin is a terminal that now is in watch mode.
  bool ok() const {
    return ok_;
  }

  const signal_pipe& signals() const {
    return signals_;
  }

  /// Columns and lines of the terminal (80x24 when it does not say).
  std::pair<size_t, size_t> size() const;

private:
  signal_pipe signals_;
  termios saved_{};
  bool ok_ = false;
};

} // namespace ferry::console
