// Federation over TLS between real `ferry node` processes: B serves its
// relay over wss:// and its admin API over https:// (behind a
// TLS-terminating proxy, as an operator deploys it; the admin port itself
// speaks only http://), with certificates of a CA made when the test runs.
// A defines B with that CA as the peer's `ca`: the handshake, the pin, the
// events both ways and a collection pull all go over TLS. With another CA
// the handshake fails with a TLS error and nothing is exchanged.

#include "messages/nostr/event.hpp"
#include "net/io_runtime.hpp"
#include "net/ws_client.hpp"
#include "tests/fixtures/tls_pki.hpp"
#include "tests/fixtures/tls_terminating_proxy.hpp"
#include "tests/integration/federation_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using namespace fed_test;

namespace {

namespace json = boost::json;

/// A relay client over wss:// that trusts one CA file.
class wss_client {
public:
  wss_client(uint16_t port, const std::string& ca)
    : inbox_(std::make_shared<inbox>()) {
    net::tls_options tls;
    tls.ca_certfile = ca;
    net::ws_client_callbacks callbacks;
    callbacks.on_frame = [box = inbox_](std::string frame) {
      std::lock_guard<std::mutex> guard{box->mtx};
      box->frames.push_back(std::move(frame));
    };
    callbacks.on_close = [box = inbox_](net::failure_kind kind,
                                        const std::string& why) {
      std::lock_guard<std::mutex> guard{box->mtx};
      box->closed = net::to_string(kind) + ": " + why;
    };
    conn_ = net::connect_ws(io_.context(),
                            "wss://127.0.0.1:" + std::to_string(port), tls,
                            std::move(callbacks));
  }

  ~wss_client() {
    conn_->close("done");
  }

  wss_client(const wss_client&) = delete;
  wss_client& operator=(const wss_client&) = delete;

  void send(std::string frame) {
    conn_->send(std::make_shared<const std::string>(std::move(frame)));
  }

  /// The next frame starting with `prefix`; the frames before it go to
  /// `skipped` when given. nullopt when the connection closed or nothing
  /// came within 10 s.
  std::optional<std::string> wait_for(const std::string& prefix,
                                      std::vector<std::string>* skipped
                                      = nullptr) {
    std::optional<std::string> found;
    test::poll_until(
      [&] {
        std::lock_guard<std::mutex> guard{inbox_->mtx};
        for (; next_ < inbox_->frames.size(); ++next_) {
          auto& frame = inbox_->frames[next_];
          if (frame.rfind(prefix, 0) == 0) {
            found = frame;
            ++next_;
            return true;
          }
          if (skipped)
            skipped->push_back(frame);
        }
        return !inbox_->closed.empty();
      },
      10s, 10ms);
    return found;
  }

  /// Why the connection closed; empty while open.
  std::string closed() const {
    std::lock_guard<std::mutex> guard{inbox_->mtx};
    return inbox_->closed;
  }

private:
  struct inbox {
    std::mutex mtx;
    std::vector<std::string> frames;
    std::string closed;
  };

  net::io_runtime io_{1};
  std::shared_ptr<inbox> inbox_;
  std::shared_ptr<net::ws_client_connection> conn_;
  size_t next_ = 0;
};

/// Publishes `ev` to a wss:// relay; requires an accepting OK.
void publish_tls(uint16_t port, const std::string& ca, const nostr::event& ev) {
  wss_client ws{port, ca};
  ws.send(sync_test::event_frame(ev));
  auto ok = ws.wait_for("[\"OK\",\"" + sync_test::hex_id(ev) + "\"");
  INFO(ws.closed());
  REQUIRE(ok);
  INFO(*ok);
  REQUIRE(ok->find(",true,") != std::string::npos);
}

/// Whether the wss:// relay holds `ev`.
bool holds_tls(uint16_t port, const std::string& ca, const nostr::event& ev) {
  wss_client ws{port, ca};
  ws.send(R"(["REQ","q",)"
          + sync_test::ids_filter({sync_test::hex_id(ev)}) + "]");
  std::vector<std::string> before;
  REQUIRE(ws.wait_for(R"(["EOSE","q")", &before));
  return std::any_of(before.begin(), before.end(), [](const auto& frame) {
    return frame.rfind(R"(["EVENT","q",)", 0) == 0;
  });
}

bool holds(uint16_t port, const nostr::event& ev) {
  return sync_test::ids_of(port, sync_test::ids_filter({sync_test::hex_id(ev)}))
           .size()
         == 1;
}

/// B: relay on wss:// with the PKI's server certificate, admin API reached
/// at https:// through `front`, one collection "notes", auto_accept.
/// A: B as its peer at those URLs, trusting `ca`.
struct tls_pair {
  test::test_pki pki;
  fed_node a{"a"};
  fed_node b{"b"};
  test::tls_terminating_proxy front{b.admin_port, pki.server_cert_file(),
                                    pki.server_key_file()};

  std::string b_admin_https() const {
    return "https://127.0.0.1:" + std::to_string(front.port());
  }

