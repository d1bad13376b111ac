// permessage-deflate on the WebSocket server: negotiated with a client that
// offers it when the server's `compression` is on, never otherwise; frames
// arrive intact either way, and compressed ones take fewer bytes on the wire.

#include "net/message_deflater.hpp"
#include "net/ws_server.hpp"

#include "tests/net/net_fixture.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <sys/ioctl.h>

#include <memory>
#include <random>
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

  beast_client(uint16_t port, bool offer_deflate)
    : beast_client(port, [&] {
        websocket::permessage_deflate deflate;
        deflate.client_enable = offer_deflate;
        return deflate;
      }()) {
    // nop
  }

  /// Offers permessage-deflate with the terms in `deflate`.
  beast_client(uint16_t port, const websocket::permessage_deflate& deflate) {
    tcp::resolver resolver{ioc};
    boost::asio::connect(ws.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
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

/// Messages of every frame length encoding (payloads under 126 bytes, up
/// to 65535, above), repetitive and random, the random ones with multibyte
/// UTF-8 (text frames must be valid UTF-8), each twice in a row: a second
/// copy can point back into the first, which checks the window and context
/// terms on the receiving side.
std::vector<std::string> varied_messages() {
  std::mt19937 rng{7};
  std::vector<std::string> messages;
  for (size_t size : {0, 1, 125, 126, 127, 600, 2000, 65535, 65536, 70000, 300000}) {
    std::string repetitive(size, 'x');
    for (size_t i = 0; i < size; i += 7)
      repetitive[i] = static_cast<char>('a' + i % 26);
    std::string random;
    while (random.size() < size) {
      auto r = rng() % 100;
      if (r == 0 && random.size() + 3 <= size)
        random += "\xe2\x82\xac"; // U+20AC
      else if (r == 1 && random.size() + 2 <= size)
        random += "\xc3\xa9"; // U+00E9
      else
        random += static_cast<char>(' ' + rng() % 95);
    }
    for (int copy = 0; copy < 2; ++copy) {
      messages.push_back(repetitive);
      messages.push_back(random);
    }
  }
  return messages;
}

frame_batch batch_of(const std::vector<std::string>& messages) {
  frame_batch batch;
  for (const auto& message : messages) {
    batch.bytes += message;
    batch.end_frame();
  }
  return batch;
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

/// Starts `server` with `compression` on.
void start_compressing(server_fixture& server) {
  ws_server_options opts;
  opts.compression = true;
  server.start(opts);
}

/// Counts the pongs `client` reads.
std::shared_ptr<size_t> count_pongs(beast_client& client) {
  auto pongs = std::make_shared<size_t>(0);
  client.ws.control_callback([pongs](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong)
      ++*pongs;
  });
  return pongs;
}

} // namespace

TEST_CASE_METHOD(server_fixture,
                 "with compression on, a client that offers permessage-deflate gets it",
                 "[ws_server][compression]") {
  start_compressing(*this);
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
  start_compressing(*this);
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
  start_compressing(*this);
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
  start_compressing(*this);
  beast_client client{port(), offer_deflate};
  CHECK(client.extensions.empty() == !offer_deflate);
  REQUIRE(wait_until([&] { return opened() == 1; }));
  auto pongs = count_pongs(client);
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
  CHECK(*pongs == 1);
}

TEST_CASE_METHOD(server_fixture,
                 "compressed messages of every size arrive byte-identical on the "
                 "window and context terms the client asked for",
                 "[ws_server][compression]") {
  struct terms {
    int server_max_window_bits; // 15: none asked for
    bool server_no_context_takeover;
    const char* answer;
  };
  // (Beast's client cannot ask for 8; the last test case covers it.)
  auto asked = GENERATE(terms{15, false, "permessage-deflate; client_max_window_bits"},
                        terms{15, true,
                              "permessage-deflate; server_no_context_takeover; "
                              "client_max_window_bits"},
                        terms{9, false, "permessage-deflate; server_max_window_bits=9"},
                        terms{10, true,
                              "permessage-deflate; server_no_context_takeover; "
                              "server_max_window_bits=10"});
  start_compressing(*this);
  websocket::permessage_deflate offer;
  offer.client_enable = true;
  offer.server_max_window_bits = asked.server_max_window_bits;
  offer.server_no_context_takeover = asked.server_no_context_takeover;
  beast_client client{port(), offer};
  INFO("offered window " << asked.server_max_window_bits << ", no context takeover "
                         << asked.server_no_context_takeover);
  CHECK(client.extensions.rfind(asked.answer, 0) == 0);
  REQUIRE(wait_until([&] { return opened() == 1; }));
  auto messages = varied_messages();
  // Twice over: once in one batch, once a message per send.
  connection(0)->send_batch(batch_of(messages));
  for (const auto& message : messages)
    connection(0)->send(std::make_shared<const std::string>(message));
  for (int round = 0; round < 2; ++round) {
    for (const auto& message : messages) {
      auto got = client.read();
      REQUIRE(got.size() == message.size());
      REQUIRE(got == message);
    }
  }
}

TEST_CASE_METHOD(server_fixture,
                 "with context takeover a repeated message costs a fraction of "
                 "the first and without it as much",
                 "[ws_server][compression]") {
  const bool no_context_takeover = GENERATE(false, true);
  start_compressing(*this);
  websocket::permessage_deflate offer;
  offer.client_enable = true;
  offer.server_no_context_takeover = no_context_takeover;
  beast_client client{port(), offer};
  REQUIRE(wait_until([&] { return opened() == 1; }));
  // Random printable text, well inside the 8 KiB window.
  std::mt19937 rng{11};
  std::string message(2000, ' ');
  for (auto& c : message)
    c = static_cast<char>(' ' + rng() % 95);
  auto first = wire_bytes_of(*this, client, {message});
  auto second = wire_bytes_of(*this, client, {message});
  INFO("first " << first << " bytes, second " << second);
  if (no_context_takeover)
    CHECK(second == first);
  else
    CHECK(second * 10 < first);
}

TEST_CASE_METHOD(server_fixture,
                 "a ping and the server's close between compressed messages",
                 "[ws_server][compression]") {
  start_compressing(*this);
  beast_client client{port(), true};
  REQUIRE(wait_until([&] { return opened() == 1; }));
  auto pongs = count_pongs(client);
  auto messages = compressible_frames();
  connection(0)->send_all(messages);
  for (const auto& message : messages)
    REQUIRE(client.read() == message);
  // The server has answered the ping once it has read the message after it.
  client.ws.ping("are you there");
  client.ws.write(boost::asio::buffer(std::string{"after the ping"}));
  REQUIRE(wait_until([&] { return this->frames().size() == 1; }));
  connection(0)->send_all(messages);
  connection(0)->close("done");
  for (const auto& message : messages)
    REQUIRE(client.read() == message);
  CHECK(*pongs == 1);
  beast::flat_buffer buffer;
  beast::error_code ec;
  client.ws.read(buffer, ec);
  CHECK(ec == websocket::error::closed);
  CHECK(client.ws.reason().reason == "done");
}

TEST_CASE("the server's deflate terms are read from the extensions it answers with",
          "[ws_server][compression]") {
  CHECK_FALSE(server_deflate_terms(""));
  CHECK_FALSE(server_deflate_terms("x-webkit-deflate-frame"));
  auto plain = server_deflate_terms("permessage-deflate");
  REQUIRE(plain);
  CHECK(plain->window_bits == 15);
  CHECK_FALSE(plain->no_context_takeover);
  auto narrow = server_deflate_terms(
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
    "server_max_window_bits=10; client_max_window_bits=12");
  REQUIRE(narrow);
  CHECK(narrow->window_bits == 10);
  CHECK(narrow->no_context_takeover);
}
