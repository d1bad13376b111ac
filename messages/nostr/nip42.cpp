#include "messages/nostr/nip42.hpp"

#include "messages/nostr/relay_url.hpp"

#include <cstdlib>
#include <vector>

namespace ferry::nostr {

event make_auth_event(const keypair& keys, std::string_view relay_url,
                      std::string_view challenge, int64_t now) {
  event ev;
  ev.kind = client_auth_kind;
  ev.created_at = now;
  ev.tags.push_back({"relay", std::string{relay_url}});
  ev.tags.push_back({"challenge", std::string{challenge}});
  sign_event(ev, keys);
  return ev;
}

std::string verify_auth_event(const event& ev,
                              std::string_view expected_relay_url,
                              std::string_view expected_challenge, int64_t now,
                              int64_t window_seconds) {
  // An empty challenge would let an AUTH event with an empty tag through
  // before the relay ever issued one.
  if (expected_challenge.empty())
    return "no challenge was issued";
  if (ev.kind != client_auth_kind)
    return "event kind is " + std::to_string(ev.kind) + ", not 22242";
  if (std::llabs(ev.created_at - now) > window_seconds)
    return "event created_at is more than " + std::to_string(window_seconds)
           + " s away from now";
  auto challenges = tag_values(ev, "challenge");
  if (challenges.size() != 1)
    return "event needs exactly one challenge tag";
  if (challenges[0] != expected_challenge)
    return "challenge tag does not match the challenge";
  auto relays = tag_values(ev, "relay");
  if (relays.size() != 1)
    return "event needs exactly one relay tag";
  relay_url claimed;
  if (!parse_relay_url(relays[0], claimed).empty())
    return "relay tag is not a ws:// or wss:// URL";
  relay_url expected;
  auto same = parse_relay_url(expected_relay_url, expected).empty()
                ? same_relay(claimed, expected)
                : relays[0] == expected_relay_url;
  if (!same)
    return "relay tag does not name this relay";
  if (auto reason = check_event(ev); !reason.empty())
    return "event is not authentic: " + reason;
  return {};
}

} // namespace ferry::nostr
