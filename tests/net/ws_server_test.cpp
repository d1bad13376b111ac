#include "net/ws_server.hpp"
#include "net/ws_message_text.hpp"

#include "net/simple_client.hpp"
#include "tests/fixtures/small_window_client.hpp"
#include "tests/net/net_fixture.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <map>
#include <optional>
#include <thread>

using namespace ferry::net;
using namespace std::chrono_literals;
using ferry::net::test::server_fixture;
using ferry::net::test::wait_until;

namespace {

constexpr auto short_wait = 2000ms;

std::string connect(simple_ws_client& client, const server_fixture& fix) {
  return client.connect("127.0.0.1", fix.port());
}

/// Checks the JSON error body every HTTP error of the server carries.
void check_json_error(const http_result& r, unsigned status,
                      const std::string& message_part) {
  INFO(r.response.body);
  CHECK(r.response.status == status);
  CHECK(r.response.content_type == "application/json");
  auto prefix = R"({"error":{"code":)" + std::to_string(status)
                + R"(,"message":")";
  CHECK(r.response.body.rfind(prefix, 0) == 0);
  CHECK(r.response.body.find(message_part) != std::string::npos);
}

/// Sends `bytes` on a fresh connection and returns all it reads until the
/// server closes.
std::string raw_exchange(uint16_t port, const std::string& bytes) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket{ioc};
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::asio::write(socket, boost::asio::buffer(bytes));
  std::string text;
  boost::system::error_code ec;
  char buf[4096];
  while (!ec)
    text.append(buf, socket.read_some(boost::asio::buffer(buf), ec));
  return text;
}

/// A WebSocket upgrade request, written by hand.
const std::string upgrade_request =
  "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
  "Sec-WebSocket-Version: 13\r\n\r\n";

/// Opens `socket` to the server and completes the WebSocket handshake by
/// hand (a peer that never answers a ping unless the test makes it), then
/// reads up to the end of the 101 response and leaves the rest unread.
/// `receive_buffer`, if set, caps the kernel's receive buffer first (no
/// autotuning), so what the server sends backs up quickly.
void raw_upgrade(boost::asio::ip::tcp::socket& socket, uint16_t port,
                 std::optional<int> receive_buffer = std::nullopt) {
  socket.open(boost::asio::ip::tcp::v4());
  if (receive_buffer)
    socket.set_option(boost::asio::socket_base::receive_buffer_size{*receive_buffer});
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::asio::write(socket, boost::asio::buffer(upgrade_request));
}

/// Reads one byte at a time up to the blank line that ends the 101 response.
std::string read_upgrade_response(boost::asio::ip::tcp::socket& socket) {
  std::string head;
  char c = 0;
  while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
    boost::asio::read(socket, boost::asio::buffer(&c, 1));
    head.push_back(c);
  }
  return head;
}

} // namespace

TEST_CASE_METHOD(server_fixture,
                 "a WebSocket frame goes through on_frame and back",
                 "[ws_server]") {
  echo = true;
  start();
  REQUIRE(start_error().empty());
  REQUIRE(port() != 0);
  simple_ws_client client;
  REQUIRE(connect(client, *this).empty());
  REQUIRE(wait_until([&] { return connection_count() == 1; }));
  CHECK(connection(0)->remote_address().rfind("127.0.0.1:", 0) == 0);
  for (auto text : {"hello", "", "world"}) {
    REQUIRE(client.send(text).empty());
    auto echoed = client.receive(short_wait);
    REQUIRE(echoed);
    CHECK(*echoed == text);
  }
  CHECK(frames() == std::vector<std::string>{"hello", "", "world"});
  // Room for parsing each frame where it is (net/ws_message_text.hpp).
  for (auto spare : frame_spare_capacity())
    CHECK(spare >= ws_message_padding);
  CHECK(wait_until([&] { return connection(0)->queued_bytes() == 0; }));
}

TEST_CASE_METHOD(server_fixture, "send_all queues frames in order",
                 "[ws_server]") {
  start();
  simple_ws_client client;
  REQUIRE(connect(client, *this).empty());
  REQUIRE(wait_until([&] { return opened() == 1; }));
  connection(0)->send_all({"x", "y", "z"});
  for (auto text : {"x", "y", "z"}) {
    auto got = client.receive(short_wait);
    REQUIRE(got);
    CHECK(*got == text);
  }
}

