#include "net/ws_client.hpp"

#include "net/hex_digit.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <deque>
#include <optional>
#include <type_traits>
#include <utility>

namespace ferry::net {
namespace {

// Declared inside ferry::net so that `net::` means Asio in this file and not
// the enclosing namespace.
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

/// With keep-alive pings, an open connection that receives nothing for half
/// of this gets a ping, and one that stays silent for all of it has timed
/// out. Well below the ~100 s after which common proxies drop idle
/// connections, and it bounds how long a half-open TCP connection goes
/// unnoticed.
constexpr auto ws_idle_timeout = std::chrono::seconds(60);

/// Time the queued frames plus the close handshake get after `close()` or an
/// overflow before the socket is closed hard, so a relay that stopped reading
/// cannot keep the connection.
constexpr auto ws_close_grace = std::chrono::seconds(5);

/// The longest reason a close frame can carry (RFC 6455, 5.5).
constexpr size_t ws_close_reason_max = 123;

/// permessage-deflate, offered to every relay: what we send is compressed
/// with a 2^13-byte window at memory level 6 (about 64 KiB) and the fastest
/// level; what the relay sends may use its full 32 KiB window, which is
/// where the bandwidth goes.
constexpr int ws_deflate_window_bits = 13;
constexpr int ws_deflate_mem_level = 6;
constexpr int ws_deflate_level = 1;

/// Largest response body of `http_get` and `http_send`; NIP-11 documents
/// and management API answers are a few KiB.
constexpr uint64_t http_body_limit = 4 * 1024 * 1024;

constexpr const char* user_agent = "ferry";

using spki_pin = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

std::string lowercase(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return result;
}

std::string hex(const unsigned char* data, size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string result;
  result.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    result += digits[data[i] >> 4];
    result += digits[data[i] & 0x0f];
  }
  return result;
}

/// Whether every character is visible ASCII: what ends up in the request line
/// and the Host header must not smuggle spaces or line breaks into them.
bool is_visible_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

/// Whether OpenSSL itself failed, as opposed to the socket under it.
bool is_tls_error(const beast::error_code& ec) {
  return ec.category() == net::error::get_ssl_category();
}

bool is_http_error(const beast::error_code& ec) {
  return ec.category()
         == http::make_error_code(http::error::end_of_stream).category();
}

bool is_websocket_error(const beast::error_code& ec) {
  return ec.category()
         == websocket::make_error_code(websocket::error::closed).category();
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

// -- SPKI pins ----------------------------------------------------------------

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/// Decodes 64 hex digits or the base64 of 32 bytes (padded or not).
std::optional<spki_pin> decode_pin(std::string_view text) {
  spki_pin pin{};
  if (text.size() == 2 * pin.size()) {
    for (size_t i = 0; i < pin.size(); ++i) {
      auto high = hex_digit_value(text[2 * i]);
      auto low = hex_digit_value(text[2 * i + 1]);
      if (high < 0 || low < 0)
        return std::nullopt;
      pin[i] = static_cast<unsigned char>(high << 4 | low);
    }
    return pin;
  }
  while (!text.empty() && text.back() == '=')
    text.remove_suffix(1);
  // 32 bytes are 256 bits: 42 full sextets and 4 bits of a 43rd.
  if (text.size() != 43)
    return std::nullopt;
  uint32_t bits = 0;
  int bit_count = 0;
  size_t out = 0;
  for (char c : text) {
    auto value = base64_value(c);
    if (value < 0)
      return std::nullopt;
    bits = bits << 6 | static_cast<uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      pin[out++] = static_cast<unsigned char>(bits >> bit_count);
      bits &= (1u << bit_count) - 1;
    }
  }
  // Non-zero leftover bits mean a different encoding of a different value.
  if (bits != 0)
    return std::nullopt;
  return pin;
}

/// SHA-256 of the DER SubjectPublicKeyInfo of `cert`.
std::optional<spki_pin> spki_sha256(X509* cert) {
  unsigned char* der = nullptr;
  auto len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len <= 0)
    return std::nullopt;
  spki_pin digest;
  SHA256(der, static_cast<size_t>(len), digest.data());
  OPENSSL_free(der);
  return digest;
}

