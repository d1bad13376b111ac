// Fuzzes the NIP-01 event parser: whatever it accepts serializes to a form
// it parses back to the same bytes, and the id/signature checks take any
// parsed event.

#include "fuzz/fuzz_check.hpp"
#include "messages/nostr/event.hpp"

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nostr::event ev;
  if (!nostr::parse_event(fuzz::as_text(data, size), ev).empty())
    return 0;
  auto json = nostr::to_json(ev);
  nostr::event again;
  fuzz::require(nostr::parse_event(json, again).empty(),
                "to_json of a parsed event parses");
  fuzz::require(nostr::to_json(again) == json, "parse . to_json is a fixpoint");
  (void) nostr::check_event(ev);
  (void) nostr::expiration(ev);
  (void) nostr::d_tag(ev);
  return 0;
}
