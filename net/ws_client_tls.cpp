#include "net/ws_client_tls.hpp"

#include "net/hex_digit.hpp"

#include <boost/beast/core/error.hpp>

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>

namespace ferry::net::client_detail {

namespace beast = boost::beast;

namespace {

std::string hex(const unsigned char* data, size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string result;
  result.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    result += digits[data[i] >> 4];
    result += digits[data[i] & 0x0f];
  }
  return result;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/// SHA-256 of the DER SubjectPublicKeyInfo of `cert`.
std::optional<spki_pin> spki_sha256(X509* cert) {
  unsigned char* der = nullptr;
  auto len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len <= 0)
    return std::nullopt;
  spki_pin digest;
  SHA256(der, static_cast<size_t>(len), digest.data());
  OPENSSL_free(der);
  return digest;
}

} // namespace

std::optional<spki_pin> decode_pin(std::string_view text) {
  spki_pin pin{};
  if (text.size() == 2 * pin.size()) {
    for (size_t i = 0; i < pin.size(); ++i) {
      auto high = hex_digit_value(text[2 * i]);
      auto low = hex_digit_value(text[2 * i + 1]);
      if (high < 0 || low < 0)
        return std::nullopt;
      pin[i] = static_cast<unsigned char>(high << 4 | low);
    }
    return pin;
  }
  while (!text.empty() && text.back() == '=')
    text.remove_suffix(1);
  // 32 bytes are 256 bits: 42 full sextets and 4 bits of a 43rd.
  if (text.size() != 43)
    return std::nullopt;
  uint32_t bits = 0;
  int bit_count = 0;
  size_t out = 0;
  for (char c : text) {
    auto value = base64_value(c);
    if (value < 0)
      return std::nullopt;
    bits = bits << 6 | static_cast<uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      pin[out++] = static_cast<unsigned char>(bits >> bit_count);
      bits &= (1u << bit_count) - 1;
    }
  }
  // Non-zero leftover bits mean a different encoding of a different value.
  if (bits != 0)
    return std::nullopt;
  return pin;
}

bool verifier::operator()(bool preverified, ssl::verify_context& ctx) {
  auto* store = ctx.native_handle();
  auto depth = X509_STORE_CTX_get_error_depth(store);
  if (!preverified) {
    note("certificate at depth " + std::to_string(depth) + ": "
         + X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
    return false;
  }
  if (!names_(preverified, ctx)) {
    note("certificate is not valid for " + hostname_);
    return false;
  }
  if (depth != 0 || pins_.empty())
    return true;
  auto got = spki_sha256(X509_STORE_CTX_get_current_cert(store));
  if (!got) {
    note("cannot hash the certificate's public key");
    return false;
  }
  if (std::find(pins_.begin(), pins_.end(), *got) != pins_.end())
    return true;
  record_->pin_mismatch = hex(got->data(), got->size());
  return false;
}

std::variant<std::shared_ptr<ssl::context>, std::string>
make_tls_context(const tls_options& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  // TLS 1.0 and 1.1 are deprecated (RFC 8996).
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  ctx->set_default_verify_paths(ec);
  if (ec)
    return "system trust store: " + ec.message();
  if (!tls.ca_certfile.empty()) {
    ctx->load_verify_file(tls.ca_certfile, ec);
    if (ec)
      return "ca_certfile " + tls.ca_certfile + ": " + ec.message();
  }
  if (tls.client_certfile.empty() != tls.client_keyfile.empty())
    return "client_certfile and client_keyfile go together";
  if (!tls.client_certfile.empty()) {
    ctx->use_certificate_chain_file(tls.client_certfile, ec);
    if (ec)
      return "client_certfile " + tls.client_certfile + ": " + ec.message();
    ctx->use_private_key_file(tls.client_keyfile, ssl::context::pem, ec);
    if (ec)
      return "client_keyfile " + tls.client_keyfile + ": " + ec.message();
  }
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (ec)
    return "verify mode: " + ec.message();
  return ctx;
}

} // namespace ferry::net::client_detail
