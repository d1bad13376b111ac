#pragma once

// A zooid-style management API (a third-party remote) for the tests of the
// infra reconciler: a small Beast server that answers every `/relay/ID`
// request 200 and keeps what it got, with the node key that signed it.

#include "messages/nostr/hex.hpp"
#include "messages/nostr/nip98.hpp"
#include "tests/fixtures/node_process.hpp"
#include "tests/net/net_fixture.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ferry::test {

class management_api {
public:
  struct push {
    std::string method;
    std::string target;
    boost::json::object body;
    /// The node key of the request's NIP-98 signature (hex); empty when it
    /// does not verify.
    std::string signer;
  };

  explicit management_api(std::string prefix) : prefix_(std::move(prefix)) {
    net::ws_server_options opts;
    opts.websocket = false;
    server_.start(opts, [this](net::http_request req,
                               std::function<void(net::http_response)> respond) {
      {
        std::lock_guard<std::mutex> guard{mtx_};
        boost::json::error_code ec;
        auto body = boost::json::parse(req.body, ec);
        nostr::http_auth_event ev;
        auto why = nostr::verify_http_auth_either_scheme(
          req.headers["authorization"], req.headers["host"] + req.target,
          req.method, req.body, unix_now(), &ev);
        pushes_.push_back({req.method, req.target,
                           !ec && body.is_object() ? body.as_object()
                                                   : boost::json::object{},
                           why.empty() ? nostr::to_hex(ev.pubkey) : std::string{}});
      }
      net::http_response res;
      res.body = "{}";
      respond(std::move(res));
    });
    REQUIRE(server_.start_error().empty());
  }

  std::string url() {
    return "http://127.0.0.1:" + std::to_string(server_.port()) + prefix_;
  }

  const std::string& prefix() const {
    return prefix_;
  }

  std::vector<push> pushes() {
    std::lock_guard<std::mutex> guard{mtx_};
    return pushes_;
  }

  /// The requests for relay `id` (`/relay/ID`), oldest first.
  std::vector<push> pushes_of(const std::string& id) {
    std::vector<push> result;
    for (auto& p : pushes())
      if (p.target == prefix_ + "/relay/" + id)
        result.push_back(std::move(p));
    return result;
  }

  /// The hosts pushed for each relay (by the request's target).
  std::map<std::string, std::string> hosts() {
    std::map<std::string, std::string> result;
    for (auto& p : pushes())
      if (auto* host = p.body.if_contains("host"); host && host->is_string())
        result[p.target] = std::string{host->as_string()};
    return result;
  }

private:
  std::string prefix_;
  std::mutex mtx_;
  std::vector<push> pushes_;
  net::test::server_fixture server_;
};

} // namespace ferry::test
