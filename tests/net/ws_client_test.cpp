#include "net/ws_client.hpp"
#include "net/ws_message_text.hpp"

#include "tests/net/net_fixture.hpp"
#include "tests/net/tls_fixture.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <thread>

using namespace ferry::net;
using namespace std::chrono_literals;
using ferry::net::test::server_fixture;
using ferry::net::test::test_pki;
using ferry::net::test::tls_server_options;
using ferry::net::test::tls_test_server;
using ferry::net::test::wait_until;

namespace {

constexpr auto wait_limit = 5000ms;

/// Everything one client connection reported. Shared with the callbacks, so
/// it outlives whatever the connection calls late.
class client_events {
public:
  ws_client_callbacks callbacks() {
    auto self = state_;
    ws_client_callbacks result;
    result.on_open = [self] {
      std::lock_guard<std::mutex> guard{self->mtx};
      ++self->opens;
    };
    result.on_frame = [self](std::string frame) {
      std::lock_guard<std::mutex> guard{self->mtx};
      self->spare.push_back(frame.capacity() - frame.size());
      self->frames.push_back(std::move(frame));
    };
    result.on_close = [self](failure_kind kind, const std::string& reason) {
      std::lock_guard<std::mutex> guard{self->mtx};
      ++self->closes;
      self->kind = kind;
      self->reason = reason;
    };
    return result;
  }

  int opens() const {
    std::lock_guard<std::mutex> guard{state_->mtx};
    return state_->opens;
  }

  int closes() const {
    std::lock_guard<std::mutex> guard{state_->mtx};
    return state_->closes;
  }

  std::vector<std::string> frames() const {
    std::lock_guard<std::mutex> guard{state_->mtx};
    return state_->frames;
  }

  /// For each frame, the capacity its text had beyond its size.
  std::vector<size_t> spare_capacity() const {
    std::lock_guard<std::mutex> guard{state_->mtx};
    return state_->spare;
  }

  failure_kind kind() const {
    std::lock_guard<std::mutex> guard{state_->mtx};
    return state_->kind;
  }

  std::string reason() const {
    std::lock_guard<std::mutex> guard{state_->mtx};
    return state_->reason;
  }

  bool wait_open() const {
    return wait_until([this] { return opens() > 0 || closes() > 0; },
                      wait_limit)
           && opens() == 1;
  }

  bool wait_closed() const {
    return wait_until([this] { return closes() > 0; }, wait_limit);
  }

private:
  struct state {
    mutable std::mutex mtx;
    int opens = 0;
    int closes = 0;
    std::vector<std::string> frames;
    std::vector<size_t> spare;
    failure_kind kind = failure_kind::none;
    std::string reason;
  };
  std::shared_ptr<state> state_ = std::make_shared<state>();
};

std::shared_ptr<const std::string> text(std::string value) {
  return std::make_shared<const std::string>(std::move(value));
}

/// Drops `conn` and waits until every handler of the connection is done: the
/// connection is destroyed then, so no callback can follow any more.
bool released(std::shared_ptr<ws_client_connection>& conn) {
  std::weak_ptr<ws_client_connection> weak = conn;
  conn.reset();
  return wait_until([&] { return weak.expired(); }, wait_limit);
}

/// A started test server that echoes every frame back.
struct echo_fixture : server_fixture {
  echo_fixture() {
    echo = true;
    start();
    REQUIRE(start_error().empty());
  }

  std::string url() const {
    return "ws://127.0.0.1:" + std::to_string(port()) + "/";
  }
};

/// A listener on 127.0.0.1 that accepts TCP connections (the kernel does)
/// but never reads from them: no handshake ever gets an answer.
struct silent_listener {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor{
    ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};

  uint16_t port() const {
    return acceptor.local_endpoint().port();
  }

  std::string url() const {
    return "ws://127.0.0.1:" + std::to_string(port());
  }
};

/// A relay that completes one WebSocket handshake and then neither sends nor
/// reads anything (so it answers no ping either) until it is destroyed.
struct mute_relay {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor{
    ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws{ioc};
  std::thread thread{[this] {
    boost::beast::error_code ec;
    acceptor.accept(boost::beast::get_lowest_layer(ws).socket(), ec);
    if (!ec)
      ws.accept(ec);
  }};

  ~mute_relay() {
    thread.join();
  }

