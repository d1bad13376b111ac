// Fuzzes the NIP-01 filter parser: whatever it accepts serializes to a form
// it parses back to the same filter, and matching takes any parsed filter.

#include "fuzz/fuzz_check.hpp"
#include "messages/nostr/filter.hpp"

using namespace ferry;

namespace {

/// A signed event with tags, for `matches` to walk.
const nostr::event& sample_event() {
  static const nostr::event ev = [] {
    nostr::event out;
    auto reason = nostr::parse_event(
      R"({"id":"b12e1d13848d47e28f912bb0a8b3d6b211d1af97f60e9e10b9cf5df9e5c731ed",)"
      R"("pubkey":"35d26e4690cbe1a898af61cc3515661eb5fa763b57bd0b42e45099c8b32fd50f",)"
      R"("created_at":1683660344,"kind":1,"tags":[["e","b12e1d13848d47e28f912bb0a8b3d6b211d1af97f60e9e10b9cf5df9e5c731ed"],)"
      R"(["p","35d26e4690cbe1a898af61cc3515661eb5fa763b57bd0b42e45099c8b32fd50f"],["t","nostr"],["d",""]],)"
      R"("content":"hi","sig":"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"})",
      out);
    fuzz::require(reason.empty(), "the sample event parses");
    return out;
  }();
  return ev;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nostr::filter f;
  if (!nostr::parse_filter(fuzz::as_text(data, size), f).empty())
    return 0;
  auto json = nostr::to_json(f);
  nostr::filter again;
  fuzz::require(nostr::parse_filter(json, again).empty(),
                "to_json of a parsed filter parses");
  fuzz::require(nostr::to_json(again) == json, "parse . to_json is a fixpoint");
  fuzz::require(f.matches(sample_event()) == again.matches(sample_event()),
                "a reparsed filter matches the same events");
  return 0;
}
