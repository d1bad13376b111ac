#pragma once

#include "config/policy_config.hpp"
#include "config/readers.hpp"

namespace ferry::config::readers {

/// The `[policy]` section of the schema, reading into `out`.
field policy_section(policy_config& out);

} // namespace ferry::config::readers
