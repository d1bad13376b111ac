#include "actors/sync/relay_frames.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/relay_connection_context.hpp"
#include "messages/nostr/wire.hpp"
#include "net/ws_message_text.hpp"

#include <simdjson.h>

namespace ferry::relay_conn {

namespace {

/// The fields after the verb of one message, read in order.
struct frame_fields {
  simdjson::ondemand::array_iterator it;
  simdjson::ondemand::array_iterator end;

  bool next_string(std::string& out) {
    std::string_view view;
    if (it == end || (*it).get_string().get(view))
      return false;
    out = std::string{view};
    ++it;
    return true;
  }

  bool next_bool(bool& out) {
    if (it == end || (*it).get_bool().get(out))
      return false;
    ++it;
    return true;
  }

  bool next_value(simdjson::ondemand::value& out) {
    return it != end && !(*it).get(out);
  }
};

void on_event(self_pointer self, frame_fields& in) {
  std::string sub_id;
  simdjson::ondemand::value value;
  nostr::event ev;
  if (!in.next_string(sub_id) || !in.next_value(value)
      || !nostr::parse_event(value, ev).empty()) {
    ++self->state.ingest.rejected;
    return;
  }
  if (!on_fetch_event(self, sub_id, ev))
    on_req_event(self, sub_id, std::move(ev));
}

void on_eose(self_pointer self, frame_fields& in) {
  std::string sub_id;
  if (!in.next_string(sub_id))
    return;
  if (!on_fetch_eose(self, sub_id))
    on_req_eose(self, sub_id);
}

void on_closed(self_pointer self, frame_fields& in) {
  std::string sub_id;
  std::string reason;
  if (!in.next_string(sub_id))
    return;
  in.next_string(reason);
  if (!on_fetch_closed(self, sub_id, reason))
    on_req_closed(self, sub_id, reason);
}

void on_auth(self_pointer self, frame_fields& in) {
  std::string challenge;
  if (in.next_string(challenge))
    on_auth_challenge(self, std::move(challenge));
}

void on_ok(self_pointer self, frame_fields& in) {
  std::string id;
  bool accepted = false;
  if (!in.next_string(id) || !in.next_bool(accepted))
    return;
  std::string reason;
  in.next_string(reason);
  if (id != self->state.session.auth_event_id)
    return on_up_ok(self, id, accepted, reason);
  on_auth_ok(self, accepted, reason);
}

void on_neg(self_pointer self, bool error, frame_fields& in) {
  std::string sub_id;
  std::string text;
  if (in.next_string(sub_id) && in.next_string(text))
    on_neg_frame(self, error, sub_id, text);
}

void on_notice(self_pointer self, frame_fields& in) {
  std::string text;
  in.next_string(text);
  log::debug("{} notice: {}", self->state.label, text);
  on_neg_notice(self, text);
}

} // namespace

static_assert(simdjson::SIMDJSON_PADDING <= net::ws_message_padding,
              "a received frame has the room to be parsed where it is");

void on_frame(self_pointer self, std::string& frame) {
  thread_local simdjson::ondemand::parser parser;
  // A no-op for what the socket delivered (net/ws_message_text.hpp).
  frame.reserve(frame.size() + simdjson::SIMDJSON_PADDING);
  simdjson::padded_string_view input(frame.data(), frame.size(),
                                     frame.capacity());
  simdjson::ondemand::document doc;
  simdjson::ondemand::array msg;
  frame_fields in;
  std::string_view verb_view;
  if (parser.iterate(input).get(doc) || doc.get_array().get(msg)
      || msg.begin().get(in.it) || msg.end().get(in.end) || in.it == in.end
      || (*in.it).get_string().get(verb_view))
    return fail(self, error_class::protocol, "malformed message from relay");
  std::string verb{verb_view};
  ++in.it;
  if (verb == "EVENT")
    return on_event(self, in);
  if (verb == "EOSE")
    return on_eose(self, in);
  if (verb == "CLOSED")
    return on_closed(self, in);
  if (verb == "AUTH")
    return on_auth(self, in);
  if (verb == "OK")
    return on_ok(self, in);
  if (verb == "NEG-MSG" || verb == "NEG-ERR")
    return on_neg(self, verb == "NEG-ERR", in);
  if (verb == "NOTICE")
    return on_notice(self, in);
}

} // namespace ferry::relay_conn
