#include "messages/nostr/wire.hpp"

#include "messages/nostr/event.hpp"

#include <initializer_list>

namespace ferry::nostr {

namespace {

/// `["<verb>",<each of `strings` as a JSON string>]`: the shape of every
/// message whose arguments are all strings.
std::string string_frame(std::string_view verb,
                         std::initializer_list<std::string_view> strings) {
  std::string out = "[\"";
  out += verb;
  out += '"';
  for (auto text : strings) {
    out += ',';
    append_json_string(out, text);
  }
  out += ']';
  return out;
}

} // namespace

std::string event_message_prefix(std::string_view sub_id) {
  std::string out = "[\"EVENT\",";
  append_json_string(out, sub_id);
  out += ',';
  return out;
}

std::string event_message(std::string_view sub_id, std::string_view json) {
  auto out = event_message_prefix(sub_id);
  out.reserve(out.size() + json.size() + 1);
  out += json;
  out += ']';
  return out;
}

std::string ok_message(const bytes32& id, bool accepted,
                       std::string_view message) {
  std::string out = "[\"OK\",\"";
  out += to_hex(id);
  out += accepted ? "\",true," : "\",false,";
  append_json_string(out, message);
  out += ']';
  return out;
}

std::string eose_message(std::string_view sub_id) {
  return string_frame("EOSE", {sub_id});
}

std::string closed_message(std::string_view sub_id, std::string_view message) {
  return string_frame("CLOSED", {sub_id, message});
}

std::string notice_message(std::string_view message) {
  return string_frame("NOTICE", {message});
}

std::string count_message(std::string_view sub_id, uint64_t n) {
  std::string out = "[\"COUNT\",";
  append_json_string(out, sub_id);
  out += ",{\"count\":";
  out += std::to_string(n);
  out += "}]";
  return out;
}

std::string neg_msg_message(std::string_view sub_id, std::string_view hex) {
  std::string out = "[\"NEG-MSG\",";
  append_json_string(out, sub_id);
  out.reserve(out.size() + hex.size() + 4);
  out += ",\"";
  out += hex;
  out += "\"]";
  return out;
}

std::string neg_err_message(std::string_view sub_id, std::string_view reason) {
  return string_frame("NEG-ERR", {sub_id, reason});
}

} // namespace ferry::nostr
