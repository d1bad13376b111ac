#include "messages/type_ids.hpp"

#include "messages/error.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/message.hpp>

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
}

} // namespace ferry