TEST_CASE_METHOD(server_fixture,
                 "send_batch sends each frame of its one buffer as a message",
                 "[ws_server]") {
  start();
  simple_ws_client client;
  REQUIRE(connect(client, *this).empty());
  REQUIRE(wait_until([&] { return opened() == 1; }));
  frame_batch batch;
  for (std::string text : {"first", "", "[\"EOSE\",\"s\"]"}) {
    batch.bytes += text;
    batch.end_frame();
  }
  connection(0)->send_batch(std::move(batch));
  connection(0)->send_batch({});
  connection(0)->send_all({"after"});
  for (auto text : {"first", "", "[\"EOSE\",\"s\"]", "after"}) {
    auto got = client.receive(short_wait);
    REQUIRE(got);
    CHECK(*got == text);
  }
  CHECK(wait_until([&] { return connection(0)->queued_bytes() == 0; }));
}

TEST_CASE_METHOD(server_fixture, "plain HTTP goes to on_http",
                 "[ws_server][http]") {
  std::mutex mtx;
  std::vector<http_request> requests;
  start({}, [&](http_request req, std::function<void(http_response)> respond) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      requests.push_back(req);
    }
    http_response res;
    res.content_type = "application/nostr+json";
    res.headers["Access-Control-Allow-Origin"] = "*";
    res.body = R"({"name":"ferry"})";
    // respond is thread-safe: answer from another thread, as an actor would.
    std::thread{[respond, res] { respond(res); }}.detach();
  });
  REQUIRE(start_error().empty());
  auto result = simple_http_request("127.0.0.1", port(), "GET", "/info?x=1",
                                    {{"Accept", "application/nostr+json"}});
  REQUIRE(result.error.empty());
  CHECK(result.response.status == 200);
  CHECK(result.response.content_type == "application/nostr+json");
  CHECK(result.response.headers["access-control-allow-origin"] == "*");
  CHECK(result.response.headers["server"] == "ferry");
  CHECK(result.response.body == R"({"name":"ferry"})");
  std::lock_guard<std::mutex> guard{mtx};
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "GET");
  CHECK(requests[0].target == "/info?x=1");
  CHECK(requests[0].headers["accept"] == "application/nostr+json");
  CHECK(requests[0].remote_address.rfind("127.0.0.1:", 0) == 0);
  CHECK(connection_count() == 0);
}

TEST_CASE_METHOD(server_fixture, "an HTTP body over the limit gets 413",
                 "[ws_server][http]") {
  std::atomic<int> calls{0};
  start({}, [&](http_request req, std::function<void(http_response)> respond) {
    ++calls;
    auto size = std::to_string(req.body.size());
    respond(http_response{201, "text/plain", {}, size});
  });
  auto small = simple_http_request("127.0.0.1", port(), "POST", "/",
                                   {}, std::string(1000, 'a'));
  REQUIRE(small.error.empty());
  CHECK(small.response.status == 201);
  CHECK(small.response.body == "1000");
  auto large = simple_http_request("127.0.0.1", port(), "POST", "/", {},
                                   std::string(2 * 1024 * 1024, 'a'));
  REQUIRE(large.error.empty());
  CHECK(large.response.status == 413);
  check_json_error(large, 413, "request body too large");
  CHECK(calls == 1);
}