  std::string url() const {
    return "ws://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  }
};

/// Runs `http_get` and waits for its result; nullopt when none came in time.
std::optional<http_get_result>
get_and_wait(boost::asio::io_context& ioc, const std::string& url,
             const tls_options& tls,
             std::map<std::string, std::string> headers = {}) {
  // Shared with the callback, which may outlive a wait that gave up.
  struct outcome {
    std::mutex mtx;
    std::optional<http_get_result> result;
  };
  auto shared = std::make_shared<outcome>();
  http_get(ioc, url, tls, std::move(headers), [shared](http_get_result res) {
    std::lock_guard<std::mutex> guard{shared->mtx};
    shared->result = std::move(res);
  });
  wait_until(
    [&] {
      std::lock_guard<std::mutex> guard{shared->mtx};
      return shared->result.has_value();
    },
    wait_limit);
  std::lock_guard<std::mutex> guard{shared->mtx};
  return shared->result;
}

/// A port on 127.0.0.1 that nobody listens on (just released by us).
uint16_t closed_port() {
  return silent_listener{}.port();
}

std::string wss_url(const tls_test_server& server) {
  return "wss://127.0.0.1:" + std::to_string(server.port()) + "/";
}

/// A client runtime next to a TLS test server with a fresh PKI.
struct tls_fixture {
  test_pki pki;
  tls_test_server server{pki};
  io_runtime io{2};

  tls_options trusted() const {
    tls_options tls;
    tls.enabled = true;
    tls.ca_certfile = pki.ca_file();
    return tls;
  }

  /// Connects with `tls` and waits for the outcome.
  std::shared_ptr<ws_client_connection> connect(const tls_options& tls,
                                                client_events& events) {
    auto conn = connect_ws(io.context(), wss_url(server), tls,
                           events.callbacks());
    wait_until([&] { return events.opens() > 0 || events.closes() > 0; },
               wait_limit);
    return conn;
  }

  /// Connects with `tls`, which must fail before the connection opens.
  /// @returns what the connection reported.
  client_events refusal(const tls_options& tls) {
    client_events events;
    auto conn = connect(tls, events);
    REQUIRE(events.wait_closed());
    return events;
  }

