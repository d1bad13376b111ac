// HTTP/1.1 requests of the outbound client (`http_get`, `http_send`): one
// request per connection, with the WebSocket client's TLS handling.

#include "net/ws_client.hpp"

#include "net/ws_client_connect.hpp"


namespace ferry::net {
namespace client_detail {
namespace {

/// Largest response body of `http_get` and `http_send`; NIP-11 documents
/// and management API answers are a few KiB.
constexpr uint64_t http_body_limit = 4 * 1024 * 1024;

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
} // namespace client_detail

using namespace client_detail;

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