TEST_CASE_METHOD(server_fixture,
                 "oversize headers get 431, broken requests 400, both JSON",
                 "[ws_server][http]") {
  std::atomic<int> calls{0};
  start({}, [&](http_request, std::function<void(http_response)> respond) {
    ++calls;
    respond(http_response{200, "text/plain", {}, "ok"});
  });
  // Beast caps one field's size, so many fields make the large header.
  std::map<std::string, std::string> fields;
  for (int i = 0; i < 32; ++i)
    fields["X-Big-" + std::to_string(i)] = std::string(1024, 'a');
  auto large = simple_http_request("127.0.0.1", port(), "GET", "/", fields);
  REQUIRE(large.error.empty());
  check_json_error(large, 431, "header fields too large");
  // Beast would refuse to send a broken request, so this one goes raw.
  auto broken = raw_exchange(port(), "GET / HTTP/9\r\n\r\n");
  CHECK(broken.rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(broken.find("Content-Type: application/json") != std::string::npos);
  CHECK(broken.find(R"({"error":{"code":400,"message":"malformed HTTP request: )")
        != std::string::npos);
  CHECK(calls == 0);
}

TEST_CASE_METHOD(server_fixture, "a dropped respond still answers 500",
                 "[ws_server][http]") {
  start({}, [](http_request, std::function<void(http_response)>) {
    // nop
  });
  auto result = simple_http_request("127.0.0.1", port(), "GET", "/");
  REQUIRE(result.error.empty());
  check_json_error(result, 500, "dropped");
}

TEST_CASE_METHOD(server_fixture, "without websocket an upgrade is plain HTTP",
                 "[ws_server][http]") {
  ws_server_options opts;
  opts.websocket = false;
  std::atomic<int> calls{0};
  start(opts, [&](http_request, std::function<void(http_response)> respond) {
    ++calls;
    respond(http_response{404, "text/plain", {}, "no websockets here"});
  });
  simple_ws_client client;
  CHECK_FALSE(connect(client, *this).empty());
  CHECK_FALSE(client.is_open());
  CHECK(calls == 1);
  CHECK(opened() == 0);
}

TEST_CASE_METHOD(server_fixture, "an oversize message is discarded and the "
                                 "connection stays usable",
                 "[ws_server]") {
  echo = true;
  ws_server_options opts;
  opts.max_frame_bytes = 1024;
  start(opts);
  simple_ws_client client;
  REQUIRE(connect(client, *this).empty());
  // Exactly at the limit is still fine.
  REQUIRE(client.send(std::string(1024, 'a')).empty());
  auto at_limit = client.receive(short_wait);
  REQUIRE(at_limit);
  CHECK(at_limit->size() == 1024);
  // Larger than one read chunk, so discarding spans several reads.
  REQUIRE(client.send(std::string(200 * 1024, 'b')).empty());
  REQUIRE(client.send("after").empty());
  auto next = client.receive(short_wait);
  REQUIRE(next);
  CHECK(*next == "after");
  CHECK(oversize() == std::vector<size_t>{200 * 1024});
  CHECK(frames().size() == 2);
  CHECK(client.is_open());
  CHECK(closes().empty());
}

TEST_CASE_METHOD(server_fixture, "reading pauses at max_inflight until "
                                 "frame_done",
                 "[ws_server]") {
  auto_done = false;
  ws_server_options opts;
  opts.max_inflight = 2;
  start(opts);
  simple_ws_client client;
  REQUIRE(connect(client, *this).empty());
  for (auto text : {"1", "2", "3"})
    REQUIRE(client.send(text).empty());
  REQUIRE(wait_until([&] { return frames().size() == 2; }));
  // Bounded wait for something that must not happen.
  CHECK_FALSE(wait_until([&] { return frames().size() == 3; }, 200ms));
  connection(0)->frame_done(1);
  REQUIRE(wait_until([&] { return frames().size() == 3; }));
  CHECK(frames() == std::vector<std::string>{"1", "2", "3"});
  // Below the cap again: new frames flow without further acknowledgements.
  connection(0)->frame_done(1);
  connection(0)->frame_done(1);
  REQUIRE(client.send("4").empty());
  REQUIRE(wait_until([&] { return frames().size() == 4; }));
}

TEST_CASE_METHOD(server_fixture, "a reader that falls behind gets the overflow "
                                 "notice last and is closed",
                 "[ws_server]") {
  const std::string notice = R"(["NOTICE","overflow"])";
  ws_server_options opts;
  opts.max_outbound_bytes = 256 * 1024;
  opts.overflow_notice = notice;
  auto overflows = std::make_shared<std::atomic<int>>(0);
  opts.on_overflow = [overflows](const std::string&, bool shared_budget) {
    // Its own cap, not the budget for all (there is none).
    *overflows += shared_budget ? 100 : 1;
  };
  start(opts);
  simple_ws_client client;
  REQUIRE(connect(client, *this).empty());
  REQUIRE(wait_until([&] { return opened() == 1; }));
  auto conn = connection(0);
  auto frame = std::make_shared<const std::string>(16 * 1024, 'x');
  // 64 MiB while the client does not read: far beyond the cap plus what the
  // kernel buffers absorb. The queue never holds more than the cap.
  for (int i = 0; i < 4096; ++i) {
    conn->send(frame);
    REQUIRE(conn->queued_bytes() <= opts.max_outbound_bytes);
  }
  // Sent after the overflow, so it must never arrive.
  conn->send(std::make_shared<const std::string>("sentinel"));
  std::vector<std::string> received;
  while (auto message = client.receive(short_wait))
    received.push_back(std::move(*message));
  CHECK_FALSE(client.is_open());
  CHECK(client.close_reason() == "outbound overflow");
  REQUIRE(!received.empty());
  CHECK(received.back() == notice);
  CHECK(received.size() < 4096);
  CHECK(*overflows == 1);
  for (size_t i = 0; i + 1 < received.size(); ++i)
    REQUIRE(received[i] == *frame);
  REQUIRE(wait_until([&] { return closes().size() == 1; }));
  CHECK(closes()[0] == "outbound overflow");
  CHECK(wait_until([&] { return connection_count() == 0; }));
  CHECK(conn->queued_bytes() == 0);
}

TEST_CASE_METHOD(server_fixture, "close(reason) closes after the queued frames",
                 "[ws_server]") {
  start();
  simple_ws_client client;
  REQUIRE(connect(client, *this).empty());
  REQUIRE(wait_until([&] { return opened() == 1; }));
  auto conn = connection(0);
  conn->send(std::make_shared<const std::string>("a"));
  conn->send(std::make_shared<const std::string>("b"));
  conn->close("bye");
  conn->send(std::make_shared<const std::string>("too late"));
  auto a = client.receive(short_wait);
  auto b = client.receive(short_wait);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a == "a");
  CHECK(*b == "b");
  CHECK_FALSE(client.receive(short_wait));
  CHECK_FALSE(client.is_open());
  CHECK(client.close_reason() == "bye");
  REQUIRE(wait_until([&] { return closes().size() == 1; }));
  CHECK(closes()[0] == "bye");
  CHECK(wait_until([&] { return connection_count() == 0; }));
}

