#include "messages/nostr/client_message.hpp"

#include "messages/nostr/negentropy.hpp"

namespace ferry::nostr {

std::string open_client_frame(std::string& frame, client_frame& out) {
  thread_local simdjson::ondemand::parser parser;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end; a frame from
  // the socket already has the room (net/ws_message_text.hpp).
  frame.reserve(frame.size() + simdjson::SIMDJSON_PADDING);
  simdjson::padded_string_view input(frame.data(), frame.size(),
                                     frame.capacity());
  simdjson::ondemand::array msg;
  if (parser.iterate(input).get(out.doc) || out.doc.get_array().get(msg))
    return "a message must be a JSON array";
  if (msg.begin().get(out.it) || msg.end().get(out.end))
    return "malformed JSON";
  if (out.it == out.end || (*out.it).get_string().get(out.verb))
    return "a message must start with its type";
  ++out.it;
  return {};
}

std::string read_event_element(simdjson::ondemand::array_iterator& it,
                               const simdjson::ondemand::array_iterator& end,
                               event& ev) {
  simdjson::ondemand::value value;
  std::string reason;
  if ((*it).get(value))
    reason = "malformed JSON";
  else
    reason = parse_event(value, ev);
  if (reason.empty() && ++it != end)
    reason = "EVENT takes exactly one event";
  return reason;
}

std::optional<bytes32> salvage_event_id(const std::string& frame) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(frame).get(doc))
    return std::nullopt;
  std::string_view hex;
  if (doc.at(1)["id"].get_string().get(hex))
    return std::nullopt;
  bytes32 id;
  if (!from_hex(hex, id))
    return std::nullopt;
  return id;
}

std::string read_filter_element(simdjson::ondemand::array_iterator& it,
                                filter& f) {
  simdjson::ondemand::value value;
  return (*it).get(value) ? std::string{"malformed JSON"}
                          : parse_filter(value, f);
}

std::string
read_neg_message_element(std::string_view verb,
                         simdjson::ondemand::array_iterator& it,
                         const simdjson::ondemand::array_iterator& end,
                         std::string& binary) {
  std::string_view hex;
  if (it == end || (*it).get_string().get(hex))
    return std::string{verb} + " needs a hex-encoded negentropy message";
  if (!negentropy::decode_hex(hex, binary))
    return "the negentropy message is not lowercase hex of even length";
  if (++it != end)
    return std::string{verb} + " has too many elements";
  return {};
}

} // namespace ferry::nostr
