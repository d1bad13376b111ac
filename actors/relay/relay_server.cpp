#include "actors/relay/relay_server.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/runtime/metrics.hpp"
#include "messages/nostr/wire.hpp"

#include <caf/send.hpp>

#include <boost/json.hpp>

namespace ferry {

std::string relay_info_json(const config::relay_config& cfg,
                            const std::string& self_pubkey) {
  namespace json = boost::json;
  json::object info;
  info["name"] = cfg.name;
  info["description"] = cfg.description;
  if (!cfg.operator_pubkey.empty())
    info["pubkey"] = cfg.operator_pubkey;
  info["self"] = self_pubkey;
  if (!cfg.contact.empty())
    info["contact"] = cfg.contact;
  if (!cfg.icon.empty())
    info["icon"] = cfg.icon;
  json::array nips{1, 9, 11, 40, 42, 45};
  if (cfg.negentropy.enabled)
    nips.push_back(77);
  info["supported_nips"] = std::move(nips);
  info["software"] = "ferry";
  info["version"] = FERRY_VERSION;
  const auto& l = cfg.limits;
  info["limitation"] = json::object{
    {"max_message_length", l.max_frame_bytes},
    {"max_subscriptions", l.max_subscriptions},
    {"max_filters", l.max_filters},
    {"max_limit", l.max_limit},
    {"default_limit", l.default_limit},
    {"max_subid_length", l.max_subscription_id_length},
    {"created_at_upper_limit", l.max_future_seconds},
    {"auth_required", cfg.auth_required},
    {"payment_required", false},
    {"restricted_writes", false},
  };
  return json::serialize(info);
}

net::http_response relay_http_response(const net::http_request& req,
                                       const std::string& relay_info) {
  net::http_response res;
  res.headers["Access-Control-Allow-Origin"] = "*";
  res.headers["Access-Control-Allow-Headers"] = "*";
  res.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS";
  if (req.method == "OPTIONS") {
    res.status = 204;
    res.content_type.clear();
    return res;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    res.status = 405;
    res.body = R"({"error":{"code":405,"message":"only GET is served here"}})";
    return res;
  }
  auto accept = req.headers.find("accept");
  if (accept != req.headers.end()
      && accept->second.find("application/nostr+json") != std::string::npos) {
    res.content_type = "application/nostr+json";
    res.body = relay_info;
    return res;
  }
  res.content_type = "text/plain; charset=utf-8";
  res.body = "This is a Nostr relay (Ferry). Connect with a WebSocket client.\n";
  return res;
}

std::shared_ptr<net::ws_server>
make_relay_listener(caf::actor_system& sys, boost::asio::io_context& ioc,
                    const config::relay_config& cfg,
                    const std::string& self_pubkey,
                    std::shared_ptr<const relay_context> ctx,
                    std::shared_ptr<boost::asio::ssl::context> tls) {
  net::ws_server_options opts;
  opts.tls = std::move(tls);
  // Scanners and misconfigured clients fail handshakes all the time: worth a
  // count, not a line in the operator's log at the default level.
  opts.on_handshake_failure = [](const std::string& remote,
                                 const std::string& reason) {
    metrics::relay_tls_handshake_failed();
    log::debug("relay-server TLS handshake with {} failed: {}", remote, reason);
  };
  opts.address = cfg.address;
  opts.port = cfg.port;
  opts.max_frame_bytes = cfg.limits.max_frame_bytes;
  opts.max_outbound_bytes = cfg.limits.max_outbound_bytes;
  opts.max_inflight = cfg.limits.max_inflight_messages;
  opts.compression = cfg.compression;
  opts.overflow_notice = nostr::notice_message(
    "error: disconnected: more than "
    + std::to_string(cfg.limits.max_outbound_bytes)
    + " bytes queued for this connection (read faster)");
  opts.max_connections = cfg.limits.max_connections;
  opts.max_connections_per_address = cfg.limits.max_connections_per_ip;
  opts.max_outbound_total_bytes = cfg.limits.max_outbound_total_mb << 20;
  opts.shared_overflow_notice = nostr::notice_message(
    "error: disconnected: the relay holds more than "
    + std::to_string(cfg.limits.max_outbound_total_mb)
    + " MiB for its clients, and more than its share of it for this "
      "connection (read faster)");
  opts.outbound_producers = ctx->query_workers.size();
  opts.max_inbound_total_bytes = cfg.limits.max_inbound_total_mb << 20;
  opts.on_overflow = [](const std::string& remote, bool shared_budget) {
    const char* limit =
      shared_budget ? "max_outbound_total_mb" : "max_outbound_bytes";
    metrics::relay_overflow_disconnect(limit);
    log::debug("relay-server disconnects {}: it reads too slowly ({})", remote,
               limit);
  };
  opts.on_connection_refused = [](const std::string& remote, bool per_ip) {
    const char* limit = per_ip ? "max_connections_per_ip" : "max_connections";
    metrics::relay_connection_refused(limit);
    log::debug("relay-server refused a WebSocket from {}: {} reached", remote,
               limit);
  };
  auto info = std::make_shared<const std::string>(
    relay_info_json(cfg, self_pubkey));
  auto on_open = [&sys, ctx](const std::shared_ptr<net::ws_connection>& conn) {
    ++ctx->live_sessions;
    auto session = sys.spawn(client_session, conn, ctx);
    net::ws_callbacks callbacks;
    callbacks.on_frame = [session](std::string frame) {
      caf::anon_send(session, atom::frame_v, std::move(frame));
    };
    callbacks.on_oversize = [session](size_t bytes) {
      caf::anon_send(session, atom::oversize_v, static_cast<uint64_t>(bytes));
    };
    callbacks.on_close = [session](const std::string& reason) {
      caf::anon_send(session, atom::closed_v, reason);
    };
    return callbacks;
  };
  auto on_http = [info](net::http_request req,
                        std::function<void(net::http_response)> respond) {
    respond(relay_http_response(req, *info));
  };
  return std::make_shared<net::ws_server>(ioc, std::move(opts),
                                          std::move(on_open),
                                          std::move(on_http));
}

relay_server_actor::behavior_type
relay_server(relay_server_actor::stateful_pointer<relay_server_state> self,
             std::shared_ptr<net::ws_server> listener,
             std::shared_ptr<const item_set_cache> item_sets) {
  self->state.listener = std::move(listener);
  self->state.item_sets = std::move(item_sets);
  return {
    [self](atom::get, atom::count) -> uint64_t {
      return self->state.listener->connection_count();
    },
    [self](atom::get, atom::status) {
      auto& listener = *self->state.listener;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      caf::put(result, "port", static_cast<int64_t>(listener.port()));
      caf::put(result, "connections",
               static_cast<int64_t>(listener.connection_count()));
      caf::put(result, "tls", listener.tls());
      caf::put(result, "outbound_queued_bytes",
               static_cast<int64_t>(listener.outbound_queued_bytes()));
      caf::put(result, "inbound_held_bytes",
               static_cast<int64_t>(listener.inbound_held_bytes()));
      caf::put(result, "connections_refused",
               static_cast<int64_t>(listener.refused_connections()));
      if (const auto& cache = self->state.item_sets) {
        auto neg = cache->stats();
        auto put = [&result](const char* key, uint64_t value) {
          caf::put(result, key, static_cast<int64_t>(value));
        };
        put("negentropy_memory_bytes", neg.bytes);
        put("negentropy_max_memory_bytes", neg.max_bytes);
        put("negentropy_sessions", neg.sessions);
        put("negentropy_item_sets", neg.item_sets);
        put("negentropy_builds", neg.builds);
        put("negentropy_shared", neg.shared);
        put("negentropy_refusals", neg.refusals);
      }
      return result;
    },
  };
}

} // namespace ferry
