// Fuzzes the relay's client messages (NIP-01 EVENT/REQ/CLOSE/COUNT, NIP-42
// AUTH, NIP-77 NEG-OPEN/NEG-MSG/NEG-CLOSE) with the readers that
// actors/relay/client_session.cpp's on_frame uses
// (messages/nostr/client_message.hpp), walking each message as it does,
// minus the actor.

#include "fuzz/fuzz_check.hpp"
#include "messages/nostr/client_message.hpp"

#include <string>

using namespace ferry;
using simdjson::ondemand::array_iterator;

namespace {

bool read_sub_id(array_iterator& it, const array_iterator& end) {
  std::string_view sid;
  return it != end && !(*it).get_string().get(sid);
}

void on_event(const std::string& frame, array_iterator& it,
              const array_iterator& end) {
  nostr::event ev;
  if (it != end && !nostr::read_event_element(it, end, ev).empty())
    (void) nostr::salvage_event_id(frame);
}

void read_filters(array_iterator& it, const array_iterator& end) {
  if (!read_sub_id(it, end))
    return;
  for (++it; it != end; ++it) {
    nostr::filter f;
    if (!nostr::read_filter_element(it, f).empty())
      return;
  }
}

void on_auth(array_iterator& it, const array_iterator& end) {
  simdjson::ondemand::value value;
  nostr::event ev;
  if (it == end || (*it).get(value))
    return;
  (void) nostr::parse_event(value, ev);
}

void on_neg(std::string_view verb, array_iterator& it,
            const array_iterator& end) {
  if (!read_sub_id(it, end))
    return;
  ++it;
  if (verb == "NEG-OPEN") {
    nostr::filter f;
    if (it == end || !nostr::read_filter_element(it, f).empty())
      return;
    ++it;
  }
  std::string binary;
  (void) nostr::read_neg_message_element(verb, it, end, binary);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string frame{fuzz::as_text(data, size)};
  nostr::client_frame msg;
  if (!nostr::open_client_frame(frame, msg).empty())
    return 0;
  auto& it = msg.it;
  const auto& end = msg.end;
  if (msg.verb == "EVENT")
    on_event(frame, it, end);
  else if (msg.verb == "REQ" || msg.verb == "COUNT")
    read_filters(it, end);
  else if (msg.verb == "CLOSE" || msg.verb == "NEG-CLOSE")
    (void) read_sub_id(it, end);
  else if (msg.verb == "AUTH")
    on_auth(it, end);
  else if (msg.verb == "NEG-OPEN" || msg.verb == "NEG-MSG")
    on_neg(msg.verb, it, end);
  return 0;
}
