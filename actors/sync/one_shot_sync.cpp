// One `ferry sync` run (see one_shot_sync.hpp). It is driven step by step
// from one mailbox (a scoped actor): the WebSocket's callbacks on the
// io_runtime thread and the verifiers' answers all arrive there.

#include "actors/sync/one_shot_sync.hpp"

#include "actors/sync/id_fetcher.hpp"
#include "actors/sync/relay_session.hpp"
#include "actors/sync/req_pager.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"
#include "messages/nostr/negentropy.hpp"
#include "messages/nostr/relay_message.hpp"
#include "messages/type_ids.hpp"
#include "net/io_runtime.hpp"
#include "net/ws_client.hpp"
#include "store/refused_store.hpp"

#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>

#include <boost/json.hpp>

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <deque>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

namespace ferry {

namespace {

namespace neg = nostr::negentropy;
using clock_type = std::chrono::steady_clock;

/// The negentropy session's subscription id.
constexpr const char* neg_sub = "ferry-sync";

/// Negentropy rounds before we give up on a relay that never converges.
/// Each round settles at least one frame's worth of ranges, so real sessions
/// finish in a few dozen even at the smallest frame size.
constexpr size_t max_rounds = 10000;

/// Events fetched and not yet answered by the ingest pipeline; no new REQ
/// goes out beyond it, so a fast relay cannot fill memory.
constexpr size_t max_ingest_in_flight = 8192;

/// Longest a round waits for the needed ids found so far to be asked for
/// (fetch_backlog): well within the time a relay keeps an idle negentropy
/// session open (Ferry's own: 60 s).
constexpr auto neg_hold_max = std::chrono::seconds{20};

/// EVENTs sent and not yet answered with OK.
constexpr size_t up_window = 256;

/// How often the REQs by ids are looked at for ones the relay leaves
/// unanswered (dropped beyond its subscription limit): as in a node, but
/// often enough that a look finds them before the run's own timeout ends it,
/// and never so often that a relay's usual answer time looks like silence.
std::chrono::milliseconds quiet_look_interval(std::chrono::milliseconds timeout) {
  return std::clamp<std::chrono::milliseconds>(
    timeout / 3, std::chrono::milliseconds{500}, std::chrono::seconds{5});
}

/// Refusals printed one by one; the rest are only counted.
constexpr size_t refusals_shown = 5;

const std::string req_fallback
  = "sync with REQ instead (a [[sync.server]] with mode = \"req_stream\" in a "
    "node's config)";
const std::string req_hint
  = "the relay does not seem to support NIP-77 negentropy; " + req_fallback;

std::string seconds_text(std::chrono::milliseconds d) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", d.count() / 1000.0);
  return text;
}

/// One message from the mailbox.
struct inbound {
  enum class kind { silence, opened, frame, closed, ingested } what = kind::silence;
  /// The frame, or why the connection closed.
  std::string text;
  net::failure_kind failure = net::failure_kind::none;
  /// A verifier's answers to one batch, in its order.
  ingest_results results;
};

/// The ingest source of what a one-shot sync fetches from `url`: one per
/// relay, so what one relay's copy had refused is not skipped at another.
std::string one_shot_source(const std::string& url) {
  return "sync:" + url;
}

struct down_counts {
  uint64_t stored = 0;
  uint64_t duplicate = 0;
  uint64_t rejected = 0;
  /// Needed ids this source sent before and had refused: not fetched.
  uint64_t refused_before = 0;
  uint64_t errors = 0;
};

struct up_counts {
  uint64_t sent = 0;
  uint64_t accepted = 0;
  uint64_t refused = 0;
  /// Ids of ours that the store no longer holds (deleted since the item set).
  uint64_t vanished = 0;
};

/// One run of the command; every failure prints its message and returns false.
/// Fetches by id: 500 ids a REQ, four REQs open.
id_fetcher::options fetch_options() {
  id_fetcher::options opts;
  opts.batch_size = 500;
  opts.max_requests = 4;
  opts.sub_prefix = "ferry-fetch-";
  return opts;
}

class sync_run {
public:
  sync_run(const sync_options& opts, store::event_store& store, caf::scoped_actor& self,
           net::io_runtime& io, const std::vector<verifier_actor>& verifiers,
           const one_shot_report& report)
    : opts_(opts),
      store_(store),
      self_(self),
      io_(io),
      verifiers_(verifiers),
      report_(report),
      timeout_(std::chrono::milliseconds{
        static_cast<int64_t>(opts.timeout_seconds * 1000)}),
      fetcher_(fetch_options()) {
  }

