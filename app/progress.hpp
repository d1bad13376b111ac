#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ferry::app {

/// One line of progress for a long `import`, `export` or `sync` on a
/// terminal: events so far, the rate and, when the total is known, the
/// share done and the time left. Redrawn in place on stderr at most twice a
/// second; nothing at all when stderr is not a terminal, so pipes and logs
/// get only the final summary the command prints itself.
class progress_line {
public:
  /// `verb` starts the line ("imported", "exported").
  explicit progress_line(std::string verb);

  progress_line(const progress_line&) = delete;
  progress_line& operator=(const progress_line&) = delete;

  /// Clears the line, so the summary that follows starts clean.
  ~progress_line();

  /// Reports `events` done, and `done` of `total` units of work (bytes read,
  /// events expected) for the share and the time left; `total` 0: unknown.
  void update(uint64_t events, uint64_t done = 0, uint64_t total = 0);

  /// Whether the line is drawn at all (stderr is a terminal).
  bool shown() const {
    return shown_;
  }

  /// The line `update` would draw after `elapsed`, for tests.
  static std::string text(const std::string& verb, uint64_t events,
                          uint64_t done, uint64_t total,
                          std::chrono::duration<double> elapsed);

private:
  std::string verb_;
  bool shown_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

} // namespace ferry::app