TEST_CASE_METHOD(server_fixture, "a peer close is reported once",
                 "[ws_server]") {
  start();
  simple_ws_client client;
  REQUIRE(connect(client, *this).empty());
  REQUIRE(wait_until([&] { return connection_count() == 1; }));
  client.close();
  REQUIRE(wait_until([&] { return closes().size() == 1; }));
  CHECK(closes()[0].rfind("closed by peer (1000", 0) == 0);
  CHECK(wait_until([&] { return connection_count() == 0; }));
  // A late close() from the owner is harmless and reports nothing more.
  connection(0)->close("late");
  CHECK_FALSE(wait_until([&] { return closes().size() > 1; }, 100ms));
}

TEST_CASE_METHOD(server_fixture, "a silent peer is pinged, then disconnected "
                 "after the idle timeout", "[ws_server]") {
  ws_server_options opts;
  opts.idle_timeout = 200ms;
  start(opts);
  // Completes the WebSocket handshake, then never reads or answers again.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket{ioc};
  raw_upgrade(socket, port());
  REQUIRE(wait_until([&] { return connection_count() == 1; }));
  REQUIRE(wait_until([&] { return closes().size() == 1; }));
  CHECK(closes()[0].find("timeout") != std::string::npos);
  // What the server sent: the 101 response, then a ping (opcode 9) before
  // it gave up.
  std::string bytes;
  boost::system::error_code ec;
  char buf[4096];
  while (!ec)
    bytes.append(buf, socket.read_some(boost::asio::buffer(buf), ec));
  auto frames = bytes.find("\r\n\r\n");
  REQUIRE(frames != std::string::npos);
  CHECK(bytes.rfind("HTTP/1.1 101", 0) == 0);
  CHECK(bytes.find('\x89', frames) != std::string::npos);
}

TEST_CASE_METHOD(server_fixture, "a quiet peer that answers pings stays "
                 "connected", "[ws_server]") {
  echo = true;
  ws_server_options opts;
  opts.idle_timeout = 200ms;
  start(opts);
  simple_ws_client client;
  REQUIRE(connect(client, *this).empty());
  REQUIRE(wait_until([&] { return connection_count() == 1; }));
  // Five idle timeouts of silence but for the pongs the client's reads
  // send back.
  auto until = std::chrono::steady_clock::now() + 1000ms;
  while (std::chrono::steady_clock::now() < until)
    CHECK_FALSE(client.receive(50ms));
  REQUIRE(client.is_open());
  CHECK(closes().empty());
  REQUIRE(client.send("still here").empty());
  auto echoed = client.receive(short_wait);
  REQUIRE(echoed);
  CHECK(*echoed == "still here");
}

