#include "app/line_reader.hpp"

#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace ferry::app {

line_reader::line_reader(int fd, size_t max_line_bytes, size_t chunk_bytes)
  : fd_(fd), max_line_bytes_(max_line_bytes), chunk_bytes_(chunk_bytes) {
}

bool line_reader::fill() {
  if (eof_)
    return false;
  // Unconsumed bytes move to the front, so the buffer only grows for a line
  // longer than a chunk.
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() < end_ + chunk_bytes_)
    buffer_.resize(end_ + chunk_bytes_);
  for (;;) {
    auto n = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
      return true;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      error_ = std::strerror(errno);
    eof_ = true;
    return false;
  }
}

bool line_reader::next_is_ready() const {
  return eof_
         || std::memchr(buffer_.data() + begin_, '\n', end_ - begin_) != nullptr;
}

std::optional<line_reader::line> line_reader::next() {
  size_t scanned = 0;
  bool skipping = false;
  size_t skipped = 0;
  for (;;) {
    auto* start = buffer_.data() + begin_;
    auto available = end_ - begin_;
    auto* newline = static_cast<const char*>(
      std::memchr(start + scanned, '\n', available - scanned));
    if (newline != nullptr) {
      auto length = static_cast<size_t>(newline - start);
      begin_ += length + 1;
      if (skipping || length > max_line_bytes_)
        return line{{}, skipped + length + 1, true};
      return line{{start, length}, length + 1, false};
    }
    scanned = available;
    if (scanned > max_line_bytes_) {
      // Too long to keep: drop what is buffered, find the line's end.
      skipping = true;
      skipped += scanned;
      begin_ = end_;
      scanned = 0;
    }
    if (!fill()) {
      // A read error ends the input where it failed, without a partial line.
      if (!error_.empty())
        return std::nullopt;
      available = end_ - begin_;
      if (available == 0 && !skipping)
        return std::nullopt;
      begin_ = end_;
      if (skipping || available > max_line_bytes_)
        return line{{}, skipped + available, true};
      return line{{buffer_.data() + end_ - available, available}, available,
                  false};
    }
  }
}

} // namespace ferry::app