  bool connect();
  /// Closes the connection and waits briefly for the close to go out.
  void disconnect();
  bool reconcile(const nostr::filter& f, neg::item_set_ptr items);
  /// Fetches what `f` matches by paging the relay with REQ, for a store
  /// that holds none of it.
  bool page(const nostr::filter& f);
  /// Pages as a relay connection pages that relay: ours, or its NIP-11
  /// max_limit when smaller, so a page it fills is seen as full (a crowded
  /// second is then asked for alone, up to max_limit, or ten pages without
  /// one; actors/sync/req_catchup.cpp).
  req_pager::options paging_options();
  bool transfer();
  /// The counts on the report's `out`; `complete` false marks a run that failed after
  /// reconciling.
  void print_summary(bool complete, std::chrono::duration<double> elapsed) const;

  bool reconciled() const {
    return reconciled_;
  }

  bool paged() const {
    return pager_.has_value();
  }

  bool ingest_ok() const {
    return down_.errors == 0;
  }

private:
  bool fail(const std::string& message) {
    say(message);
    return false;
  }

  /// One message line on the report's `err`.
  void say(const std::string& message) const {
    std::fprintf(report_.err, "ferry sync: %s\n", message.c_str());
  }

  bool connection_lost(const inbound& in, const char* during) {
    if (stopping())
      return fail("stopped " + std::string{during} + ": the node is stopping");
    return fail("connection to " + opts_.url + " lost " + during + ": "
                + net::to_string(in.failure) + ": " + in.text);
  }

  void send(std::string frame) {
    conn_->send(std::make_shared<const std::string>(std::move(frame)));
  }

  /// The next message within `wait`; `silence` when none came.
  inbound next(std::chrono::milliseconds wait);
  inbound receive_one(std::chrono::milliseconds wait);
  bool stopping() const {
    return report_.stopping && report_.stopping->load();
  }
  void on_transfer_frame(nostr::relay_message& msg, bool& failed);
  /// Hands the needed ids found so far to the fetcher (those refused
  /// before are dropped).
  void fetch_needed();
  /// Moves events until everything is done or, with `hold_until`, until
  /// every id handed to the fetcher is asked for or that time has come.
  /// @returns false when the run must end.
  bool move_events(std::optional<clock_type::time_point> hold_until);
  /// The reconciliation's next round waits while the needed ids it found
  /// reach `fetch_backlog`: they are asked for first (at most
  /// `neg_hold_max`). @returns false when the run must end.
  bool fetch_backlog_before_next_round();
  /// A frame of the open page.
  void on_page_frame(nostr::relay_message& msg, bool& failed);
  /// Events the relay sent us, by id or in pages.
  uint64_t fetched() const {
    return fetcher_.delivered + (pager_ ? pager_->received() : 0);
  }
  void pump_down();
  /// Adds a fetched event to the batch for the verifiers.
  void gather(nostr::event ev);
  /// Sends the fetched events gathered so far to a verifier as one batch.
  void hand_over_gathered();
  /// One fetched event answered by the ingest path.
  void count_ingested(const ingest_result& result);
  void pump_up();
  /// Events fetched and sent so far, on a terminal only.
  void report_progress();
  /// Looks for REQs by ids the relay left quiet (id_fetcher::look_for_quiet)
  /// once `next_look_` has come. @returns false when the run must end.
  bool look_for_quiet_fetches();

  bool wants_down() const {
    return opts_.direction != "up";
  }
  bool wants_up() const {
    return opts_.direction != "down";
  }

  const sync_options& opts_;
  store::event_store& store_;
  caf::scoped_actor& self_;
  net::io_runtime& io_;
  const std::vector<verifier_actor>& verifiers_;
  const one_shot_report& report_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<net::ws_client_connection> conn_;
  bool conn_closed_ = false;

  // Reconciliation.
  bool reconciled_ = false;
  size_t rounds_ = 0;
  std::vector<nostr::bytes32> have_;
  /// Needed ids not handed to the fetcher yet, and all found.
  std::vector<nostr::bytes32> need_;
  uint64_t need_found_ = 0;
  /// Rounds that waited for the fetcher (fetch_backlog_before_next_round).
  uint64_t rounds_held_ = 0;

  // Down.
  id_fetcher fetcher_;
  /// Set when the store held nothing to reconcile: pages instead.
  std::optional<req_pager> pager_;
  /// When the open REQs by ids are looked at next (none open: unset).
  std::optional<clock_type::time_point> next_look_;
  /// Fetched events not answered yet, gathered ones included.
  size_t ingest_in_flight_ = 0;
  /// Fetched events not handed to a verifier yet: the frames waiting in the
  /// mailbox together go as one batch (fewer messages and thread wake-ups
  /// per event, larger commits).
  ingest_batch gathered_;
  size_t next_verifier_ = 0;
  down_counts down_;