TEST_CASE_METHOD(server_fixture, "a peer that reads a backlog slowly stays "
                 "connected without sending and is dropped once it stops",
                 "[ws_server]") {
  ws_server_options opts;
  opts.idle_timeout = 200ms;
  start(opts);
  // Never sends a byte after the upgrade, so never a pong: only what it
  // takes of the server's backlog shows it is alive.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket{ioc};
  raw_upgrade(socket, port(), 16 * 1024);
  REQUIRE(read_upgrade_response(socket).rfind("HTTP/1.1 101", 0) == 0);
  REQUIRE(wait_until([&] { return opened() == 1; }));
  auto conn = connection(0);
  auto frame = std::make_shared<const std::string>(8 * 1024, 'x');
  // Six idle timeouts of a slow reader (~4 MB/s, far less than loopback
  // takes): the server always has more queued than the peer has read, so
  // the backlog is there at every tick and moves between ticks.
  size_t read = 0;
  std::array<char, 4096> buf;
  auto until = std::chrono::steady_clock::now() + 1200ms;
  while (std::chrono::steady_clock::now() < until) {
    while (conn->queued_bytes() < 512 * 1024)
      conn->send(frame);
    read += socket.read_some(boost::asio::buffer(buf));
    // The pace of a slow reader, not a wait for an event.
    std::this_thread::sleep_for(1ms);
  }
  CHECK(read > 64 * 1024);
  CHECK(closes().empty());
  // Now it stops reading: the backlog stands still, and that is no sign of
  // life either.
  REQUIRE(wait_until([&] { return closes().size() == 1; }, short_wait));
  CHECK(closes()[0].rfind("idle timeout", 0) == 0);
}

TEST_CASE_METHOD(server_fixture, "a peer the owner has not caught up with is "
                 "not timed out while reading is paused",
                 "[ws_server]") {
  auto_done = false;
  ws_server_options opts;
  opts.idle_timeout = 200ms;
  opts.max_inflight = 1;
  start(opts);
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket{ioc};
  raw_upgrade(socket, port());
  REQUIRE(read_upgrade_response(socket).rfind("HTTP/1.1 101", 0) == 0);
  // One masked text frame ("hi", mask 0), then silence: the server reads no
  // further until its owner is done with the frame.
  boost::asio::write(socket, boost::asio::buffer(std::string{"\x81\x82\0\0\0\0hi", 8}));
  REQUIRE(wait_until([&] { return frames().size() == 1; }));
  // Five idle timeouts of a pause that is the owner's doing.
  CHECK_FALSE(wait_until([&] { return !closes().empty(); }, 1000ms));
  // Reading again, the peer's silence counts: pinged, never answered.
  connection(0)->frame_done(2);
  REQUIRE(wait_until([&] { return closes().size() == 1; }, short_wait));
  CHECK(closes()[0].rfind("idle timeout", 0) == 0);
}

TEST_CASE_METHOD(server_fixture, "stop closes every connection",
                 "[ws_server]") {
  start();
  std::vector<std::unique_ptr<simple_ws_client>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<simple_ws_client>());
    REQUIRE(connect(*clients.back(), *this).empty());
  }
  REQUIRE(wait_until([&] { return connection_count() == 3; }));
  server().stop();
  for (auto& client : clients) {
    CHECK_FALSE(client->receive(short_wait));
    CHECK_FALSE(client->is_open());
    CHECK(client->close_reason() == "server stopping");
  }
  CHECK(wait_until([&] { return connection_count() == 0; }));
  REQUIRE(wait_until([&] { return closes().size() == 3; }));
  for (const auto& reason : closes())
    CHECK(reason == "server stopping");
  // Stopping twice is fine, and nobody is accepted any more.
  server().stop();
  simple_ws_client late;
  CHECK(wait_until([&] { return !connect(late, *this).empty(); }));
}

TEST_CASE_METHOD(server_fixture, "50 concurrent connections echo correctly",
                 "[ws_server]") {
  echo = true;
  start();
  constexpr int clients = 50;
  constexpr int messages = 20;
  std::atomic<int> failures{0};
  std::atomic<int> connected{0};
  std::atomic<bool> all_connected{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      simple_ws_client client;
      if (!client.connect("127.0.0.1", port()).empty()) {
        ++failures;
        ++connected;
        return;
      }
      ++connected;
      // Everybody is connected before anybody talks, so the server really
      // holds 50 sessions at once.
      wait_until([&] { return all_connected.load(); }, 5000ms);
      for (int m = 0; m < messages; ++m) {
        auto text = std::to_string(c) + ":" + std::to_string(m);
        auto echoed = client.send(text).empty() ? client.receive(short_wait)
                                                : std::nullopt;
        if (!echoed || *echoed != text)
          ++failures;
      }
    });
  REQUIRE(wait_until([&] { return connected == clients; }, 5000ms));
  CHECK(wait_until([&] {
    return connection_count() == static_cast<size_t>(clients - failures);
  }));
  all_connected = true;
  for (auto& thread : threads)
    thread.join();
  CHECK(failures == 0);
  CHECK(frames().size() == static_cast<size_t>(clients * messages));
  CHECK(wait_until([&] { return connection_count() == 0; }));
  // A session leaves the count just before it tells its owner.
  CHECK(wait_until(
    [&] { return closes().size() == static_cast<size_t>(clients); }));
}

