#pragma once

#include "messages/nostr/hex.hpp"
#include "messages/nostr/keys.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::nostr {

/// The NIP-98 event kind ("HTTP Auth").
constexpr uint32_t http_auth_kind = 27235;

/// How far a NIP-98 event's `created_at` may lie from the verifier's clock,
/// in seconds, either way.
constexpr int64_t http_auth_window = 60;

/// Standard base64 (RFC 4648 alphabet, with `=` padding).
std::string base64_encode(std::string_view data);

/// Decodes standard, padded base64 strictly: the length is a multiple of 4,
/// padding only at the end, no whitespace, and unused bits are zero (so one
/// text has exactly one decoding). @returns nullopt on any violation.
std::optional<std::string> base64_decode(std::string_view text);

/// Checks a NIP-98 `Authorization` header value for one HTTP request:
/// scheme `Nostr` and base64 of the event JSON; kind 27235; a valid id and
/// signature; `created_at` within `http_auth_window` of `now`; exactly one
/// `u` tag equal to `url` and one `method` tag equal to `method` (both
/// byte for byte); and, when the body is non-empty or a `payload` tag is
/// present, exactly one `payload` tag holding the hex SHA-256 of `body`.
/// @param pubkey_out Receives the signer's key on success (may be null).
/// @returns an empty string on success, otherwise the reason.
std::string verify_http_auth(std::string_view authorization,
                             std::string_view url, std::string_view method,
                             std::string_view body, int64_t now,
                             bytes32* pubkey_out);

/// `verify_http_auth` for a server that may sit behind a TLS-terminating
/// proxy: the u tag may be `http://` or `https://` followed by
/// `host_and_target` (the Host header and the request target), as the
/// client saw the URL. Anything else about the URL must match byte for byte.
std::string verify_http_auth_either_scheme(std::string_view authorization,
                                           std::string_view host_and_target,
                                           std::string_view method,
                                           std::string_view body, int64_t now,
                                           bytes32* pubkey_out);

/// Signs a NIP-98 event for one request and returns the whole header value,
/// `Nostr <base64>`. A `payload` tag is added when `body` is non-empty.
std::string make_http_auth(const keypair& keys, std::string_view url,
                           std::string_view method, std::string_view body,
                           int64_t now);

} // namespace ferry::nostr
