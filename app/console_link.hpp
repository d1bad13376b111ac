#pragma once

// How the console reaches a node: the `--node` endpoint, the login at the
// node's CONSOLE GATE, and words for what went wrong on the way.

#include "messages/inspector.hpp"

#include <caf/error.hpp>
#include <caf/scoped_actor.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace ferry::console {

/// How long one question to the node may take before we report it.
inline constexpr auto request_timeout = std::chrono::seconds{5};

/// `--node` split into host and port; accepts "HOST", "HOST:PORT" and
/// "[V6]:PORT".
struct endpoint {
  std::string host;
  uint16_t port = 7449;

  std::string text() const {
    auto bracketed = host.find(':') != std::string::npos;
    return (bracketed ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

/// Parses `--node`; nullopt when it is not one of the accepted forms.
std::optional<endpoint> parse_endpoint(const std::string& text);

/// Why nothing answers at `where`, from one plain TCP connect: CAF 0.17 only
/// says "ip_connect failed" and drops the errno.
/// @returns the cause, e.g. "connection refused"; empty if it connects.
std::string tcp_failure(const endpoint& where);

/// What went wrong talking to the node, in words for people.
std::string describe(const caf::error& err);

/// The node's reply to one question, or why there is none.
template <class T>
struct answer {
  std::optional<T> value;
  /// One line for people, set when `value` is not.
  std::string problem;
  /// Nothing answered like a node there (as opposed to a node refusing).
  bool unreachable = false;
};

/// Connects to the CONSOLE GATE at `where` and logs in with `secret`.
/// @returns the INSPECTOR, or why not.
answer<inspector_actor> login(caf::scoped_actor& self, const endpoint& where,
                              const std::string& secret);

} // namespace ferry::console