/// What the verify callback saw. A failed handshake only says "certificate
/// verify failed"; this tells a pin mismatch from the other failures and
/// names the cause.
struct verify_record {
  /// Hex SPKI hash of a leaf that matched no pin.
  std::string pin_mismatch;
  /// The first verification failure.
  std::string failure;
};

/// The verify callback: chain and name checks as
/// `ssl::host_name_verification`, then the pins on the leaf.
class verifier {
public:
  verifier(const std::string& hostname, std::vector<spki_pin> pins,
           verify_record* record)
    : hostname_(hostname),
      names_(hostname),
      pins_(std::move(pins)),
      record_(record) {
    // nop
  }

  bool operator()(bool preverified, ssl::verify_context& ctx) {
    auto* store = ctx.native_handle();
    auto depth = X509_STORE_CTX_get_error_depth(store);
    if (!preverified) {
      note("certificate at depth " + std::to_string(depth) + ": "
           + X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
      return false;
    }
    if (!names_(preverified, ctx)) {
      note("certificate is not valid for " + hostname_);
      return false;
    }
    if (depth != 0 || pins_.empty())
      return true;
    auto got = spki_sha256(X509_STORE_CTX_get_current_cert(store));
    if (!got) {
      note("cannot hash the certificate's public key");
      return false;
    }
    if (std::find(pins_.begin(), pins_.end(), *got) != pins_.end())
      return true;
    record_->pin_mismatch = hex(got->data(), got->size());
    return false;
  }

private:
  void note(std::string failure) {
    if (record_->failure.empty())
      record_->failure = std::move(failure);
  }

  std::string hostname_;
  ssl::host_name_verification names_;
  std::vector<spki_pin> pins_;
  // Owned by the session that owns the stream holding this callback.
  verify_record* record_;
};

// -- connection plan ----------------------------------------------------------

/// The step a session is in, so that a timeout says what timed out: a slow
/// answer on an established connection is no connect failure.
enum class session_step {
  start,
  resolve,
  connect,
  tls_handshake,
  websocket_handshake,
  http_write,
  http_read,
};

/// The reason a session that timed out in `step` reports.
std::string timeout_reason(session_step step, std::chrono::milliseconds limit,
                           const std::string& where) {
  auto after = " after " + std::to_string(limit.count()) + " ms";
  switch (step) {
    case session_step::start:
    case session_step::resolve:
      return "name resolution timed out" + after + " (" + where + ")";
    case session_step::connect:
      return "TCP connect to " + where + " timed out" + after;
    case session_step::tls_handshake:
      return "TLS handshake with " + where + " timed out" + after;
    case session_step::websocket_handshake:
      return "WebSocket handshake with " + where + " timed out" + after;
    case session_step::http_write:
      return "writing the HTTP request to " + where + " timed out" + after
             + " (connected)";
    case session_step::http_read:
      return "no HTTP response from " + where + " within "
             + std::to_string(limit.count())
             + " ms (connected, request sent)";
  }
  return "timed out" + after;
}

/// Everything a session needs before its first step, worked out in the
/// caller's thread. A plan with an error is reported by the session at once.
struct connect_plan {
  parsed_url url;
  std::string host_header;
  std::string tls_name;
  /// Null for plain TCP.
  std::shared_ptr<ssl::context> ctx;
  std::vector<spki_pin> pins;
  failure_kind error_kind = failure_kind::none;
  std::string error;
};

/// @returns the context, or an error text.
std::variant<std::shared_ptr<ssl::context>, std::string>
make_tls_context(const tls_options& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  // TLS 1.0 and 1.1 are deprecated (RFC 8996).
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  ctx->set_default_verify_paths(ec);
  if (ec)
    return "system trust store: " + ec.message();
  if (!tls.ca_certfile.empty()) {
    ctx->load_verify_file(tls.ca_certfile, ec);
    if (ec)
      return "ca_certfile " + tls.ca_certfile + ": " + ec.message();
  }
  if (tls.client_certfile.empty() != tls.client_keyfile.empty())
    return "client_certfile and client_keyfile go together";
  if (!tls.client_certfile.empty()) {
    ctx->use_certificate_chain_file(tls.client_certfile, ec);
    if (ec)
      return "client_certfile " + tls.client_certfile + ": " + ec.message();
    ctx->use_private_key_file(tls.client_keyfile, ssl::context::pem, ec);
    if (ec)
      return "client_keyfile " + tls.client_keyfile + ": " + ec.message();
  }
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (ec)
    return "verify mode: " + ec.message();
  return ctx;
}

connect_plan make_plan(const std::string& url, const tls_options& tls) {
  connect_plan plan;
  auto parsed = parse_url(url);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    // There is no address to connect to, which is what a dns failure means.
    plan.error_kind = failure_kind::dns;
    plan.error = std::move(*error);
    return plan;
  }
  plan.url = std::get<parsed_url>(std::move(parsed));
  plan.url.tls = plan.url.tls || tls.enabled;
  auto default_port = plan.url.tls ? 443 : 80;
  plan.host_header = plan.url.host.find(':') == std::string::npos
                       ? plan.url.host
                       : "[" + plan.url.host + "]";
  if (plan.url.port != default_port)
    plan.host_header += ":" + std::to_string(plan.url.port);
  if (!plan.url.tls)
    return plan;
  plan.tls_name = tls.hostname.empty() ? plan.url.host : tls.hostname;
  for (const auto& text : tls.spki_sha256_pins) {
    auto pin = decode_pin(text);
    if (!pin) {
      plan.error_kind = failure_kind::pin;
      plan.error = "invalid pin '" + text + "': want 64 hex digits or the "
                   + "base64 of 32 bytes";
      return plan;
    }
    plan.pins.push_back(*pin);
  }
  auto ctx = make_tls_context(tls);
  if (auto* error = std::get_if<std::string>(&ctx)) {
    plan.error_kind = failure_kind::tls;
    plan.error = "tls setup: " + *error;
    return plan;
  }
  plan.ctx = std::get<std::shared_ptr<ssl::context>>(std::move(ctx));
  return plan;
}

