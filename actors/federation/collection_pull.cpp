#include "actors/federation/collection_pull.hpp"

#include "actors/federation/federation_metrics.hpp"
#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/federation.hpp"
#include "messages/json_body.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/hex.hpp"
#include "messages/nostr/nip42.hpp"
#include "messages/nostr/relay_message.hpp"
#include "net/idle_watch.hpp"
#include "store/refused_store.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include <boost/json.hpp>

namespace ferry {

namespace {

namespace json = boost::json;

using self_pointer
  = collection_pull_actor::stateful_pointer<collection_pull_state>;

federation_reply answer(uint32_t status, json::object body) {
  return {status, json::serialize(body)};
}

federation_reply failure(uint32_t status, const std::string& message,
                         const std::string& field = {}) {
  return federation_error(status, message, field);
}

/// Answers once and ends the pull.
void finish(self_pointer self, federation_reply reply) {
  auto& st = self->state;
  if (st.finished)
    return;
  st.finished = true;
  if (st.conn)
    st.conn->close("pull done");
  st.promise.deliver(std::move(reply));
  self->quit();
}

void report(self_pointer self) {
  auto& st = self->state;
  const auto& c = st.counts;
  log::info("{} pulled collection {} of peer {} ({}): {} imported, {} "
            "skipped, {} replaced, {} refused, {} failed",
            self->name(), st.deps.request.collection, st.deps.peer,
            to_string(st.deps.request.strategy), c.imported, c.skipped,
            c.replaced, c.refused, c.failed);
  metrics::federation::pulled(st.deps.peer, c.imported, c.skipped, c.replaced,
                              c.refused, c.failed);
  finish(self, answer(200, json::object{
                             {"peer", st.deps.peer},
                             {"collection", st.deps.request.collection},
                             {"conflict_strategy",
                              to_string(st.deps.request.strategy)},
                             {"imported", static_cast<int64_t>(c.imported)},
                             {"skipped", static_cast<int64_t>(c.skipped)},
                             {"replaced", static_cast<int64_t>(c.replaced)},
                             {"refused", static_cast<int64_t>(c.refused)},
                             {"failed", static_cast<int64_t>(c.failed)},
                           }));
}

void send(self_pointer self, std::vector<std::string> frames) {
  if (!self->state.conn)
    return;
  for (auto& f : frames)
    self->state.conn->send(std::make_shared<const std::string>(std::move(f)));
}

/// Events fetched and not yet answered by the ingest pipeline; no new REQ
/// goes out beyond it, so a big collection cannot fill memory.
constexpr size_t max_ingest_in_flight = 4096;

/// Keeps one quiet look scheduled while REQs by ids are open.
void watch_fetches(self_pointer self) {
  auto& st = self->state;
  if (st.look_scheduled || st.finished || !st.fetcher
      || st.fetcher->open_requests() == 0)
    return;
  st.look_scheduled = true;
  self->delayed_send(self, st.deps.quiet_interval, pull_atom::look::value);
}

/// Asks for more of what is missing while the ingest pipeline has room.
void refill(self_pointer self) {
  auto& st = self->state;
  if (st.in_flight < max_ingest_in_flight && !st.finished && !st.fetch_after_auth)
    send(self, st.fetcher->fill());
  watch_fetches(self);
}

std::string duration_text(caf::timespan t) {
  return net::duration_text(
    std::chrono::duration_cast<std::chrono::milliseconds>(t));
}

/// REQs by ids the peer's relay left unanswered (dropped beyond its
/// subscription limit) are asked for again with fewer open at once; one
/// left quiet while alone ends the pull, which would otherwise wait for its
/// deadline.
void on_quiet_look(self_pointer self) {
  using outcome = id_fetcher::quiet_look::outcome;
  auto& st = self->state;
  st.look_scheduled = false;
  if (st.finished || !st.fetcher || st.fetcher->open_requests() == 0)
    return;
  auto look = st.fetcher->look_for_quiet();
  switch (look.what) {
    case outcome::answered:
      break;
    case outcome::retrying:
      log::warn("{} {} REQs by ids had no answer from {} for {}: asked again, "
                "at most {} open at once",
                self->name(), look.close.size(), st.deps.endpoint,
                duration_text(st.deps.quiet_interval),
                st.fetcher->max_requests());
      send(self, std::move(look.close));
      break;
    case outcome::stop:
      return finish(self, failure(502, "the peer's relay " + st.deps.endpoint
                                         + " left a fetch by ids unanswered for "
                                         + duration_text(st.deps.quiet_interval)));
  }
  refill(self);
}

void maybe_done(self_pointer self) {
  auto& st = self->state;
  if (st.reconciled && st.fetcher->done() && st.in_flight == 0)
    report(self);
}

/// Fetches what the reconciliation found missing here; what the peer lacks
/// stays with us (a pull only takes).
void act(self_pointer self, neg_catchup::action action) {
  auto& st = self->state;
  using kind = neg_catchup::action::kind;
  switch (action.what) {
    case kind::none:
      return;
    case kind::fallback:
    case kind::fail:
    // auth-required: from a relay that sent no challenge (on_frame handles
    // one that did).
    case kind::authenticate:
    // Not asked for: a pull leaves `page_when_empty` off.
    case kind::page:
      return finish(self, failure(502, "the peer's relay " + st.deps.endpoint
                                         + " did not reconcile (NIP-77): "
                                         + action.reason));
    case kind::scan:
      send(self, std::move(action.frames));
      return act(self, st.reconciliation->on_items(st.deps.store->negentropy_items(
                         action.scan.filter, action.scan.now,
                         action.scan.max_items)));
    case kind::done:
      st.reconciled = true;
      [[fallthrough]];
    case kind::send:
      break;
  }
  send(self, std::move(action.frames));
  auto need = st.reconciliation->take_need();
  // What this peer sent before and we refused is not fetched again: it
  // counts as refused (store/refused_store.hpp).
  st.counts.refused += store::drop_refused(*st.deps.store,
                                           "federation:" + st.deps.peer, need);
  st.fetcher->add(std::move(need));
  refill(self);
  maybe_done(self);
}

void hand_over(self_pointer self);

/// Whether we hold a version of the replaceable or addressable `ev`.
bool hold_version(self_pointer self, const nostr::event& ev) {
  nostr::filter f;
  f.kinds = std::vector<uint32_t>{ev.kind};
  f.authors = std::vector<nostr::bytes32>{ev.pubkey};
  auto d = nostr::d_tag(ev);
  // An addressable event without a `d` tag has the address "": no tag
  // condition finds that, so the author's versions are read instead.
  auto untagged = nostr::is_addressable_kind(ev.kind) && d.empty();
  if (nostr::is_addressable_kind(ev.kind) && !untagged)
    f.tags.push_back({'d', {std::string{d}}});
  bool found = false;
  self->state.deps.store->scan(
    f, unix_now(), std::nullopt, untagged ? SIZE_MAX : 1,
    [&found, untagged](std::string_view json, const store::scan_position&) {
      nostr::event ours;
      found = !untagged
              || (nostr::parse_event(json, ours).empty()
                  && nostr::d_tag(ours).empty());
      return !found;
    });
  return found;
}

void ingest(self_pointer self, nostr::event ev) {
  auto& st = self->state;
  auto& c = st.counts;
  if (!nostr::matches_any(st.filters, ev)) {
    ++c.refused;
    return;
  }
  auto versioned = nostr::is_replaceable_kind(ev.kind)
                   || nostr::is_addressable_kind(ev.kind);
  auto ours = versioned && hold_version(self, ev);
  if (ours && st.deps.request.strategy == conflict_strategy::skip) {
    ++c.skipped;
    return;
  }
  auto item = std::make_shared<ingest_item>();
  item->source = "federation:" + st.deps.peer;
  item->source_info = st.deps.endpoint;
  item->data.ev = std::move(ev);
  item->data.replaces_newer
    = ours && st.deps.request.strategy == conflict_strategy::overwrite;
  ++st.in_flight;
  st.gathered.push_back(std::move(item));
  st.gathered_ours.push_back(ours);
  if (st.gathered.size() >= ingest_batch_max) {
    hand_over(self);
  } else if (!st.hand_over_due) {
    // Behind the frames already in the mailbox: they join this batch.
    st.hand_over_due = true;
    self->send(self, pull_atom::hand_over::value);
  }
}

/// Hands the gathered events to a verifier as one batch.
void hand_over(self_pointer self) {
  auto& st = self->state;
  if (st.gathered.empty())
    return;
  auto batch = std::exchange(st.gathered, {});
  auto ours = std::exchange(st.gathered_ours, {});
  auto verifier = next_running(st.deps.verifiers, st.next_verifier);
  auto settle = [self](size_t n) {
    self->state.in_flight -= n;
    refill(self);
    maybe_done(self);
  };
  const auto n = batch.size();
  if (!verifier) {
    log::warn("{} found no verifier running for {} event{}", self->name(), n,
              n == 1 ? "" : "s");
    st.counts.failed += n;
    return settle(n);
  }
  self->request(verifier, caf::infinite, atom::ingest_v, std::move(batch))
    .then(
      [self, settle, n, ours = std::move(ours)](ingest_results& results) {
        auto& c = self->state.counts;
        for (size_t i = 0; i < n; ++i) {
          auto status = i < results.size() ? results[i].status
                                           : ingest_status::error;
          switch (status) {
            case ingest_status::stored:
            case ingest_status::ephemeral:
              ++(ours[i] ? c.replaced : c.imported);
              break;
            case ingest_status::duplicate:
              // An older version than ours: the newest stays.
              ++c.skipped;
              break;
            case ingest_status::error:
              ++c.failed;
              break;
            default:
              ++c.refused;
          }
        }
        settle(n);
      },
      [self, settle, n](caf::error& err) {
        self->state.counts.failed += n;
        log::warn("{} could not hand {} event{} to a verifier: {}", self->name(), n,
                  n == 1 ? "" : "s", render(err));
        settle(n);
      });
}

/// Runs the reconciliation from its start.
void restart(self_pointer self) {
  auto& st = self->state;
  st.restart_after_auth = false;
  st.reconciliation.emplace(*st.deps.store, st.filters, 0, unix_now(),
                            neg_catchup::limits{});
  act(self, st.reconciliation->start());
}

void on_frame(self_pointer self, std::string& frame) {
  auto& st = self->state;
  nostr::relay_message msg;
  if (!st.reconciliation || !nostr::parse_relay_message(frame, msg))
    return;
  const auto& sub = msg.first;
  if (msg.verb == "NEG-MSG")
    return act(self, st.reconciliation->on_message(sub, msg.second));
  if (msg.verb == "NEG-ERR") {
    const auto& reason = msg.second;
    // Refused before our AUTH went through: start over once it has.
    if (reason.rfind("auth-required:", 0) == 0 && !st.auth_event.empty()
        && !st.restarted_after_auth && sub == st.reconciliation->session()) {
      st.restarted_after_auth = true;
      if (st.authenticated)
        return restart(self);
      st.restart_after_auth = true;
      return;
    }
    return act(self, st.reconciliation->on_error(sub, reason));
  }
  if (msg.verb == "AUTH") {
    auto ev = nostr::make_auth_event(st.deps.keys, st.deps.endpoint, sub,
                                     unix_now());
    st.auth_event = nostr::to_hex(ev.id);
    send(self, {"[\"AUTH\"," + nostr::to_json(ev) + "]"});
    return;
  }
  if (msg.verb == "OK" && sub == st.auth_event && !sub.empty()) {
    if (!msg.accepted)
      return finish(self, failure(502, "the peer's relay " + st.deps.endpoint
                                         + " refused our AUTH: "
                                         + msg.second));
    st.authenticated = true;
    if (st.restart_after_auth)
      restart(self);
    if (st.fetch_after_auth) {
      st.fetch_after_auth = false;
      refill(self);
    }
    return;
  }
  if (msg.verb == "NOTICE")
    return act(self, st.reconciliation->on_notice(sub));
  if (msg.verb == "EVENT" && st.fetcher->owns(sub)) {
    if (!msg.event_error.empty() || !st.fetcher->on_event(sub, msg.ev.id)) {
      ++st.counts.refused;
      return;
    }
    ingest(self, std::move(msg.ev));
    return;
  }
  if (msg.verb == "EOSE") {
    if (auto close = st.fetcher->on_eose(sub); !close.empty())
      send(self, {std::move(close)});
  } else if (msg.verb == "CLOSED") {
    const auto& reason = msg.second;
    switch (st.fetcher->on_closed(sub, reason)) {
      case id_fetcher::closed_outcome::not_ours:
      case id_fetcher::closed_outcome::retrying:
        break;
      case id_fetcher::closed_outcome::refused:
        ++st.counts.refused;
        break;
      case id_fetcher::closed_outcome::stop:
        // A relay that challenges only when asked for events by id: the
        // fetch goes on once it takes our AUTH (its ids are queued again).
        if (reason.rfind("auth-required:", 0) == 0 && !st.auth_event.empty()
            && !st.authenticated) {
          st.fetch_after_auth = true;
          break;
        }
        // A rate limit or a failing relay: the pull ends without a partial
        // result, and whoever asked for it may ask again later.
        return finish(self, failure(reason.rfind("rate-limited:", 0) == 0 ? 429 : 502,
                                    "the peer's relay " + st.deps.endpoint
                                      + " refused a fetch by ids: " + reason));
    }
  } else {
    return;
  }
  refill(self);
  maybe_done(self);
}

/// The peer's listing: the collection's filters, once its answer proves
/// the pinned key.
void on_listed(self_pointer self, uint32_t status, const std::string& body) {
  auto& st = self->state;
  const auto& name = st.deps.request.collection;
  if (status == 0)
    return finish(self, failure(502, "peer " + st.deps.peer
                                       + " did not answer: " + body));
  json::error_code ec;
  auto parsed = json::parse(body, ec);
  auto obj = !ec && parsed.is_object() ? &parsed.as_object() : nullptr;
  if (status != 200) {
    auto error = obj ? obj->if_contains("error") : nullptr;
    auto message = error && error->is_object()
                       && error->as_object().if_contains("message")
                     ? json::serialize(error->as_object().at("message"))
                     : body;
    return finish(self, failure(status == 403 ? 403 : 502,
                                "peer " + st.deps.peer + " answered HTTP "
                                  + std::to_string(status) + ": " + message));
  }
  auto proof = obj ? obj->if_contains("proof") : nullptr;
  if (!proof || !proof->is_string()
      || proven_key(proof->get_string(), st.listing.url, st.listing.method,
                    st.listing.authorization, unix_now())
           != st.deps.pinned)
    return finish(self, failure(502, "peer " + st.deps.peer
                                       + "'s answer does not prove its "
                                         "pinned node key"));
  auto list = obj->if_contains("collections");
  const json::object* found = nullptr;
  if (list && list->is_array())
    for (const auto& c : list->as_array())
      if (c.is_object() && c.as_object().if_contains("name")
          && c.as_object().at("name") == json::value(name))
        found = &c.as_object();
  if (!found)
    return finish(self, failure(404, "collection: peer " + st.deps.peer
                                       + " offers us no collection " + name,
                                "collection"));
  auto filters = found->if_contains("filters");
  if (!filters)
    return finish(self, failure(502, "peer " + st.deps.peer
                                       + " sent collection " + name
                                       + " without filters"));
  if (auto why = json_body::read_filters(*filters, "filters", st.filters);
      !why.empty())
    return finish(self, failure(502, "peer " + st.deps.peer + " sent "
                                       + name + " with bad " + why));
  net::tls_options tls;
  tls.ca_certfile = st.deps.ca;
  caf::weak_actor_ptr weak{self->ctrl()};
  auto tell = [weak](auto... xs) {
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<collection_pull_actor>(strong), xs...);
  };
  net::ws_client_callbacks callbacks;
  callbacks.on_open = [tell] { tell(pull_atom::opened::value); };
  callbacks.on_frame = [tell](std::string frame) {
    tell(pull_atom::frame::value, std::move(frame));
  };
  callbacks.on_close = [tell](net::failure_kind kind,
                              const std::string& reason) {
    tell(pull_atom::closed::value, net::to_string(kind) + ": " + reason);
  };
  st.conn = net::connect_ws(st.deps.io->context(), st.deps.endpoint, tls,
                            std::move(callbacks));
}

} // namespace

