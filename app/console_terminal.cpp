#include "app/console_terminal.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace ferry::console {

namespace {

/// Write end of the active signal_pipe, -1 when none.
int signal_pipe_write = -1;

extern "C" void forward_signal(int sig) {
  auto saved = errno;
  auto byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] auto n = ::write(signal_pipe_write, &byte, 1);
  errno = saved;
}

} // namespace

// -- signal_pipe --------------------------------------------------------------

signal_pipe::signal_pipe() {
  if (::pipe(pipe_) != 0)
    return;
  previous_write_ = signal_pipe_write;
  signal_pipe_write = pipe_[1];
  struct sigaction action {};
  action.sa_handler = forward_signal;
  sigemptyset(&action.sa_mask);
  for (size_t i = 0; i < std::size(signals_); ++i)
    ::sigaction(signals_[i], &action, &saved_actions_[i]);
}

signal_pipe::~signal_pipe() {
  if (pipe_[0] < 0)
    return;
  for (size_t i = 0; i < std::size(signals_); ++i)
    ::sigaction(signals_[i], &saved_actions_[i], nullptr);
  signal_pipe_write = previous_write_;
  ::close(pipe_[0]);
  ::close(pipe_[1]);
}

int signal_pipe::next() const {
  unsigned char sig = 0;
  return ::read(pipe_[0], &sig, 1) == 1 ? sig : 0;
}

// -- watch_terminal -----------------------------------------------------------

watch_terminal::watch_terminal() {
  if (!signals_.ok() || ::tcgetattr(STDIN_FILENO, &saved_) != 0)
    return;
  auto raw = saved_;
  raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  // Alternate screen, hidden cursor, then clear and home.
  std::fputs("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J", stdout);
  std::fflush(stdout);
  ok_ = true;
}

watch_terminal::~watch_terminal() {
  if (!ok_)
    return;
  std::fputs("\x1b[?25h\x1b[?1049l", stdout);
  std::fflush(stdout);
  ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
}

std::pair<size_t, size_t> watch_terminal::size() const {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0
      || ws.ws_row == 0)
    return {80, 24};
  return {ws.ws_col, ws.ws_row};
}

} // namespace ferry::console
