#pragma once

// TLS for the outbound client (net/ws_client.cpp, net/ws_client_http.cpp):
// the client context, SPKI pin decoding, and the verify callback that checks
// the chain, the name and the pins. Internal to net/.

#include "net/ws_client.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include <openssl/sha.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry::net::client_detail {

namespace ssl = boost::asio::ssl;

using spki_pin = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

/// Decodes 64 hex digits or the base64 of 32 bytes (padded or not).
std::optional<spki_pin> decode_pin(std::string_view text);

/// What the verify callback saw. A failed handshake only says "certificate
/// verify failed"; this tells a pin mismatch from the other failures and
/// names the cause.
struct verify_record {
  /// Hex SPKI hash of a leaf that matched no pin.
  std::string pin_mismatch;
  /// The first verification failure.
  std::string failure;
};

/// The verify callback: chain and name checks as
/// `ssl::host_name_verification`, then the pins on the leaf.
class verifier {
public:
  verifier(const std::string& hostname, std::vector<spki_pin> pins,
           verify_record* record)
    : hostname_(hostname),
      names_(hostname),
      pins_(std::move(pins)),
      record_(record) {
    // nop
  }

  bool operator()(bool preverified, ssl::verify_context& ctx);

private:
  void note(std::string failure) {
    if (record_->failure.empty())
      record_->failure = std::move(failure);
  }

  std::string hostname_;
  ssl::host_name_verification names_;
  std::vector<spki_pin> pins_;
  // Owned by the session that owns the stream holding this callback.
  verify_record* record_;
};

/// @returns the context, or an error text.
std::variant<std::shared_ptr<ssl::context>, std::string>
make_tls_context(const tls_options& tls);

} // namespace ferry::net::client_detail