  // Up.
  std::deque<nostr::bytes32> up_queue_;
  std::unordered_set<std::string> up_in_flight_;
  up_counts up_;
};

inbound sync_run::receive_one(std::chrono::milliseconds wait) {
  inbound in;
  self_->receive(
    [&](atom::connected) { in.what = inbound::kind::opened; },
    [&](atom::frame, std::string& frame) {
      in.what = inbound::kind::frame;
      in.text = std::move(frame);
    },
    [&](atom::closed, uint8_t failure, std::string& reason) {
      conn_closed_ = true;
      in.what = inbound::kind::closed;
      in.failure = static_cast<net::failure_kind>(failure);
      in.text = std::move(reason);
    },
    [&](ingest_results& results) {
      in.what = inbound::kind::ingested;
      in.results = std::move(results);
    },
    caf::after(std::max(wait, std::chrono::milliseconds{1})) >> [] {});
  return in;
}

inbound sync_run::next(std::chrono::milliseconds wait) {
  // A run that can be stopped from outside waits in short slices.
  constexpr auto slice = std::chrono::milliseconds{200};
  auto deadline = clock_type::now() + wait;
  for (;;) {
    if (stopping()) {
      inbound in;
      in.what = inbound::kind::closed;
      in.text = "the node is stopping";
      return in;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock_type::now());
    auto in = receive_one(report_.stopping ? std::min(left, slice) : left);
    if (in.what != inbound::kind::silence || clock_type::now() >= deadline)
      return in;
  }
}

bool sync_run::connect() {
  net::tls_options tls;
  tls.ca_certfile = opts_.ca_file;
  auto me = caf::actor_cast<caf::actor>(self_.ptr());
  net::ws_client_callbacks callbacks;
  callbacks.on_open = [me] { caf::anon_send(me, atom::connected_v); };
  callbacks.on_frame = [me](std::string frame) {
    caf::anon_send(me, atom::frame_v, std::move(frame));
  };
  callbacks.on_close = [me](net::failure_kind kind, const std::string& reason) {
    caf::anon_send(me, atom::closed_v, static_cast<uint8_t>(kind), reason);
  };
  conn_ = net::connect_ws(io_.context(), opts_.url, tls, std::move(callbacks),
                          timeout_);
  // connect_ws's own timeout ends the attempt; this wait only backs it up.
  auto in = next(timeout_ + std::chrono::seconds{5});
  if (in.what == inbound::kind::opened)
    return true;
  conn_.reset();
  if (in.what == inbound::kind::closed)
    return fail("cannot connect to " + opts_.url + ": "
                + net::to_string(in.failure) + ": " + in.text);
  return fail("cannot connect to " + opts_.url + " within "
              + seconds_text(timeout_));
}

void sync_run::disconnect() {
  if (!conn_ || conn_closed_)
    return;
  conn_->close("done");
  conn_.reset();
  auto deadline = clock_type::now() + std::chrono::seconds{2};
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock_type::now());
    if (left.count() <= 0 || next(left).what == inbound::kind::closed)
      return;
  }
}

