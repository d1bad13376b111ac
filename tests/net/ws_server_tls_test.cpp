// ws_server with TLS: wss:// and https:// on one port, handshake failures and
// timeouts that close only their own connection, mutual TLS, and the checks
// make_server_tls_context runs on the files before a server starts.

#include "net/server_tls.hpp"
#include "net/simple_client.hpp"
#include "net/ws_client.hpp"
#include "net/ws_server.hpp"
#include "tests/fixtures/tls_pki.hpp"
#include "tests/net/net_fixture.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <variant>

using namespace ferry::net;
using namespace std::chrono_literals;
using ferry::net::test::server_fixture;
using ferry::net::test::wait_until;
using ferry::test::test_pki;

namespace {

constexpr auto wait_limit = 5000ms;

std::shared_ptr<boost::asio::ssl::context>
context_for(const server_tls_files& files) {
  auto made = make_server_tls_context(files);
  if (auto* problem = std::get_if<server_tls_problem>(&made))
    FAIL("make_server_tls_context: " << problem->key << ": expected "
                                     << problem->expected << ", got "
                                     << problem->got);
  return std::get<std::shared_ptr<boost::asio::ssl::context>>(made);
}

server_tls_problem problem_for(const server_tls_files& files) {
  auto made = make_server_tls_context(files);
  auto* problem = std::get_if<server_tls_problem>(&made);
  REQUIRE(problem);
  return *problem;
}

/// What one outbound connection reported.
struct outcome {
  std::mutex mtx;
  bool opened = false;
  bool closed = false;
  failure_kind kind = failure_kind::none;
  std::string reason;
  std::vector<std::string> frames;
};

/// Handshake failures the server reported; shared with its callback, which
/// the server's threads may call until the base fixture stops them.
struct failure_log {
  std::mutex mtx;
  std::vector<std::string> reasons;
};

/// An echoing TLS server (PKI made for the test) and a client runtime.
struct tls_server_fixture : server_fixture {
  test_pki pki;
  io_runtime client_io{1};
  std::shared_ptr<failure_log> log = std::make_shared<failure_log>();

  void start_tls(server_tls_files files,
                 std::chrono::milliseconds handshake_timeout = 10s) {
    echo = true;
    ws_server_options opts;
    opts.tls = context_for(files);
    opts.handshake_timeout = handshake_timeout;
    opts.on_handshake_failure = [log = log](const std::string&,
                                            const std::string& reason) {
      std::lock_guard<std::mutex> guard{log->mtx};
      log->reasons.push_back(reason);
    };
    start(std::move(opts), [](http_request req,
                              std::function<void(http_response)> respond) {
      respond(http_response{200, "application/nostr+json", {},
                            R"({"name":"tls","target":")" + req.target
                              + "\"}"});
    });
    REQUIRE(start_error().empty());
  }

  server_tls_files server_files() const {
    return {pki.server_cert_file(), pki.server_key_file(), {}};
  }

  tls_options trusting() const {
    tls_options tls;
    tls.ca_certfile = pki.ca_file();
    return tls;
  }

  std::string url(const std::string& scheme = "wss") const {
    return scheme + "://127.0.0.1:" + std::to_string(port()) + "/";
  }

  /// Connects and waits for open or close.
  std::pair<std::shared_ptr<ws_client_connection>, std::shared_ptr<outcome>>
  connect(const tls_options& tls, const std::string& host = "127.0.0.1") {
    auto result = std::make_shared<outcome>();
    ws_client_callbacks callbacks;
    callbacks.on_open = [result] {
      std::lock_guard<std::mutex> guard{result->mtx};
      result->opened = true;
    };
    callbacks.on_frame = [result](std::string frame) {
      std::lock_guard<std::mutex> guard{result->mtx};
      result->frames.push_back(std::move(frame));
    };
    callbacks.on_close = [result](failure_kind kind, const std::string& why) {
      std::lock_guard<std::mutex> guard{result->mtx};
      result->closed = true;
      result->kind = kind;
      result->reason = why;
    };
    auto conn = connect_ws(client_io.context(),
                           "wss://" + host + ":" + std::to_string(port()) + "/",
                           tls, std::move(callbacks), wait_limit);
    wait_until(
      [&] {
        std::lock_guard<std::mutex> guard{result->mtx};
        return result->opened || result->closed;
      },
      wait_limit);
    return {conn, result};
  }

