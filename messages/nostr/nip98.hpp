#pragma once

#include "messages/nostr/hex.hpp"
#include "messages/nostr/id_hash.hpp"
#include "messages/nostr/keys.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

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

/// What a NIP-98 event that passed the checks says: who signed it, and the
/// id and `created_at` a server refusing replays remembers (see
/// `http_auth_memory`).
struct http_auth_event {
  bytes32 pubkey{};
  bytes32 id{};
  int64_t created_at = 0;
};

/// Checks a NIP-98 `Authorization` header value for one HTTP request:
/// scheme `Nostr` and base64 of the event JSON; kind 27235; a valid id and
/// signature; `created_at` within `http_auth_window` of `now`; exactly one
/// `u` tag equal to `url` and one `method` tag equal to `method` (both
/// byte for byte); and, when the body is non-empty or a `payload` tag is
/// present, exactly one `payload` tag holding the hex SHA-256 of `body`.
/// @param event_out Receives the event's signer, id and created_at on
///        success (may be null).
/// @returns an empty string on success, otherwise the reason.
std::string verify_http_auth(std::string_view authorization,
                             std::string_view url, std::string_view method,
                             std::string_view body, int64_t now,
                             http_auth_event* event_out);

/// `verify_http_auth` for a server that may sit behind a TLS-terminating
/// proxy: the u tag may be `http://` or `https://` followed by
/// `host_and_target` (the Host header and the request target), as the
/// client saw the URL. Anything else about the URL must match byte for byte.
std::string verify_http_auth_either_scheme(std::string_view authorization,
                                           std::string_view host_and_target,
                                           std::string_view method,
                                           std::string_view body, int64_t now,
                                           http_auth_event* event_out);

/// The NIP-98 events a server accepted that are still inside their window,
/// so that each authorizes one request. An event is remembered until its
/// `created_at + http_auth_window` has passed; after that the window check
/// refuses it anyway. At most `capacity` are held: when full, a new event
/// is refused rather than an old one forgotten, because forgetting would let
/// whoever fills the memory with fresh events of its own replay one it
/// captured. Safe to share between threads.
class http_auth_memory {
public:
  enum class verdict {
    /// Not seen before: now remembered.
    fresh,
    /// Accepted before, inside its window.
    reused,
    /// Not seen before, and no room to remember it.
    full,
  };

  explicit http_auth_memory(size_t capacity);

  /// Forgets the events whose window has passed, then remembers `id`
  /// unless it is there already or there is no room.
  verdict admit(const bytes32& id, int64_t created_at, int64_t now);

  /// Whole seconds from `now` until the first remembered event is
  /// forgotten (at least 1): when a full memory has room again.
  int64_t seconds_until_room(int64_t now) const;

  size_t size() const;

  size_t capacity() const {
    return capacity_;
  }

private:
  void expire(int64_t now);

  mutable std::mutex mutex_;
  size_t capacity_;
  std::unordered_set<bytes32, id_hash> ids_;
  /// The remembered ids by the last second their event is accepted in.
  std::map<int64_t, std::vector<bytes32>> by_last_second_;
};

/// Signs a NIP-98 event for one request and returns the whole header value,
/// `Nostr <base64>`. A `payload` tag is added when `body` is non-empty, and
/// a random `nonce` tag always: two requests alike signed in the same second
/// would otherwise be one event, and a server that refuses replays (as ours
/// does) would take only the first.
std::string make_http_auth(const keypair& keys, std::string_view url,
                           std::string_view method, std::string_view body,
                           int64_t now);

} // namespace ferry::nostr
