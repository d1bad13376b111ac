// Fuzzes the relay's client messages (NIP-01 EVENT/REQ/CLOSE/COUNT, NIP-42
// AUTH, NIP-77 NEG-OPEN/NEG-MSG/NEG-CLOSE) as actors/relay/client_session.cpp's
// on_frame reads them: the same simdjson On-Demand walk over the array with
// the same parsers, minus the actor. The walk lives inside the session actor,
// so it is retraced here step by step; keep the two in step.

#include "fuzz/fuzz_check.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/negentropy.hpp"

#include <simdjson.h>

#include <string>

using namespace ferry;
using simdjson::ondemand::array_iterator;

namespace {

/// client_session's salvage_event_id: the id of an EVENT that failed strict
/// parsing, read with the DOM parser.
void salvage_event_id(const std::string& frame) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(frame).get(doc))
    return;
  std::string_view hex;
  if (doc.at(1)["id"].get_string().get(hex))
    return;
  nostr::bytes32 id;
  (void) nostr::from_hex(hex, id);
}

void on_event(const std::string& frame, array_iterator& it,
              const array_iterator& end) {
  if (it == end)
    return;
  simdjson::ondemand::value value;
  nostr::event ev;
  std::string reason;
  if ((*it).get(value))
    reason = "malformed JSON";
  else
    reason = nostr::parse_event(value, ev);
  if (reason.empty() && ++it != end)
    reason = "EVENT takes exactly one event";
  if (!reason.empty())
    salvage_event_id(frame);
}

void read_filters(array_iterator& it, const array_iterator& end) {
  std::string_view sid;
  if (it == end || (*it).get_string().get(sid))
    return;
  for (++it; it != end; ++it) {
    simdjson::ondemand::value value;
    nostr::filter f;
    if ((*it).get(value) || !nostr::parse_filter(value, f).empty())
      return;
  }
}

void on_close(array_iterator& it, const array_iterator& end) {
  std::string_view sid;
  if (it == end || (*it).get_string().get(sid))
    return;
}

void on_auth(array_iterator& it, const array_iterator& end) {
  simdjson::ondemand::value value;
  nostr::event ev;
  if (it == end || (*it).get(value))
    return;
  (void) nostr::parse_event(value, ev);
}

bool read_neg_sub_id(array_iterator& it, const array_iterator& end) {
  std::string_view sid;
  if (it == end || (*it).get_string().get(sid))
    return false;
  ++it;
  return true;
}

void read_neg_message(array_iterator& it, const array_iterator& end) {
  std::string_view hex;
  std::string binary;
  if (it == end || (*it).get_string().get(hex))
    return;
  if (!nostr::negentropy::decode_hex(hex, binary))
    return;
  ++it;
}

void on_neg_open(array_iterator& it, const array_iterator& end) {
  if (!read_neg_sub_id(it, end) || it == end)
    return;
  simdjson::ondemand::value value;
  nostr::filter f;
  if ((*it).get(value) || !nostr::parse_filter(value, f).empty())
    return;
  ++it;
  read_neg_message(it, end);
}

void on_neg_msg(array_iterator& it, const array_iterator& end) {
  if (read_neg_sub_id(it, end))
    read_neg_message(it, end);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  thread_local simdjson::ondemand::parser parser;
  std::string frame{fuzz::as_text(data, size)};
  frame.reserve(frame.size() + simdjson::SIMDJSON_PADDING);
  simdjson::padded_string_view input(frame.data(), frame.size(),
                                     frame.capacity());
  simdjson::ondemand::document doc;
  simdjson::ondemand::array msg;
  if (parser.iterate(input).get(doc) || doc.get_array().get(msg))
    return 0;
  array_iterator it;
  array_iterator end;
  if (msg.begin().get(it) || msg.end().get(end))
    return 0;
  std::string_view verb;
  if (it == end || (*it).get_string().get(verb))
    return 0;
  ++it;
  if (verb == "EVENT")
    on_event(frame, it, end);
  else if (verb == "REQ" || verb == "COUNT")
    read_filters(it, end);
  else if (verb == "CLOSE")
    on_close(it, end);
  else if (verb == "AUTH")
    on_auth(it, end);
  else if (verb == "NEG-OPEN")
    on_neg_open(it, end);
  else if (verb == "NEG-MSG")
    on_neg_msg(it, end);
  else if (verb == "NEG-CLOSE")
    read_neg_sub_id(it, end);
  return 0;
}
