// permessage-deflate on the WebSocket server: negotiated with a client that
// offers it when the server's `compression` is on, never otherwise; frames
// arrive intact either way, and compressed ones take fewer bytes on the wire.

#include "net/ws_server.hpp"

#include "tests/net/net_fixture.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <sys/ioctl.h>

#include <string>

using namespace ferry::net;
using ferry::net::test::server_fixture;
using ferry::net::test::wait_until;

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = boost::asio::ip::tcp;

/// A blocking Beast client; it offers permessage-deflate when told to.
struct beast_client {
  boost::asio::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  /// The server's Sec-WebSocket-Extensions answer.
  std::string extensions;

  beast_client(uint16_t port, bool offer_deflate) {
    tcp::resolver resolver{ioc};
    boost::asio::connect(ws.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
    websocket::permessage_deflate deflate;
    deflate.client_enable = offer_deflate;
    ws.set_option(deflate);
    websocket::response_type res;
    ws.handshake(res, "127.0.0.1", "/");
    extensions = std::string{res[beast::http::field::sec_websocket_extensions]};
  }

  /// Bytes that arrived on the socket and were not read yet.
  size_t unread_socket_bytes() {
    int n = 0;
    ::ioctl(ws.next_layer().native_handle(), FIONREAD, &n);
    return static_cast<size_t>(n);
  }

  std::string read() {
    beast::flat_buffer buffer;
    ws.read(buffer);
    return beast::buffers_to_string(buffer.data());
  }
};

/// Frames like stored events: JSON with repeated keys and values.
std::vector<std::string> compressible_frames() {
  std::vector<std::string> frames;
  for (int i = 0; i < 20; ++i) {
    std::string frame = "[\"EVENT\",\"sub\",{\"kind\":1,\"content\":\"";
    for (int j = 0; j < 100; ++j)
      frame += "the relay sends the stored JSON bytes " + std::to_string(i) + " ";
    frames.push_back(frame + "\"}]");
  }
  return frames;
}

size_t total_size(const std::vector<std::string>& frames) {
  size_t n = 0;
  for (const auto& f : frames)
    n += f.size();
  return n;
}

/// Sends `frames` from the server, waits until they are on the socket, and
/// returns how many bytes they took there; then reads them back.
size_t wire_bytes_of(server_fixture& server, beast_client& client,
                     const std::vector<std::string>& frames) {
  server.connection(0)->send_all(frames);
  REQUIRE(wait_until([&] { return server.connection(0)->queued_bytes() == 0; }));
  // Loopback delivers what was written at once; wait for the last byte.
  size_t wire = 0;
  wait_until([&] {
    auto now = client.unread_socket_bytes();
    bool settled = now == wire && now > 0;
    wire = now;
    return settled;
  });
  for (const auto& frame : frames)
    CHECK(client.read() == frame);
  return wire;
}

} // namespace

TEST_CASE_METHOD(server_fixture,
                 "with compression on, a client that offers permessage-deflate gets it",
                 "[ws_server][compression]") {
  ws_server_options opts;
  opts.compression = true;
  start(opts);
  REQUIRE(start_error().empty());
  beast_client client{port(), true};
  CHECK(client.extensions.find("permessage-deflate") != std::string::npos);
  REQUIRE(wait_until([&] { return opened() == 1; }));
  auto frames = compressible_frames();
  auto wire = wire_bytes_of(*this, client, frames);
  INFO("wire bytes " << wire << ", payload " << total_size(frames));
  CHECK(wire < total_size(frames) / 4);
  // And the other way: the client's compressed frames reach on_frame intact.
  client.ws.write(boost::asio::buffer(frames[0]));
  REQUIRE(wait_until([&] { return this->frames().size() == 1; }));
  CHECK(this->frames()[0] == frames[0]);
}

TEST_CASE_METHOD(server_fixture,
                 "with compression on, a client that offers nothing gets plain frames",
                 "[ws_server][compression]") {
  ws_server_options opts;
  opts.compression = true;
  start(opts);
  beast_client client{port(), false};
  CHECK(client.extensions.empty());
  REQUIRE(wait_until([&] { return opened() == 1; }));
  auto frames = compressible_frames();
  CHECK(wire_bytes_of(*this, client, frames) > total_size(frames));
}

TEST_CASE_METHOD(server_fixture,
                 "with compression off, nothing is negotiated",
                 "[ws_server][compression]") {
  ws_server_options opts;
  opts.compression = false;
  start(opts);
  beast_client client{port(), true};
  CHECK(client.extensions.empty());
  REQUIRE(wait_until([&] { return opened() == 1; }));
  auto frames = compressible_frames();
  CHECK(wire_bytes_of(*this, client, frames) > total_size(frames));
}

TEST_CASE_METHOD(server_fixture,
                 "compressed frames are counted as queued until they are written",
                 "[ws_server][compression]") {
  ws_server_options opts;
  opts.compression = true;
  start(opts);
  beast_client client{port(), true};
  REQUIRE(wait_until([&] { return opened() == 1; }));
  auto conn = connection(0);
  // Many event-sized frames in many sends, as a query worker hands them over.
  std::vector<std::string> frames;
  for (int i = 0; i < 50; ++i)
    frames.push_back(compressible_frames()[0] + std::to_string(i));
  size_t posted = 0;
  for (int round = 0; round < 40; ++round) {
    conn->send_all(frames);
    posted += total_size(frames);
    REQUIRE(conn->queued_bytes() <= posted);
  }
  for (int round = 0; round < 40; ++round)
    for (const auto& frame : frames)
      REQUIRE(client.read() == frame);
  CHECK(wait_until([&] { return conn->queued_bytes() == 0; }));
}

TEST_CASE_METHOD(server_fixture,
                 "messages of every frame length encoding arrive intact, after "
                 "the pong to a ping",
                 "[ws_server][compression]") {
  // Without permessage-deflate the server frames messages itself; lengths
  // under 126, up to 65535 and above take headers of 2, 4 and 10 bytes.
  const bool offer_deflate = GENERATE(false, true);
  ws_server_options opts;
  opts.compression = true;
  start(opts);
  beast_client client{port(), offer_deflate};
  CHECK(client.extensions.empty() == !offer_deflate);
  REQUIRE(wait_until([&] { return opened() == 1; }));
  size_t pongs = 0;
  client.ws.control_callback([&pongs](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong)
      ++pongs;
  });
  // The server has answered the ping once it has read the message after it.
  client.ws.ping("are you there");
  client.ws.write(boost::asio::buffer(std::string{"after the ping"}));
  REQUIRE(wait_until([&] { return this->frames().size() == 1; }));
  std::vector<std::string> frames;
  for (size_t size : {0, 1, 125, 126, 127, 65535, 65536, 70000, 300000}) {
    std::string frame(size, 'x');
    for (size_t i = 0; i < size; i += 7)
      frame[i] = static_cast<char>('a' + i % 26);
    frames.push_back(std::move(frame));
  }
  frame_batch batch;
  for (const auto& frame : frames) {
    batch.bytes += frame;
    batch.end_frame();
  }
  connection(0)->send_batch(std::move(batch));
  for (const auto& frame : frames) {
    auto got = client.read();
    REQUIRE(got.size() == frame.size());
    CHECK(got == frame);
  }
  CHECK(pongs == 1);
}