bool sync_run::reconcile(const nostr::filter& f, neg::item_set_ptr items) {
  neg::client client{std::move(items), opts_.frame_size_limit};
  std::string open = "[\"NEG-OPEN\",\"";
  open += neg_sub;
  open += "\"," + nostr::to_json(f) + ",\"" + neg::encode_hex(client.initiate())
          + "\"]";
  send(std::move(open));
  auto deadline = clock_type::now() + timeout_;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock_type::now());
    if (left.count() <= 0) {
      if (rounds_ == 0)
        return fail("no answer to NEG-OPEN from " + opts_.url + " within "
                    + seconds_text(timeout_) + ": " + req_hint);
      return fail("no answer to NEG-MSG (round " + std::to_string(rounds_ + 1)
                  + ") within " + seconds_text(timeout_));
    }
    // Fetches go on beside the reconciliation once a round was held for
    // them (fetch_backlog_before_next_round): their frames and the ingest
    // path's answers come here too, and events gathered go to a verifier
    // as soon as no frame waits behind them.
    auto in = next(gathered_.empty() ? left : std::chrono::milliseconds{0});
    if (in.what == inbound::kind::closed)
      return connection_lost(in, "during reconciliation");
    if (in.what == inbound::kind::silence)
      hand_over_gathered();
    if (in.what == inbound::kind::ingested)
      for (const auto& result : in.results)
        count_ingested(result);
    if (in.what != inbound::kind::frame) {
      pump_down();
      continue;
    }
    nostr::relay_message msg;
    if (!nostr::parse_relay_message(in.text, msg))
      return fail("malformed message from the relay: " + in.text.substr(0, 200));
    if (msg.verb == "NOTICE") {
      if (rounds_ == 0)
        return fail("the relay answered NEG-OPEN with NOTICE \"" + msg.first
                    + "\": " + req_hint);
      say("notice from the relay: " + msg.first);
      continue;
    }
    if (msg.first != neg_sub) {
      bool failed = false;
      on_transfer_frame(msg, failed);
      if (failed)
        return false;
      if (gathered_.size() >= ingest_batch_max)
        hand_over_gathered();
      pump_down();
      continue;
    }
    if (msg.verb == "NEG-ERR") {
      if (msg.second.rfind("auth-required:", 0) == 0)
        return fail("the relay wants NIP-42 authentication (NEG-ERR \""
                    + msg.second + "\"), which ferry sync does not do");
      if (rounds_ == 0)
        return fail("the relay refused NEG-OPEN with NEG-ERR \"" + msg.second
                    + "\"; if it does not support NIP-77 negentropy, "
                    + req_fallback);
      return fail("the relay ended the negentropy session in round "
                  + std::to_string(rounds_ + 1) + " with NEG-ERR \""
                  + msg.second + "\"");
    }
    if (msg.verb != "NEG-MSG")
      continue;
    std::string response;
    if (!neg::decode_hex(msg.second, response))
      return fail("NEG-MSG from the relay is not lowercase hex");
    neg::client::round round;
    if (auto why = client.reconcile(response, round); !why.empty())
      return fail("bad negentropy message from the relay: " + why);
    ++rounds_;
    have_.insert(have_.end(), round.have.begin(), round.have.end());
    need_found_ += round.need.size();
    // Only a fetch needs the ids; the others count them.
    if (wants_down() && !opts_.dry_run)
      need_.insert(need_.end(), round.need.begin(), round.need.end());
    say("round " + std::to_string(rounds_) + ": have "
        + std::to_string(have_.size()) + ", need "
        + std::to_string(need_found_));
    if (!round.next) {
      send(std::string{"[\"NEG-CLOSE\",\""} + neg_sub + "\"]");
      reconciled_ = true;
      return true;
    }
    if (rounds_ >= max_rounds)
      return fail("no agreement after " + std::to_string(max_rounds)
                  + " negentropy rounds");
    if (!fetch_backlog_before_next_round())
      return false;
    send(std::string{"[\"NEG-MSG\",\""} + neg_sub + "\",\""
         + neg::encode_hex(*round.next) + "\"]");
    deadline = clock_type::now() + timeout_;
  }
}

req_pager::options sync_run::paging_options() {
  relay_session limits;
  net::tls_options tls;
  tls.enabled = opts_.url.rfind("wss://", 0) == 0;
  tls.ca_certfile = opts_.ca_file;
  // The answer comes on the io thread, exactly once, within the timeout.
  auto answer = std::make_shared<std::promise<net::http_get_result>>();
  auto info = answer->get_future();
  net::http_get(io_.context(), relay_conn::info_url(opts_.url), tls,
                {{"Accept", "application/nostr+json"}},
                [answer](net::http_get_result r) { answer->set_value(std::move(r)); },
                std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds{10}));
  while (info.wait_for(std::chrono::milliseconds{200}) != std::future_status::ready)
    if (stopping())
      break;
  const boost::json::object* document = nullptr;
  boost::json::value parsed;
  if (info.valid() && info.wait_for(std::chrono::seconds{0}) == std::future_status::ready) {
    auto r = info.get();
    boost::json::error_code ec;
    if (r.failure == net::failure_kind::none && r.status == 200)
      parsed = boost::json::parse(r.body, ec);
    if (!ec)
      document = parsed.if_object();
  }
  relay_conn::take_remote_limits(limits, document);
  req_pager::options opts;
  opts.page_size = limits.page_size;
  opts.most_per_page = limits.remote_max_limit > 0 ? limits.remote_max_limit
                                                   : limits.page_size * 10;
  opts.sub_prefix = "ferry-page-";
  return opts;
}

bool sync_run::page(const nostr::filter& f) {
  auto paging = paging_options();
  say("the store holds nothing the filter matches: pages " + opts_.url
      + " with REQ instead of reconciling (" + std::to_string(paging.page_size)
      + " events a page)");
  pager_.emplace(f, std::move(paging));
  return transfer();
}

void sync_run::pump_down() {
  if (ingest_in_flight_ >= max_ingest_in_flight)
    return;
  for (auto& frame : fetcher_.fill())
    send(std::move(frame));
  if (pager_)
    if (auto req = pager_->fill(); !req.empty())
      send(std::move(req));
}

