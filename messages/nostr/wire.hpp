#pragma once

#include "messages/nostr/hex.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::nostr {

/// Relay-to-client messages of NIP-01 and NIP-45, serialized.

/// `["EVENT","<sub>",<json>]`; `json` is a stored event object.
std::string event_message(std::string_view sub_id, std::string_view json);

/// The `["EVENT","<sub>",` part of `event_message`, to reuse per subscription.
std::string event_message_prefix(std::string_view sub_id);

/// `["OK","<id>",true|false,"<message>"]`.
std::string ok_message(const bytes32& id, bool accepted, std::string_view message);

/// `["EOSE","<sub>"]`.
std::string eose_message(std::string_view sub_id);

/// `["CLOSED","<sub>","<message>"]`.
std::string closed_message(std::string_view sub_id, std::string_view message);

/// `["NOTICE","<message>"]`.
std::string notice_message(std::string_view message);

/// `["COUNT","<sub>",{"count":<n>}]`.
std::string count_message(std::string_view sub_id, uint64_t n);

/// NIP-77 `["NEG-MSG","<sub>","<hex>"]`; `hex` is a hex-encoded negentropy message.
std::string neg_msg_message(std::string_view sub_id, std::string_view hex);

/// NIP-77 `["NEG-ERR","<sub>","<reason>"]`; the reason has a NIP-01 prefix.
std::string neg_err_message(std::string_view sub_id, std::string_view reason);

} // namespace ferry::nostr
