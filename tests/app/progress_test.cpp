#include "app/progress.hpp"

#include <catch2/catch.hpp>

using ferry::app::progress_line;
using namespace std::chrono_literals;

TEST_CASE("the progress line says events, rate, share and time left",
          "[progress]") {
  // A quarter done in 10 s: 30 s to go.
  CHECK(progress_line::text("imported", 5000, 250, 1000, 10s)
        == "imported 5000 events (500 events/s), 25%, ETA 30s");
  // Unknown total (stdin, a filtered export): no share, no ETA.
  CHECK(progress_line::text("exported", 300, 300, 0, 2s)
        == "exported 300 events (150 events/s)");
  // An estimate that turned out short gives no nonsense share.
  CHECK(progress_line::text("exported", 1200, 1200, 1000, 4s)
        == "exported 1200 events (300 events/s)");
  CHECK(progress_line::text("synced", 90, 900, 1000, 90s)
        == "synced 90 events (1 events/s), 90%, ETA 10s");
}
