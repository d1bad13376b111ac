#include "messages/type_ids.hpp"

#include <catch2/catch.hpp>

#include <caf/actor_system_config.hpp>
#include <caf/config_value.hpp>

#include <sys/prctl.h>

#include <thread>

TEST_CASE("tune_scheduler keeps the workers from spinning and gives every "
          "thread made later 1 us of timer slack",
          "[scheduler]") {
  // On a thread of its own, so the test runner's slack stays as it was; it
  // starts at the kernel's default for a normal thread (50 us), whatever the
  // runner's is.
  unsigned long after = 0;
  unsigned long inherited = 0;
  caf::actor_system_config cfg;
  std::thread tuner{[&] {
    prctl(PR_SET_TIMERSLACK, 50000UL);
    ferry::tune_scheduler(cfg);
    after = static_cast<unsigned long>(prctl(PR_GET_TIMERSLACK));
    std::thread later{[&] { inherited = static_cast<unsigned long>(prctl(PR_GET_TIMERSLACK)); }};
    later.join();
  }};
  tuner.join();
  CHECK(after == 1000);
  CHECK(inherited == 1000);
  CHECK(caf::get_or(cfg, "work-stealing.aggressive-poll-attempts", size_t{0}) == 1);
  CHECK(caf::get_or(cfg, "work-stealing.moderate-poll-attempts", size_t{0}) == 2);
}