  static bool echoes(ws_client_connection& conn, outcome& out,
                     const std::string& message) {
    conn.send(std::make_shared<const std::string>(message));
    return wait_until(
      [&] {
        std::lock_guard<std::mutex> guard{out.mtx};
        return !out.frames.empty() && out.frames.back() == message;
      },
      wait_limit);
  }

  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> guard{log->mtx};
    return log->reasons;
  }
};

bool is_open(outcome& out) {
  std::lock_guard<std::mutex> guard{out.mtx};
  return out.opened && !out.closed;
}

failure_kind closed_with(outcome& out) {
  std::lock_guard<std::mutex> guard{out.mtx};
  return out.closed ? out.kind : failure_kind::none;
}

} // namespace

TEST_CASE_METHOD(tls_server_fixture,
                 "a TLS server speaks wss and https on one port",
                 "[ws_server][tls]") {
  start_tls(server_files());
  CHECK(server().tls());
  auto [conn, out] = connect(trusting());
  REQUIRE(is_open(*out));
  CHECK(echoes(*conn, *out, "over tls"));
  REQUIRE(wait_until([&] { return connection_count() == 1; }));
  // The name in the certificate works as well as the address.
  auto [by_name, by_name_out] = connect(trusting(), "localhost");
  CHECK(is_open(*by_name_out));

  std::promise<http_get_result> got;
  http_get(client_io.context(), url("https") + "info", trusting(),
           {{"Accept", "application/nostr+json"}},
           [&got](http_get_result r) { got.set_value(std::move(r)); },
           wait_limit);
  auto res = got.get_future().get();
  INFO(res.error);
  CHECK(res.failure == failure_kind::none);
  CHECK(res.status == 200);
  CHECK(res.body == R"({"name":"tls","target":"/info"})");
  CHECK(server().handshake_failures() == 0);
  conn->close("done");
  by_name->close("done");
}

TEST_CASE("a plain server reports no TLS", "[ws_server][tls]") {
  server_fixture fix;
  fix.start();
  REQUIRE(fix.start_error().empty());
  CHECK_FALSE(fix.server().tls());
  CHECK(fix.server().handshake_failures() == 0);
}

TEST_CASE_METHOD(tls_server_fixture,
                 "a failed handshake closes only its own connection and is "
                 "counted",
                 "[ws_server][tls]") {
  start_tls(server_files());
  auto [good, good_out] = connect(trusting());
  REQUIRE(is_open(*good_out));

  // Plain text on a TLS port: the server sees no ClientHello.
  simple_ws_client plain;
  CHECK_FALSE(plain.connect("127.0.0.1", port()).empty());
  REQUIRE(wait_until([&] { return server().handshake_failures() == 1; },
                     wait_limit));

  // A client that does not trust the server's CA aborts the handshake.
  auto [untrusting, untrusting_out] = connect(tls_options{});
  CHECK(closed_with(*untrusting_out) == failure_kind::tls);
  REQUIRE(wait_until([&] { return server().handshake_failures() == 2; },
                     wait_limit));
  CHECK(failures().size() == 2);

  // The established connection never noticed.
  CHECK(is_open(*good_out));
  CHECK(echoes(*good, *good_out, "still here"));
  CHECK(connection_count() == 1);
  good->close("done");
}

TEST_CASE_METHOD(tls_server_fixture,
                 "a client that never sends its ClientHello is cut off after "
                 "the handshake timeout",
                 "[ws_server][tls]") {
  start_tls(server_files(), 200ms);
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket{ioc};
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port()});
  char byte = 0;
  boost::system::error_code read_error;
  bool done = false;
  boost::asio::async_read(socket, boost::asio::buffer(&byte, 1),
                          [&](boost::system::error_code ec, size_t) {
                            read_error = ec;
                            done = true;
                          });
  // Bounded: if the server never cut us off the test fails, it does not hang.
  ioc.run_for(wait_limit);
  REQUIRE(done);
  CHECK(read_error == boost::asio::error::eof);
  REQUIRE(wait_until([&] { return server().handshake_failures() == 1; },
                     wait_limit));
  CHECK(failures() == std::vector<std::string>{"handshake timed out"});
}

