#pragma once

#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"
#include "messages/nostr/hex.hpp"

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>

namespace ferry::nostr {

/// The reading of a client message (NIP-01 EVENT/REQ/CLOSE/COUNT, NIP-42
/// AUTH, NIP-77 NEG-OPEN/NEG-MSG/NEG-CLOSE), one element at a time: the relay
/// session reads every frame with these, and so does the fuzzer of client
/// messages. Reasons come without the "invalid: " prefix the session adds.

/// A client frame opened as the JSON array a message is: its verb, and the
/// elements after it. The views stay valid until the next frame is opened on
/// this thread, and while the frame's text lives.
struct client_frame {
  simdjson::ondemand::document doc;
  std::string_view verb;
  simdjson::ondemand::array_iterator it;
  simdjson::ondemand::array_iterator end;
};

/// Opens `frame` with this thread's On-Demand parser (reserving the padding
/// simdjson reads past the end in `frame` itself).
/// @returns an empty string on success, otherwise why it is no message.
std::string open_client_frame(std::string& frame, client_frame& out);

/// Reads the event of an EVENT message at `it` (which is not `end`) and
/// checks that nothing follows it.
/// @returns an empty string on success, otherwise the reason.
std::string read_event_element(simdjson::ondemand::array_iterator& it,
                               const simdjson::ondemand::array_iterator& end,
                               event& ev);

/// The id of an EVENT message whose event failed strict parsing, when the id
/// itself is readable, so the client still gets an OK for it.
std::optional<bytes32> salvage_event_id(const std::string& frame);

/// Reads the filter at `it` (not `end`), leaving `it` where it is.
/// @returns an empty string on success, otherwise the reason.
std::string read_filter_element(simdjson::ondemand::array_iterator& it,
                                filter& f);

/// Reads the hex negentropy message that ends a NEG-OPEN or NEG-MSG (`verb`)
/// into `binary`.
/// @returns an empty string on success, otherwise the reason.
std::string
read_neg_message_element(std::string_view verb,
                         simdjson::ondemand::array_iterator& it,
                         const simdjson::ondemand::array_iterator& end,
                         std::string& binary);

} // namespace ferry::nostr