// -- session base -------------------------------------------------------------

using tls_transport = beast::ssl_stream<beast::tcp_stream>;

/// The byte stream under a layer: the layer itself, or what a WebSocket runs
/// on.
template <class Layer>
struct transport_of {
  using type = Layer;
};

template <class Transport>
struct transport_of<websocket::stream<Transport>> {
  using type = Transport;
};

template <class Layer>
constexpr bool uses_tls
  = std::is_same_v<typename transport_of<Layer>::type, tls_transport>;

template <class Transport>
Transport& transport(Transport& layer) {
  return layer;
}

template <class Transport>
Transport& transport(websocket::stream<Transport>& layer) {
  return layer.next_layer();
}

/// Builds a layer on `ex`; TLS layers also need the context.
template <class Layer>
Layer make_layer(const net::any_io_executor& ex, ssl::context* ctx) {
  if constexpr (uses_tls<Layer>)
    return Layer(ex, *ctx);
  else
    return Layer(ex);
}

/// Resolve, TCP connect and TLS handshake under one deadline: the part the
/// WebSocket and the HTTP sessions share. Everything runs on one strand.
template <class Layer>
class session_base : public std::enable_shared_from_this<session_base<Layer>> {
public:
  virtual ~session_base() = default;

  /// Starts the session; nothing runs before this returns.
  void run() {
    net::post(layer_.get_executor(),
              beast::bind_front_handler(&session_base::on_run,
                                        this->shared_from_this()));
  }

protected:
  session_base(net::io_context& ioc, connect_plan plan,
               std::chrono::milliseconds timeout)
    : plan_(std::move(plan)),
      resolver_(net::make_strand(ioc)),
      layer_(make_layer<Layer>(resolver_.get_executor(), plan_.ctx.get())),
      deadline_(resolver_.get_executor()),
      timeout_(timeout) {
    // nop
  }

  /// TCP is connected and, for TLS, the handshake is done.
  virtual void on_transport_ready() = 0;

  /// Reports the end of the session to its owner; called once, by `finish`.
  virtual void on_finish(failure_kind kind, const std::string& reason) = 0;

  /// Ends the session exactly once.
  void finish(failure_kind kind, const std::string& reason) {
    if (finished_)
      return;
    finished_ = true;
    end_deadline();
    resolver_.cancel();
    beast::get_lowest_layer(layer_).close();
    on_finish(kind, reason);
  }

  /// The deadline no longer applies, even if it already fired.
  void end_deadline() {
    deadline_active_ = false;
    deadline_.cancel();
  }

