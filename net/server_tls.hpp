#pragma once

#include <memory>
#include <string>
#include <variant>

namespace boost::asio::ssl {
class context;
} // namespace boost::asio::ssl

namespace ferry::net {

/// The PEM files a TLS listener serves with.
struct server_tls_files {
  /// The server certificate, followed by any intermediates.
  std::string certfile;
  /// The private key of `certfile`'s first certificate (unencrypted).
  std::string keyfile;
  /// Trust anchors for client certificates; set: every client must present
  /// a certificate that chains to one of them (mutual TLS). Empty: none asked.
  std::string client_ca_file;
};

/// Why a listener cannot serve TLS with the given files: `key` names the
/// field at fault ("certfile", "keyfile" or "client_ca_file"), `expected`
/// says what it should hold and `got` what it holds instead.
struct server_tls_problem {
  std::string key;
  std::string expected;
  std::string got;
};

/// Loads and cross-checks the files (readable, PEM, key matches the
/// certificate) so that a bad setup stops start-up instead of failing every
/// handshake later. TLS 1.2 is the oldest version offered.
/// @returns the context, shared by every connection, or what is wrong.
std::variant<std::shared_ptr<boost::asio::ssl::context>, server_tls_problem>
make_server_tls_context(const server_tls_files& files);

} // namespace ferry::net
