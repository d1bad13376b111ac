#include "actors/runtime/control_plane.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/nostr/nip98.hpp"
#include "messages/secret.hpp"
#include "net/request_target.hpp"

#include <caf/send.hpp>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <variant>
#include <vector>

namespace ferry {

namespace {

bool equal_nocase(std::string_view x, std::string_view y) {
  return x.size() == y.size()
         && std::equal(x.begin(), x.end(), y.begin(), [](char a, char b) {
              return std::tolower(static_cast<unsigned char>(a))
                     == std::tolower(static_cast<unsigned char>(b));
            });
}

net::http_response method_not_allowed(const std::string& allowed) {
  auto res = admin_error(405, "method not allowed; use " + allowed);
  res.headers["Allow"] = allowed;
  return res;
}

/// A 401 with the challenge `scheme` offers.
net::http_response unauthorized(const std::string& why,
                                const std::string& scheme) {
  auto res = admin_error(401, why);
  res.headers["WWW-Authenticate"] = scheme;
  return res;
}

/// Each accepted NIP-98 event authorizes one request: a second use inside
/// its window is refused (401), as is any new event while `memory` is full
/// (503 with when to try again; see `nostr::http_auth_memory` for why
/// nothing is forgotten early). nullopt: admitted.
std::optional<net::http_response>
admit_once(nostr::http_auth_memory& memory, const nostr::http_auth_event& ev,
           int64_t now, const std::string& scheme) {
  using verdict = nostr::http_auth_memory::verdict;
  switch (memory.admit(ev.id, ev.created_at, now)) {
    case verdict::fresh:
      return std::nullopt;
    case verdict::reused:
      return unauthorized("NIP-98: event " + nostr::to_hex(ev.id)
                            + " was used before; sign a new event for "
                              "each request",
                          scheme);
    case verdict::full: {
      auto wait = memory.seconds_until_room(now);
      auto res = admin_error(
        503, "NIP-98: this node remembers " + std::to_string(memory.capacity())
               + " events of requests accepted in the last two minutes, the "
                 "most it keeps to refuse their reuse; try again in "
               + std::to_string(wait) + " s");
      res.headers["Retry-After"] = std::to_string(wait);
      return res;
    }
  }
  return std::nullopt;
}

void serve(control_plane_pointer self, const admin_exchange_ptr& ex) {
  auto& st = self->state;
  ++st.requests;
  const auto& req = ex->request;
  // Invariant: access and routing are both decided from this one parsed
  // value; nothing below looks at the raw target again (only NIP-98 does,
  // because the client signed the URL exactly as it sent it).
  auto parsed = net::parse_request_target(req.target);
  if (auto why = std::get_if<std::string>(&parsed)) {
    log::debug("{} refused a {} from {}: bad request target: {}",
               self->name(), req.method, req.remote_address, *why);
    return ex->answer(
      admin_error(400, "bad request target: " + *why, "target"));
  }
  const auto& target = std::get<net::request_target>(parsed);
  auto resolved = admin_routes().resolve(req.method, target.segments);
  if (target.has_query && !(resolved.route && resolved.route->takes_query))
    return ex->answer(admin_error(
      400, "bad request target: this route takes no query", "target"));
  resolved.args.query = target.query;
  auto now = unix_now();
  auto refuse = [&](net::http_response res) {
    if (res.status == 401)
      ++st.unauthorized;
    log::debug("{} refused {} {} from {}: {}", self->name(), req.method,
               req.target, req.remote_address, res.body);
    ex->answer(std::move(res));
  };
  // Deny by default: everything but the open routes needs credentials, also
  // paths that match no route (so unknown paths reveal nothing either).
  if (resolved.route && resolved.route->access == admin_access::signed_peer) {
    const std::string scheme = "Nostr";
    nostr::http_auth_event ev;
    if (auto why = peer_authorize(st.nip98.public_url, req, now, ev);
        !why.empty())
      return refuse(unauthorized(why, scheme));
    if (auto refusal = admit_once(st.nip98.seen->peers, ev, now, scheme))
      return refuse(std::move(*refusal));
    ex->caller = nostr::to_hex(ev.pubkey);
  } else if (!(st.open_health && resolved.open)) {
    const std::string scheme = "Bearer realm=\"ferry-admin\", Nostr";
    std::optional<nostr::http_auth_event> ev;
    if (auto why = admin_authorize(st.config, st.nip98.public_url, req, now,
                                   ev);
        !why.empty())
      return refuse(unauthorized(why, scheme));
    auto refusal = ev ? admit_once(st.nip98.seen->operators, *ev, now, scheme)
                      : std::nullopt;
    if (refusal)
      return refuse(std::move(*refusal));
  }
  if (resolved.route)
    return resolved.route->handler(self, ex, resolved.args);
  if (!resolved.allowed.empty())
    return ex->answer(method_not_allowed(resolved.allowed));
  ex->answer(admin_error(404, "not found"));
}

} // namespace

// -- admin_exchange -----------------------------------------------------------

void admin_exchange::answer(net::http_response res) {
  if (answered)
    return;
  answered = true;
  respond(std::move(res));
}

admin_exchange::~admin_exchange() {
  if (!answered && respond)
    respond(admin_error(503, "the admin API is shutting down"));
}

// -- the route table ----------------------------------------------------------

const admin_router& admin_routes() {
  static const admin_router router{[] {
    std::vector<admin_route> table;
    add_runtime_admin_routes(table);
    add_sync_admin_routes(table);
    add_grasp_admin_routes(table);
    add_infra_admin_routes(table);
    add_cluster_admin_routes(table);
    add_federation_admin_routes(table);
    return table;
  }()};
  return router;
}

// -- access -------------------------------------------------------------------

std::string admin_authorize(const config::admin_config& cfg,
                            const std::string& public_url,
                            const net::http_request& req, int64_t now,
                            std::optional<nostr::http_auth_event>& event) {
  auto header = req.headers.find("authorization");
  if (header == req.headers.end() || header->second.empty())
    return "authorization required";
  const auto& value = header->second;
  // "<scheme> <credentials>"; HTTP strips trailing blanks, so "Bearer " with
  // an empty token arrives as the bare scheme.
  auto space = value.find(' ');
  auto scheme = std::string_view{value}.substr(0, space);
  if (equal_nocase(scheme, "Bearer")) {
    if (cfg.token.empty())
      return "bearer tokens are not accepted here";
    auto given = space == std::string::npos
                   ? std::string_view{}
                   : std::string_view{value}.substr(space + 1);
    if (!secret_equal(given, cfg.token))
      return "wrong bearer token";
    return {};
  }
  if (equal_nocase(scheme, "Nostr")) {
    if (cfg.nip98_pubkeys.empty())
      return "NIP-98 authorization is not accepted here";
    nostr::http_auth_event ev;
    if (auto why = peer_authorize(public_url, req, now, ev); !why.empty())
      return why;
    auto& keys = cfg.nip98_pubkeys;
    if (std::find(keys.begin(), keys.end(), nostr::to_hex(ev.pubkey))
        == keys.end())
      return "NIP-98: pubkey is not allowed";
    event = ev;
    return {};
  }
  return "unsupported authorization scheme";
}

std::string peer_authorize(const std::string& public_url,
                           const net::http_request& req, int64_t now,
                           nostr::http_auth_event& event) {
  auto header = req.headers.find("authorization");
  if (header == req.headers.end() || header->second.empty())
    return "NIP-98 authorization required";
  // With a public URL the Host header plays no part: a client can send any
  // Host, so an event signed for another node (whose URL it names) must
  // not pass here by a Host that names that node too.
  if (!public_url.empty()) {
    if (auto why = nostr::verify_http_auth(header->second,
                                           public_url + req.target,
                                           req.method, req.body, now, &event);
        !why.empty())
      return "NIP-98: " + why;
    return {};
  }
  auto host = req.headers.find("host");
  if (host == req.headers.end() || host->second.empty())
    return "NIP-98 needs a Host header";
  // Behind a TLS-terminating proxy the client signed https://: either
  // scheme names this host and target.
  if (auto why = nostr::verify_http_auth_either_scheme(
        header->second, host->second + req.target, req.method, req.body, now,
        &event);
      !why.empty())
    return "NIP-98: " + why;
  return {};
}

bool is_loopback_address(const std::string& address) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(address, ec);
  return !ec && addr.is_loopback();
}