  template <class Derived>
  std::shared_ptr<Derived> shared_as() {
    return std::static_pointer_cast<Derived>(this->shared_from_this());
  }

  connect_plan plan_;
  tcp::resolver resolver_;
  Layer layer_;
  net::steady_timer deadline_;
  std::chrono::milliseconds timeout_;
  /// The step in progress, for the timeout's reason.
  session_step step_ = session_step::start;
  bool finished_ = false;

private:
  void on_run() {
    if (finished_)
      return;
    if (!plan_.error.empty())
      return finish(plan_.error_kind, plan_.error);
    deadline_active_ = true;
    deadline_.expires_after(timeout_);
    deadline_.async_wait(beast::bind_front_handler(&session_base::on_deadline,
                                                   this->shared_from_this()));
    step_ = session_step::resolve;
    resolver_.async_resolve(
      plan_.url.host, std::to_string(plan_.url.port),
      beast::bind_front_handler(&session_base::on_resolve,
                                this->shared_from_this()));
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (finished_)
      return;
    if (ec)
      return finish(failure_kind::dns,
                    "resolve " + plan_.url.host + ": " + ec.message());
    step_ = session_step::connect;
    beast::get_lowest_layer(layer_).async_connect(
      results, beast::bind_front_handler(&session_base::on_connect,
                                         this->shared_from_this()));
  }

  void on_connect(beast::error_code ec, tcp::endpoint) {
    if (finished_)
      return;
    if (ec)
      return finish(failure_kind::tcp, "connect " + plan_.host_header + ": "
                                          + ec.message());
    // Small frames answered one by one (NEG-MSG rounds, OKs): no Nagle delay.
    beast::error_code ignored;
    beast::get_lowest_layer(layer_).socket().set_option(tcp::no_delay(true),
                                                        ignored);
    if constexpr (uses_tls<Layer>) {
      auto& stream = transport(layer_);
      // RFC 6066 allows no IP literals in SNI.
      if (!is_ip_literal(plan_.tls_name)
          && !SSL_set_tlsext_host_name(stream.native_handle(),
                                       plan_.tls_name.c_str()))
        return finish(failure_kind::tls, "tls setup: cannot set SNI");
      stream.set_verify_callback(
        verifier{plan_.tls_name, plan_.pins, &verify_}, ec);
      if (ec)
        return finish(failure_kind::tls, "tls setup: " + ec.message());
      step_ = session_step::tls_handshake;
      stream.async_handshake(
        ssl::stream_base::client,
        beast::bind_front_handler(&session_base::on_ssl_handshake,
                                  this->shared_from_this()));
    } else {
      on_transport_ready();
    }
  }

  void on_ssl_handshake(beast::error_code ec) {
    if (finished_)
      return;
    if (ec && !verify_.pin_mismatch.empty())
      return finish(failure_kind::pin, "pin_mismatch: " + verify_.pin_mismatch);
    if (ec) {
      auto reason = "tls handshake: " + ec.message();
      if (!verify_.failure.empty())
        reason += " (" + verify_.failure + ")";
      return finish(failure_kind::tls, reason);
    }
    on_transport_ready();
  }

  void on_deadline(beast::error_code ec) {
    if (ec == net::error::operation_aborted || !deadline_active_ || finished_)
      return;
    finish(failure_kind::timeout,
           timeout_reason(step_, timeout_, plan_.host_header));
  }

  verify_record verify_;
  bool deadline_active_ = false;
};

// -- WebSocket session --------------------------------------------------------

template <class Layer>
class ws_session : public ws_client_connection, public session_base<Layer> {
public:
  using base = session_base<Layer>;

  ws_session(net::io_context& ioc, connect_plan plan,
             ws_client_callbacks callbacks, std::chrono::milliseconds timeout,
             size_t max_frame_bytes, size_t max_outbound_bytes)
    : base(ioc, std::move(plan), timeout),
      close_timer_(this->layer_.get_executor()),
      callbacks_(std::move(callbacks)),
      max_frame_bytes_(max_frame_bytes),
      max_outbound_bytes_(max_outbound_bytes) {
    // nop
  }

  ~ws_session() override {
    // Only reached unfinished when the io_context went away with our handlers
    // still queued; the owner is promised on_close in every case.
    if (!this->finished_ && callbacks_.on_close)
      callbacks_.on_close(failure_kind::none, "io stopped");
  }

