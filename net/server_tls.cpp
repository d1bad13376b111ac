#include "net/server_tls.hpp"

#include <boost/asio/ssl/context.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

namespace ferry::net {

namespace {

namespace ssl = boost::asio::ssl;

/// Why `path` cannot be read, or nullopt when it can. Checked before OpenSSL
/// sees the file: its "system lib" errors do not say what is wrong.
std::optional<std::string> unreadable(const std::string& path) {
  std::error_code status;
  if (std::filesystem::is_directory(path, status))
    return path + " (a directory)";
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return path + " (" + std::strerror(errno) + ")";
  return std::nullopt;
}

/// The oldest OpenSSL error reason on this thread's queue, which is cleared.
std::string openssl_reason() {
  std::string text;
  if (auto code = ERR_peek_error()) {
    if (auto reason = ERR_reason_error_string(code))
      text = reason;
  }
  ERR_clear_error();
  return text.empty() ? "unusable" : text;
}

/// Refuses a pass phrase prompt: a node must start unattended, so an
/// encrypted key is an error, not a question on the terminal.
int no_pass_phrase(char*, int, int, void*) {
  return 0;
}

} // namespace

std::variant<std::shared_ptr<ssl::context>, server_tls_problem>
make_server_tls_context(const server_tls_files& files) {
  ERR_clear_error();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  auto* native = ctx->native_handle();
  // TLS 1.0 and 1.1 are deprecated (RFC 8996).
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds
                   | ssl::context::single_dh_use);

  constexpr auto cert_what = "a readable PEM certificate (chain)";
  if (files.certfile.empty())
    return server_tls_problem{"certfile", "a path when keyfile is set", "\"\""};
  if (auto why = unreadable(files.certfile))
    return server_tls_problem{"certfile", cert_what, *why};
  if (SSL_CTX_use_certificate_chain_file(native, files.certfile.c_str()) != 1)
    return server_tls_problem{"certfile", cert_what,
                              files.certfile + " (" + openssl_reason() + ")"};

  constexpr auto key_what = "a readable, unencrypted PEM private key";
  if (files.keyfile.empty())
    return server_tls_problem{"keyfile", "a path when certfile is set", "\"\""};
  if (auto why = unreadable(files.keyfile))
    return server_tls_problem{"keyfile", key_what, *why};
  auto* bio = BIO_new_file(files.keyfile.c_str(), "r");
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio, nullptr, no_pass_phrase,
                                                nullptr)
                      : nullptr;
  BIO_free(bio);
  if (!key)
    return server_tls_problem{"keyfile", key_what,
                              files.keyfile + " (" + openssl_reason() + ")"};
  auto* leaf = SSL_CTX_get0_certificate(native);
  auto matches = leaf && X509_check_private_key(leaf, key) == 1;
  auto used = matches && SSL_CTX_use_PrivateKey(native, key) == 1;
  EVP_PKEY_free(key);
  if (!matches) {
    ERR_clear_error();
    return server_tls_problem{"keyfile",
                              "the private key of the certificate in "
                                + files.certfile,
                              files.keyfile + " (a key of another certificate)"};
  }
  if (!used)
    return server_tls_problem{"keyfile", key_what,
                              files.keyfile + " (" + openssl_reason() + ")"};

  if (!files.client_ca_file.empty()) {
    constexpr auto ca_what = "a readable PEM file of CA certificates";
    if (auto why = unreadable(files.client_ca_file))
      return server_tls_problem{"client_ca_file", ca_what, *why};
    if (SSL_CTX_load_verify_locations(native, files.client_ca_file.c_str(),
                                      nullptr)
        != 1)
      return server_tls_problem{"client_ca_file", ca_what,
                                files.client_ca_file + " (" + openssl_reason()
                                  + ")"};
    // The CA names go into the CertificateRequest, so a client holding
    // several certificates can pick the right one.
    if (auto* names = SSL_load_client_CA_file(files.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(native, names);
    ERR_clear_error();
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       nullptr);
  }
  return ctx;
}

} // namespace ferry::net