// -- the actor ----------------------------------------------------------------

control_plane_state::~control_plane_state() {
  if (server)
    server->stop();
}

control_plane_actor::behavior_type
control_plane(control_plane_actor::stateful_pointer<control_plane_state> self,
              config::admin_config config, admin_nip98 nip98,
              handle_slot_ptr<inspector_actor> inspector,
              handle_slot_ptr<sync_manager_actor> sync_manager,
              infra_handles infra,
              handle_slot_ptr<federation_actor> federation,
              handle_slot_ptr<config_reloader_actor> reloader,
              std::shared_ptr<net::io_runtime> io) {
  auto& st = self->state;
  st.nip98 = std::move(nip98);
  if (!st.nip98.public_url.empty() && st.nip98.public_url.back() == '/')
    st.nip98.public_url.pop_back();
  st.federation = std::move(federation);
  st.reloader = std::move(reloader);
  st.open_health = config.public_health || is_loopback_address(config.address);
  st.inspector = std::move(inspector);
  st.sync_manager = std::move(sync_manager);
  st.infra = std::move(infra);
  st.io = std::move(io);
  net::ws_server_options opts;
  opts.address = config.address;
  opts.port = config.port;
  opts.websocket = false;
  // The server holds this callback as long as it runs; a weak handle keeps it
  // from holding the actor alive in turn.
  caf::weak_actor_ptr weak{self->ctrl()};
  auto on_http = [weak](net::http_request request,
                        std::function<void(net::http_response)> respond) {
    auto ex = std::make_shared<admin_exchange>();
    ex->request = std::move(request);
    ex->respond = std::move(respond);
    // Without the actor the exchange dies here and answers 503 itself.
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<control_plane_actor>(strong),
                     std::move(ex));
  };
  st.server = std::make_shared<net::ws_server>(st.io->context(),
                                               std::move(opts), nullptr,
                                               std::move(on_http));
  if (auto failure = st.server->start(); !failure.empty()) {
    st.server.reset();
    self->quit(caf::make_error(ec::network_failure, "admin: " + failure));
    return control_plane_actor::behavior_type::make_empty_behavior();
  }
  st.port = st.server->port();
  st.config = std::move(config);
  auto host = st.config.address.find(':') == std::string::npos
                ? st.config.address
                : "[" + st.config.address + "]";
  log::info("{} listening on http://{}:{}", self->name(), host, st.port);
  return {
    [self](atom::get, atom::status) -> status_map {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox",
               static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "address", st.config.address);
      caf::put(result, "port", static_cast<int64_t>(st.port));
      caf::put(result, "requests", static_cast<int64_t>(st.requests));
      caf::put(result, "unauthorized", static_cast<int64_t>(st.unauthorized));
      return result;
    },
    [self](admin_exchange_ptr& ex) { serve(self, ex); },
  };
}

} // namespace ferry
