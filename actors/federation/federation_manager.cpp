#include "actors/federation/federation_manager.hpp"

#include "actors/federation/collection_pull.hpp"
#include "actors/federation/collections.hpp"
#include "actors/federation/federation_metrics.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/json_body.hpp"
#include "messages/nostr/hex.hpp"
#include "net/request_target.hpp"
#include "store/change_log.hpp"
#include "store/peer_store.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include <boost/json.hpp>

#include <algorithm>

namespace ferry {

namespace {

namespace json = boost::json;

using self_pointer
  = federation_actor::stateful_pointer<federation_manager_state>;

/// How soon a tick comes again while our own URLs are still unknown.
constexpr auto url_retry_delay = std::chrono::milliseconds{250};

/// How long we wait for the sync manager and the control plane.
constexpr auto local_timeout = std::chrono::seconds{5};

// -- answers ------------------------------------------------------------------

federation_reply reply(uint32_t status, json::object body) {
  return {status, json::serialize(body)};
}

federation_reply refuse(uint32_t status, const std::string& message,
                        const std::string& field = {}) {
  return federation_error(status, message, field);
}

federation_reply invalid(const caf::error& err) {
  auto message = render(err);
  auto colon = message.find(": ");
  return refuse(400, message,
                colon == std::string::npos ? std::string{}
                                           : message.substr(0, colon));
}

/// Our signature over the caller's own Authorization header for the URL it
/// signed: only the holder of our node key can produce it, and it is bound
/// to this one request.
std::string proof_for(self_pointer self, const federation_call& call) {
  return answer_proof(self->state.deps.keys, call.authorization, call.url,
                      call.method, unix_now());
}

/// A peer's answer with our identity and its proof.
federation_reply signed_reply(self_pointer self, const federation_call& call,
                              uint32_t status, json::object body) {
  body["pubkey"] = self->state.self_key;
  body["proof"] = proof_for(self, call);
  return reply(status, std::move(body));
}

json::object link_object(const peer_record& r) {
  return json::object{{"link_id", r.def.name},
                      {"status", to_string(r.status)},
                      {"version", json::parse(to_json(r.version))}};
}

json::object view(const peer_record& r) {
  auto def = json::parse(to_json(r.def)).as_object();
  const auto& h = r.handshake;
  json::array pending;
  for (const auto& n : r.pending)
    pending.push_back(json::object{{"kind", n.kind},
                                   {"attempts", n.attempts},
                                   {"next_at", n.next_at}});
  def["direction"] = r.incoming ? "incoming" : "outgoing";
  def["status"] = to_string(r.status);
  def["version"] = json::parse(to_json(r.version));
  def["pinned"] = r.pinned;
  def["pin_mismatch"] = r.pin_mismatch;
  def["last_seen"] = r.last_seen;
  def["handshake"] = json::object{{"success", h.success},
                                  {"status", h.status},
                                  {"message", h.message},
                                  {"remote_link_id", h.remote_link_id},
                                  {"http_status", h.http_status},
                                  {"error", h.error},
                                  {"at", h.at}};
  def["pending"] = std::move(pending);
  // The peer's password is theirs: say whether one is set, never what.
  def.erase("password");
  def["password_set"] = !r.def.password.empty();
  def["sync_server"] = r.incoming ? std::string{}
                                  : federation_server_id(r.def.name);
  return def;
}

// -- records ------------------------------------------------------------------

peer_record* find_peer(self_pointer self, const std::string& name) {
  auto i = self->state.peers.find(name);
  return i == self->state.peers.end() || i->second.removed ? nullptr
                                                           : &i->second;
}

/// The incoming link whose pinned key signed this call.
peer_record* find_by_caller(self_pointer self, const std::string& caller) {
  for (auto& [name, r] : self->state.peers)
    if (!r.removed && r.incoming && r.pinned == caller)
      return &r;
  return nullptr;
}

/// The incoming link a caller names as `link_id` (our name for it, which it
/// learned when it registered), or null.
peer_record* named_incoming(self_pointer self, const std::string& link_id) {
  auto r = find_peer(self, link_id);
  return r && r->incoming ? r : nullptr;
}

/// The incoming link registered from relay `endpoint`, or null.
peer_record* incoming_at(self_pointer self, const std::string& endpoint) {
  for (auto& [name, r] : self->state.peers)
    if (!r.removed && r.incoming && r.def.endpoint == endpoint)
      return &r;
  return nullptr;
}

/// The outgoing link to a peer that proved `caller` (mirrors from a peer we
/// registered with come signed by its key).
peer_record* find_outgoing_by_key(self_pointer self, const std::string& key) {
  for (auto& [name, r] : self->state.peers)
    if (!r.removed && !r.incoming && r.pinned == key && r.pin_mismatch.empty())
      return &r;
  return nullptr;
}

caf::error save(self_pointer self, const peer_record& r) {
  auto err = store::put_peer(*self->state.deps.store, r);
  if (err)
    log::error("{} could not store peer {}: {}", self->name(), r.def.name,
               render(err));
  return err;
}

/// Queues a notification of `kind` for the peer, replacing one of the same
/// kind, due now.
void queue_notice(peer_record& r, const std::string& kind) {
  r.pending.erase(std::remove_if(r.pending.begin(), r.pending.end(),
                                 [&kind](const pending_notice& n) {
                                   return n.kind == kind;
                                 }),
                  r.pending.end());
  r.pending.push_back({kind, 0, 0});
}

void drop_notice(peer_record& r, const std::string& kind) {
  r.pending.erase(std::remove_if(r.pending.begin(), r.pending.end(),
                                 [&kind](const pending_notice& n) {
                                   return n.kind == kind;
                                 }),
                  r.pending.end());
}

// -- the sync server of a link ------------------------------------------------

sync_direction direction_of(federation_mode mode) {
  switch (mode) {
    case federation_mode::publish:
      return sync_direction::up;
    case federation_mode::subscribe:
      return sync_direction::down;
    case federation_mode::sync:
      break;
  }
  return sync_direction::both;
}

/// A link we defined whose peer proves another key than the pinned one
/// talks to another node than the one we agreed with: refused both ways.
/// On a link a peer registered, a mismatch is only another key claiming
/// it: that key is refused, the pinned one goes on.
bool refuses_pinned(const peer_record& r) {
  return !r.incoming && !r.pin_mismatch.empty();
}

/// Why the relay refuses a peer's key both ways for this link; empty: it
/// does not. A link not active here (or refused for a pin mismatch) or
/// paused by our operator exchanges nothing, whichever side defined it.
std::string link_refusal(const peer_record& r) {
  if (r.removed || r.status != link_status::active || refuses_pinned(r))
    return "restricted: the federation link with this node is not active";
  if (r.def.mode == peer_mode::paused)
    return "restricted: this node paused its federation link with yours";
  return {};
}

/// Why our relay refuses federation peers all reads in `[federation] mode =
/// "subscribe"`; the collection routes answer the same.
const std::string subscribe_refusal
  = "restricted: this node does not serve its events to federation peers "
    "([federation] mode = subscribe)";

/// Whether events flow with this peer now.
bool exchanging(const peer_record& r) {
  return !r.incoming && !r.removed && r.status == link_status::active
         && r.def.mode == peer_mode::sync && !r.pinned.empty()
         && r.pin_mismatch.empty();
}

std::string server_body(self_pointer self, const peer_record& r) {
  json::array filters;
  for (const auto& f : r.def.filters)
    filters.push_back(json::parse(nostr::to_json(f)));
  json::object body{
    {"id", federation_server_id(r.def.name)},
    {"url", r.def.endpoint},
    {"enabled", exchanging(r)},
    {"auth_pubkey", r.pinned},
    {"filters", std::move(filters)},
    {"direction", to_string(direction_of(self->state.deps.settings.mode))},
    // NIP-77: a catch-up (and the periodic reconciliation) fetches only
    // what is missing on either side.
    {"mode", "negentropy"},
    // Resuming continues from the cursor: nothing below it comes again.
    {"overlap_window_seconds", 0},
    // The NIP-11 `self` must be the pinned key before anything moves.
    {"relay_info_mode", "required"},
    {"metadata", json::object{{"federation_peer", r.def.name}}},
  };
  if (!r.def.ca.empty() && r.def.endpoint.rfind("wss://", 0) == 0)
    body["tls"] = json::object{{"ca_certfile", r.def.ca}};
  return json::serialize(body);
}

/// Brings the peer's sync server in line with its link: enabled while
/// exchanging, disabled otherwise (the cursor stays). A peer never pinned
/// has no server yet.
void apply_sync(self_pointer self, const peer_record& r) {
  auto& st = self->state;
  if (r.incoming || r.removed || r.pinned.empty())
    return;
  auto body = server_body(self, r);
  if (st.applied[r.def.name] == body)
    return;
  auto manager = st.deps.sync_manager ? st.deps.sync_manager->get()
                                      : sync_manager_actor{};
  if (!manager)
    return;
  st.applied[r.def.name] = body;
  auto name = r.def.name;
  self->request(manager, local_timeout, atom::put_v,
                federation_server_id(name), body)
    .then(
      [self, name](std::string&) {
        log::debug("{} sync server {} updated", self->name(),
                   federation_server_id(name));
      },
      [self, name](caf::error& err) {
        self->state.applied.erase(name);
        log::warn("{} could not update sync server {}: {}", self->name(),
                  federation_server_id(name), render(err));
      });
}

/// Deletes the peer's sync server with its cursor.
void erase_sync(self_pointer self, const std::string& name) {
  auto& st = self->state;
  st.applied.erase(name);
  auto manager = st.deps.sync_manager ? st.deps.sync_manager->get()
                                      : sync_manager_actor{};
  // The sync subsystem may still be starting: try again on the next tick.
  if (!manager) {
    st.erase_due.insert(name);
    return;
  }
  st.erase_due.erase(name);
  self->request(manager, local_timeout, atom::erase_v,
                federation_server_id(name))
    .then([](std::string&) {},
          [](caf::error&) {
            // nop: a peer never synced has no server
          });
}

// -- calling peers ------------------------------------------------------------

/// Sends one signed call to the peer's admin API; the answer comes back as
/// a `federation_answer`.
void call_peer(self_pointer self, const peer_record& r, const std::string& op,
               const std::string& method, const std::string& path,
               std::string body) {
  auto& st = self->state;
  auto key = r.def.name + "/" + op;
  if (!st.in_flight.insert(key).second)
    return;
  auto req = signed_request(st.deps.keys, method, r.def.admin_url + path,
                            std::move(body));
  req.ca_certfile = r.def.ca;
  federation_answer pending;
  pending.peer = r.def.name;
  pending.op = op;
  pending.generation = st.generations[r.def.name];
  pending.authorization = req.authorization;
  pending.url = req.url;
  pending.method = req.method;
  caf::weak_actor_ptr weak{self->ctrl()};
  st.deps.transport(std::move(req), [weak, pending](
                                      signed_http_response res) mutable {
    pending.status = res.status;
    pending.body = res.status != 0 ? std::move(res.body)
                                   : std::move(res.error);
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<federation_actor>(strong),
                     std::move(pending));
  });
}

/// Where we verify the link: naming the peer's id for it, so a peer that
/// reset its side (or knows another key for us) says so instead of 404.
std::string link_path(const peer_record& r) {
  std::string path = "/api/v1/federation/link";
  if (is_peer_name(r.handshake.remote_link_id))
    path += "?link_id=" + r.handshake.remote_link_id;
  return path;
}

/// Registers with the peer once its status shows federation on: `GET
/// /api/v1/federation/status` first (`on_probe`), then `register_now`.
void send_register(self_pointer self, const peer_record& r) {
  auto& st = self->state;
  // The peer needs both to call us back; they are known after the first
  // tick (the control plane starts after us).
  if (st.self_relay_url.empty() || st.self_admin_url.empty())
    return;
  call_peer(self, r, "probe", "GET", "/api/v1/federation/status", {});
}

void register_now(self_pointer self, const peer_record& r) {
  auto& st = self->state;
  auto name = st.deps.settings.name.empty()
                ? "node-" + st.self_key.substr(0, 12)
                : st.deps.settings.name;
  json::object body{{"name", name},
                    {"endpoint", st.self_relay_url},
                    {"admin_url", st.self_admin_url}};
  if (!r.def.password.empty())
    body["password"] = r.def.password;
  if (is_peer_name(r.handshake.remote_link_id))
    body["link_id"] = r.handshake.remote_link_id;
  call_peer(self, r, "register", "POST", "/api/v1/federation/register",
            json::serialize(body));
}

void send_status(self_pointer self, const peer_record& r) {
  json::object body{{"status", to_string(r.status)},
                    {"version", json::parse(to_json(r.version))}};
  call_peer(self, r, "status", "POST", "/api/v1/federation/status",
            json::serialize(body));
}

/// Whether a failed registration is worth repeating on its own: not when
/// the peer refused us for a reason only its operator or ours can change.
bool retry_register(const handshake_result& h) {
  if (h.status.empty())
    return true;
  if (h.success)
    return false;
  return h.http_status != 400 && h.http_status != 401 && h.http_status != 403;
}

/// The safety net under the live tail: every `interval_seconds` a NIP-77
/// reconciliation with each exchanging peer whose connection is live (one
/// still catching up is left to finish).
void reconcile(self_pointer self) {
  auto& st = self->state;
  auto manager = st.deps.sync_manager ? st.deps.sync_manager->get()
                                      : sync_manager_actor{};
  auto now = self->clock().now();
  for (const auto& [name, r] : st.peers) {
    if (!exchanging(r)) {
      st.reconcile_due.erase(name);
      continue;
    }
    // The first one is due an interval after the link starts exchanging:
    // its connection begins with a reconciliation of its own.
    auto [due, fresh] = st.reconcile_due.try_emplace(
      name, now + st.deps.settings.interval);
    if (fresh || due->second > now || !manager)
      continue;
    due->second = now + st.deps.settings.interval;
    auto id = federation_server_id(name);
    self->request(manager, local_timeout, atom::get_v, atom::server_v, id)
      .then(
        [self, manager, id](std::string& row) {
          json::error_code ec;
          auto parsed = json::parse(row, ec);
          auto runtime = !ec && parsed.is_object()
                           ? parsed.as_object().if_contains("runtime")
                           : nullptr;
          auto state = runtime && runtime->is_object()
                         ? runtime->as_object().if_contains("state")
                         : nullptr;
          if (!state || !state->is_string() || state->get_string() != "live")
            return;
          ++self->state.reconciliations;
          self->request(manager, local_timeout, atom::sync_now_v, id)
            .then([](std::string&) {},
                  [self, id](caf::error& err) {
                    log::debug("{} could not reconcile {}: {}", self->name(),
                               id, render(err));
                  });
        },
        [](caf::error&) {
          // nop: the sync server is gone or restarting; the next round asks
        });
  }
}

/// What a counter of a sync server's stats grew by since `last` (which it
/// becomes): a counter below `last` started again from zero (a new
/// connection, a new server).
uint64_t growth(const json::object& stats, const char* key, uint64_t& last) {
  auto v = stats.if_contains(key);
  auto now = v && v->is_int64() ? static_cast<uint64_t>(
                                    std::max<int64_t>(v->get_int64(), 0))
                                : uint64_t{0};
  auto grown = now >= last ? now - last : now;
  last = now;
  return grown;
}

/// Brings the per-peer traffic metrics up to each link's sync server.
void count_traffic(self_pointer self) {
  auto& st = self->state;
  auto manager = st.deps.sync_manager ? st.deps.sync_manager->get()
                                      : sync_manager_actor{};
  if (!manager)
    return;
  for (const auto& [name, r] : st.peers) {
    if (r.incoming || r.removed || r.pinned.empty())
      continue;
    self->request(manager, local_timeout, atom::stats_v,
                  federation_server_id(name))
      .then(
        [self, name = name](std::string& text) {
          json::error_code ec;
          auto parsed = json::parse(text, ec);
          if (ec || !parsed.is_object())
            return;
          const auto& stats = parsed.as_object();
          auto& seen = self->state.traffic[name];
          auto events_in = growth(stats, "received", seen.received);
          auto events_out = growth(stats, "sent", seen.sent);
          auto bytes_in = growth(stats, "bytes_received", seen.bytes_received);
          auto bytes_out = growth(stats, "bytes_sent", seen.bytes_sent);
          metrics::federation::exchanged(name, events_in, events_out,
                                         bytes_in, bytes_out);
        },
        [](caf::error&) {
          // nop: no server yet, or the sync manager is restarting
        });
  }
}

/// One round over every link: registrations, verifications, due
/// notifications, reconciliations and traffic counts.
void work(self_pointer self) {
  auto& st = self->state;
  auto now = unix_now();
  // What could not reach the sync manager before (it may start after us).
  for (auto name : std::set<std::string>{st.erase_due})
    if (st.peers.count(name) == 0 || st.peers[name].removed)
      erase_sync(self, name);
  for (const auto& [name, r] : st.peers)
    apply_sync(self, r);
  for (auto& [name, r] : st.peers) {
    for (auto& n : r.pending)
      if (n.next_at <= now) {
        if (n.kind == "delete")
          call_peer(self, r, "delete", "DELETE", "/api/v1/federation/link",
                    {});
        else if (n.kind == "status")
          send_status(self, r);
      }
    if (r.removed || r.incoming)
      continue;
    if (retry_register(r.handshake))
      send_register(self, r);
    else if (r.handshake.success)
      call_peer(self, r, "verify", "GET", link_path(r), {});
  }
  reconcile(self);
  count_traffic(self);
}

/// Learns our own URLs (the admin port is bound by the control plane, which
/// starts after us), then works.
void tick(self_pointer self) {
  auto& st = self->state;
  if (st.self_relay_url.empty() && st.deps.relay_port
      && st.deps.relay_port->load() != 0)
    st.self_relay_url = "ws://" + st.deps.relay_address + ":"
                        + std::to_string(st.deps.relay_port->load());
  if (!st.self_admin_url.empty()) {
    work(self);
    return;
  }
  auto cp = st.deps.control_plane ? st.deps.control_plane->get()
                                  : control_plane_actor{};
  if (!cp) {
    work(self);
    return;
  }
  self->request(cp, local_timeout, atom::get_v, atom::status_v)
    .then(
      [self](status_map& status) {
        auto port = caf::get_or(status, "port", int64_t{0});
        auto address = caf::get_or(status, "address", std::string{});
        if (port != 0 && !address.empty())
          self->state.self_admin_url
            = "http://"
              + (address.find(':') == std::string::npos ? address
                                                        : "[" + address + "]")
              + ":" + std::to_string(port);
        work(self);
      },
      [self](caf::error&) { work(self); });
}

// -- answers from peers -------------------------------------------------------

/// The key that signed the proof in a peer's answer, or "" when the answer
/// carries no valid proof for our call.
std::string prover(const federation_answer& a, const json::object& body) {
  auto proof = body.if_contains("proof");
  if (!proof || !proof->is_string())
    return {};
  return proven_key(proof->get_string(), a.url, a.method, a.authorization,
                    unix_now());
}

/// The `key` ("message", "field") of a refusal's `error`; "" when none.
std::string error_part(const json::object& body, std::string_view key) {
  auto error = body.if_contains("error");
  if (error && error->is_object())
    if (auto part = error->get_object().if_contains(key);
        part && part->is_string())
      return std::string{part->get_string()};
  return {};
}

/// Checks the identity a peer proved against the pin; pins it the first
/// time. @returns false when it differs (the link is then refused).
bool check_pin(self_pointer self, peer_record& r, const std::string& key) {
  if (r.pinned.empty()) {
    r.pinned = key;
    log::info("{} pinned peer {} to node key {}", self->name(), r.def.name,
              key);
    return true;
  }
  if (r.pinned == key) {
    r.pin_mismatch.clear();
    return true;
  }
  if (r.pin_mismatch != key) {
    ++self->state.pin_mismatches;
    metrics::federation::pin_mismatch(r.def.name);
    log::warn("{} refuses peer {}: it proves node key {}, pinned is {}; "
              "run `ferry console peer-reset {}` to accept it",
              self->name(), r.def.name, key, r.pinned, r.def.name);
  }
  r.pin_mismatch = key;
  return false;
}

/// Adopts the peer's view of the link status where `settle` says so.
void merge_status(self_pointer self, peer_record& r, const json::object& body) {
  auto status = body.if_contains("status");
  auto version = body.if_contains("version");
  link_status theirs_status;
  if (!status || !status->is_string()
      || !from_string(status->get_string(), theirs_status) || !version)
    return;
  auto theirs_version = parse_version(json::serialize(*version), "version");
  if (!theirs_version)
    return;
  auto settled = settle({r.status, r.version},
                        {theirs_status, *theirs_version});
  if (settled.status != r.status)
    log::info("{} peer {} is now {} (was {})", self->name(), r.def.name,
              to_string(settled.status), to_string(r.status));
  r.status = settled.status;
  r.version = settled.version;
}

/// Takes the peer's status and version as they are.
void adopt_status(peer_record& r, const json::object& body) {
  auto status = body.if_contains("status");
  auto version = body.if_contains("version");
  link_status theirs;
  if (!status || !status->is_string()
      || !from_string(status->get_string(), theirs) || !version)
    return;
  if (auto parsed = parse_version(json::serialize(*version), "version")) {
    r.status = theirs;
    r.version = *parsed;
  }
}

/// The peer's status before a registration: federation on, register; off
/// (503), the registration is skipped, saying so; no answer or another
/// refusal, it failed. Either way the next round tries again.
void on_probe(self_pointer self, peer_record& r, const federation_answer& a,
              const json::object& body) {
  // A registration in flight when this probe went out (one that took the
  // peer longer than an interval) may have settled the handshake since:
  // registered, or refused for a reason only an operator can change. Then
  // this answer changes nothing, and registering again would repeat what
  // the peer refused.
  if (!retry_register(r.handshake))
    return;
  auto enabled = body.if_contains("enabled");
  if (a.status == 200 && enabled && enabled->is_bool() && enabled->get_bool())
    return register_now(self, r);
  auto& h = r.handshake;
  auto link_id = h.remote_link_id;
  h = {};
  h.remote_link_id = link_id;
  h.at = unix_now();
  h.http_status = a.status;
  if (a.status == 503 || a.status == 200) {
    h.status = "skipped";
    h.message = "federation is disabled on the peer "
                "(GET /api/v1/federation/status); registration skipped";
  } else {
    h.status = "failed";
    h.message = error_part(body, "message");
  }
  h.error = a.status == 0 ? a.body : "HTTP " + std::to_string(a.status);
  ++self->state.handshakes_failed;
  metrics::federation::handshake(h.status);
  log::info("{} did not register with peer {}: {} ({})", self->name(),
            r.def.name, h.status, h.error);
}

void on_register(self_pointer self, peer_record& r, const federation_answer& a,
                 const json::object& body) {
  auto& h = r.handshake;
  h = {};
  h.at = unix_now();
  h.http_status = a.status;
  if (a.status == 200 || a.status == 202 || a.status == 409) {
    auto key = prover(a, body);
    if (key.empty()) {
      h.status = "failed";
      h.error = "the peer's answer does not prove its node key";
      ++self->state.handshakes_failed;
      metrics::federation::handshake("failed");
      return;
    }
    if (!check_pin(self, r, key)) {
      h.status = "failed";
      h.error = "pin mismatch: the peer proves node key " + key
                + ", pinned is " + r.pinned;
      ++self->state.handshakes_failed;
      metrics::federation::handshake("failed");
      return;
    }
    h.success = true;
    h.status = a.status == 202 ? "pending" : "registered";
    h.message = a.status == 409 ? "already registered"
                                : (a.status == 202 ? "waiting for approval"
                                                   : "registered");
    if (auto id = body.if_contains("link_id"); id && id->is_string())
      h.remote_link_id = std::string{id->get_string()};
    r.last_seen = h.at;
    // Before any change on our side, the link's status is what the peer
    // made of our registration (active or pending).
    if (r.version.total() == 0)
      adopt_status(r, body);
    else
      merge_status(self, r, body);
    ++self->state.handshakes_ok;
    metrics::federation::handshake(h.status);
    log::info("{} registered with peer {}: {} (HTTP {})", self->name(),
              r.def.name, h.status, a.status);
    return;
  }
  h.status = "failed";
  ++self->state.handshakes_failed;
  metrics::federation::handshake("failed");
  if (a.status == 0) {
    h.error = a.body;
  } else {
    h.message = error_part(body, "message");
    h.error = "HTTP " + std::to_string(a.status);
  }
  log::info("{} could not register with peer {}: {} {}", self->name(),
            r.def.name, h.error, h.message);
}

/// Forgets a link entirely: record and sync server with its cursor. Takes
/// the name by value: callers pass the record's own, which this erases.
void forget(self_pointer self, std::string name) {
  auto& st = self->state;
  erase_sync(self, name);
  if (auto err = store::delete_peer(*st.deps.store, name))
    log::error("{} could not delete peer {}: {}", self->name(), name,
               render(err));
  st.peers.erase(name);
  ++st.generations[name];
}

/// The peer did not take a notification of `kind`: try again later.
void back_off(self_pointer self, peer_record& r, const std::string& kind) {
  auto& deps = self->state.deps;
  metrics::federation::notice(kind, false);
  for (auto& n : r.pending)
    if (n.kind == kind) {
      ++n.attempts;
      n.next_at = unix_now()
                  + std::chrono::duration_cast<std::chrono::seconds>(
                      retry_delay(n.attempts, deps.retry_base, deps.retry_cap))
                      .count();
    }
}

/// Handles one answer; @returns false when the record is gone.
bool on_answer(self_pointer self, peer_record& r, const federation_answer& a) {
  auto& st = self->state;
  json::object body;
  if (a.status != 0) {
    json::error_code ec;
    auto parsed = json::parse(a.body, ec);
    if (!ec && parsed.is_object())
      body = std::move(parsed.as_object());
  }
  if (a.op == "probe") {
    on_probe(self, r, a, body);
  } else if (a.op == "register") {
    on_register(self, r, a, body);
  } else if (a.op == "verify") {
    if (a.status == 404) {
      ++st.links_removed_by_peer;
      log::info("{} removed peer {}: the peer no longer has the link "
                "(verify answered 404)",
                self->name(), r.def.name);
      forget(self, r.def.name);
      return false;
    }
    if (a.status == 409 && error_part(body, "field") == "link_id") {
      // The peer reset its side: register again under the same link id.
      log::info("{} peer {} reset our link; registering again", self->name(),
                r.def.name);
      auto link_id = r.handshake.remote_link_id;
      r.handshake = {};
      r.handshake.remote_link_id = link_id;
      send_register(self, r);
      return true;
    }
    if (a.status != 200)
      return true;
    auto key = prover(a, body);
    if (key.empty() || !check_pin(self, r, key))
      return true;
    r.last_seen = unix_now();
    merge_status(self, r, body);
  } else if (a.op == "status") {
    if (a.status == 200) {
      merge_status(self, r, body);
      r.last_seen = unix_now();
    }
    if (a.status == 200 || a.status == 404) {
      drop_notice(r, "status");
      ++st.notices_delivered;
      metrics::federation::notice("status", true);
    } else {
      back_off(self, r, "status");
    }
  } else if (a.op == "delete") {
    if (a.status == 200 || a.status == 404) {
      ++st.notices_delivered;
      metrics::federation::notice("delete", true);
      log::info("{} peer {} took the removal of the link", self->name(),
                r.def.name);
      forget(self, r.def.name);
      return false;
    }
    back_off(self, r, "delete");
  }
  return true;
}

// -- peers' calls -------------------------------------------------------------

federation_reply peer_status(self_pointer self, const federation_call& call) {
  const auto& settings = self->state.deps.settings;
  return signed_reply(self, call, 200,
                      json::object{{"enabled", settings.enabled},
                                   {"incoming", to_string(settings.incoming)},
                                   {"mode", to_string(settings.mode)},
                                   {"software", "ferry"},
                                   {"version", FERRY_VERSION}});
}

/// A unique name for a peer registering as `wanted`.
std::string incoming_name(self_pointer self, const std::string& wanted,
                          const std::string& caller) {
  auto& peers = self->state.peers;
  if (is_peer_name(wanted) && peers.count(wanted) == 0)
    return wanted;
  auto fallback = "node-" + caller.substr(0, 12);
  return peers.count(fallback) == 0 ? fallback : std::string{};
}

/// The pinned key of incoming link `r` called: another key's claim on the
/// link (a mismatch) is void, or the peer would still be using it.
void dismiss_claim(self_pointer self, peer_record& r) {
  if (r.pin_mismatch.empty())
    return;
  log::info("{} peer {}: its pinned node key {} called again; the claim of "
            "node key {} is dismissed",
            self->name(), r.def.name, r.pinned, r.pin_mismatch);
  r.pin_mismatch.clear();
}

/// A caller names incoming link `r`, pinned to another key: a pin mismatch
/// here (shown in /health) until our operator resets the link or the
/// pinned key calls again.
federation_reply pinned_elsewhere(self_pointer self, peer_record& r,
                                  const federation_call& call) {
  check_pin(self, r, call.caller);
  save(self, r);
  return refuse(403,
                "link_id: " + r.def.name
                  + " is pinned to another node key; this node's operator "
                    "accepts yours with `ferry console peer-reset "
                  + r.def.name + "`",
                "link_id");
}

/// Pins the caller to an incoming link our operator reset; its endpoint
/// and admin URL are the registration's.
federation_reply repin(self_pointer self, const federation_call& call,
                       peer_record& r, peer_definition def) {
  r.def.endpoint = std::move(def.endpoint);
  r.def.admin_url = std::move(def.admin_url);
  r.pinned = call.caller;
  r.pin_mismatch.clear();
  r.released_pin.clear();
  r.last_seen = unix_now();
  r.handshake = {true, "registered", "registered again after a reset",
                 r.def.name, 200, std::string{}, r.last_seen};
  if (auto err = save(self, r))
    return refuse(500, render(err));
  log::info("{} peer {} registered again: pinned to node key {}", self->name(),
            r.def.name, call.caller);
  return signed_reply(self, call,
                      r.status == link_status::pending ? 202 : 200,
                      link_object(r));
}

/// Links peers registered that wait for our operator's approval.
size_t pending_links(self_pointer self) {
  const auto& peers = self->state.peers;
  return static_cast<size_t>(
    std::count_if(peers.begin(), peers.end(), [](const auto& entry) {
      const auto& r = entry.second;
      return r.incoming && !r.removed && r.status == link_status::pending;
    }));
}

/// Incoming links admitted (by policy or by our operator) and not revoked:
/// each is a peer this node connects to and serves.
size_t admitted_incoming_links(self_pointer self) {
  const auto& peers = self->state.peers;
  return static_cast<size_t>(
    std::count_if(peers.begin(), peers.end(), [](const auto& entry) {
      const auto& r = entry.second;
      return r.incoming && !r.removed
             && (r.status == link_status::active
                 || r.status == link_status::suspended);
    }));
}

/// Wrong passwords a registration may give in a row before they cost
/// time, and what each costs: 10 at once, then one every 6 s. Each check is
/// a 100,000-round PBKDF2 on this actor and a guess at the password, and
/// any key may register, so only a limit on all wrong passwords together
/// bounds both.
constexpr int64_t wrong_password_burst = 10;
constexpr auto wrong_password_cost = std::chrono::seconds{6};

/// Whole seconds until a password is checked again; 0: now.
int64_t wrong_password_wait(self_pointer self) {
  auto now = std::chrono::steady_clock::now();
  auto ahead = self->state.wrong_passwords_paid_until - now;
  auto room = (wrong_password_burst - 1) * wrong_password_cost;
  if (ahead <= room)
    return 0;
  return std::chrono::ceil<std::chrono::seconds>(ahead - room).count();
}

/// A wrong password was given: the next check comes `wrong_password_cost`
/// later (once the burst is spent).
void charge_wrong_password(self_pointer self) {
  auto& until = self->state.wrong_passwords_paid_until;
  until = std::max(until, std::chrono::steady_clock::now())
          + wrong_password_cost;
}

federation_reply peer_register(self_pointer self, const federation_call& call) {
  auto& st = self->state;
  ++st.registrations_received;
  if (auto r = find_by_caller(self, call.caller)) {
    r->last_seen = unix_now();
    dismiss_claim(self, *r);
    save(self, *r);
    return signed_reply(self, call, 409, link_object(*r));
  }
  auto obj = json_body::parse_body(call.body);
  if (!obj)
    return invalid(obj.error());
  if (auto failure = json_body::unknown_keys(
        *obj, "", {"name", "endpoint", "admin_url", "password", "link_id"});
      !failure.empty())
    return invalid(json_body::invalid(failure));
  std::string wanted;
  if (auto name = obj->if_contains("name"))
    if (auto failure = json_body::read_string(*name, "name", wanted, 48);
        !failure.empty())
      return invalid(json_body::invalid(failure));
  std::string link_id;
  if (auto id = obj->if_contains("link_id"))
    if (auto failure = json_body::read_string(*id, "link_id", link_id, 48);
        !failure.empty())
      return invalid(json_body::invalid(failure));
  // Endpoint and admin URL go through the operator's validator.
  json::object def_body{{"name", "incoming"},
                        {"filters", json::array{json::object{}}}};
  for (auto key : {"endpoint", "admin_url"})
    if (auto v = obj->if_contains(key))
      def_body[key] = *v;
  auto def = parse_peer_definition(json::serialize(def_body));
  if (!def)
    return invalid(def.error());
  switch (st.deps.settings.incoming) {
    case incoming_policy::deny:
      return refuse(403, "this node accepts no incoming federation links");
    case incoming_policy::require_password: {
      auto password = obj->if_contains("password");
      if (!password)
        return refuse(401, "a password is required to register", "password");
      if (auto wait = wrong_password_wait(self); wait > 0)
        return refuse(429,
                      "too many wrong passwords lately; the next password is "
                      "checked in "
                        + std::to_string(wait) + " s",
                      "password");
      if (!password->is_string()
          || !password_matches(password->get_string(),
                               st.deps.settings.password_hash)) {
        charge_wrong_password(self);
        return refuse(401, "wrong password", "password");
      }
      break;
    }
    default:
      break;
  }
  // The link our operator reset, named by the id the peer got from us
  // (or its name): pinned again, keeping its status and collections.
  auto released = named_incoming(self, link_id.empty() ? wanted : link_id);
  if (released && released->pinned.empty())
    return repin(self, call, *released, std::move(*def));
  if (released && !link_id.empty())
    return pinned_elsewhere(self, *released, call);
  // Another key from the relay of a link we have is that peer with a new
  // identity (its store was lost, or someone claims its place), not a new
  // peer: the pin decides, until our operator resets the link.
  if (auto same = incoming_at(self, def->endpoint))
    return same->pinned.empty() ? repin(self, call, *same, std::move(*def))
                                : pinned_elsewhere(self, *same, call);
  auto name = incoming_name(self, wanted, call.caller);
  if (name.empty())
    return refuse(409, "name: already used by another link", "name");
  auto approved
    = st.deps.settings.incoming != incoming_policy::require_approval;
  // Any key may register: without a cap, strangers could fill our store
  // and our operator's list with links waiting for approval.
  if (!approved && pending_links(self) >= st.deps.settings.max_pending_links)
    return refuse(429, "registrations waiting for this node's operator to "
                       "approve them are at the most it keeps, "
                         + std::to_string(st.deps.settings.max_pending_links)
                         + " (federation.max_pending_links); try again "
                           "later");
  // Admitted without our operator, each link is a peer this node connects
  // to: without a cap, strangers' keys could make it dial thousands.
  if (approved
      && admitted_incoming_links(self) >= st.deps.settings.max_incoming_links)
    return refuse(429, "incoming links are at the most this node admits "
                       "without its operator, "
                         + std::to_string(st.deps.settings.max_incoming_links)
                         + " (federation.max_incoming_links); try again "
                           "later");
  peer_record r;
  r.def = std::move(*def);
  r.def.name = name;
  r.incoming = true;
  r.pinned = call.caller;
  r.last_seen = unix_now();
  r.status = approved ? link_status::active : link_status::pending;
  r.handshake = {true, approved ? "registered" : "pending",
                 "registered by the peer", name, approved ? 200u : 202u,
                 std::string{}, r.last_seen};
  if (auto err = save(self, r))
    return refuse(500, render(err));
  log::info("{} peer {} (node key {}) registered: {}", self->name(), name,
            call.caller, to_string(r.status));
  auto answer = link_object(r);
  st.peers[name] = std::move(r);
  return signed_reply(self, call, approved ? 200 : 202, std::move(answer));
}

/// A peer's status change: settled against ours on both sides.
federation_reply peer_mirror(self_pointer self, const federation_call& call) {
  auto r = find_by_caller(self, call.caller);
  if (!r)
    r = find_outgoing_by_key(self, call.caller);
  if (!r)
    return refuse(404, "no link with this node key");
  auto obj = json_body::parse_body(call.body);
  if (!obj)
    return invalid(obj.error());
  if (auto failure = json_body::unknown_keys(*obj, "", {"status", "version"});
      !failure.empty())
    return invalid(json_body::invalid(failure));
  auto status = obj->if_contains("status");
  link_status theirs;
  if (!status || !status->is_string()
      || !from_string(status->get_string(), theirs))
    return refuse(400,
                  "status: expected one of active, pending, suspended, revoked",
                  "status");
  auto version = obj->if_contains("version");
  if (!version)
    return refuse(400, "version: required", "version");
  auto parsed = parse_version(json::serialize(*version), "version");
  if (!parsed)
    return invalid(parsed.error());
  auto before = r->status;
  auto settled = settle({r->status, r->version}, {theirs, *parsed});
  r->status = settled.status;
  r->version = settled.version;
  r->last_seen = unix_now();
  if (before != r->status)
    log::info("{} peer {} set the link {} (was {})", self->name(),
              r->def.name, to_string(r->status), to_string(before));
  save(self, *r);
  apply_sync(self, *r);
  return signed_reply(self, call, 200, link_object(*r));
}

/// A caller whose key no link is pinned to names the link it means: one our
/// operator reset waits for its registration (409: register again, the
/// link stays); one pinned to another key reports a mismatch here (403,
/// shown in /health until our operator resets it); otherwise 404 (the link
/// is gone).
federation_reply unknown_caller(self_pointer self, const federation_call& call,
                                const std::string& link_id) {
  auto r = link_id.empty() ? nullptr : named_incoming(self, link_id);
  if (!r)
    return refuse(404, "no link with this node key");
  if (r->pinned.empty())
    return refuse(409,
                  "link_id: " + link_id
                    + " was reset on this node; register again to pin your "
                      "node key to it",
                  "link_id");
  return pinned_elsewhere(self, *r, call);
}

federation_reply peer_verify(self_pointer self, const federation_call& call) {
  // Checked for every caller, the linked ones too: a bad query is refused
  // whoever sends it.
  auto decoded = net::decode_query(call.query);
  if (auto why = std::get_if<std::string>(&decoded))
    return refuse(400, "query: " + *why, "query");
  std::string link_id;
  for (const auto& [key, value] : std::get<0>(decoded)) {
    if (key != "link_id")
      return refuse(400, key + ": unknown query parameter", key);
    link_id = value;
  }
  auto r = find_by_caller(self, call.caller);
  if (!r)
    return unknown_caller(self, call, link_id);
  r->last_seen = unix_now();
  dismiss_claim(self, *r);
  save(self, *r);
  return signed_reply(self, call, 200, link_object(*r));
}

federation_reply peer_unlink(self_pointer self, const federation_call& call) {
  auto r = find_by_caller(self, call.caller);
  if (!r)
    r = find_outgoing_by_key(self, call.caller);
  if (!r)
    return refuse(404, "no link with this node key");
  auto name = r->def.name;
  log::info("{} peer {} removed the link; removing ours", self->name(), name);
  forget(self, name);
  return signed_reply(self, call, 200,
                      json::object{{"link_id", name}, {"deleted", true}});
}

// -- operators' calls ---------------------------------------------------------

federation_reply not_found(const std::string& name) {
  return refuse(404, "no federation peer " + name);
}

/// A 400 naming the first of `names` that is none of our collections.
std::optional<federation_reply>
unknown_collection(self_pointer self, const std::vector<std::string>& names) {
  const auto& known = self->state.deps.settings.collections;
  for (size_t i = 0; i < names.size(); ++i)
    if (std::none_of(known.begin(), known.end(),
                     [&](const auto& c) { return c.name == names[i]; }))
      return refuse(400,
                    "collections[" + std::to_string(i)
                      + "]: no [[federation.collection]] is named " + names[i],
                    "collections[" + std::to_string(i) + "]");
  return std::nullopt;
}

federation_reply op_put(self_pointer self, const federation_call& call) {
  auto& st = self->state;
  auto def = parse_peer_definition(call.body, call.name);
  if (!def)
    return invalid(def.error());
  if (auto refusal = unknown_collection(self, def->collections))
    return *refusal;
  auto i = st.peers.find(call.name);
  if (i != st.peers.end() && i->second.incoming && !i->second.removed)
    return refuse(409,
                  "name: " + call.name
                    + " registered with us; its definition is its own",
                  "name");
  auto created = i == st.peers.end() || i->second.removed;
  auto& r = st.peers[call.name];
  if (created) {
    r = {};
    ++st.generations[call.name];
  }
  // A new address, or new terms after a refusal, deserve a new handshake.
  auto moved = !created
               && (r.def.endpoint != def->endpoint
                   || r.def.admin_url != def->admin_url);
  auto retry = !created && !r.handshake.success && !(r.def == *def);
  r.def = std::move(*def);
  if (moved || retry)
    r.handshake = {};
  if (auto err = save(self, r))
    return refuse(500, render(err));
  apply_sync(self, r);
  if (retry_register(r.handshake))
    send_register(self, r);
  auto body = view(r);
  body["created"] = created;
  return reply(created ? 201 : 200, std::move(body));
}

federation_reply op_delete(self_pointer self, const federation_call& call) {
  auto r = find_peer(self, call.name);
  if (!r)
    return not_found(call.name);
  auto name = r->def.name;
  erase_sync(self, name);
  ++self->state.generations[name];
  // A peer that never knew of us needs no notice.
  if (r->pinned.empty() && !r->handshake.success) {
    forget(self, name);
    return reply(200, json::object{{"name", name}, {"deleted", true}});
  }
  r->removed = true;
  r->pending.clear();
  queue_notice(*r, "delete");
  if (auto err = save(self, *r))
    return refuse(500, render(err));
  call_peer(self, *r, "delete", "DELETE", "/api/v1/federation/link", {});
  return reply(200, json::object{{"name", name},
                                 {"deleted", true},
                                 {"peer_notified", false}});
}

federation_reply op_reset(self_pointer self, const federation_call& call) {
  auto r = find_peer(self, call.name);
  if (!r)
    return not_found(call.name);
  // A peer that registered with us pins itself again by registering: its
  // old key stays refused until then.
  if (r->incoming && !r->pinned.empty())
    r->released_pin = r->pinned;
  r->pinned.clear();
  r->pin_mismatch.clear();
  r->last_seen = 0;
  r->handshake = {};
  ++self->state.generations[r->def.name];
  self->state.in_flight.erase(r->def.name + "/probe");
  self->state.in_flight.erase(r->def.name + "/register");
  self->state.in_flight.erase(r->def.name + "/verify");
  erase_sync(self, r->def.name);
  if (auto err = save(self, *r))
    return refuse(500, render(err));
  log::info("{} reset peer {}: pin, cursor and last_seen cleared",
            self->name(), r->def.name);
  if (!r->incoming)
    send_register(self, *r);
  return reply(200, view(*r));
}

federation_reply op_mode(self_pointer self, const federation_call& call,
                         peer_mode mode) {
  auto r = find_peer(self, call.name);
  if (!r)
    return not_found(call.name);
  r->def.mode = mode;
  if (auto err = save(self, *r))
    return refuse(500, render(err));
  apply_sync(self, *r);
  log::info("{} peer {} {}", self->name(), r->def.name,
            mode == peer_mode::paused ? "paused" : "resumed");
  return reply(200, view(*r));
}

/// Our side changes the link status: counted in our entry of the version
/// vector and mirrored to the peer.
federation_reply change_status(self_pointer self, peer_record& r,
                               link_status status) {
  if (r.status == link_status::revoked && status != link_status::revoked)
    return refuse(409, "status: the link is revoked; a revoked link stays "
                       "revoked (delete it and register anew)",
                  "status");
  if (r.status != status) {
    r.status = status;
    r.version.increment(self->state.self_key);
    queue_notice(r, "status");
    log::info("{} set peer {} {}", self->name(), r.def.name,
              to_string(status));
  }
  if (auto err = save(self, r))
    return refuse(500, render(err));
  apply_sync(self, r);
  if (!r.pending.empty())
    send_status(self, r);
  return reply(200, view(r));
}

/// An operator's body that changes one field of peer NAME.
struct field_change {
  /// Null when refused.
  peer_record* peer = nullptr;
  /// The field's value; null when the body has none.
  json::value value;
  federation_reply refusal;
};

/// Finds the peer and reads `{"<key>": ...}`; refuses an unknown peer (404),
/// a body that is no JSON object or has other keys (400 naming them).
field_change read_field_change(self_pointer self, const federation_call& call,
                               std::string_view key) {
  field_change change;
  auto r = find_peer(self, call.name);
  if (!r) {
    change.refusal = not_found(call.name);
    return change;
  }
  auto obj = json_body::parse_body(call.body);
  if (!obj) {
    change.refusal = invalid(obj.error());
    return change;
  }
  if (auto failure = json_body::unknown_keys(*obj, "", {key});
      !failure.empty()) {
    change.refusal = invalid(json_body::invalid(failure));
    return change;
  }
  if (auto value = obj->if_contains(key))
    change.value = *value;
  change.peer = r;
  return change;
}

federation_reply op_set_status(self_pointer self, const federation_call& call) {
  auto change = read_field_change(self, call, "status");
  if (!change.peer)
    return change.refusal;
  link_status wanted;
  if (!change.value.is_string()
      || !from_string(change.value.get_string(), wanted)
      || wanted == link_status::pending)
    return refuse(400, "status: expected one of active, suspended, revoked",
                  "status");
  return change_status(self, *change.peer, wanted);
}

federation_reply op_approve(self_pointer self, const federation_call& call) {
  auto r = find_peer(self, call.name);
  if (!r)
    return not_found(call.name);
  if (!r->incoming || r->status != link_status::pending)
    return refuse(409, "status: only a pending incoming link can be "
                       "approved; " + call.name + " is "
                         + to_string(r->status),
                  "status");
  return change_status(self, *r, link_status::active);
}

/// The operator changes what a peer may see, in either direction (a peer
/// that registered with us has no definition of ours to PUT).
federation_reply op_set_collections(self_pointer self,
                                    const federation_call& call) {
  auto change = read_field_change(self, call, "collections");
  auto r = change.peer;
  if (!r)
    return change.refusal;
  if (change.value.is_null())
    return refuse(400, "collections: required", "collections");
  // The names go through the definition's own reader.
  json::object def_body{{"name", call.name},
                        {"endpoint", "ws://127.0.0.1:1"},
                        {"admin_url", "http://127.0.0.1:1"},
                        {"filters", json::array{json::object{}}},
                        {"collections", change.value}};
  auto def = parse_peer_definition(json::serialize(def_body));
  if (!def)
    return invalid(def.error());
  if (auto refusal = unknown_collection(self, def->collections))
    return *refusal;
  r->def.collections = std::move(def->collections);
  if (auto err = save(self, *r))
    return refuse(500, render(err));
  std::string listed;
  for (const auto& name : r->def.collections)
    listed += (listed.empty() ? "" : ", ") + name;
  log::info("{} peer {} may see collections [{}]", self->name(), call.name,
            listed);
  return reply(200, view(*r));
}

federation_reply op_list(self_pointer self) {
  json::array rows;
  for (const auto& [name, r] : self->state.peers)
    if (!r.removed)
      rows.push_back(view(r));
  return reply(200, json::object{{"peers", std::move(rows)}});
}

// -- collections --------------------------------------------------------------

const collection_definition* find_collection(self_pointer self,
                                             const std::string& name) {
  for (const auto& c : self->state.deps.settings.collections)
    if (c.name == name)
      return &c;
  return nullptr;
}

json::array filters_json(const std::vector<nostr::filter>& filters) {
  json::array out;
  for (const auto& f : filters)
    out.push_back(json::parse(nostr::to_json(f)));
  return out;
}

/// How long a measured collection size is reused at most.
constexpr auto collection_size_ttl = std::chrono::minutes{1};

/// The size of collection `c`, measured again only when an event was stored
/// since the last time or that is older than `collection_size_ttl`: each
/// measure scans the whole collection, and every listing asks for it.
collection_size size_of(self_pointer self, const collection_definition& c) {
  const auto& store = *self->state.deps.store;
  auto seq = store::last_change_seq(store);
  auto now = std::chrono::steady_clock::now();
  auto& cached = self->state.collection_sizes[c.name];
  if (cached.at.time_since_epoch().count() == 0 || cached.change_seq != seq
      || now - cached.at > collection_size_ttl) {
    cached.size = measure_collection(store, c.filters, unix_now());
    cached.change_seq = seq;
    cached.at = now;
  }
  return cached.size;
}

json::object collection_object(self_pointer self,
                               const collection_definition& c) {
  auto size = size_of(self, c);
  return json::object{{"name", c.name},
                      {"filters", filters_json(c.filters)},
                      {"events", static_cast<int64_t>(size.events)},
                      {"bytes", static_cast<int64_t>(size.bytes)}};
}

bool offered(const peer_record& r, const std::string& collection) {
  return std::find(r.def.collections.begin(), r.def.collections.end(),
                   collection)
         != r.def.collections.end();
}

/// The names of our collections offered to the peer whose pinned key
/// signed this call, over all its links (a node may hold a link it defined
/// and one the peer registered). Nothing, with `refusal` set, when it has
/// no link (404), or when this node serves peers nothing (mode subscribe)
/// or any of its links is not active or is paused by our operator (403):
/// the relay refuses that key all reads then (`publish_gate`), and these
/// routes must not serve over HTTP what the relay would not.
std::optional<std::set<std::string>>
offered_to_caller(self_pointer self, const federation_call& call,
                  federation_reply& refusal) {
  std::set<std::string> names;
  std::optional<federation_reply> refused;
  bool linked = false;
  for (const auto& [name, r] : self->state.peers) {
    if (r.removed || r.pinned != call.caller || refuses_pinned(r))
      continue;
    linked = true;
    if (r.status != link_status::active)
      refused = refuse(403, "restricted: the link is " + to_string(r.status));
    else if (r.def.mode == peer_mode::paused)
      refused = refuse(403, link_refusal(r));
    else
      names.insert(r.def.collections.begin(), r.def.collections.end());
  }
  if (!linked)
    refusal = refuse(404, "no link with this node key");
  else if (self->state.deps.settings.mode == federation_mode::subscribe)
    refusal = refuse(403, subscribe_refusal);
  else if (refused)
    refusal = std::move(*refused);
  else
    return names;
  return std::nullopt;
}

/// A peer lists what we offer it.
federation_reply peer_collections(self_pointer self,
                                  const federation_call& call) {
  federation_reply refusal;
  auto names = offered_to_caller(self, call, refusal);
  if (!names)
    return refusal;
  json::array rows;
  // In our order of definition.
  for (const auto& c : self->state.deps.settings.collections)
    if (names->count(c.name) != 0)
      rows.push_back(collection_object(self, c));
  return signed_reply(self, call, 200,
                      json::object{{"collections", std::move(rows)}});
}

/// A peer previews a page of one collection offered to it.
federation_reply peer_collection_events(self_pointer self,
                                        const federation_call& call) {
  federation_reply refusal;
  auto names = offered_to_caller(self, call, refusal);
  if (!names)
    return refusal;
  auto c = find_collection(self, call.name);
  // Whether a collection exists at all is no business of a peer it is not
  // offered to.
  if (!c || names->count(call.name) == 0)
    return refuse(403, "restricted: collection " + call.name
                         + " is not offered to you");
  auto query = parse_preview_query(call.query);
  if (!query)
    return invalid(query.error());
  json::array events;
  for (const auto& text : preview_collection(*self->state.deps.store,
                                             c->filters, *query, unix_now()))
    events.push_back(json::parse(text));
  return signed_reply(self, call, 200,
                      json::object{{"collection", c->name},
                                   {"offset", static_cast<int64_t>(query->offset)},
                                   {"limit", static_cast<int64_t>(query->limit)},
                                   {"events", std::move(events)}});
}

/// The operator's view: every collection, its size and who may see it.
federation_reply op_our_collections(self_pointer self) {
  json::array rows;
  for (const auto& c : self->state.deps.settings.collections) {
    auto row = collection_object(self, c);
    json::array peers;
    for (const auto& [name, r] : self->state.peers)
      if (!r.removed && offered(r, c.name))
        peers.push_back(json::string{name});
    row["peers"] = std::move(peers);
    rows.push_back(std::move(row));
  }
  return reply(200, json::object{{"collections", std::move(rows)}});
}

/// How long an operator waits for a pull.
constexpr auto pull_deadline = std::chrono::seconds{60};

/// The operator pulls a collection of peer NAME: a COLLECTION PULL does the
/// work and answers with its report.
caf::result<federation_reply> op_pull(self_pointer self,
                                      const federation_call& call) {
  auto& st = self->state;
  auto r = find_peer(self, call.name);
  if (!r)
    return not_found(call.name);
  auto request = parse_pull_request(call.body);
  if (!request)
    return invalid(request.error());
  if (r->pinned.empty() || refuses_pinned(*r))
    return refuse(409, "status: peer " + call.name
                         + (r->pinned.empty()
                              ? " has not proven its node key yet"
                              : " proves a node key other than the pinned "
                                "one"),
                  "status");
  if (r->status != link_status::active || r->def.mode != peer_mode::sync)
    return refuse(409, "status: the link with " + call.name + " is "
                         + to_string(r->status) + ", mode "
                         + to_string(r->def.mode)
                         + "; a pull needs an active link in mode sync",
                  "status");
  if (!st.deps.io || st.deps.verifiers.empty())
    return refuse(503, "this node does not ingest events (no relay)");
  collection_pull_deps deps;
  deps.store = st.deps.store;
  deps.verifiers = st.deps.verifiers;
  deps.keys = st.deps.keys;
  deps.transport = st.deps.transport;
  deps.io = st.deps.io;
  deps.peer = r->def.name;
  deps.admin_url = r->def.admin_url;
  deps.endpoint = r->def.endpoint;
  deps.ca = r->def.ca;
  deps.pinned = r->pinned;
  deps.request = std::move(*request);
  deps.deadline = pull_deadline;
  auto puller = self->spawn(collection_pull, std::move(deps));
  auto promise = self->make_response_promise<federation_reply>();
  self->request(puller, pull_deadline + std::chrono::seconds{5}, call)
    .then(
      [promise](federation_reply& answer) mutable {
        promise.deliver(std::move(answer));
      },
      [promise](caf::error& err) mutable {
        promise.deliver(refuse(504, "pull: " + render(err)));
      });
  return promise;
}

/// One peer's view, with what its link exchanged so far (`exchange`: the
/// cursor and counters of its sync server; null while it has none).
caf::result<federation_reply> op_get(self_pointer self,
                                     const federation_call& call) {
  auto r = find_peer(self, call.name);
  if (!r)
    return not_found(call.name);
  auto shown = view(*r);
  shown["exchange"] = nullptr;
  auto& st = self->state;
  auto manager = st.deps.sync_manager ? st.deps.sync_manager->get()
                                      : sync_manager_actor{};
  if (r->incoming || !manager)
    return reply(200, std::move(shown));
  auto rp = self->make_response_promise<federation_reply>();
  self->request(manager, local_timeout, atom::stats_v,
                federation_server_id(r->def.name))
    .then(
      [rp, shown](std::string& stats) mutable {
        boost::system::error_code bad;
        auto parsed = json::parse(stats, bad);
        json::object exchange;
        if (!bad && parsed.is_object())
          for (auto key : {"connected", "last_connected", "catchup_complete",
                           "cursor", "received", "accepted", "duplicate",
                           "bytes_received", "bytes_sent", "sent",
                           "sent_ok"})
            if (auto v = parsed.as_object().if_contains(key))
              exchange[key] = *v;
        shown["exchange"] = std::move(exchange);
        rp.deliver(reply(200, std::move(shown)));
      },
      [rp, shown](caf::error&) mutable {
        // No server yet (never pinned) or the sync manager is restarting.
        rp.deliver(reply(200, std::move(shown)));
      });
  return rp;
}

/// An operator's call that takes no body: none or `{}`, else a 400 naming
/// the first key (or the body).
std::optional<federation_reply> unexpected_body(const federation_call& call) {
  if (call.body.empty())
    return std::nullopt;
  auto obj = json_body::parse_body(call.body);
  if (!obj)
    return invalid(obj.error());
  if (auto failure = json_body::unknown_keys(*obj, "", {}); !failure.empty())
    return invalid(json_body::invalid(failure));
  return std::nullopt;
}

federation_reply dispatch(self_pointer self, const federation_call& call) {
  const auto& op = call.op;
  if (op == "reset" || op == "pause" || op == "resume" || op == "approve")
    if (auto refusal = unexpected_body(call))
      return *refusal;
  if (op == "status")
    return peer_status(self, call);
  if (op == "register") {
    auto answer = peer_register(self, call);
    metrics::federation::registration_answered(answer.status);
    return answer;
  }
  if (op == "mirror")
    return peer_mirror(self, call);
  if (op == "verify")
    return peer_verify(self, call);
  if (op == "unlink")
    return peer_unlink(self, call);
  if (op == "collections")
    return peer_collections(self, call);
  if (op == "collection_events")
    return peer_collection_events(self, call);
  if (op == "our_collections")
    return op_our_collections(self);
  if (op == "list")
    return op_list(self);
  if (op == "put")
    return op_put(self, call);
  if (op == "delete")
    return op_delete(self, call);
  if (op == "reset")
    return op_reset(self, call);
  if (op == "pause")
    return op_mode(self, call, peer_mode::paused);
  if (op == "resume")
    return op_mode(self, call, peer_mode::sync);
  if (op == "approve")
    return op_approve(self, call);
  if (op == "set_status")
    return op_set_status(self, call);
  if (op == "set_collections")
    return op_set_collections(self, call);
  return refuse(404, "unknown federation operation " + op);
}

/// Tells the relay what each peer's node key may do: refused both ways per
/// `link_refusal` (over all its links: the most restrictive holds), and for
/// a key whose link we released by a reset until it is pinned again; reads
/// refused in mode subscribe, writes in mode publish; for an active one
/// offered collections, limited to their filters (over all its active
/// links, as `offered_to_caller` lists them).
void publish_gate(self_pointer self) {
  auto& gate = self->state.deps.refused_peers;
  if (!gate)
    return;
  auto mode = self->state.deps.settings.mode;
  peer_gate::refusals reads;
  peer_gate::refusals writes;
  std::map<nostr::bytes32, std::set<std::string>> offered;
  auto refuse_both = [&](const nostr::bytes32& key, const std::string& why) {
    reads[key] = why;
    writes[key] = why;
  };
  for (const auto& [name, r] : self->state.peers) {
    nostr::bytes32 key{};
    if (nostr::from_hex(r.released_pin, key))
      refuse_both(key, "restricted: this node reset its federation link with "
                       "yours; register again");
    if (!nostr::from_hex(r.pinned, key))
      continue;
    if (auto why = link_refusal(r); !why.empty()) {
      refuse_both(key, why);
      continue;
    }
    if (mode == federation_mode::subscribe)
      reads.emplace(key, subscribe_refusal);
    if (mode == federation_mode::publish)
      writes.emplace(key, "restricted: this node takes no events from "
                          "federation peers ([federation] mode = publish)");
    if (!r.def.collections.empty())
      offered[key].insert(r.def.collections.begin(), r.def.collections.end());
  }
  std::map<nostr::bytes32, std::vector<nostr::filter>> limits;
  for (const auto& [key, names] : offered) {
    auto& filters = limits[key];
    for (const auto& c : self->state.deps.settings.collections)
      if (names.count(c.name) != 0)
        filters.insert(filters.end(), c.filters.begin(), c.filters.end());
  }
  gate->assign(std::move(reads), std::move(writes));
  gate->assign_limits(std::move(limits));
}

/// ferry_federation_peers from the current links.
void publish_gauges(self_pointer self) {
  size_t counts[4] = {0, 0, 0, 0};
  size_t refused = 0;
  for (const auto& [name, r] : self->state.peers) {
    if (r.removed)
      continue;
    ++counts[static_cast<size_t>(r.status)];
    refused += !r.pin_mismatch.empty();
  }
  metrics::federation::set_peers(counts[0], counts[1], counts[2], counts[3],
                                 refused);
}

// -- start --------------------------------------------------------------------

/// Stored links, then the configured peers over them (a changed definition
/// replaces the stored one; pin, status and cursor stay).
caf::error load(self_pointer self) {
  auto& st = self->state;
  auto stored = store::list_peers(*st.deps.store);
  if (!stored)
    return stored.error();
  for (auto& r : *stored)
    st.peers[r.def.name] = std::move(r);
  for (const auto& def : st.deps.settings.peers) {
    auto i = st.peers.find(def.name);
    if (i != st.peers.end() && i->second.incoming)
      return caf::make_error(ec::invalid_configuration,
                             "federation.peer " + def.name
                               + ": a peer of that name registered with us");
    auto& r = st.peers[def.name];
    if (i != st.peers.end() && r.def == def)
      continue;
    if (i != st.peers.end()
        && (r.def.endpoint != def.endpoint || r.def.admin_url != def.admin_url))
      r.handshake = {};
    r.def = def;
    if (auto err = store::put_peer(*st.deps.store, r))
      return err;
  }
  return {};
}

} // namespace