TEST_CASE("start reports a port already in use", "[ws_server]") {
  server_fixture first;
  first.start();
  REQUIRE(first.start_error().empty());
  io_runtime runtime{1};
  ws_server_options opts;
  opts.port = first.port();
  ws_server second{runtime.context(), opts, {}, {}};
  auto error = second.start();
  CHECK(error == "bind 127.0.0.1:" + std::to_string(first.port())
                   + ": Address already in use");
}

TEST_CASE("on_close is called even when the io_context goes first",
          "[ws_server]") {
  std::mutex mtx;
  std::vector<std::string> closes;
  std::atomic<int> opened{0};
  // Outermost, so that its close does not wait for the vanished server.
  simple_ws_client client;
  {
    io_runtime runtime{1};
    ws_server server{runtime.context(), {},
                     [&](const std::shared_ptr<ws_connection>&) {
                       ++opened;
                       ws_callbacks callbacks;
                       callbacks.on_close = [&](const std::string& reason) {
                         std::lock_guard<std::mutex> guard{mtx};
                         closes.push_back(reason);
                       };
                       return callbacks;
                     },
                     {}};
    REQUIRE(server.start().empty());
    REQUIRE(client.connect("127.0.0.1", server.port()).empty());
    REQUIRE(wait_until([&] { return opened == 1; }));
    runtime.stop();
  }
  std::lock_guard<std::mutex> guard{mtx};
  CHECK(closes == std::vector<std::string>{"io stopped"});
}

TEST_CASE_METHOD(server_fixture, "an upgrade beyond max_connections is answered "
                                 "503, and a place that frees is taken again",
                 "[ws_server][limits]") {
  echo = true;
  ws_server_options opts;
  opts.max_connections = 2;
  std::atomic<int> refused{0};
  opts.on_connection_refused = [&](const std::string& remote, bool address_cap) {
    CHECK(remote.rfind("127.0.0.1:", 0) == 0);
    CHECK_FALSE(address_cap);
    ++refused;
  };
  start(opts);
  simple_ws_client first;
  simple_ws_client second;
  REQUIRE(connect(first, *this).empty());
  REQUIRE(connect(second, *this).empty());
  auto answer = raw_exchange(port(), upgrade_request);
  INFO(answer);
  CHECK(answer.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(answer.find("Retry-After: 10\r\n") != std::string::npos);
  CHECK(answer.find(R"({"error":{"code":503,"message":"too many connections: )"
                    R"(this relay serves at most 2 WebSockets at once; try )"
                    R"(again later"}})")
        != std::string::npos);
  CHECK(refused == 1);
  CHECK(server().refused_connections() == 1);
  // Plain HTTP is no WebSocket: it is still answered.
  auto plain = simple_http_request("127.0.0.1", port(), "GET", "/", {}, "");
  CHECK(plain.response.status == 404);
  // The connections open are served as before.
  REQUIRE(first.send("still here").empty());
  CHECK(first.receive(short_wait) == std::optional<std::string>{"still here"});
  first.close();
  simple_ws_client third;
  CHECK(wait_until([&] { return connect(third, *this).empty(); }));
  REQUIRE(third.send("third").empty());
  CHECK(third.receive(short_wait) == std::optional<std::string>{"third"});
}