void sync_run::hand_over_gathered() {
  if (gathered_.empty())
    return;
  ingest_batch batch;
  batch.swap(gathered_);
  self_->send(verifiers_[next_verifier_++ % verifiers_.size()], atom::ingest_v,
              std::move(batch));
}

void sync_run::count_ingested(const ingest_result& result) {
  --ingest_in_flight_;
  switch (result.status) {
    case ingest_status::stored:
    case ingest_status::ephemeral:
      ++down_.stored;
      break;
    case ingest_status::duplicate:
      ++down_.duplicate;
      break;
    case ingest_status::invalid:
    case ingest_status::refused:
    case ingest_status::shadowed:
      ++down_.rejected;
      break;
    case ingest_status::error:
      if (++down_.errors == 1)
        fail("storing a fetched event failed: " + result.message);
      break;
  }
}

void sync_run::pump_up() {
  while (up_in_flight_.size() < up_window && !up_queue_.empty()) {
    auto id = up_queue_.front();
    up_queue_.pop_front();
    auto json = store_.get_json(id);
    if (!json) {
      ++up_.vanished;
      continue;
    }
    send("[\"EVENT\"," + *json + "]");
    up_in_flight_.insert(nostr::to_hex(id));
    ++up_.sent;
  }
}

void sync_run::gather(nostr::event ev) {
  auto item = std::make_shared<ingest_item>();
  item->data.ev = std::move(ev);
  item->source = one_shot_source(opts_.url);
  item->source_info = opts_.url;
  gathered_.push_back(std::move(item));
  ++ingest_in_flight_;
}

void sync_run::on_page_frame(nostr::relay_message& msg, bool& failed) {
  if (msg.verb == "EVENT") {
    if (!msg.event_error.empty()) {
      ++down_.rejected;
      return;
    }
    // Beyond the page (a relay that ignores until): not what was asked for.
    if (!pager_->on_event(msg.ev))
      return;
    return gather(std::move(msg.ev));
  }
  if (msg.verb == "EOSE") {
    auto after = pager_->on_eose();
    send(std::move(after.close));
    if (!after.warning.empty())
      say(after.warning);
    return;
  }
  if (msg.verb == "CLOSED") {
    fail("the relay closed the REQ that pages it with \"" + msg.second + "\"");
    failed = true;
  }
}

void sync_run::on_transfer_frame(nostr::relay_message& msg, bool& failed) {
  if (pager_ && pager_->owns(msg.first)
      && (msg.verb == "EVENT" || msg.verb == "EOSE" || msg.verb == "CLOSED"))
    return on_page_frame(msg, failed);
  if (msg.verb == "EVENT") {
    if (!fetcher_.owns(msg.first))
      return;
    if (!msg.event_error.empty()) {
      ++down_.rejected;
      return;
    }
    if (!fetcher_.on_event(msg.first, msg.ev.id))
      return;
    return gather(std::move(msg.ev));
  }
  if (msg.verb == "EOSE") {
    if (auto close = fetcher_.on_eose(msg.first); !close.empty())
      send(std::move(close));
    return;
  }
  if (msg.verb == "CLOSED") {
    using outcome = id_fetcher::closed_outcome;
    switch (fetcher_.on_closed(msg.first, msg.second)) {
      case outcome::not_ours:
      case outcome::retrying:
        break;
      case outcome::refused:
        say("the relay refused to serve an event it reconciled: " + msg.second);
        break;
      case outcome::stop:
        fail("the relay closed a REQ by ids with \"" + msg.second + "\"");
        failed = true;
        break;
    }
    return;
  }
  if (msg.verb == "OK") {
    if (up_in_flight_.erase(msg.first) == 0)
      return;
    if (msg.accepted) {
      ++up_.accepted;
      return;
    }
    if (++up_.refused <= refusals_shown)
      say("the relay refused " + msg.first + ": " + msg.second);
    return;
  }
  if (msg.verb == "NOTICE")
    say("notice from the relay: " + msg.first);
}

void sync_run::report_progress() {
  if (!report_.progress)
    return;
  auto sent_up = wants_up() ? have_.size() : 0;
  // A paging run cannot know its total.
  report_.progress(fetched() + up_.sent, fetched() + up_.accepted + up_.refused,
                   pager_ ? 0 : fetcher_.wanted + sent_up);
}

