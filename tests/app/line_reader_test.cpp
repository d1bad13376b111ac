#include "app/line_reader.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

using ferry::app::line_reader;

namespace {

/// A pipe holding `text`, its write end closed: the read end sees `text`
/// and then the end of the input.
int pipe_with(const std::string& text) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(text.size() < 65536); // fits the pipe's buffer
  REQUIRE(::write(fds[1], text.data(), text.size())
          == static_cast<ssize_t>(text.size()));
  ::close(fds[1]);
  return fds[0];
}

struct read_line {
  std::string text;
  size_t bytes;
  bool too_long;
};

std::vector<read_line> read_all(line_reader& reader) {
  std::vector<read_line> out;
  while (auto line = reader.next())
    out.push_back({std::string{line->text}, line->bytes, line->too_long});
  return out;
}

} // namespace

TEST_CASE("the line reader splits lines across chunk boundaries",
          "[line_reader]") {
  // Chunks of 3 bytes: every line straddles reads, and the 10-byte line
  // grows the buffer.
  auto fd = pipe_with("ab\n\ncdefghijkl\nlast");
  line_reader reader{fd, 1024, 3};
  auto lines = read_all(reader);
  ::close(fd);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].text == "ab");
  CHECK(lines[0].bytes == 3);
  CHECK(lines[1].text.empty());
  CHECK(lines[1].bytes == 1);
  CHECK(lines[2].text == "cdefghijkl");
  // The last line has no '\n' and is still a line.
  CHECK(lines[3].text == "last");
  CHECK(lines[3].bytes == 4);
  CHECK_FALSE(lines[3].too_long);
  CHECK(reader.error().empty());
  CHECK_FALSE(reader.next());
}

TEST_CASE("the line reader skips a line longer than its bound and goes on",
          "[line_reader]") {
  std::string huge(100, 'x');
  auto fd = pipe_with("short\n" + huge + "\nafter\n" + huge);
  line_reader reader{fd, 16, 8};
  auto lines = read_all(reader);
  ::close(fd);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].text == "short");
  CHECK(lines[1].too_long);
  CHECK(lines[1].text.empty());
  CHECK(lines[1].bytes == 101);
  CHECK(lines[2].text == "after");
  CHECK_FALSE(lines[2].too_long);
  // An over-long last line without '\n'.
  CHECK(lines[3].too_long);
  CHECK(lines[3].bytes == 100);
  CHECK(reader.error().empty());
}

TEST_CASE("the line reader reports an empty input and a read error",
          "[line_reader]") {
  auto empty = pipe_with("");
  line_reader none{empty};
  CHECK_FALSE(none.next());
  CHECK(none.error().empty());
  ::close(empty);

  // Reading a directory fails (EISDIR): the input ends with the error.
  auto dir = ::open("/", O_RDONLY | O_DIRECTORY);
  REQUIRE(dir >= 0);
  line_reader failing{dir};
  CHECK_FALSE(failing.next());
  CHECK_FALSE(failing.error().empty());
  ::close(dir);
}

TEST_CASE("the line reader tells whether its next line needs a read",
          "[line_reader]") {
  // An open pipe, as from a slow writer: what it holds, then nothing yet.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::string text = "one\ntwo\nthr";
  REQUIRE(::write(fds[1], text.data(), text.size())
          == static_cast<ssize_t>(text.size()));
  line_reader reader{fds[0], 1024, 64};
  CHECK_FALSE(reader.next_is_ready()); // nothing read yet
  auto line = reader.next();
  REQUIRE(line);
  CHECK(line->text == "one");
  CHECK(reader.next_is_ready()); // "two\n" is buffered
  line = reader.next();
  REQUIRE(line);
  CHECK(line->text == "two");
  // "thr" has no end yet: the next line waits for the pipe.
  CHECK_FALSE(reader.next_is_ready());
  REQUIRE(::write(fds[1], "ee\n", 3) == 3);
  ::close(fds[1]);
  line = reader.next();
  REQUIRE(line);
  CHECK(line->text == "three");
  CHECK_FALSE(reader.next_is_ready()); // the end is not known before a read
  CHECK_FALSE(reader.next());
  CHECK(reader.next_is_ready()); // at the end: answered without a read
  ::close(fds[0]);
}
