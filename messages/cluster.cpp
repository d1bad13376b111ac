#include "messages/cluster.hpp"

namespace ferry::cluster {

std::string to_string(member_state x) {
  switch (x) {
    case member_state::alive:
      return "alive";
    case member_state::suspect:
      return "suspect";
    case member_state::dead:
      return "dead";
    case member_state::left:
      return "left";
    case member_state::forgotten:
      return "forgotten";
  }
  return "unknown";
}

} // namespace ferry::cluster