bool sync_run::look_for_quiet_fetches() {
  using outcome = id_fetcher::quiet_look::outcome;
  const auto interval = quiet_look_interval(timeout_);
  const auto now = clock_type::now();
  if (fetcher_.open_requests() == 0) {
    next_look_.reset();
    return true;
  }
  if (!next_look_) {
    next_look_ = now + interval;
    return true;
  }
  if (now < *next_look_)
    return true;
  next_look_ = now + interval;
  auto look = fetcher_.look_for_quiet();
  switch (look.what) {
    case outcome::answered:
      return true;
    case outcome::retrying:
      say(std::to_string(look.close.size()) + " REQs by ids had no answer for "
          + seconds_text(interval) + ": asked again, at most "
          + std::to_string(fetcher_.max_requests()) + " open at once");
      for (auto& frame : look.close)
        send(std::move(frame));
      return true;
    case outcome::stop:
      return fail("no answer to a REQ by ids, the only one open, for "
                  + seconds_text(interval));
  }
  return true;
}

void sync_run::fetch_needed() {
  if (need_.empty())
    return;
  auto need = std::exchange(need_, {});
  down_.refused_before
    += store::drop_refused(store_, one_shot_source(opts_.url), need);
  fetcher_.add(need);
}

bool sync_run::fetch_backlog_before_next_round() {
  if (need_.size() + fetcher_.queued() < opts_.fetch_backlog)
    return true;
  ++rounds_held_;
  say("round " + std::to_string(rounds_) + ": "
      + std::to_string(need_.size() + fetcher_.queued())
      + " needed ids are asked for before the next round");
  fetch_needed();
  if (!move_events(clock_type::now() + neg_hold_max))
    return false;
  // Every id it knew is asked for: the set of them starts over, so that it
  // stays bounded however many the relay holds that the store lacks.
  if (fetcher_.queued() == 0 && fetcher_.known() >= opts_.fetch_backlog)
    fetcher_.forget_known();
  return true;
}

bool sync_run::transfer() {
  fetch_needed();
  if (wants_up())
    up_queue_.assign(have_.begin(), have_.end());
  return move_events(std::nullopt);
}

bool sync_run::move_events(std::optional<clock_type::time_point> hold_until) {
  auto relay_deadline = clock_type::now() + timeout_;
  bool was_waiting = false;
  // The ingest path answers every event; in a node one of its actors may
  // restart meanwhile and drop what it held, so silence there ends the run
  // too.
  constexpr auto ingest_patience = std::chrono::seconds{60};
  auto ingest_deadline = clock_type::now() + ingest_patience;
  for (;;) {
    // A batch goes once full, or once no frame waits behind it.
    if (gathered_.size() >= ingest_batch_max || self_->mailbox().empty())
      hand_over_gathered();
    pump_down();
    pump_up();
    if (hold_until
        && (fetcher_.queued() == 0 || clock_type::now() >= *hold_until))
      return true;
    const bool waiting_on_relay = fetcher_.open_requests() > 0
                                  || !up_in_flight_.empty()
                                  || (pager_ && pager_->open());
    if (!waiting_on_relay && ingest_in_flight_ == 0 && fetcher_.done()
        && (!pager_ || pager_->done()) && up_queue_.empty())
      break;
    // The relay's time starts when we ask it something, not while only our
    // own pipeline was busy.
    if (waiting_on_relay && !was_waiting)
      relay_deadline = clock_type::now() + timeout_;
    was_waiting = waiting_on_relay;
    report_progress();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      relay_deadline - clock_type::now());
    if (waiting_on_relay && left.count() <= 0)
      return fail("no answer from the relay within " + seconds_text(timeout_) + " ("
                  + (pager_ && pager_->open()
                       ? "the REQ of page " + std::to_string(pager_->pages())
                       : std::to_string(fetcher_.open_requests()) + " REQs and "
                           + std::to_string(up_in_flight_.size()) + " EVENTs")
                  + " unanswered)");
    if (!look_for_quiet_fetches())
      return false;
    if (ingest_in_flight_ == 0)
      ingest_deadline = clock_type::now() + ingest_patience;
    else if (clock_type::now() >= ingest_deadline)
      return fail("the ingest path did not answer for "
                  + seconds_text(ingest_patience) + " ("
                  + std::to_string(ingest_in_flight_)
                  + " fetched events unanswered)");
    // Without a question to the relay open, only our own pipeline is due.
    auto wait = waiting_on_relay ? left : std::chrono::milliseconds{1000};
    if (next_look_)
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                              *next_look_ - clock_type::now()));
    // With events gathered, only a message already waiting is read; none
    // (or only ones this loop does not read) hands them over.
    if (!gathered_.empty())
      wait = std::chrono::milliseconds{0};
    if (hold_until)
      wait = std::min(wait, std::max(std::chrono::milliseconds{0},
                                     std::chrono::duration_cast<std::chrono::milliseconds>(
                                       *hold_until - clock_type::now())));
    auto in = next(wait);
    switch (in.what) {
      case inbound::kind::silence:
        hand_over_gathered();
        break;
      case inbound::kind::opened:
        break;
      case inbound::kind::closed:
        return connection_lost(in, "while transferring events");
      case inbound::kind::ingested:
        ingest_deadline = clock_type::now() + ingest_patience;
        for (const auto& result : in.results)
          count_ingested(result);
        break;
      case inbound::kind::frame: {
        relay_deadline = clock_type::now() + timeout_;
        nostr::relay_message msg;
        if (!nostr::parse_relay_message(in.text, msg))
          return fail("malformed message from the relay: "
                      + in.text.substr(0, 200));
        bool failed = false;
        on_transfer_frame(msg, failed);
        if (failed)
          return false;
        break;
      }
    }
  }
  if (up_.vanished > 0)
    say(std::to_string(up_.vanished)
        + " events the relay lacks left the store during the sync (deleted "
          "or replaced); not sent");
  return true;
}

