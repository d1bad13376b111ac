#include "messages/type_ids.hpp"

#include "messages/error.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/message.hpp>

#include <sys/prctl.h>

namespace ferry {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::ferry_atoms>();
  cfg.add_message_types<caf::id_block::ferry_types>();
  // Lets `actor_system::render(err)` name our codes. (The templated
  // `add_error_category<T>(atom)` overload does not compile in 0.17.6.)
  cfg.add_error_category(caf::atom("ferry"), [](uint8_t code, caf::atom_value,
                                                const caf::message& context) {
    auto result = "ferry::" + to_string(ec{code});
    if (!context.empty())
      result += caf::to_string(context);
    return result;
  });
}

void tune_scheduler(caf::actor_system_config& cfg) {
  cfg.set("work-stealing.aggressive-poll-attempts", 1);
  cfg.set("work-stealing.moderate-poll-attempts", 1);
  // A worker that runs dry sleeps once (moderate-sleep-duration, 50 us)
  // before it waits on its condition variable, deaf to new work meanwhile.
  // With the kernel's default timer slack of 50 us that sleep took 121 us
  // here, 72 us with 1 us of slack, and a paging client's next REQ lands in
  // it: same-run A/B, page-500 185k -> 217k events/s, node CPU 5.38 -> 4.95
  // us per event. The price: a worker waits on its condition variable more
  // often, and whoever hands it work then wakes it with a system call:
  // bench_fanout's CPU per delivery +6% (28-35 us, the hour moved it more).
  // No sleep at all made one-REQ streaming bimodal. The threads made after
  // this call inherit the slack: the scheduler's, the I/O threads.
  prctl(PR_SET_TIMERSLACK, 1000UL);
}

} // namespace ferry
