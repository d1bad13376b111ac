#pragma once

#include "messages/nostr/event.hpp"

#include <string>

namespace ferry::nostr {

/// A message from a relay (NIP-01 EVENT/EOSE/CLOSED/OK/NOTICE, NIP-42 AUTH,
/// NIP-77 NEG-MSG/NEG-ERR), as a client that reads it whole needs it:
/// `ferry sync` and a federation pull.
struct relay_message {
  std::string verb;
  /// Subscription id (EVENT, EOSE, CLOSED, NEG-*), event id (OK), the
  /// challenge (AUTH), or the text of a NOTICE.
  std::string first;
  /// NEG-MSG's hex, NEG-ERR's, CLOSED's and OK's message.
  std::string second;
  /// OK's flag.
  bool accepted = false;
  /// EVENT's event; `event_error` says why it did not parse.
  event ev;
  std::string event_error;
};

/// Parses one relay frame with this thread's On-Demand parser (reserving the
/// padding simdjson reads past the end in `frame` itself): an EVENT's event
/// straight from the frame, with no DOM in between.
/// @returns false when it is not a JSON array starting with a string.
bool parse_relay_message(std::string& frame, relay_message& out);

} // namespace ferry::nostr