std::string federation_server_id(const std::string& name) {
  return "federation." + name;
}

federation_actor::behavior_type
federation_manager(
  federation_actor::stateful_pointer<federation_manager_state> self,
  federation_manager_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.self_key = nostr::to_hex(st.deps.keys.pubkey);
  st.self_relay_url = st.deps.relay_url;
  st.self_admin_url = st.deps.settings.public_admin_url;
  if (!st.self_admin_url.empty() && st.self_admin_url.back() == '/')
    st.self_admin_url.pop_back();
  if (auto err = load(self)) {
    self->quit(err);
    return federation_actor::behavior_type::make_empty_behavior();
  }
  for (const auto& [name, r] : st.peers)
    apply_sync(self, r);
  publish_gate(self);
  log::info("{} started with {} peer(s), incoming policy {}", self->name(),
            st.peers.size(), to_string(st.deps.settings.incoming));
  self->send(self, atom::tick_v);
  return {
    [self](federation_call& call) -> caf::result<federation_reply> {
      if (call.op == "pull")
        return op_pull(self, call);
      if (call.op == "get")
        return op_get(self, call);
      auto answer = dispatch(self, call);
      publish_gauges(self);
      publish_gate(self);
      return answer;
    },
    [self](atom::health) -> health_report {
      health_report report;
      for (const auto& [name, r] : self->state.peers)
        if (!r.removed && !r.pin_mismatch.empty())
          report.reasons.push_back(
            "federation peer " + name
            + (r.incoming ? " refused: node key " + r.pin_mismatch
                              + " claims this link, pinned is " + r.pinned
                          : " refused: it proves node key " + r.pin_mismatch
                              + ", pinned is " + r.pinned)
            + " (ferry console peer-reset " + name + " accepts it)");
      if (!report.reasons.empty())
        report.status = "degraded";
      return report;
    },
    [self](atom::get, atom::status) -> status_map {
      auto& st = self->state;
      status_map result;
      caf::put(result, "mailbox", static_cast<int64_t>(self->mailbox().size()));
      int64_t active = 0;
      int64_t pending = 0;
      int64_t refused = 0;
      for (const auto& [name, r] : st.peers) {
        active += r.status == link_status::active && !r.removed;
        pending += static_cast<int64_t>(r.pending.size());
        refused += !r.pin_mismatch.empty();
      }
      caf::put(result, "peers", static_cast<int64_t>(st.peers.size()));
      caf::put(result, "active", active);
      caf::put(result, "pin_mismatches", refused);
      caf::put(result, "notices_pending", pending);
      caf::put(result, "registrations_received",
               static_cast<int64_t>(st.registrations_received));
      caf::put(result, "handshakes_ok", static_cast<int64_t>(st.handshakes_ok));
      caf::put(result, "handshakes_failed",
               static_cast<int64_t>(st.handshakes_failed));
      caf::put(result, "notices_delivered",
               static_cast<int64_t>(st.notices_delivered));
      caf::put(result, "reconciliations",
               static_cast<int64_t>(st.reconciliations));
      return result;
    },
    [self](atom::tick) {
      tick(self);
      // Until the relay and the control plane (which start after us) have
      // told us our URLs, nothing can be registered: ask again soon rather
      // than an interval later.
      auto& st = self->state;
      auto urls_known = !st.self_relay_url.empty() && !st.self_admin_url.empty();
      self->delayed_send(self,
                         urls_known ? caf::timespan{st.deps.settings.interval}
                                    : caf::timespan{url_retry_delay},
                         atom::tick_v);
    },
    [self](federation_answer& a) {
      auto& st = self->state;
      st.in_flight.erase(a.peer + "/" + a.op);
      auto i = st.peers.find(a.peer);
      if (i == st.peers.end() || st.generations[a.peer] != a.generation)
        return;
      if (on_answer(self, i->second, a)) {
        save(self, i->second);
        apply_sync(self, i->second);
      }
      publish_gauges(self);
      publish_gate(self);
    },
  };
}

} // namespace ferry
