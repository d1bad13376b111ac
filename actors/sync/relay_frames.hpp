#pragma once

// The RELAY CONNECTION's frame dispatcher: parses one message from the
// remote and hands it to the unit whose protocol it belongs to. Internal to
// actors/sync/relay_*.

#include "actors/sync/relay_connection_self.hpp"

#include <string>

namespace ferry::relay_conn {

/// One message from the remote (padded in place for the parser).
void on_frame(self_pointer self, std::string& frame);

} // namespace ferry::relay_conn