void sync_run::print_summary(bool complete,
                             std::chrono::duration<double> elapsed) const {
  std::fprintf(report_.out, "sync %s (%s%s%s): ", opts_.url.c_str(),
               opts_.direction.c_str(), opts_.dry_run ? ", dry run" : "",
               complete ? "" : ", incomplete");
  if (pager_)
    std::fprintf(report_.out, "paged in %lu REQ%s (nothing held to reconcile)",
                 static_cast<unsigned long>(pager_->pages()),
                 pager_->pages() == 1 ? "" : "s");
  else
    std::fprintf(report_.out, "%zu round%s, have %zu, need %lu", rounds_,
                 rounds_ == 1 ? "" : "s", have_.size(),
                 static_cast<unsigned long>(need_found_));
  if (rounds_held_ > 0)
    std::fprintf(report_.out, " (%lu round%s held for fetches)",
                 static_cast<unsigned long>(rounds_held_),
                 rounds_held_ == 1 ? "" : "s");
  if (!opts_.dry_run)
    std::fprintf(report_.out, "; fetched %lu, stored %lu, duplicate %lu, rejected %lu, "
                "refused before %lu, missing %lu, refused by the relay %lu; sent %lu, "
                "accepted %lu, refused %lu",
                static_cast<unsigned long>(fetched()),
                static_cast<unsigned long>(down_.stored),
                static_cast<unsigned long>(down_.duplicate),
                static_cast<unsigned long>(down_.rejected),
                static_cast<unsigned long>(down_.refused_before),
                static_cast<unsigned long>(fetcher_.missing),
                static_cast<unsigned long>(fetcher_.refused),
                static_cast<unsigned long>(up_.sent),
                static_cast<unsigned long>(up_.accepted),
                static_cast<unsigned long>(up_.refused));
  std::fprintf(report_.out, " in %.2f s\n", elapsed.count());
  std::fflush(report_.out);
}

} // namespace

sync_option_error check_sync_options(const sync_options& opts,
                                     nostr::filter& f) {
  if (auto reason = nostr::parse_filter(opts.filter_json, f); !reason.empty())
    return {"filter", "--filter", reason};
  auto parsed = net::parse_url(opts.url);
  if (auto* why = std::get_if<std::string>(&parsed))
    return {"url", "", opts.url + ": " + *why};
  std::string scheme = opts.url.substr(0, opts.url.find(':'));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (scheme != "ws" && scheme != "wss")
    return {"url", "", opts.url + ": a relay URL starts with ws:// or wss://"};
  if (opts.direction != "down" && opts.direction != "up"
      && opts.direction != "both")
    return {"direction", "--dir",
            "expected down, up or both, got '" + opts.direction + "'"};
  if (opts.frame_size_limit != 0
      && opts.frame_size_limit < neg::min_frame_size_limit)
    return {"frame_size_limit", "--frame-size-limit",
            "must be 0 (none) or at least "
              + std::to_string(neg::min_frame_size_limit)};
  if (!(opts.timeout_seconds > 0))
    return {"timeout_seconds", "--timeout", "must be more than 0 seconds"};
  if (opts.fetch_backlog == 0)
    return {"fetch_backlog", "--fetch-backlog", "must be at least 1"};
  return {};
}

std::string to_json(const sync_options& opts) {
  namespace json = boost::json;
  json::object body{{"url", opts.url},
                    {"filter", json::parse(opts.filter_json)},
                    {"direction", opts.direction},
                    {"dry_run", opts.dry_run},
                    {"frame_size_limit", static_cast<uint64_t>(opts.frame_size_limit)},
                    {"timeout_seconds", opts.timeout_seconds}};
  if (!opts.ca_file.empty())
    body["ca_file"] = opts.ca_file;
  if (!opts.progress_id.empty())
    body["progress_id"] = opts.progress_id;
  if (opts.reconcile_when_empty)
    body["reconcile_when_empty"] = true;
  body["fetch_backlog"] = static_cast<uint64_t>(opts.fetch_backlog);
  return json::serialize(body);
}

