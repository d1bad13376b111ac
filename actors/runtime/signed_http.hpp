#pragma once

// Calls to another service's HTTP API, NIP-98 signed by the node key, with
// the retry schedule both callers (the infra reconciler's management API and
// the federation manager's peers) use.

#include "messages/nostr/keys.hpp"
#include "net/io_runtime.hpp"

#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace ferry {

/// One request to a remote API.
struct signed_http_request {
  std::string method;
  std::string url;
  /// The NIP-98 header value, `Nostr <base64>`.
  std::string authorization;
  /// JSON, or empty.
  std::string body;
  /// A PEM CA file trusted besides the system store for an https:// URL;
  /// empty: the system store alone.
  std::string ca_certfile;
};

/// Its outcome: an HTTP status with the body, or status 0 and why no answer
/// came.
struct signed_http_response {
  uint32_t status = 0;
  std::string body;
  std::string error;
};

/// Sends one request and calls `done` exactly once, from any thread, without
/// blocking the caller.
using signed_http_transport = std::function<void(
  signed_http_request, std::function<void(signed_http_response)>)>;

/// The real transport: HTTP/1.1 on `io`'s threads (`net::http_send`), TLS
/// verified against the system CAs (plus the request's CA file), `timeout`
/// for the whole exchange.
signed_http_transport http_transport(std::shared_ptr<net::io_runtime> io,
                                     std::chrono::milliseconds timeout);

/// A request to `url` with `body`, signed now by `keys` (NIP-98, with a
/// payload tag when the body is not empty).
signed_http_request signed_request(const nostr::keypair& keys,
                                   std::string method, std::string url,
                                   std::string body);

/// The wait before retry `attempt` (1 = after the first failure):
/// `base * 2^(attempt-1)`, at most `cap`, without overflow for any attempt.
caf::timespan retry_delay(uint32_t attempt, caf::timespan base,
                          caf::timespan cap);

} // namespace ferry