TEST_CASE_METHOD(server_fixture, "an upgrade beyond max_connections_per_address "
                                 "is answered 429, and other addresses are served",
                 "[ws_server][limits]") {
  echo = true;
  ws_server_options opts;
  opts.max_connections = 3;
  opts.max_connections_per_address = 1;
  std::atomic<int> refused_by_address{0};
  opts.on_connection_refused = [&](const std::string&, bool address_cap) {
    refused_by_address += address_cap ? 1 : 0;
  };
  start(opts);
  simple_ws_client first;
  REQUIRE(connect(first, *this).empty());
  auto answer = raw_exchange(port(), upgrade_request);
  INFO(answer);
  CHECK(answer.rfind("HTTP/1.1 429", 0) == 0);
  CHECK(answer.find(R"("message":"too many connections from this address: at )"
                    R"(most 1 at once; try again later")")
        != std::string::npos);
  CHECK(refused_by_address == 1);
  // From another loopback address: another peer, with a place of its own.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket other{ioc};
  other.open(boost::asio::ip::tcp::v4());
  other.bind({boost::asio::ip::make_address("127.0.0.2"), 0});
  other.connect({boost::asio::ip::make_address("127.0.0.1"), port()});
  boost::asio::write(other, boost::asio::buffer(upgrade_request));
  CHECK(read_upgrade_response(other).rfind("HTTP/1.1 101", 0) == 0);
  // The address's place frees with its connection.
  first.close();
  simple_ws_client again;
  CHECK(wait_until([&] { return connect(again, *this).empty(); }));
  REQUIRE(again.send("again").empty());
  CHECK(again.receive(short_wait) == std::optional<std::string>{"again"});
}

TEST_CASE_METHOD(server_fixture, "beyond the outbound budget a connection over "
                                 "its share is closed with its notice, and one "
                                 "within its share goes on",
                 "[ws_server][limits]") {
  const std::string own_notice = R"(["NOTICE","own cap"])";
  const std::string shared_notice = R"(["NOTICE","shared budget"])";
  constexpr size_t budget = 1024 * 1024;
  ws_server_options opts;
  opts.max_outbound_bytes = 32 * budget;
  opts.overflow_notice = own_notice;
  opts.max_outbound_total_bytes = budget;
  opts.shared_overflow_notice = shared_notice;
  auto overflows = std::make_shared<std::atomic<int>>(0);
  opts.on_overflow = [overflows](const std::string&, bool shared_budget) {
    *overflows += shared_budget ? 1 : 100;
  };
  start(opts);
  ferry::test::small_window_client slow{port()};
  REQUIRE(wait_until([&] { return opened() == 1; }));
  simple_ws_client reader;
  REQUIRE(connect(reader, *this).empty());
  REQUIRE(wait_until([&] { return opened() == 2; }));
  auto slow_conn = connection(0);
  auto reader_conn = connection(1);
  auto frame = std::make_shared<const std::string>(64 * 1024, 'x');
  // Up to the budget for the client that reads nothing, until its socket
  // takes nothing more: what is queued now stays.
  auto fill = [&] {
    while (slow_conn->queued_bytes() + frame->size() <= budget)
      slow_conn->send(frame);
  };
  fill();
  slow.wait_until_socket_stalls();
  fill();
  REQUIRE(server().outbound_queued_bytes() + frame->size() > budget);
  // With no room left, a producer that can wait keeps each connection below
  // a quarter of its share (half the budget each).
  CHECK(slow_conn->outbound_allowance() == budget / 2 / 4);
  CHECK(reader_conn->outbound_allowance() == budget / 2 / 4);
  // The slow one is over its share, the reader within it: the reader gets
  // its frame although the total passes the budget.
  reader_conn->send(frame);
  CHECK(reader.receive(short_wait) == std::optional<std::string>{*frame});
  // More for the slow one ends it with the notice of the budget, long
  // before its own cap (32 MiB). It never holds more than the budget.
  for (int i = 0; i < 1024; ++i) {
    slow_conn->send(frame);
    REQUIRE(slow_conn->queued_bytes() <= budget);
  }
  slow_conn->send(std::make_shared<const std::string>("never sent"));
  std::vector<std::string> received;
  while (auto message = slow.receive(short_wait))
    received.push_back(std::move(*message));
  REQUIRE(!received.empty());
  CHECK(received.back() == shared_notice);
  CHECK(received.size() < 1024);
  for (size_t i = 0; i + 1 < received.size(); ++i)
    REQUIRE(received[i] == *frame);
  REQUIRE(wait_until([&] { return closes().size() == 1; }));
  CHECK(closes()[0] == "outbound overflow");
  CHECK(*overflows == 1);
  CHECK(wait_until([&] { return server().outbound_queued_bytes() == 0; }));
  // The reader is served as before.
  reader_conn->send(std::make_shared<const std::string>("after"));
  CHECK(reader.receive(short_wait) == std::optional<std::string>{"after"});
  CHECK(reader.is_open());
}

