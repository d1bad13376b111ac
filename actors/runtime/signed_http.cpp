#include "actors/runtime/signed_http.hpp"

#include "messages/clock.hpp"
#include "messages/nostr/nip98.hpp"
#include "net/ws_client.hpp"

#include <algorithm>

namespace ferry {

signed_http_transport http_transport(std::shared_ptr<net::io_runtime> io,
                                     std::chrono::milliseconds timeout) {
  return [io, timeout](signed_http_request req,
                       std::function<void(signed_http_response)> done) {
    net::outgoing_http_request out;
    out.method = std::move(req.method);
    out.url = std::move(req.url);
    out.headers["Authorization"] = std::move(req.authorization);
    out.headers["Accept"] = "application/json";
    if (!req.body.empty())
      out.headers["Content-Type"] = "application/json";
    out.body = std::move(req.body);
    net::tls_options tls;
    tls.ca_certfile = std::move(req.ca_certfile);
    net::http_send(
      io->context(), std::move(out), tls,
      [done](net::http_send_result r) {
        signed_http_response res;
        if (r.failure == net::failure_kind::none) {
          res.status = r.status;
          res.body = std::move(r.body);
        } else {
          res.error = net::to_string(r.failure) + ": " + r.error;
        }
        done(std::move(res));
      },
      timeout);
  };
}

signed_http_request signed_request(const nostr::keypair& keys,
                                   std::string method, std::string url,
                                   std::string body) {
  signed_http_request req;
  req.authorization = nostr::make_http_auth(keys, url, method, body,
                                            unix_now());
  req.method = std::move(method);
  req.url = std::move(url);
  req.body = std::move(body);
  return req;
}

caf::timespan retry_delay(uint32_t attempt, caf::timespan base,
                          caf::timespan cap) {
  auto delay = std::min(base, cap);
  for (uint32_t i = 1; i < attempt && delay < cap; ++i)
    delay = delay > cap / 2 ? cap : delay * 2;
  return delay;
}

} // namespace ferry