  // -- ws_client_connection ---------------------------------------------------

  void send(std::shared_ptr<const std::string> frame) override {
    if (!frame)
      return;
    net::post(this->layer_.get_executor(),
              beast::bind_front_handler(&ws_session::on_send, self(),
                                        std::move(frame)));
  }

  size_t queued_bytes() const override {
    return queued_bytes_.load(std::memory_order_relaxed);
  }

  void close(std::string reason) override {
    net::post(this->layer_.get_executor(),
              beast::bind_front_handler(&ws_session::request_close, self(),
                                        websocket::close_code::normal,
                                        failure_kind::none, std::move(reason)));
  }

  void pause_reading() override {
    net::post(this->layer_.get_executor(),
              [self = self()] { self->paused_ = true; });
  }

  void resume_reading() override {
    net::post(this->layer_.get_executor(), [self = self()] {
      self->paused_ = false;
      if (self->opened_ && !self->reading_ && !self->finished_
          && !self->close_pending_)
        self->do_read();
    });
  }

  uint64_t bytes_received() const override {
    return bytes_received_.load(std::memory_order_relaxed);
  }

  uint64_t bytes_sent() const override {
    return bytes_sent_.load(std::memory_order_relaxed);
  }

private:
  using frame_ptr = std::shared_ptr<const std::string>;

  std::shared_ptr<ws_session> self() {
    return this->template shared_as<ws_session>();
  }

  // -- handshake --------------------------------------------------------------

  void on_transport_ready() override {
    this->step_ = session_step::websocket_handshake;
    auto& ws = this->layer_;
    ws.set_option(
      websocket::stream_base::decorator([](websocket::request_type& req) {
        req.set(http::field::user_agent, user_agent);
      }));
    ws.read_message_max(max_frame_bytes_);
    websocket::permessage_deflate deflate;
    deflate.client_enable = true;
    deflate.client_max_window_bits = ws_deflate_window_bits;
    deflate.memLevel = ws_deflate_mem_level;
    deflate.compLevel = ws_deflate_level;
    ws.set_option(deflate);
    ws.async_handshake(upgrade_response_, this->plan_.host_header,
                       this->plan_.url.target,
                       beast::bind_front_handler(&ws_session::on_handshake,
                                                 self()));
  }

  void on_handshake(beast::error_code ec) {
    if (this->finished_)
      return;
    if (ec == websocket::error::upgrade_declined)
      return this->finish(failure_kind::http,
                          "upgrade declined: HTTP "
                            + std::to_string(upgrade_response_.result_int()));
    // With TLS 1.3 the server judges our client certificate after our side
    // of the TLS handshake has completed, so its alert lands here.
    if (ec && is_tls_error(ec))
      return this->finish(failure_kind::tls,
                          "websocket handshake: " + ec.message());
    if (ec && is_http_error(ec))
      return this->finish(failure_kind::http,
                          "websocket handshake: " + ec.message());
    if (ec)
      return this->finish(failure_kind::websocket,
                          "websocket handshake: " + ec.message());
    this->end_deadline();
    opened_ = true;
    upgrade_response_ = {};
    // Beast's client preset has no idle timeout; a sync client needs one to
    // notice a relay that vanished without closing.
    auto timeouts
      = websocket::stream_base::timeout::suggested(beast::role_type::client);
    timeouts.idle_timeout = ws_idle_timeout;
    timeouts.keep_alive_pings = true;
    this->layer_.set_option(timeouts);
    if (callbacks_.on_open)
      callbacks_.on_open();
    do_read();
    if (!queue_.empty())
      do_write();
  }

  // -- reading ----------------------------------------------------------------

  void do_read() {
    reading_ = true;
    this->layer_.async_read(buffer_,
                            beast::bind_front_handler(&ws_session::on_read,
                                                      self()));
  }

  void on_read(beast::error_code ec, size_t bytes) {
    reading_ = false;
    if (this->finished_)
      return;
    if (ec) {
      // A read suspended by our own close handshake; on_close_done ends it.
      if (close_started_ && ec == net::error::operation_aborted)
        return;
      if (close_pending_)
        return this->finish(close_kind_, close_text_);
      return fail("read", ec);
    }
    bytes_received_ += bytes;
    // After close() the owner wants no more traffic from this relay.
    if (!close_pending_ && callbacks_.on_frame)
      callbacks_.on_frame(beast::buffers_to_string(buffer_.data()));
    buffer_.consume(buffer_.size());
    if (!paused_)
      do_read();
  }