TEST_CASE_METHOD(server_fixture, "a producer that can wait is allowed a quarter "
                                 "of a connection's share or its part of the room "
                                 "below a quarter of the budget, whichever is larger",
                 "[ws_server][limits]") {
  constexpr size_t budget = 1024 * 1024;
  constexpr size_t producers = 2;
  ws_server_options opts;
  opts.max_outbound_total_bytes = budget;
  opts.outbound_producers = producers;
  start(opts);
  // Nine connections: a quarter of a share is a 36th of the budget.
  std::vector<std::unique_ptr<simple_ws_client>> clients;
  for (size_t i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<simple_ws_client>());
    REQUIRE(connect(*clients.back(), *this).empty());
  }
  ferry::test::small_window_client slow{port()};
  REQUIRE(wait_until([&] { return opened() == 9; }));
  auto slow_conn = connection(8);
  const size_t quarter_share = budget / 9 / 4;
  auto granted = [&] {
    auto held = server().outbound_queued_bytes();
    return held < budget / 4 ? (budget / 4 - held) / (2 * producers) : 0;
  };
  // Nothing queued: each of the two producers may take a quarter of the
  // room below a quarter of the budget, so both granted at once stay below
  // an eighth.
  CHECK(granted() == budget / 16);
  CHECK(slow_conn->outbound_allowance() == budget / 16);
  CHECK(connection(0)->outbound_allowance() == budget / 16);
  // The grant shrinks as the budget fills, down to a quarter of the share.
  auto frame = std::make_shared<const std::string>(16 * 1024, 'x');
  auto fill_to = [&](size_t total) {
    while (server().outbound_queued_bytes() + frame->size() <= total)
      slow_conn->send(frame);
  };
  fill_to(budget / 8);
  slow.wait_until_socket_stalls();
  fill_to(budget / 8);
  REQUIRE(granted() > quarter_share);
  REQUIRE(granted() < budget / 16);
  CHECK(slow_conn->outbound_allowance() == granted());
  fill_to(budget / 4);
  REQUIRE(granted() < quarter_share);
  CHECK(slow_conn->outbound_allowance() == quarter_share);
  CHECK(connection(0)->outbound_allowance() == quarter_share);
}

TEST_CASE_METHOD(server_fixture, "beyond the inbound budget a connection over "
                                 "its share is not read until its frames are "
                                 "done, and one within its share is read",
                 "[ws_server][limits]") {
  auto_done = false;
  const std::string big(20'000, 'a');
  // Two frames take the total over it, exactly as the second ends: the
  // pauses come between frames.
  const size_t budget = 2 * big.size() - 1;
  ws_server_options opts;
  opts.max_inbound_total_bytes = budget;
  start(opts);
  simple_ws_client flooder;
  REQUIRE(connect(flooder, *this).empty());
  REQUIRE(wait_until([&] { return opened() == 1; }));
  for (int i = 0; i < 5; ++i)
    REQUIRE(flooder.send(big).empty());
  // Reading stops at its second frame, far below max_inflight (256).
  REQUIRE(wait_until([&] { return frames().size() == 2; }));
  CHECK_FALSE(wait_until([&] { return frames().size() > 2; }, 200ms));
  CHECK(server().inbound_held_bytes() == 2 * big.size());
  // A client that holds nothing is read meanwhile.
  simple_ws_client other;
  REQUIRE(connect(other, *this).empty());
  REQUIRE(other.send("small").empty());
  REQUIRE(wait_until([&] { return frames().size() == 3; }));
  CHECK(frames()[2] == "small");
  connection(1)->frame_done(5);
  CHECK(server().inbound_held_bytes() == 2 * big.size());
  // One frame done: within the budget again, the flooder's third frame is
  // read, which takes it over its share once more.
  connection(0)->frame_done(big.size());
  REQUIRE(wait_until([&] { return frames().size() == 4; }));
  CHECK_FALSE(wait_until([&] { return frames().size() > 4; }, 200ms));
  CHECK(server().inbound_held_bytes() == 2 * big.size());
  connection(0)->frame_done(big.size());
  connection(0)->frame_done(big.size());
  REQUIRE(wait_until([&] { return frames().size() == 6; }));
  CHECK(frames()[5] == big);
  CHECK(server().inbound_held_bytes() == 2 * big.size());
  connection(0)->frame_done(big.size());
  CHECK(server().inbound_held_bytes() == big.size());
  // The flooder leaves with a frame unfinished: it is held while its owner
  // holds the connection, and given back when the owner lets go.
  flooder.close();
  REQUIRE(wait_until([&] { return closes().size() == 1; }));
  CHECK(server().inbound_held_bytes() == big.size());
  forget_connection(0);
  CHECK(wait_until([&] { return server().inbound_held_bytes() == 0; }));
}