bool valid_progress_id(std::string_view id) {
  return !id.empty() && id.size() <= 64
         && std::all_of(id.begin(), id.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '-'
                     || c == '_';
            });
}

std::string parse_sync_options(std::string_view text, sync_options& out,
                               std::string& field) {
  namespace json = boost::json;
  json::error_code ec;
  auto value = json::parse(text, ec);
  if (ec || !value.is_object()) {
    field.clear();
    return "expected a JSON object";
  }
  const auto& body = value.as_object();
  auto wrong = [&field](const char* name, const char* expected) {
    field = name;
    return std::string{"expected "} + expected;
  };
  for (const auto& [key, x] : body) {
    if (key == "url") {
      if (!x.is_string())
        return wrong("url", "a ws:// or wss:// URL");
      out.url = std::string{x.as_string()};
    } else if (key == "filter") {
      if (!x.is_object())
        return wrong("filter", "a NIP-01 filter object");
      out.filter_json = json::serialize(x);
    } else if (key == "direction") {
      if (!x.is_string())
        return wrong("direction", "down, up or both");
      out.direction = std::string{x.as_string()};
    } else if (key == "dry_run") {
      if (!x.is_bool())
        return wrong("dry_run", "true or false");
      out.dry_run = x.as_bool();
    } else if (key == "frame_size_limit") {
      if (!x.is_uint64() && !(x.is_int64() && x.as_int64() >= 0))
        return wrong("frame_size_limit", "a byte count");
      out.frame_size_limit = static_cast<size_t>(x.to_number<uint64_t>());
    } else if (key == "timeout_seconds") {
      if (!x.is_number())
        return wrong("timeout_seconds", "a number of seconds");
      out.timeout_seconds = x.to_number<double>();
    } else if (key == "ca_file") {
      if (!x.is_string())
        return wrong("ca_file", "a path");
      out.ca_file = std::string{x.as_string()};
    } else if (key == "progress_id") {
      if (!x.is_string() || !valid_progress_id(x.as_string()))
        return wrong("progress_id", "1 to 64 of A-Z, a-z, 0-9, - and _");
      out.progress_id = std::string{x.as_string()};
    } else if (key == "reconcile_when_empty") {
      if (!x.is_bool())
        return wrong("reconcile_when_empty", "true or false");
      out.reconcile_when_empty = x.as_bool();
    } else if (key == "fetch_backlog") {
      if (!x.is_uint64() && !(x.is_int64() && x.as_int64() >= 0))
        return wrong("fetch_backlog", "a count of ids");
      out.fetch_backlog = static_cast<size_t>(x.to_number<uint64_t>());
    } else {
      field = std::string{key};
      return "unknown field";
    }
  }
  if (out.url.empty())
    return wrong("url", "a ws:// or wss:// URL");
  return {};
}

int run_one_shot_sync(caf::actor_system& sys, store::event_store& store,
                      const sync_options& opts, const nostr::filter& f,
                      size_t max_items,
                      const std::vector<verifier_actor>& verifiers,
                      const one_shot_report& report) {
  auto start = clock_type::now();
  auto scan = store.negentropy_items(f, unix_now(), max_items);
  if (!scan) {
    std::fprintf(report.err, "ferry sync: reading the local item set: %s\n",
                 render(scan.error()).c_str());
    return 1;
  }
  if (scan->over_limit) {
    std::fprintf(report.err,
                 "ferry sync: more than %zu local events match the filter "
                 "(relay.negentropy.max_items); narrow it with since/until\n",
                 max_items);
    return 1;
  }
  auto items = std::make_shared<const neg::item_set>(std::move(scan->items));
  std::fprintf(report.err, "ferry sync: %zu local events match the filter\n",
               items->size());
  bool ok = false;
  bool ingest_ok = true;
  caf::scoped_actor self{sys};
  // Declared after the scoped actor: its thread stops (and the connection
  // reports its close) before the actor goes away.
  net::io_runtime io{1};
  sync_run run{opts, store, self, io, verifiers, report};
  // Nothing held: nothing to send up, and every id would be needed.
  const bool page = items->size() == 0 && opts.writes() && !opts.reconcile_when_empty;
  if (run.connect()) {
    if (page)
      ok = run.page(f);
    else
      ok = run.reconcile(f, std::move(items)) && (opts.dry_run || run.transfer());
    run.disconnect();
  }
  ingest_ok = run.ingest_ok();
  if (run.reconciled() || run.paged())
    run.print_summary(ok, clock_type::now() - start);
  return ok && ingest_ok ? 0 : 1;
}

} // namespace ferry
