#pragma once

#include "messages/nostr/event.hpp"
#include "messages/nostr/keys.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::nostr {

/// The NIP-42 event kind ("client authentication").
constexpr uint32_t client_auth_kind = 22242;

/// How far an AUTH event's `created_at` may lie from the verifier's clock by
/// default, in seconds, either way (NIP-42 suggests about ten minutes).
constexpr int64_t client_auth_window = 600;

/// A signed AUTH event answering `challenge` from the relay at `relay_url`:
/// kind 22242, tags `["relay", relay_url]` and `["challenge", challenge]`.
event make_auth_event(const keypair& keys, std::string_view relay_url,
                      std::string_view challenge, int64_t now);

/// Checks an AUTH event a client sent in answer to `expected_challenge`:
/// kind 22242; `created_at` within `window_seconds` of `now`; exactly one
/// `challenge` tag, equal to the challenge; exactly one `relay` tag naming
/// the same relay as `expected_relay_url` (`same_relay`: scheme, host and
/// port after normalization, path up to trailing slashes); a valid id and
/// signature.
/// Cheap checks run first, so a bogus event costs no signature check.
/// @returns an empty string on success, otherwise the reason.
std::string verify_auth_event(const event& ev,
                              std::string_view expected_relay_url,
                              std::string_view expected_challenge, int64_t now,
                              int64_t window_seconds = client_auth_window);

} // namespace ferry::nostr