  /// Classifies an error of an open connection.
  void fail(const char* what, beast::error_code ec) {
    if (ec == websocket::error::closed) {
      const auto& reason = this->layer_.reason();
      auto text = "closed by peer (" + std::to_string(reason.code);
      if (!reason.reason.empty())
        text += ": " + std::string(reason.reason.data(), reason.reason.size());
      return this->finish(failure_kind::closed_by_peer, text + ")");
    }
    if (ec == websocket::error::message_too_big)
      return this->finish(failure_kind::protocol,
                          "message larger than "
                            + std::to_string(max_frame_bytes_) + " bytes");
    if (ec == beast::error::timeout)
      return this->finish(failure_kind::timeout,
                          "relay silent for "
                            + std::to_string(ws_idle_timeout.count()) + " s");
    if (is_websocket_error(ec))
      return this->finish(failure_kind::protocol,
                          std::string(what) + ": " + ec.message());
    this->finish(failure_kind::closed_by_peer,
                 std::string(what) + ": " + ec.message());
  }

  // -- writing ----------------------------------------------------------------

  void on_send(frame_ptr frame) {
    // Nothing goes out after a close was requested: the close frame is last.
    if (this->finished_ || close_pending_)
      return;
    if (queued_bytes_.load() + frame->size() > max_outbound_bytes_)
      return overflow();
    queued_bytes_ += frame->size();
    queue_.push_back(std::move(frame));
    // Exactly one write in flight: only a frame that lands in an empty queue
    // of an open connection starts one, on_write continues with the rest and
    // on_handshake with what was queued before it.
    if (opened_ && queue_.size() == 1)
      do_write();
  }

  void overflow() {
    // A frame being written cannot be cut off midway, so it stays.
    auto keep = opened_ && !queue_.empty() ? 1u : 0u;
    while (queue_.size() > keep) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    request_close(websocket::close_code::policy_error, failure_kind::protocol,
                  "outbound overflow");
  }

  void do_write() {
    this->layer_.async_write(net::buffer(*queue_.front()),
                             beast::bind_front_handler(&ws_session::on_write,
                                                       self()));
  }

  void on_write(beast::error_code ec, size_t bytes) {
    if (this->finished_)
      return;
    if (ec) {
      if (close_pending_)
        return this->finish(close_kind_, close_text_);
      return fail("write", ec);
    }
    bytes_sent_ += bytes;
    queued_bytes_ -= queue_.front()->size();
    queue_.pop_front();
    if (!queue_.empty())
      do_write();
    else if (close_pending_)
      do_close();
  }

  // -- closing ----------------------------------------------------------------

  /// Closes after the queued frames; the first request's reason wins.
  void request_close(websocket::close_code code, failure_kind kind,
                     std::string reason) {
    if (this->finished_ || close_pending_)
      return;
    // Before the handshake there is nobody to say goodbye to.
    if (!opened_)
      return this->finish(kind, reason);
    close_pending_ = true;
    close_code_ = code;
    close_kind_ = kind;
    close_text_ = std::move(reason);
    close_timer_.expires_after(ws_close_grace);
    close_timer_.async_wait(
      beast::bind_front_handler(&ws_session::on_close_timeout, self()));
    if (queue_.empty())
      do_close();
  }

  void do_close() {
    close_started_ = true;
    auto reason = close_text_.substr(0, ws_close_reason_max);
    this->layer_.async_close(websocket::close_reason(close_code_, reason),
                             beast::bind_front_handler(
                               &ws_session::on_close_done, self()));
  }

  void on_close_done(beast::error_code) {
    // Whatever the handshake's outcome, the reason is the one we closed for.
    this->finish(close_kind_, close_text_);
  }

  void on_close_timeout(beast::error_code ec) {
    if (ec == net::error::operation_aborted)
      return;
    this->finish(close_kind_, close_text_);
  }

