#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ferry::net::test {

/// A throwaway CA with a server certificate for "localhost" and 127.0.0.1 and
/// a client certificate, made with the OpenSSL API when the test runs. The
/// CA and the client's files are written to a temporary directory, removed
/// again on destruction.
class test_pki {
public:
  test_pki()
    : ca_key_(make_key()),
      server_key_(make_key()),
      client_key_(make_key()) {
    ca_ = make_cert(ca_key_.get(), "ferry test CA", nullptr, ca_key_.get(),
                    1,
                    {{NID_basic_constraints, "critical,CA:TRUE"},
                     {NID_key_usage, "critical,keyCertSign,cRLSign"}});
    server_ = make_cert(server_key_.get(), "localhost", ca_.get(),
                        ca_key_.get(), 2,
                        {{NID_basic_constraints, "CA:FALSE"},
                         {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                         {NID_ext_key_usage, "serverAuth"}});
    client_ = make_cert(client_key_.get(), "ferry test client", ca_.get(),
                        ca_key_.get(), 3,
                        {{NID_basic_constraints, "CA:FALSE"},
                         {NID_ext_key_usage, "clientAuth"}});
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path()
           / ("ferry-ws-client-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(dir_);
    write_cert(ca_file(), ca_.get());
    write_cert(client_cert_file(), client_.get());
    write_key(client_key_file(), client_key_.get());
  }

  ~test_pki() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  test_pki(const test_pki&) = delete;
  test_pki& operator=(const test_pki&) = delete;

  std::string ca_file() const {
    return (dir_ / "ca.pem").string();
  }

  std::string client_cert_file() const {
    return (dir_ / "client.pem").string();
  }

  std::string client_key_file() const {
    return (dir_ / "client.key").string();
  }

  X509* server_cert() const {
    return server_.get();
  }

  EVP_PKEY* server_key() const {
    return server_key_.get();
  }

  X509* ca_cert() const {
    return ca_.get();
  }

  /// SHA-256 of the server certificate's SubjectPublicKeyInfo, lowercase hex.
  std::string server_spki_hex() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string result;
    for (auto byte : server_spki())
      result += {digits[byte >> 4], digits[byte & 0x0f]};
    return result;
  }

  /// The same, base64.
  std::string server_spki_base64() const {
    auto digest = server_spki();
    unsigned char out[64] = {};
    EVP_EncodeBlock(out, digest.data(), static_cast<int>(digest.size()));
    return reinterpret_cast<const char*>(out);
  }

private:
  using key_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
  using cert_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

  static key_ptr make_key() {
    key_ptr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    if (!key)
      throw std::runtime_error("EVP_EC_gen failed");
    return key;
  }

  /// Signs a certificate for `key`; self-signed when `issuer` is null.
  static cert_ptr
  make_cert(EVP_PKEY* key, const std::string& common_name, X509* issuer,
            EVP_PKEY* issuer_key, long serial,
            const std::vector<std::pair<int, std::string>>& extensions) {
    cert_ptr cert(X509_new(), X509_free);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    // Backdated: the clocks of client and server are the same, but a cert
    // valid from exactly now may be judged a second early.
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key);
    auto* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(),
                         issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr,
                   nullptr, 0);
    for (const auto& [nid, value] : extensions) {
      auto* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
      if (!ext)
        throw std::runtime_error("bad extension " + value);
      X509_add_ext(cert.get(), ext, -1);
      X509_EXTENSION_free(ext);
    }
    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0)
      throw std::runtime_error("X509_sign failed");
    return cert;
  }

  static void write_cert(const std::string& path, X509* cert) {
    auto* bio = BIO_new_file(path.c_str(), "w");
    if (!bio || PEM_write_bio_X509(bio, cert) != 1)
      throw std::runtime_error("cannot write " + path);
    BIO_free(bio);
  }

  static void write_key(const std::string& path, EVP_PKEY* key) {
    auto* bio = BIO_new_file(path.c_str(), "w");
    if (!bio
        || PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr,
                                    nullptr)
             != 1)
      throw std::runtime_error("cannot write " + path);
    BIO_free(bio);
  }

  std::array<unsigned char, SHA256_DIGEST_LENGTH> server_spki() const {
    unsigned char* der = nullptr;
    auto len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(server_.get()), &der);
    std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
    SHA256(der, static_cast<size_t>(len), digest.data());
    OPENSSL_free(der);
    return digest;
  }

  key_ptr ca_key_;
  key_ptr server_key_;
  key_ptr client_key_;
  cert_ptr ca_{nullptr, X509_free};
  cert_ptr server_{nullptr, X509_free};
  cert_ptr client_{nullptr, X509_free};
  std::filesystem::path dir_;
};

/// What the TLS test server does besides echoing.
struct tls_server_options {
  /// Demand a client certificate signed by the test CA.
  bool require_client_cert = false;
  std::string http_body = R"({"name":"tls test relay"})";
};

