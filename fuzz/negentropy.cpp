// Fuzzes NIP-77 negentropy messages: the decoder takes any bytes, a decoded
// message re-encodes to one that decodes to the same encoding, hex
// round-trips, and both sides of a session answer any message without
// crashing.

#include "fuzz/fuzz_check.hpp"
#include "messages/nostr/negentropy.hpp"

using namespace ferry;
using namespace ferry::nostr::negentropy;

namespace {

/// 300 records over 30 timestamps: enough for fingerprints, id lists and,
/// with the smallest frame limit, split answers.
item_set_ptr sample_items() {
  static const item_set_ptr items = [] {
    std::vector<item> xs;
    for (uint32_t i = 0; i < 300; ++i) {
      item x;
      x.timestamp = 1700000000 + i / 10;
      for (size_t b = 0; b < x.id.size(); ++b)
        x.id[b] = static_cast<uint8_t>(i * 31 + b * 7);
      xs.push_back(x);
    }
    return std::make_shared<const item_set>(std::move(xs));
  }();
  return items;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto input = fuzz::as_text(data, size);

  message msg;
  std::string reason;
  if (decode(input, msg, reason) == decode_status::ok) {
    auto encoded = encode(msg);
    message again;
    fuzz::require(decode(encoded, again, reason) == decode_status::ok,
                  "an encoded message decodes");
    fuzz::require(encode(again) == encoded, "decode . encode is a fixpoint");
  }

  std::string binary;
  if (decode_hex(input, binary))
    fuzz::require(encode_hex(binary) == input, "hex round-trips");

  std::string response;
  server relay{sample_items(), min_frame_size_limit};
  if (relay.reconcile(input, response).empty()) {
    message answer;
    fuzz::require(decode(response, answer, reason) == decode_status::ok
                    || response.size() == 1,
                  "a server answer decodes");
    fuzz::require(response.size() <= min_frame_size_limit,
                  "a server answer respects the frame limit");
  }

  client syncer{sample_items(), min_frame_size_limit};
  syncer.initiate();
  client::round round;
  (void) syncer.reconcile(input, round);
  return 0;
}