  void on_finish(failure_kind kind, const std::string& reason) override {
    close_timer_.cancel();
    queue_.clear();
    queued_bytes_ = 0;
    // Released before the call: the owner's callbacks may hold the owner.
    auto on_close = std::move(callbacks_.on_close);
    callbacks_ = ws_client_callbacks{};
    if (on_close)
      on_close(kind, reason);
  }

  net::steady_timer close_timer_;
  ws_client_callbacks callbacks_;
  size_t max_frame_bytes_;
  size_t max_outbound_bytes_;
  websocket::response_type upgrade_response_;
  // Inbound.
  beast::flat_buffer buffer_;
  std::atomic<uint64_t> bytes_received_{0};
  // Outbound; once open, the front frame is the one being written.
  std::deque<frame_ptr> queue_;
  std::atomic<size_t> queued_bytes_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  // Lifecycle.
  bool opened_ = false;
  /// A read is pending; `paused_` stops the next one from being issued.
  bool reading_ = false;
  bool paused_ = false;
  bool close_pending_ = false;
  bool close_started_ = false;
  websocket::close_code close_code_ = websocket::close_code::normal;
  failure_kind close_kind_ = failure_kind::none;
  std::string close_text_;
};

// -- HTTP request session -----------------------------------------------------

template <class Layer>
class http_session : public session_base<Layer> {
public:
  using base = session_base<Layer>;

  http_session(net::io_context& ioc, connect_plan plan,
               outgoing_http_request request,
               std::function<void(http_send_result)> done,
               std::chrono::milliseconds timeout)
    : base(ioc, std::move(plan), timeout),
      request_(std::move(request)),
      done_(std::move(done)) {
    // nop
  }

  ~http_session() override {
    // See ~ws_session: the caller is promised an answer in every case.
    if (!this->finished_ && done_)
      done_(http_send_result{failure_kind::tcp, "io stopped", 0, {}});
  }

private:
  std::shared_ptr<http_session> self() {
    return this->template shared_as<http_session>();
  }