  /// Sends `message` and waits for the echo.
  static bool echoes(ws_client_connection& conn, client_events& events,
                     const std::string& message) {
    auto before = events.frames().size();
    conn.send(text(message));
    return wait_until(
      [&] {
        auto frames = events.frames();
        return frames.size() > before && frames.back() == message;
      },
      wait_limit);
  }
};

} // namespace

// -- URLs ---------------------------------------------------------------------

TEST_CASE("parse_url splits ws, wss, http and https URLs", "[ws_client]") {
  auto parse = [](std::string_view url) {
    auto result = parse_url(url);
    if (auto* error = std::get_if<std::string>(&result))
      FAIL(*error);
    return std::get<parsed_url>(result);
  };
  auto url = parse("ws://relay.example");
  CHECK_FALSE(url.tls);
  CHECK(url.host == "relay.example");
  CHECK(url.port == 80);
  CHECK(url.target == "/");
  url = parse("WSS://relay.example/nostr?x=1#frag");
  CHECK(url.tls);
  CHECK(url.port == 443);
  CHECK(url.target == "/nostr?x=1");
  url = parse("https://relay.example:8443?q");
  CHECK(url.tls);
  CHECK(url.port == 8443);
  CHECK(url.target == "/?q");
  url = parse("http://127.0.0.1:7777/");
  CHECK_FALSE(url.tls);
  CHECK(url.host == "127.0.0.1");
  CHECK(url.port == 7777);
  url = parse("ws://[::1]:9000/a");
  CHECK(url.host == "::1");
  CHECK(url.port == 9000);
  CHECK(url.target == "/a");
  url = parse("wss://[2001:db8::1]");
  CHECK(url.host == "2001:db8::1");
  CHECK(url.port == 443);
}

TEST_CASE("parse_url rejects malformed URLs with a reason", "[ws_client]") {
  for (auto bad : {"", "relay.example", "ftp://relay.example", "ws://",
                   "ws://:80/", "ws://host:", "ws://host:0", "ws://host:65536",
                   "ws://host:80x", "ws://[::1", "ws://[nope]:80",
                   "ws://[::1]x", "ws://::1/", "ws://user@host/",
                   "ws://host/a b", "ws://ho\r\nst/"}) {
    auto result = parse_url(bad);
    INFO(bad);
    REQUIRE(std::holds_alternative<std::string>(result));
    CHECK(std::get<std::string>(result).find("bad url") == 0);
  }
}

TEST_CASE("failure kinds have names", "[ws_client]") {
  CHECK(to_string(failure_kind::none) == "none");
  CHECK(to_string(failure_kind::pin) == "pin");
  CHECK(to_string(failure_kind::closed_by_peer) == "closed_by_peer");
  CHECK(to_string(failure_kind::timeout) == "timeout");
}

// -- plain ws -----------------------------------------------------------------

TEST_CASE_METHOD(echo_fixture, "a paused client reads nothing until resumed",
                 "[ws_client]") {
  io_runtime io{2};
  client_events events;
  auto conn = connect_ws(io.context(), url(), {}, events.callbacks());
  REQUIRE(events.wait_open());
  conn->pause_reading();
  for (auto word : {"a", "b", "c"})
    conn->send(text(word));
  // The read already pending when the pause came may still deliver one frame;
  // nothing after it may arrive while paused.
  CHECK_FALSE(wait_until([&] { return events.frames().size() > 1; },
                         std::chrono::milliseconds{300}));
  conn->resume_reading();
  REQUIRE(wait_until([&] { return events.frames().size() == 3; }, wait_limit));
  CHECK(events.frames() == std::vector<std::string>{"a", "b", "c"});
  conn->close("done");
  REQUIRE(events.wait_closed());
}

TEST_CASE_METHOD(server_fixture, "plain ws: frames are echoed, close is ours",
                 "[ws_client]") {
  echo = true;
  start();
  REQUIRE(start_error().empty());
  io_runtime io{2};
  client_events events;
  auto url = "ws://127.0.0.1:" + std::to_string(port()) + "/";
  auto conn = connect_ws(io.context(), url, {}, events.callbacks());
  // Queued while connecting: goes out right after the handshake.
  conn->send(text("early"));
  REQUIRE(events.wait_open());
  conn->send(text("hello"));
  conn->send(text(""));
  REQUIRE(wait_until([&] { return events.frames().size() == 3; }, wait_limit));
  CHECK(events.frames() == std::vector<std::string>{"early", "hello", ""});
  // Room for parsing each frame where it is (net/ws_message_text.hpp).
  for (auto spare : events.spare_capacity())
    CHECK(spare >= ws_message_padding);
  CHECK(wait_until([&] { return conn->queued_bytes() == 0; }));
  CHECK(conn->bytes_sent() == 10);
  CHECK(conn->bytes_received() == 10);
  conn->close("done");
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::none);
  CHECK(events.reason() == "done");
  REQUIRE(wait_until([&] { return closes().size() == 1; }, wait_limit));
  CHECK(closes()[0].find("done") != std::string::npos);
  REQUIRE(released(conn));
  CHECK(events.closes() == 1);
}

TEST_CASE_METHOD(server_fixture,
                 "plain ws: the server closing is closed_by_peer, once",
                 "[ws_client]") {
  start();
  io_runtime io{2};
  client_events events;
  auto url = "ws://127.0.0.1:" + std::to_string(port());
  auto conn = connect_ws(io.context(), url, {}, events.callbacks());
  REQUIRE(events.wait_open());
  REQUIRE(wait_until([&] { return opened() == 1; }));
  connection(0)->close("bye");
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::closed_by_peer);
  CHECK(events.reason() == "closed by peer (1000: bye)");
  // Whatever the owner does after the end changes nothing.
  conn->send(text("late"));
  conn->close("late");
  REQUIRE(released(conn));
  CHECK(events.closes() == 1);
  CHECK(events.opens() == 1);
}

TEST_CASE_METHOD(server_fixture,
                 "plain ws: an oversize message from the relay is a protocol "
                 "failure",
                 "[ws_client]") {
  echo = true;
  start();
  io_runtime io{2};
  client_events events;
  auto url = "ws://127.0.0.1:" + std::to_string(port());
  auto conn = connect_ws(io.context(), url, {}, events.callbacks(), 5s, 1024);
  REQUIRE(events.wait_open());
  conn->send(text(std::string(1024, 'a')));
  REQUIRE(wait_until([&] { return events.frames().size() == 1; }, wait_limit));
  conn->send(text(std::string(1025, 'b')));
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::protocol);
  CHECK(events.reason() == "message larger than 1024 bytes");
  CHECK(events.frames().size() == 1);
}

