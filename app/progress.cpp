#include "app/progress.hpp"

#include "app/console_view.hpp"

#include <unistd.h>

#include <cmath>

namespace ferry::app {

progress_line::progress_line(std::string verb)
  : verb_(std::move(verb)),
    shown_(::isatty(STDERR_FILENO) == 1),
    start_(std::chrono::steady_clock::now()),
    last_(start_) {
  // nop
}

progress_line::~progress_line() {
  if (drawn_)
    std::fputs("\r\x1b[K", stderr);
}

std::string progress_line::text(const std::string& verb, uint64_t events,
                                uint64_t done, uint64_t total,
                                std::chrono::duration<double> elapsed) {
  auto seconds = std::max(elapsed.count(), 1e-3);
  auto line = verb + " " + std::to_string(events) + " events ("
              + std::to_string(static_cast<uint64_t>(events / seconds))
              + " events/s)";
  if (total > 0 && done > 0 && done <= total) {
    auto share = static_cast<double>(done) / static_cast<double>(total);
    auto left = seconds * (1 - share) / share;
    line += ", " + std::to_string(static_cast<int>(share * 100)) + "%, ETA "
            + console::format_duration(static_cast<int64_t>(std::ceil(left)));
  }
  return line;
}

void progress_line::update(uint64_t events, uint64_t done, uint64_t total) {
  if (!shown_)
    return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds{500})
    return;
  last_ = now;
  drawn_ = true;
  auto line = text(verb_, events, done, total, now - start_);
  std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
  std::fflush(stderr);
}

} // namespace ferry::app