  void on_transport_ready() override {
    this->step_ = session_step::http_write;
    req_.method_string(request_.method);
    req_.target(this->plan_.url.target);
    req_.version(11);
    req_.set(http::field::host, this->plan_.host_header);
    req_.set(http::field::user_agent, user_agent);
    req_.set(http::field::connection, "close");
    for (const auto& [name, value] : request_.headers)
      req_.set(name, value);
    req_.body() = std::move(request_.body);
    // A request without a body announces none only when its method may have
    // one, as curl and browsers do.
    if (!req_.body().empty() || req_.method() == http::verb::post
        || req_.method() == http::verb::put
        || req_.method() == http::verb::patch)
      req_.prepare_payload();
    http::async_write(this->layer_, req_,
                      beast::bind_front_handler(&http_session::on_write,
                                                self()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (this->finished_)
      return;
    if (ec)
      return this->finish(failure_kind::tcp, "http write: " + ec.message());
    this->step_ = session_step::http_read;
    parser_.body_limit(http_body_limit);
    http::async_read(this->layer_, buffer_, parser_,
                     beast::bind_front_handler(&http_session::on_read,
                                               self()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (this->finished_)
      return;
    if (ec)
      return this->finish(is_tls_error(ec) ? failure_kind::tls
                                           : failure_kind::http,
                          "http read: " + ec.message());
    this->finish(failure_kind::none, {});
  }

  void on_finish(failure_kind kind, const std::string& reason) override {
    http_send_result result;
    result.failure = kind;
    result.error = reason;
    if (kind == failure_kind::none) {
      auto res = parser_.release();
      result.status = res.result_int();
      result.body = std::move(res.body());
    }
    auto done = std::move(done_);
    done_ = nullptr;
    if (done)
      done(std::move(result));
  }

  outgoing_http_request request_;
  std::function<void(http_send_result)> done_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

} // namespace

// -- free functions -----------------------------------------------------------

std::string to_string(failure_kind kind) {
  switch (kind) {
    case failure_kind::none:
      return "none";
    case failure_kind::dns:
      return "dns";
    case failure_kind::tcp:
      return "tcp";
    case failure_kind::tls:
      return "tls";
    case failure_kind::pin:
      return "pin";
    case failure_kind::http:
      return "http";
    case failure_kind::websocket:
      return "websocket";
    case failure_kind::protocol:
      return "protocol";
    case failure_kind::closed_by_peer:
      return "closed_by_peer";
    case failure_kind::timeout:
      return "timeout";
  }
  return "unknown";
}

std::variant<parsed_url, std::string> parse_url(std::string_view url) {
  auto error = [url](const std::string& what) {
    return "bad url '" + std::string(url) + "': " + what;
  };
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos)
    return error("no scheme");
  parsed_url result;
  auto scheme = lowercase(url.substr(0, scheme_end));
  if (scheme == "wss" || scheme == "https")
    result.tls = true;
  else if (scheme != "ws" && scheme != "http")
    return error("scheme must be ws, wss, http or https");
  auto rest = url.substr(scheme_end + 3);
  // The fragment never goes on the wire.
  rest = rest.substr(0, rest.find('#'));
  auto authority_end = rest.find_first_of("/?");
  auto authority = rest.substr(0, authority_end);
  result.target = authority_end == std::string_view::npos
                    ? "/"
                    : std::string(rest.substr(authority_end));
  if (result.target.front() == '?')
    result.target.insert(0, "/");
  if (!is_visible_ascii(result.target))
    return error("spaces or control characters in the path");
  if (authority.find('@') != std::string_view::npos)
    return error("user info is not supported");
  std::optional<std::string_view> port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return error("unterminated IPv6 literal");
    result.host = std::string(authority.substr(1, close - 1));
    beast::error_code ec;
    net::ip::make_address_v6(result.host, ec);
    if (ec)
      return error("bad IPv6 literal");
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return error("junk after the IPv6 literal");
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    result.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos)
      port_text = authority.substr(colon + 1);
  }
  if (result.host.empty())
    return error("no host");
  if (!is_visible_ascii(result.host))
    return error("bad host");
  if (!port_text) {
    result.port = result.tls ? 443 : 80;
    return result;
  }
  if (port_text->empty() || port_text->size() > 5
      || !std::all_of(port_text->begin(), port_text->end(),
                      [](unsigned char c) { return std::isdigit(c); }))
    return error("bad port");
  auto port = std::stoul(std::string(*port_text));
  if (port == 0 || port > 65535)
    return error("bad port");
  result.port = static_cast<uint16_t>(port);
  return result;
}

std::shared_ptr<ws_client_connection>
connect_ws(boost::asio::io_context& ioc, const std::string& url,
           const tls_options& tls, ws_client_callbacks callbacks,
           std::chrono::milliseconds connect_timeout, size_t max_frame_bytes,
           size_t max_outbound_bytes) {
  auto plan = make_plan(url, tls);
  using tls_session = ws_session<websocket::stream<tls_transport>>;
  using plain_session = ws_session<websocket::stream<beast::tcp_stream>>;
  if (plan.ctx) {
    auto session = std::make_shared<tls_session>(
      ioc, std::move(plan), std::move(callbacks), connect_timeout,
      max_frame_bytes, max_outbound_bytes);
    session->run();
    return session;
  }
  // Also the session for a plan with an error, which it reports at once.
  auto session = std::make_shared<plain_session>(
    ioc, std::move(plan), std::move(callbacks), connect_timeout,
    max_frame_bytes, max_outbound_bytes);
  session->run();
  return session;
}

void http_get(boost::asio::io_context& ioc, const std::string& url,
              const tls_options& tls,
              std::map<std::string, std::string> headers,
              std::function<void(http_get_result)> done,
              std::chrono::milliseconds timeout) {
  outgoing_http_request request;
  request.url = url;
  request.headers = std::move(headers);
  http_send(ioc, std::move(request), tls, std::move(done), timeout);
}

void http_send(boost::asio::io_context& ioc, outgoing_http_request request,
               const tls_options& tls, std::function<void(http_send_result)> done,
               std::chrono::milliseconds timeout) {
  auto plan = make_plan(request.url, tls);
  if (plan.error.empty() && !is_visible_ascii(request.method)) {
    plan.error_kind = failure_kind::http;
    plan.error = "bad method '" + request.method + "'";
  }
  if (plan.ctx) {
    std::make_shared<http_session<tls_transport>>(
      ioc, std::move(plan), std::move(request), std::move(done), timeout)
      ->run();
    return;
  }
  std::make_shared<http_session<beast::tcp_stream>>(
    ioc, std::move(plan), std::move(request), std::move(done), timeout)
    ->run();
}

} // namespace ferry::net