TEST_CASE_METHOD(server_fixture,
                 "plain ws: overflowing the outbound cap is a protocol failure",
                 "[ws_client]") {
  start();
  io_runtime io{2};
  client_events events;
  auto url = "ws://127.0.0.1:" + std::to_string(port());
  auto conn = connect_ws(io.context(), url, {}, events.callbacks(), 5s,
                         1024 * 1024, 100);
  REQUIRE(events.wait_open());
  conn->send(text(std::string(101, 'x')));
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::protocol);
  CHECK(events.reason() == "outbound overflow");
  CHECK(conn->queued_bytes() == 0);
  REQUIRE(released(conn));
  CHECK(events.closes() == 1);
}

TEST_CASE_METHOD(server_fixture,
                 "plain ws: an upgrade the server declines is an http failure",
                 "[ws_client]") {
  ws_server_options opts;
  opts.websocket = false;
  start(opts, [](http_request, std::function<void(http_response)> respond) {
    respond(http_response{404, "text/plain", {}, "no\n"});
  });
  io_runtime io{2};
  client_events events;
  auto url = "ws://127.0.0.1:" + std::to_string(port());
  auto conn = connect_ws(io.context(), url, {}, events.callbacks());
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.opens() == 0);
  CHECK(events.kind() == failure_kind::http);
  CHECK(events.reason() == "upgrade declined: HTTP 404");
}

TEST_CASE_METHOD(server_fixture, "http_get over plain TCP sends the headers",
                 "[ws_client]") {
  std::mutex mtx;
  http_request seen;
  start({}, [&](http_request req, std::function<void(http_response)> respond) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      seen = req;
    }
    respond(http_response{200, "application/nostr+json", {}, R"({"a":1})"});
  });
  io_runtime io{2};
  auto result = get_and_wait(
    io.context(), "http://127.0.0.1:" + std::to_string(port()) + "/info?x=1",
    {}, {{"Accept", "application/nostr+json"}});
  REQUIRE(result);
  CHECK(result->failure == failure_kind::none);
  CHECK(result->error.empty());
  CHECK(result->status == 200);
  CHECK(result->body == R"({"a":1})");
  std::lock_guard<std::mutex> guard{mtx};
  CHECK(seen.method == "GET");
  CHECK(seen.target == "/info?x=1");
  CHECK(seen.headers["accept"] == "application/nostr+json");
  CHECK(seen.headers["host"] == "127.0.0.1:" + std::to_string(port()));
}

// -- failures before open -----------------------------------------------------

TEST_CASE("a refused connection is a tcp failure", "[ws_client]") {
  io_runtime io{2};
  client_events events;
  auto url = "ws://127.0.0.1:" + std::to_string(closed_port());
  auto conn = connect_ws(io.context(), url, {}, events.callbacks());
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::tcp);
  CHECK(events.reason().find("connect 127.0.0.1:") == 0);
  REQUIRE(released(conn));
  CHECK(events.closes() == 1);
  CHECK(events.opens() == 0);
}

TEST_CASE("a bad URL is reported through on_close", "[ws_client]") {
  io_runtime io{1};
  client_events events;
  auto conn = connect_ws(io.context(), "nope://x", {}, events.callbacks());
  REQUIRE(conn);
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::dns);
  CHECK(events.reason().find("bad url 'nope://x'") == 0);
  auto result = get_and_wait(io.context(), "ws://", {});
  REQUIRE(result);
  CHECK(result->failure == failure_kind::dns);
}

TEST_CASE("a server that never answers the handshake times out",
          "[ws_client]") {
  silent_listener silent;
  io_runtime io{2};
  client_events events;
  auto conn
    = connect_ws(io.context(), silent.url(), {}, events.callbacks(), 200ms);
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::timeout);
  CHECK(events.reason()
        == "WebSocket handshake with 127.0.0.1:"
             + std::to_string(silent.port()) + " timed out after 200 ms");
  REQUIRE(released(conn));
  CHECK(events.closes() == 1);
}

TEST_CASE("a relay silent after the handshake times out, pinged first",
          "[ws_client]") {
  mute_relay relay;
  io_runtime io{2};
  client_events events;
  auto started = std::chrono::steady_clock::now();
  auto conn = connect_ws(io.context(), relay.url(), {}, events.callbacks(),
                         wait_limit, 1 << 20, 1 << 20, 200ms);
  REQUIRE(events.wait_open());
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::timeout);
  CHECK(events.reason() == "relay silent for 200 ms");
  // Half the timeout gives the ping, the whole of it the verdict.
  CHECK(std::chrono::steady_clock::now() - started >= 200ms);
  REQUIRE(released(conn));
  CHECK(events.closes() == 1);
}

