#pragma once

#include "tests/fixtures/tls_pki.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace ferry::net::test {

using ferry::test::test_pki;

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
