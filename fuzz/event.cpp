// Fuzzes the NIP-01 event parser: whatever it accepts serializes to a form
// it parses back to the same bytes, reads the same inside a message array
// (as the relay reads EVENT and AUTH), and the id/signature checks take any
// parsed event.

#include "fuzz/fuzz_check.hpp"
#include "messages/nostr/event.hpp"

#include <simdjson.h>

using namespace ferry;

namespace {

/// `json` as the only element of an array, read with the value overload.
std::string parse_in_array(const std::string& json, nostr::event& out) {
  thread_local simdjson::ondemand::parser parser;
  simdjson::padded_string framed{"[" + json + "]"};
  simdjson::ondemand::document doc;
  simdjson::ondemand::value first;
  if (parser.iterate(framed).get(doc) || doc.at(0).get(first))
    return "not an array";
  return nostr::parse_event(first, out);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nostr::event ev;
  if (!nostr::parse_event(fuzz::as_text(data, size), ev).empty())
    return 0;
  auto json = nostr::to_json(ev);
  nostr::event again;
  fuzz::require(nostr::parse_event(json, again).empty(),
                "to_json of a parsed event parses");
  fuzz::require(nostr::to_json(again) == json, "parse . to_json is a fixpoint");
  nostr::event framed;
  fuzz::require(parse_in_array(std::string{fuzz::as_text(data, size)}, framed).empty()
                  && nostr::to_json(framed) == json,
                "an event reads the same inside an array");
  (void) nostr::check_event(ev);
  (void) nostr::expiration(ev);
  (void) nostr::d_tag(ev);
  return 0;
}