TEST_CASE_METHOD(echo_fixture, "a quiet relay that answers pings stays "
                               "connected",
                 "[ws_client]") {
  io_runtime io{2};
  client_events events;
  auto conn = connect_ws(io.context(), url(), {}, events.callbacks(), wait_limit,
                         1 << 20, 1 << 20, 200ms);
  REQUIRE(events.wait_open());
  // Four idle timeouts with nothing but our pings and the relay's pongs.
  CHECK_FALSE(wait_until([&] { return events.closes() > 0; }, 800ms));
  conn->send(text("still here"));
  REQUIRE(wait_until([&] { return events.frames().size() == 1; }, wait_limit));
  CHECK(events.frames() == std::vector<std::string>{"still here"});
  conn->close("done");
  REQUIRE(events.wait_closed());
  CHECK(events.kind() == failure_kind::none);
}

TEST_CASE("closing before the handshake abandons the attempt",
          "[ws_client]") {
  silent_listener silent;
  io_runtime io{2};
  client_events events;
  auto conn = connect_ws(io.context(), silent.url(), {}, events.callbacks());
  conn->close("not needed");
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::none);
  CHECK(events.reason() == "not needed");
  REQUIRE(released(conn));
  CHECK(events.closes() == 1);
  CHECK(events.opens() == 0);
}

// -- TLS ----------------------------------------------------------------------

TEST_CASE_METHOD(tls_fixture, "wss with the right CA connects and echoes",
                 "[ws_client]") {
  SECTION("verified against the IP address") {
    client_events events;
    auto conn = connect(trusted(), events);
    REQUIRE(events.opens() == 1);
    CHECK(echoes(*conn, events, "over tls"));
    // RFC 6066: no IP literals in SNI.
    CHECK(server.last_sni().empty());
    conn->close("done");
    REQUIRE(events.wait_closed());
    INFO(events.reason());
    CHECK(events.kind() == failure_kind::none);
  }
  SECTION("verified against an explicit hostname") {
    auto tls = trusted();
    tls.hostname = "localhost";
    client_events events;
    auto conn = connect(tls, events);
    REQUIRE(events.opens() == 1);
    CHECK(echoes(*conn, events, "by name"));
    CHECK(server.last_sni() == "localhost");
  }
  SECTION("the scheme alone turns TLS on") {
    auto tls = trusted();
    tls.enabled = false;
    client_events events;
    auto conn = connect(tls, events);
    REQUIRE(events.opens() == 1);
  }
}

TEST_CASE_METHOD(tls_fixture, "wss without the CA is a tls failure",
                 "[ws_client]") {
  auto tls = trusted();
  tls.ca_certfile.clear();
  client_events events;
  auto conn = connect(tls, events);
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.opens() == 0);
  CHECK(events.kind() == failure_kind::tls);
  CHECK(events.reason().find("certificate verify failed") != std::string::npos);
  REQUIRE(released(conn));
  CHECK(events.closes() == 1);
}

TEST_CASE_METHOD(tls_fixture, "wss with the wrong hostname is a tls failure",
                 "[ws_client]") {
  auto tls = trusted();
  tls.hostname = "relay.example";
  auto events = refusal(tls);
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::tls);
  CHECK(events.reason().find("not valid for relay.example")
        != std::string::npos);
}

TEST_CASE_METHOD(tls_fixture, "a matching SPKI pin connects", "[ws_client]") {
  auto tls = trusted();
  SECTION("hex") {
    tls.spki_sha256_pins = {std::string(64, '0'), pki.server_spki_hex()};
  }
  SECTION("base64") {
    tls.spki_sha256_pins = {pki.server_spki_base64()};
  }
  client_events events;
  auto conn = connect(tls, events);
  REQUIRE(events.opens() == 1);
  CHECK(echoes(*conn, events, "pinned"));
}

TEST_CASE_METHOD(tls_fixture, "a wrong SPKI pin is a pin failure",
                 "[ws_client]") {
  auto tls = trusted();
  tls.spki_sha256_pins = {std::string(64, 'a')};
  auto events = refusal(tls);
  INFO(events.reason());
  CHECK(events.opens() == 0);
  CHECK(events.kind() == failure_kind::pin);
  CHECK(events.reason() == "pin_mismatch: " + pki.server_spki_hex());
  CHECK(server.upgrades() == 0);
}