collection_pull_actor::behavior_type
collection_pull(collection_pull_actor::stateful_pointer<collection_pull_state>
                  self,
                collection_pull_deps deps) {
  self->state.deps = std::move(deps);
  return {
    [self](federation_call&) -> caf::result<federation_reply> {
      auto& st = self->state;
      st.promise = self->make_response_promise<federation_reply>();
      self->delayed_send(self, st.deps.deadline, pull_atom::expired::value);
      st.listing = signed_request(st.deps.keys, "GET",
                                  st.deps.admin_url
                                    + "/api/v1/federation/collections",
                                  {});
      st.listing.ca_certfile = st.deps.ca;
      caf::weak_actor_ptr weak{self->ctrl()};
      st.deps.transport(st.listing, [weak](signed_http_response res) {
        if (auto strong = weak.lock())
          caf::anon_send(caf::actor_cast<collection_pull_actor>(strong),
                         pull_atom::listed::value, res.status,
                         res.status != 0 ? std::move(res.body)
                                         : std::move(res.error));
      });
      return st.promise;
    },
    [self](pull_atom::listed, uint32_t status, std::string& body) {
      on_listed(self, status, body);
    },
    [self](pull_atom::opened) {
      id_fetcher::options fetch;
      // Ids asked within the collection: the peer's relay may serve us
      // only that (peer_gate).
      fetch.within = self->state.filters;
      self->state.fetcher.emplace(std::move(fetch));
      restart(self);
    },
    [self](pull_atom::frame, std::string& frame) { on_frame(self, frame); },
    [self](pull_atom::closed, std::string& reason) {
      auto& st = self->state;
      // Everything asked for has come: what is still being stored
      // completes the report.
      if (st.reconciled && st.fetcher && st.fetcher->done()) {
        st.conn.reset();
        return maybe_done(self);
      }
      finish(self, failure(502, "the peer's relay " + self->state.deps.endpoint
                                  + " closed the connection: " + reason));
    },
    [self](pull_atom::expired) {
      finish(self, failure(504, "the pull did not finish within "
                                  + duration_text(self->state.deps.deadline)));
    },
    [self](pull_atom::look) { on_quiet_look(self); },
    [self](pull_atom::hand_over) {
      self->state.hand_over_due = false;
      hand_over(self);
    },
  };
}

} // namespace ferry
