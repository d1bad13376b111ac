#pragma once

#include <simdjson.h>

#include <string_view>

namespace ferry::nostr::detail {

/// Starts iterating `json` with this thread's On-Demand parser. The bytes are
/// copied into a reused padded buffer, so callers need no padding. `doc` and
/// every view taken from it stay valid only until the next call on this thread.
simdjson::error_code iterate_document(std::string_view json,
                                      simdjson::ondemand::document& doc);

/// True when only whitespace follows what has been read from `doc`.
bool at_end(simdjson::ondemand::document& doc);

/// A short lowercase reason for a malformed-JSON error.
const char* json_error_reason(simdjson::error_code error);

/// True for the errors a typed getter reports when the value has another type
/// or is a number outside the requested integer type.
bool is_type_error(simdjson::error_code error);

} // namespace ferry::nostr::detail