  void start(const std::string& ca) {
    b.relay_extra = "[relay.tls]\ncertfile = \"" + pki.server_cert_file()
                    + "\"\nkeyfile = \"" + pki.server_key_file() + "\"\n";
    b.configure(fed_section("auto_accept", "name = \"b\"\npublic_admin_url = \""
                                             + b_admin_https() + "\"\n")
                + "[[federation.collection]]\nname = \"notes\"\n"
                  "filters = [{ kinds = [1, 30023] }]\n");
    a.configure(fed_section("deny", "name = \"a\"\n")
                + "[[federation.peer]]\nname = \"b\"\nendpoint = \"wss://"
                  "127.0.0.1:"
                + std::to_string(b.relay_port) + "\"\nadmin_url = \""
                + b_admin_https() + "\"\nca = \"" + ca
                + "\"\nfilters = [{ kinds = [1] }]\n");
    b.start();
    a.start();
  }

  /// A's view of B once its handshake ended in `status`.
  json::value handshake_ended(const std::string& status) {
    if (!test::poll_until([&] {
          auto p = a.peer("b");
          return p.is_object() && p.at("handshake").at("status") == status.c_str();
        }))
      FAIL("A's handshake with B never ended " << status << "\n"
           << json::serialize(a.peer("b")) << "\n" << both(a, b));
    return a.peer("b");
  }
};

} // namespace

TEST_CASE("federation over TLS: a peer's wss:// relay and https:// admin API "
          "trusted through its ca: registered, pinned, events both ways, a "
          "collection pulled",
          "[integration][federation][tls]") {
  tls_pair nodes;
  auto& a = nodes.a;
  auto& b = nodes.b;
  const auto ca = nodes.pki.ca_file();
  nodes.start(ca);

  auto view = nodes.handshake_ended("registered");
  INFO(json::serialize(view));
  CHECK(view.at("handshake").at("success") == true);
  CHECK(view.at("handshake").at("http_status") == 200);
  CHECK(view.at("pinned") == json::value(b.pubkey()));
  CHECK(view.at("status") == "active");
  CHECK(b.peer("a").at("pinned") == json::value(a.pubkey()));
  CHECK(nodes.front.handshakes() > 0);
  if (!test::poll_until([&] { return a.exchanging("b"); }))
    FAIL("A never connected to B's wss:// relay\n"
         << json::serialize(a.sync_stats("b")) << "\n" << both(a, b));

  auto author = nostr::generate_keypair();
  auto now = test::unix_now();
  auto from_a = test::make_note(author, now, "from a over tls");
  auto from_b = test::make_note(author, now, "from b over tls");
  sync_test::publish(a.relay_port, {from_a});
  publish_tls(b.relay_port, ca, from_b);
  if (!test::poll_until([&] {
        return holds_tls(b.relay_port, ca, from_a) && holds(a.relay_port, from_b);
      }))
    FAIL("events did not cross the TLS link\n"
         << json::serialize(a.sync_stats("b")) << "\n" << both(a, b));

  // A pulls B's collection: the listing over https://, the NIP-77
  // reconciliation over wss://. The kind 30023 is outside A's sync filters,
  // so only the pull brings it.
  auto offered = b.call("PUT", "/api/v1/federation/peers/a/collections",
                        R"({"collections":["notes"]})");
  INFO(offered.response.body);
  REQUIRE(offered.response.status == 200);
  auto article = test::make_note(author, now, "an article");
  article.kind = 30023;
  article.tags = {{"d", "tls"}};
  nostr::sign_event(article, author);
  publish_tls(b.relay_port, ca, article);
  auto pulled = net::simple_http_request(
    "127.0.0.1", a.admin_port, "POST", "/api/v1/federation/peers/b/pull",
    {{"Authorization", std::string{"Bearer "} + sync_test::admin_token},
     {"Content-Type", "application/json"}},
    R"({"collection":"notes"})", 65s);
  INFO(pulled.error << " " << pulled.response.body << "\n" << both(a, b));
  REQUIRE(pulled.response.status == 200);
  CHECK(body_of(pulled).at("imported") == 1);
  CHECK(holds(a.relay_port, article));
}

TEST_CASE("federation over TLS with a peer ca of another CA fails the "
          "handshake with a TLS error and exchanges nothing",
          "[integration][federation][tls]") {
  tls_pair nodes;
  test::test_pki other;
  auto& a = nodes.a;
  auto& b = nodes.b;
  nodes.start(other.ca_file());

  auto view = nodes.handshake_ended("failed");
  INFO(json::serialize(view));
  auto handshake = view.at("handshake");
  CHECK(handshake.at("success") == false);
  CHECK(handshake.at("http_status") == 0);
  CHECK_THAT(std::string{handshake.at("error").as_string()},
             Catch::StartsWith("tls: tls handshake: ")
               && Catch::Contains("certificate"));
  CHECK(view.at("pinned") == "");
  // B never heard of A: no TLS session was ever set up, no link, and A has
  // no sync server with B to move events.
  CHECK(test::poll_until([&] { return nodes.front.failed_handshakes() > 0; }));
  CHECK(nodes.front.handshakes() == 0);
  CHECK(b.peer_count() == 0);
  CHECK(a.sync_stats("b").is_null());
}
