#include "messages/nostr/json_input.hpp"

#include <string>

namespace ferry::nostr::detail {

namespace {

constexpr size_t retained_capacity = size_t{1} << 20;

} // namespace

simdjson::error_code iterate_document(std::string_view json,
                                      simdjson::ondemand::document& doc) {
  // Parsers are not thread-safe and are costly to create: each thread reuses
  // one, and one padded input buffer.
  thread_local simdjson::ondemand::parser parser;
  thread_local std::string buffer;
  // The parser keeps about seven times the largest input it has seen; release
  // that after a rare huge document instead of pinning it for the thread's life.
  if (json.size() <= retained_capacity && parser.capacity() > retained_capacity) {
    parser = simdjson::ondemand::parser{};
    buffer = std::string{};
  }
  buffer.assign(json.data(), json.size());
  buffer.append(simdjson::SIMDJSON_PADDING, ' ');
  return parser.iterate(buffer.data(), json.size(), buffer.size()).get(doc);
}

bool at_end(simdjson::ondemand::document& doc) {
  // simdjson 3.0.1 has no document::at_end(); past the last token the current
  // location is out of bounds.
  return doc.current_location().error() == simdjson::OUT_OF_BOUNDS;
}

const char* json_error_reason(simdjson::error_code error) {
  switch (error) {
    case simdjson::UTF8_ERROR:
      return "invalid utf-8";
    case simdjson::STRING_ERROR:
      return "invalid json string";
    case simdjson::UNESCAPED_CHARS:
      return "unescaped control character in json string";
    case simdjson::UNCLOSED_STRING:
      return "unclosed json string";
    case simdjson::DEPTH_ERROR:
      return "json nested too deeply";
    case simdjson::EMPTY:
      return "empty json";
    // simdjson 3.0.1 reports this up front when the last token of the input
    // does not close the root object, which includes `{...} x`.
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT:
      return "incomplete json or trailing content";
    case simdjson::CAPACITY:
    case simdjson::MEMALLOC:
      return "json too large";
    default:
      return "invalid json";
  }
}

bool is_type_error(simdjson::error_code error) {
  return error == simdjson::INCORRECT_TYPE || error == simdjson::NUMBER_ERROR
         || error == simdjson::NUMBER_OUT_OF_RANGE;
}

} // namespace ferry::nostr::detail