TEST_CASE_METHOD(tls_fixture, "a malformed pin is a pin failure",
                 "[ws_client]") {
  auto tls = trusted();
  tls.spki_sha256_pins = {"sha256/nothex"};
  auto events = refusal(tls);
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::pin);
  CHECK(events.reason().find("invalid pin 'sha256/nothex'") == 0);
}

TEST_CASE_METHOD(tls_fixture, "a missing CA file is a tls failure",
                 "[ws_client]") {
  auto tls = trusted();
  tls.ca_certfile = pki.ca_file() + ".missing";
  auto events = refusal(tls);
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::tls);
  CHECK(events.reason().find("tls setup: ca_certfile") == 0);
}

TEST_CASE_METHOD(tls_fixture, "the TLS relay closing is closed_by_peer, once",
                 "[ws_client]") {
  client_events events;
  auto conn = connect(trusted(), events);
  REQUIRE(events.opens() == 1);
  conn->send(text("close-me"));
  REQUIRE(events.wait_closed());
  INFO(events.reason());
  CHECK(events.kind() == failure_kind::closed_by_peer);
  CHECK(events.reason() == "closed by peer (1000: bye)");
  REQUIRE(released(conn));
  CHECK(events.closes() == 1);
}

TEST_CASE_METHOD(tls_fixture, "http_get over TLS returns the body",
                 "[ws_client]") {
  auto result = get_and_wait(
    io.context(), "https://127.0.0.1:" + std::to_string(server.port()),
    trusted(), {{"Accept", "application/nostr+json"}});
  REQUIRE(result);
  INFO(result->error);
  CHECK(result->failure == failure_kind::none);
  CHECK(result->status == 200);
  CHECK(result->body == R"({"name":"tls test relay"})");
  CHECK(server.last_accept() == "application/nostr+json");
}

TEST_CASE_METHOD(tls_fixture, "http_get checks pins too", "[ws_client]") {
  auto tls = trusted();
  tls.spki_sha256_pins = {std::string(64, 'b')};
  auto result = get_and_wait(
    io.context(), "https://127.0.0.1:" + std::to_string(server.port()), tls);
  REQUIRE(result);
  CHECK(result->failure == failure_kind::pin);
  CHECK(result->error == "pin_mismatch: " + pki.server_spki_hex());
  CHECK(result->status == 0);
}

TEST_CASE("a relay demanding a client certificate gets ours",
          "[ws_client]") {
  test_pki pki;
  tls_server_options opts;
  opts.require_client_cert = true;
  tls_test_server server{pki, opts};
  io_runtime io{2};
  tls_options tls;
  tls.ca_certfile = pki.ca_file();
  SECTION("with the certificate") {
    tls.client_certfile = pki.client_cert_file();
    tls.client_keyfile = pki.client_key_file();
    client_events events;
    auto conn = connect_ws(io.context(), wss_url(server), tls,
                           events.callbacks());
    REQUIRE(events.wait_open());
  }
  SECTION("without it") {
    client_events events;
    auto conn = connect_ws(io.context(), wss_url(server), tls,
                           events.callbacks());
    REQUIRE(events.wait_closed());
    INFO(events.reason());
    CHECK(events.opens() == 0);
    CHECK(events.kind() == failure_kind::tls);
  }
}

TEST_CASE_METHOD(server_fixture,
                 "with a compressing server, messages go both ways intact",
                 "[ws_client][compression]") {
  echo = true;
  ws_server_options opts;
  opts.compression = true;
  start(opts);
  REQUIRE(start_error().empty());
  io_runtime io{2};
  client_events events;
  auto url = "ws://127.0.0.1:" + std::to_string(port()) + "/";
  auto conn = connect_ws(io.context(), url, {}, events.callbacks());
  REQUIRE(events.wait_open());
  std::vector<std::string> sent;
  for (int i = 0; i < 5; ++i) {
    sent.push_back(std::string(3000, static_cast<char>('a' + i)) + std::to_string(i));
    conn->send(text(sent.back()));
  }
  REQUIRE(wait_until([&] { return events.frames().size() == sent.size(); }, wait_limit));
  CHECK(events.frames() == sent);
  CHECK(frames() == sent);
  conn->close("done");
  REQUIRE(events.wait_closed());
}