TEST_CASE_METHOD(tls_server_fixture,
                 "with a client CA only clients with a certificate it signed "
                 "get in",
                 "[ws_server][tls]") {
  auto files = server_files();
  files.client_ca_file = pki.ca_file();
  start_tls(files);

  auto with_cert = trusting();
  with_cert.client_certfile = pki.client_cert_file();
  with_cert.client_keyfile = pki.client_key_file();
  auto [conn, out] = connect(with_cert);
  REQUIRE(is_open(*out));
  CHECK(echoes(*conn, *out, "mutual"));

  auto [anonymous, anonymous_out] = connect(trusting());
  // TLS 1.3 clients finish their side before the server checks the
  // certificate, so the refusal may come as the first read's failure.
  REQUIRE(wait_until([&] { return closed_with(*anonymous_out)
                                  != failure_kind::none; },
                     wait_limit));
  CHECK_FALSE(is_open(*anonymous_out));
  REQUIRE(wait_until([&] { return server().handshake_failures() == 1; },
                     wait_limit));
  CHECK(is_open(*out));
  conn->close("done");
}

TEST_CASE_METHOD(tls_server_fixture, "stop closes TLS connections too",
                 "[ws_server][tls]") {
  start_tls(server_files());
  auto [conn, out] = connect(trusting());
  REQUIRE(is_open(*out));
  REQUIRE(wait_until([&] { return connection_count() == 1; }));
  server().stop();
  CHECK(wait_until([&] { return closed_with(*out) != failure_kind::none
                                || !is_open(*out); },
                   wait_limit));
  CHECK(wait_until([&] { return closes().size() == 1; }, wait_limit));
}

TEST_CASE("make_server_tls_context names the file at fault",
          "[ws_server][tls]") {
  test_pki pki;
  auto dir = std::filesystem::path{pki.ca_file()}.parent_path();
  auto junk = (dir / "junk.pem").string();
  std::ofstream{junk} << "not a certificate\n";
  auto missing = (dir / "missing.pem").string();

  auto p = problem_for({missing, pki.server_key_file(), {}});
  CHECK(p.key == "certfile");
  CHECK(p.expected == "a readable PEM certificate (chain)");
  CHECK(p.got == missing + " (No such file or directory)");

  p = problem_for({dir.string(), pki.server_key_file(), {}});
  CHECK(p.key == "certfile");
  CHECK(p.got == dir.string() + " (a directory)");

  p = problem_for({junk, pki.server_key_file(), {}});
  CHECK(p.key == "certfile");
  CHECK(p.got.rfind(junk + " (", 0) == 0);

  p = problem_for({pki.server_cert_file(), missing, {}});
  CHECK(p.key == "keyfile");
  CHECK(p.expected == "a readable, unencrypted PEM private key");
  CHECK(p.got == missing + " (No such file or directory)");

  p = problem_for({pki.server_cert_file(), junk, {}});
  CHECK(p.key == "keyfile");
  CHECK(p.got.rfind(junk + " (", 0) == 0);

  // The client's key is a good key, of another certificate.
  p = problem_for({pki.server_cert_file(), pki.client_key_file(), {}});
  CHECK(p.key == "keyfile");
  CHECK(p.expected
        == "the private key of the certificate in " + pki.server_cert_file());
  CHECK(p.got == pki.client_key_file() + " (a key of another certificate)");

  p = problem_for({pki.server_cert_file(), pki.server_key_file(), missing});
  CHECK(p.key == "client_ca_file");
  CHECK(p.got == missing + " (No such file or directory)");

  p = problem_for({pki.server_cert_file(), pki.server_key_file(), junk});
  CHECK(p.key == "client_ca_file");
  CHECK(p.got.rfind(junk + " (", 0) == 0);

  CHECK(std::holds_alternative<std::shared_ptr<boost::asio::ssl::context>>(
    make_server_tls_context(
      {pki.server_cert_file(), pki.server_key_file(), pki.ca_file()})));
}
