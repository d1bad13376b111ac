#pragma once

#include <caf/error.hpp>
#include <caf/make_message.hpp> // CAF_ERROR_CODE_ENUM needs these two in 0.17.6
#include <caf/message.hpp>

#include <cstdint>
#include <string>

namespace ferry {

/// Error codes of the sync node. Zero is reserved for "no error".
enum class ec : uint8_t {
  /// A config file, key or value is wrong; the context names which.
  invalid_configuration = 1,
  /// RocksDB refused an operation; the context carries its status text.
  storage_failure,
  /// A socket could not be opened, bound or connected.
  network_failure,
  /// Input from outside (a frame, a file line, an API body) is malformed.
  invalid_input,
  /// A remote relay could not be reached.
  relay_unreachable,
  /// A test or an operator asked an actor to fail on purpose.
  injected_fault,
  /// The named thing (sync server, actor, ...) does not exist.
  not_found,
  /// The request contradicts what is stored (an id or name in use, a field
  /// that can no longer change).
  conflict,
  /// A server this node depends on (the management API) failed or answered
  /// with an error.
  upstream_failure,
};

/// @relates ec
std::string to_string(ec x);

/// A one-line text for people: for our own errors just the context they
/// carry (which names file, key or cause), otherwise CAF's rendering.
std::string render(const caf::error& err);

} // namespace ferry

// Makes `caf::make_error(ferry::ec::x, "context")` and `return ferry::ec::x;`
// work. The category is an atom, so its text obeys the 10-character limit.
CAF_ERROR_CODE_ENUM(ferry::ec, "ferry")
