#include "messages/supervisor.hpp"

namespace ferry {

std::string to_string(child_state x) {
  switch (x) {
    case child_state::running:
      return "running";
    case child_state::restarting:
      return "restarting";
    case child_state::stopped:
      return "stopped";
    case child_state::failed:
      return "failed";
  }
  return "unknown";
}

} // namespace ferry
