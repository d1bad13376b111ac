#include "messages/ingest.hpp"

namespace ferry {

std::string to_string(ingest_status x) {
  switch (x) {
    case ingest_status::stored:
      return "stored";
    case ingest_status::ephemeral:
      return "ephemeral";
    case ingest_status::duplicate:
      return "duplicate";
    case ingest_status::refused:
      return "refused";
    case ingest_status::shadowed:
      return "shadowed";
    case ingest_status::invalid:
      return "invalid";
    case ingest_status::error:
      return "error";
  }
  return "unknown";
}

} // namespace ferry
