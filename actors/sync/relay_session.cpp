#include "actors/sync/relay_session.hpp"

#include "actors/runtime/logging.hpp"
#include "actors/sync/relay_connection_context.hpp"
#include "actors/sync/sync_metrics.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/nip42.hpp"

#include <caf/send.hpp>

#include <boost/json.hpp>

#include <algorithm>

namespace ferry::relay_conn {

namespace {

/// While the store's disk is full, how often a connection looks for space
/// before it dials.
constexpr auto disk_poll_interval = std::chrono::seconds{1};

error_class classify(net::failure_kind kind) {
  switch (kind) {
    case net::failure_kind::dns:
      return error_class::dns;
    case net::failure_kind::tcp:
    case net::failure_kind::timeout:
      return error_class::tcp;
    case net::failure_kind::tls:
      return error_class::tls;
    case net::failure_kind::pin:
      return error_class::pin;
    case net::failure_kind::http:
    case net::failure_kind::websocket:
    case net::failure_kind::protocol:
      return error_class::protocol;
    case net::failure_kind::none:
    case net::failure_kind::closed_by_peer:
      break;
  }
  return error_class::closed;
}

void connect(self_pointer self) {
  auto& st = self->state;
  st.state = phase::connecting;
  st.ingest.reading_paused = false;
  st.session.challenge.clear();
  st.session.authenticated = false;
  st.session.auth_event_id.clear();
  st.session.waiting_for_auth.clear();
  auto gen = st.generation;
  auto handle = caf::actor_cast<relay_connection_actor>(self);
  net::ws_client_callbacks callbacks;
  callbacks.on_open = [handle, gen] {
    caf::anon_send(handle, atom::connected_v, gen);
  };
  callbacks.on_frame = [handle, gen](std::string frame) {
    caf::anon_send(handle, atom::frame_v, gen, std::move(frame));
  };
  callbacks.on_close = [handle, gen](net::failure_kind kind,
                                     const std::string& reason) {
    caf::anon_send(handle, atom::closed_v, gen, static_cast<uint8_t>(kind),
                   reason);
  };
  st.session.conn = net::connect_ws(st.deps.io->context(), st.def.url,
                                    st.session.tls, std::move(callbacks));
}

/// Checks a NIP-11 document against the definition. @returns "" or why not.
std::string check_relay_info(relay_connection_state& st, uint32_t status,
                             const std::string& body) {
  namespace json = boost::json;
  const bool required = st.def.relay_info == relay_info_mode::required;
  if (status != 200)
    return required ? "relay information unavailable: "
                        + (status == 0 ? body : "HTTP " + std::to_string(status))
                    : "";
  boost::system::error_code ec;
  auto doc = json::parse(body, ec);
  if (ec || !doc.is_object())
    return required ? "relay information is not a JSON object" : "";
  const auto& info = doc.as_object();
  relay_conn::take_remote_limits(st.session, &info);
  std::string identity;
  for (const char* key : {"self", "pubkey"})
    if (auto* value = info.if_contains(key); value && value->is_string()) {
      identity = std::string{value->as_string()};
      break;
    }
  if (st.def.auth_pubkey.empty())
    return "";
  if (identity.empty())
    return required ? "relay information names no identity (self or pubkey)"
                    : "";
  if (identity != st.def.auth_pubkey)
    return "identity mismatch: relay is " + identity + ", expected "
           + st.def.auth_pubkey;
  return "";
}

} // namespace

void take_remote_limits(relay_session& session,
                        const boost::json::object* info) {
  session.remote_max_limit = 0;
  session.remote_max_subscriptions = 0;
  session.page_size = relay_session::our_page_size;
  const auto* limitation = info ? info->if_contains("limitation") : nullptr;
  if (!limitation || !limitation->is_object())
    return;
  const auto& limits = limitation->as_object();
  auto positive = [&](const char* key) -> uint64_t {
    auto* value = limits.if_contains(key);
    return value && value->is_int64() && value->as_int64() > 0
             ? static_cast<uint64_t>(value->as_int64())
             : 0;
  };
  session.remote_max_limit = positive("max_limit");
  session.remote_max_subscriptions = positive("max_subscriptions");
  if (session.remote_max_limit > 0)
    session.page_size = std::min(session.page_size, session.remote_max_limit);
}

std::string info_url(const std::string& ws_url) {
  if (ws_url.rfind("wss://", 0) == 0)
    return "https://" + ws_url.substr(6);
  return "http://" + ws_url.substr(5);
}

net::tls_options tls_options_of(const sync_server& def) {
  net::tls_options tls;
  tls.enabled = def.url.rfind("wss://", 0) == 0;
  tls.hostname = def.tls.hostname;
  tls.ca_certfile = def.tls.ca_certfile;
  tls.client_certfile = def.tls.client_certfile;
  tls.client_keyfile = def.tls.client_keyfile;
  for (const auto& pin : def.tls.pins)
    tls.spki_sha256_pins.push_back(pin.value);
  return tls;
}

void begin(self_pointer self) {
  auto& st = self->state;
  if (auto problem = st.deps.store->space_problem(); !problem.empty()) {
    st.state = phase::backing_off;
    st.session.last_error = std::string{store::disk_full_prefix} + problem;
    self->delayed_send(self, disk_poll_interval, atom::reconnect_v,
                       st.generation);
    return;
  }
  auto gen = ++st.generation;
  take_remote_limits(st.session, nullptr);
  report(self, atom::report_v, atom::connecting_v, st.def.id);
  if (st.def.relay_info == relay_info_mode::disabled)
    return connect(self);
  st.state = phase::relay_info;
  auto handle = caf::actor_cast<relay_connection_actor>(self);
  net::http_get(st.deps.io->context(), info_url(st.def.url), st.session.tls,
                {{"Accept", "application/nostr+json"}},
                [handle, gen](net::http_get_result r) {
                  auto ok = r.failure == net::failure_kind::none;
                  caf::anon_send(handle, atom::info_v, gen,
                                 static_cast<uint32_t>(ok ? r.status : 0),
                                 ok ? std::move(r.body) : std::move(r.error));
                });
}

void on_relay_info(self_pointer self, uint64_t gen, uint32_t status,
                   const std::string& body) {
  auto& st = self->state;
  if (gen != st.generation || st.state != phase::relay_info)
    return;
  if (auto problem = check_relay_info(st, status, body); !problem.empty())
    return fail(self, error_class::auth, problem);
  connect(self);
}

void on_transport_closed(self_pointer self, uint64_t gen, uint8_t kind,
                         const std::string& reason) {
  auto& st = self->state;
  if (gen != st.generation)
    return;
  st.session.conn = nullptr;
  fail(self, classify(static_cast<net::failure_kind>(kind)), reason);
}

void authenticate(self_pointer self) {
  auto& st = self->state;
  auto& session = st.session;
  if (session.challenge.empty() || st.def.auth == auth_mode::never)
    return;
  auto ev = nostr::make_auth_event(st.deps.keys, st.def.url, session.challenge,
                                   unix_now());
  session.auth_event_id = nostr::to_hex(ev.id);
  send_frame(self, "[\"AUTH\"," + nostr::to_json(ev) + "]");
}

void on_auth_challenge(self_pointer self, std::string challenge) {
  auto& st = self->state;
  st.session.challenge = std::move(challenge);
  if (st.def.auth != auth_mode::never)
    authenticate(self);
}

void on_auth_ok(self_pointer self, bool accepted, const std::string& reason) {
  if (!accepted)
    return fail(self, error_class::auth, "AUTH refused: " + reason);
  self->state.session.authenticated = true;
  resend_up_after_auth(self);
  resubscribe_after_auth(self);
  resume_negentropy_after_auth(self);
}

void fail(self_pointer self, error_class kind, const std::string& reason) {
  auto& st = self->state;
  st.session.last_error = reason;
  log::warn("{} {}: {}", st.label, to_string(kind), reason);
  if (st.session.conn) {
    st.session.conn->close(reason);
    st.session.conn = nullptr;
  }
  st.reqs.end_session();
  // Events still in the verifiers keep their numbers: their answers come,
  // and the cursor's fold (settle_ingest) waits for them.
  st.cursor.barriers.clear();
  st.session.disconnected_at = unix_now();
  metrics::sync::set_connected(st.def.id, false);
  metrics::sync::attempt(st.def.id, to_string(kind));
  drop_catchup_batches(self);
  drop_negentropy(self);
  stop_up(self);
  persist_runtime(self);
  auto gen = ++st.generation;
  st.state = phase::backing_off;
  report(self, atom::report_v, atom::failed_v, st.def.id, kind, reason);
  ask_health(
    self,
    [self, gen](caf::timespan delay) {
      auto& st = self->state;
      if (driven(st)) {
        // The driver forgets the relay and waits out `delay` before GRASP
        // SYNC's next connect dials it again.
        self->send(st.deps.driver, atom::lost_v, st.def.url,
                   st.session.last_error, delay);
        return self->quit();
      }
      self->delayed_send(self, delay, atom::reconnect_v, gen);
    },
    [self](caf::error& err) {
      auto& st = self->state;
      st.state = phase::dead;
      st.session.last_error = render(err);
      log::warn("{} gives up: {}", st.label, render(err));
      if (driven(st)) {
        self->send(st.deps.driver, atom::lost_v, st.def.url,
                   st.session.last_error,
                   caf::timespan{std::chrono::minutes{5}});
        self->quit();
      }
    },
    caf::timespan{std::chrono::seconds{5}}, atom::get_v, atom::delay_v,
    st.def.id);
}

} // namespace ferry::relay_conn
