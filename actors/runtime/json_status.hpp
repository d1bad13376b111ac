#pragma once

#include "messages/status.hpp"

#include <caf/config_value.hpp>

#include <boost/json/value.hpp>

namespace ferry {

/// A status report value as JSON of its own type: integers and reals as
/// numbers, booleans as booleans, strings, atoms and timespans (in CAF's text
/// form, e.g. "1500ms") as strings, lists as arrays, dictionaries as objects.
/// The one conversion the admin API and the SYNC MANAGER share.
boost::json::value status_json(const caf::config_value& x);

/// A status map as a JSON object (nested dictionaries become nested objects).
boost::json::value status_json(const status_map& xs);

} // namespace ferry
