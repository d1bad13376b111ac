#include "messages/nostr/relay_message.hpp"

#include <simdjson.h>

namespace ferry::nostr {

bool parse_relay_message(std::string& frame, relay_message& out) {
  thread_local simdjson::ondemand::parser parser;
  frame.reserve(frame.size() + simdjson::SIMDJSON_PADDING);
  simdjson::padded_string_view input(frame.data(), frame.size(), frame.capacity());
  simdjson::ondemand::document doc;
  simdjson::ondemand::array msg;
  simdjson::ondemand::array_iterator it;
  simdjson::ondemand::array_iterator end;
  std::string_view verb;
  if (parser.iterate(input).get(doc) || doc.get_array().get(msg)
      || msg.begin().get(it) || msg.end().get(end) || it == end
      || (*it).get_string().get(verb))
    return false;
  out.verb = std::string{verb};
  ++it;
  auto next_string = [&](std::string& into) {
    std::string_view view;
    if (it == end || (*it).get_string().get(view))
      return false;
    into = std::string{view};
    ++it;
    return true;
  };
  if (!next_string(out.first))
    return true;
  if (out.verb == "EVENT") {
    simdjson::ondemand::value value;
    if (it == end || (*it).get(value))
      out.event_error = "no event object";
    else
      out.event_error = parse_event(value, out.ev);
    return true;
  }
  if (out.verb == "OK") {
    if (it == end || (*it).get_bool().get(out.accepted))
      return true;
    ++it;
  }
  next_string(out.second);
  return true;
}

} // namespace ferry::nostr
