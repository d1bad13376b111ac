// Fuzzes NIP-98 `Authorization: Nostr <base64>` verification. The first
// byte picks how the rest becomes a header, so the fuzzer reaches past the
// layers it cannot forge:
//   0: the rest is the header value as sent;
//   1: the rest is the event JSON, base64-encoded behind "Nostr ";
//   2: as 1, but the event is first re-signed (fresh id and signature), so
//      the time, url, method and payload checks run on fuzzed tags.
// Base64 itself must round-trip whatever it decodes.

#include "fuzz/fuzz_check.hpp"
#include "messages/nostr/keys.hpp"
#include "messages/nostr/nip98.hpp"

using namespace ferry;

namespace {

constexpr int64_t now = 1700000000;
constexpr std::string_view url = "http://127.0.0.1:7778/admin/sync/servers";
constexpr std::string_view method = "POST";
constexpr std::string_view body = R"({"id":"a"})";

const nostr::keypair& signer() {
  static const nostr::keypair keys = [] {
    nostr::bytes32 secret{};
    secret[31] = 7;
    auto pair = nostr::keypair_from_secret(secret);
    fuzz::require(pair.has_value(), "the fixed secret is a valid key");
    return *pair;
  }();
  return keys;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  auto rest = fuzz::as_text(data + 1, size - 1);

  if (auto decoded = nostr::base64_decode(rest))
    fuzz::require(nostr::base64_encode(*decoded) == rest,
                  "base64 has one encoding per text");

  std::string header;
  switch (data[0] % 3) {
    case 0:
      header = std::string{rest};
      break;
    case 1:
      header = "Nostr " + nostr::base64_encode(rest);
      break;
    default: {
      nostr::event ev;
      if (!nostr::parse_event(rest, ev).empty())
        return 0;
      nostr::sign_event(ev, signer());
      header = "Nostr " + nostr::base64_encode(nostr::to_json(ev));
    }
  }
  nostr::http_auth_event ev;
  auto reason = nostr::verify_http_auth(header, url, method, body, now, &ev);
  if (reason.empty() && data[0] % 3 == 2)
    fuzz::require(ev.pubkey == signer().pubkey,
                  "a verified event names its signer");
  return 0;
}