/// A TLS server on 127.0.0.1:0 with its own I/O thread: WebSocket upgrades
/// get an echo (the message "close-me" makes it close with reason "bye"),
/// any other request gets `http_body` as application/nostr+json.
class tls_test_server {
public:
  explicit tls_test_server(const test_pki& pki, tls_server_options opts = {})
    : opts_(std::move(opts)), acceptor_(ioc_) {
    SSL_CTX_use_certificate(ctx_.native_handle(), pki.server_cert());
    SSL_CTX_use_PrivateKey(ctx_.native_handle(), pki.server_key());
    if (opts_.require_client_cert) {
      X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_.native_handle()),
                          pki.ca_cert());
      ctx_.set_verify_mode(boost::asio::ssl::verify_peer
                           | boost::asio::ssl::verify_fail_if_no_peer_cert);
    }
    tcp::endpoint endpoint{boost::asio::ip::make_address("127.0.0.1"), 0};
    acceptor_.open(endpoint.protocol());
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    do_accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~tls_test_server() {
    // Pending handlers, and with them the sessions, go with the io_context.
    ioc_.stop();
    thread_.join();
  }

  uint16_t port() const {
    return port_;
  }

  /// The Accept header of the last plain HTTP request.
  std::string last_accept() {
    std::lock_guard<std::mutex> guard{mtx_};
    return last_accept_;
  }

  /// The SNI name of the last TLS handshake; empty when none was sent.
  std::string last_sni() {
    std::lock_guard<std::mutex> guard{mtx_};
    return last_sni_;
  }

  /// WebSocket upgrades accepted so far.
  size_t upgrades() const {
    return upgrades_;
  }

private:
  using tcp = boost::asio::ip::tcp;
  using ws_stream = boost::beast::websocket::stream<
    boost::beast::ssl_stream<boost::beast::tcp_stream>>;

  class session : public std::enable_shared_from_this<session> {
  public:
    session(tcp::socket&& socket, tls_test_server& server)
      : ws_(std::move(socket), server.ctx_), server_(server) {
      // nop
    }

    void run() {
      ws_.next_layer().async_handshake(
        boost::asio::ssl::stream_base::server,
        boost::beast::bind_front_handler(&session::on_tls, shared_from_this()));
    }

  private:
    void on_tls(boost::beast::error_code ec) {
      if (ec)
        return;
      {
        const char* sni = SSL_get_servername(ws_.next_layer().native_handle(),
                                             TLSEXT_NAMETYPE_host_name);
        std::lock_guard<std::mutex> guard{server_.mtx_};
        server_.last_sni_ = sni ? sni : "";
      }
      boost::beast::http::async_read(
        ws_.next_layer(), buffer_, req_,
        boost::beast::bind_front_handler(&session::on_request,
                                         shared_from_this()));
    }

    void on_request(boost::beast::error_code ec, size_t) {
      namespace http = boost::beast::http;
      if (ec)
        return;
      if (boost::beast::websocket::is_upgrade(req_)) {
        ws_.async_accept(req_, boost::beast::bind_front_handler(
                                 &session::on_accept, shared_from_this()));
        return;
      }
      {
        std::lock_guard<std::mutex> guard{server_.mtx_};
        server_.last_accept_ = std::string(req_[http::field::accept]);
      }
      res_.version(11);
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "application/nostr+json");
      res_.keep_alive(false);
      res_.body() = server_.opts_.http_body;
      res_.prepare_payload();
      http::async_write(ws_.next_layer(), res_,
                        boost::beast::bind_front_handler(&session::on_response,
                                                         shared_from_this()));
    }

    void on_response(boost::beast::error_code, size_t) {
      boost::beast::get_lowest_layer(ws_).close();
    }

    void on_accept(boost::beast::error_code ec) {
      if (ec)
        return;
      ++server_.upgrades_;
      do_read();
    }

    void do_read() {
      buffer_.consume(buffer_.size());
      ws_.async_read(buffer_, boost::beast::bind_front_handler(
                                &session::on_read, shared_from_this()));
    }

    void on_read(boost::beast::error_code ec, size_t) {
      namespace websocket = boost::beast::websocket;
      if (ec)
        return;
      out_ = boost::beast::buffers_to_string(buffer_.data());
      if (out_ == "close-me") {
        ws_.async_close(websocket::close_reason(websocket::close_code::normal,
                                                "bye"),
                        [self = shared_from_this()](boost::beast::error_code) {
                          // nop
                        });
        return;
      }
      ws_.text(ws_.got_text());
      ws_.async_write(boost::asio::buffer(out_),
                      boost::beast::bind_front_handler(&session::on_write,
                                                       shared_from_this()));
    }

    void on_write(boost::beast::error_code ec, size_t) {
      if (!ec)
        do_read();
    }

    ws_stream ws_;
    tls_test_server& server_;
    boost::beast::flat_buffer buffer_;
    boost::beast::http::request<boost::beast::http::string_body> req_;
    boost::beast::http::response<boost::beast::http::string_body> res_;
    std::string out_;
  };

  void do_accept() {
    acceptor_.async_accept([this](boost::beast::error_code ec,
                                  tcp::socket socket) {
      if (ec)
        return;
      std::make_shared<session>(std::move(socket), *this)->run();
      do_accept();
    });
  }

  tls_server_options opts_;
  // Before the io_context: the sessions' TLS streams, destroyed with the
  // io_context's handlers, use it until then.
  boost::asio::ssl::context ctx_{boost::asio::ssl::context::tls_server};
  std::mutex mtx_;
  std::string last_accept_;
  std::string last_sni_;
  std::atomic<size_t> upgrades_{0};
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

} // namespace ferry::net::test
