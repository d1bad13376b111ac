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
  // A worker that runs dry sleeps (moderate-sleep-duration, 50 us, once per
  // moderate poll) before it waits on its condition variable, deaf to new
  // work meanwhile: with the kernel's default timer slack of 50 us each
  // sleep took 121 us here, and a paging client's next REQ lands in it.
  // With 1 us of slack a sleep takes 72 us; two of them keep a worker out
  // of its wait about as long as before (a wait means a system call for
  // whoever hands it work). Same-run A/Bs against the old setting: page-500
  // +3 to +17% (seven runs, most near +5%), node CPU per event -2 to -4%;
  // bench_fanout's CPU per delivery +4% on average over seven pairs (-2 to
  // +11%), where one 72 us sleep cost it +10% (+2 to +25%). No sleep at all
  // made one-REQ streaming bimodal. The threads made after this call inherit
  // the slack: the scheduler's, the I/O threads.
  cfg.set("work-stealing.moderate-poll-attempts", 2);
  prctl(PR_SET_TIMERSLACK, 1000UL);
}

} // namespace ferry
