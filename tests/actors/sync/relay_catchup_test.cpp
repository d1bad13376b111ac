// A relay connection's REQ catch-up against a scripted remote: an event the
// store could not take for now holds the cursor below it until a catch-up
// has fetched it again, and a catch-up that left one behind proves nothing
// about the remote's whole history.

#include "actors/ingest/writer.hpp"
#include "actors/sync/relay_connection.hpp"
#include "messages/error.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/filter.hpp"
#include "messages/nostr/keys.hpp"
#include "messages/nostr/negentropy.hpp"
#include "messages/nostr/wire.hpp"
#include "store/change_log.hpp"
#include "store/sync_store.hpp"
#include "tests/fixtures/threaded_actor_system.hpp"
#include "tests/net/net_fixture.hpp"
#include "tests/store/store_fixture.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

struct verifier_state {
  std::set<nostr::bytes32> refuse;
  static inline constexpr const char* name = "scripted-verifier";
};

/// Answers each event as stored, but those in `refuse`, which it refuses
/// for now ("rate-limited:"), as a rate limit that ran out would.
verifier_actor::behavior_type
scripted_verifier(verifier_actor::stateful_pointer<verifier_state> self,
                  std::set<nostr::bytes32> refuse) {
  self->state.refuse = std::move(refuse);
  auto answer = [self](const ingest_item_ptr& item) {
    if (self->state.refuse.count(item->data.ev.id) > 0)
      return ingest_result{ingest_status::refused, "rate-limited: slow down"};
    return ingest_result{ingest_status::stored, ""};
  };
  return {
    [answer](atom::ingest, const ingest_item_ptr& item) { return answer(item); },
    [answer](atom::ingest, const ingest_batch& batch) {
      ingest_results out;
      for (const auto& item : batch)
        out.push_back(answer(item));
      return out;
    },
    [](atom::get, atom::status) { return status_map{}; },
  };
}

struct fixture : test::threaded_actor_system {
  /// One author's kind-1 events at `first`, `first` + 1, ... (`n` of them).
  void hold(size_t n, int64_t first) {
    auto keys = nostr::generate_keypair();
    for (size_t i = 0; i < n; ++i) {
      nostr::event ev;
      ev.kind = 1;
      ev.created_at = first + static_cast<int64_t>(i);
      ev.content = "note " + std::to_string(i);
      nostr::sign_event(ev, keys);
      events.push_back(std::move(ev));
    }
  }

  const nostr::event& at(int64_t created_at) const {
    return *std::find_if(events.begin(), events.end(), [&](const auto& ev) {
      return ev.created_at == created_at;
    });
  }

  /// Starts the remote, whose NIP-11 document names `max_subscriptions`
  /// (0: none), and a connection syncing kind 1 down in pages of `page`,
  /// whose verifier refuses `refused` for now.
  void start(uint64_t max_subscriptions, uint64_t page,
             std::set<nostr::bytes32> refused) {
    remote.start({}, [max_subscriptions, max_limit = remote_max_limit](
                       net::http_request,
                       std::function<void(net::http_response)> respond) {
      net::http_response res;
      res.content_type = "application/nostr+json";
      res.body = R"({"name":"scripted","limitation":{"max_subscriptions":)"
                 + std::to_string(max_subscriptions)
                 + ",\"max_limit\":" + std::to_string(max_limit) + "}}";
      respond(res);
    });
    REQUIRE(remote.start_error().empty());
    writer_ = sys.spawn<caf::detached>(writer, db.store.get(),
                                       handle_slot_ptr<hub_actor>{},
                                       writer_config{});
    verifier = sys.spawn(scripted_verifier, std::move(refused));
    relay_connection_deps deps;
    deps.keys = nostr::generate_keypair();
    deps.io = io;
    deps.store = db.store.get();
    deps.verifiers = {std::make_shared<handle_slot<verifier_actor>>(verifier)};
    deps.writer = std::make_shared<handle_slot<writer_actor>>(writer_);
    deps.health = std::make_shared<handle_slot<health_tracker_actor>>();
    deps.batches = std::make_shared<handle_slot<pending_batches_actor>>();
    sync_server def;
    def.id = "s";
    def.url = "ws://127.0.0.1:" + std::to_string(remote.port());
    nostr::filter f;
    f.kinds = std::vector<uint32_t>{1};
    f.limit = page;
    def.filters = {f};
    def.follow_deletions = false;
    def.overlap_window_seconds = 0;
    def.tls.mode = "disabled";
    if (adjust)
      adjust(def, deps);
    connection = sys.spawn(relay_connection, def, std::move(deps));
  }

  ~fixture() {
    self->send_exit(connection, caf::exit_reason::user_shutdown);
    self->send_exit(verifier, caf::exit_reason::user_shutdown);
    self->send_exit(writer_, caf::exit_reason::user_shutdown);
    self->wait_for(connection, verifier, writer_);
    io->stop();
  }

  /// Answers every REQ the remote got as a relay would: per filter, the
  /// newest `limit` stored events within its since and until, then EOSE.
  /// @returns how many REQs came so far.
  size_t serve() {
    auto frames = remote.frames();
    for (; seen < frames.size(); ++seen) {
      if (frames[seen].rfind("[\"REQ\"", 0) != 0)
        continue;
      ++reqs;
      auto req = boost::json::parse(frames[seen]).as_array();
      std::string sub_id{req.at(1).as_string()};
      std::vector<std::string> out;
      for (size_t i = 2; i < req.size(); ++i) {
        nostr::filter f;
        REQUIRE(nostr::parse_filter(boost::json::serialize(req[i]), f).empty());
        std::vector<const nostr::event*> hits;
        for (const auto& ev : events)
          if (f.matches(ev))
            hits.push_back(&ev);
        std::sort(hits.begin(), hits.end(), [](const auto* x, const auto* y) {
          return x->created_at > y->created_at;
        });
        hits.resize(std::min<size_t>(hits.size(), f.limit.value_or(hits.size())));
        for (const auto* ev : hits)
          out.push_back(nostr::event_message(sub_id, nostr::to_json(*ev)));
      }
      out.push_back(nostr::eose_message(sub_id));
      auto conn = remote.connection(remote.opened() - 1);
      REQUIRE(conn);
      for (auto& frame : out)
        conn->send(std::make_shared<const std::string>(std::move(frame)));
    }
    return reqs;
  }

  status_map status() {
    status_map result;
    self->request(connection, caf::infinite, atom::get_v, atom::status_v)
      .receive([&](status_map& x) { result = std::move(x); },
               [](caf::error& err) { FAIL(render(err)); });
    return result;
  }

  /// Serves REQs until `n` came and the catch-up they make is complete.
  void serve_until_caught_up(size_t n) {
    bool done = net::test::wait_until(
      [&] {
        return serve() >= n && caf::get_or(status(), "catchup_complete", false);
      },
      10s);
    INFO(reqs << " REQs; frames the remote got:\n" << frames_text());
    REQUIRE(done);
  }

  std::string frames_text() {
    std::string text;
    for (const auto& frame : remote.frames())
      text += frame + "\n";
    return text;
  }

  /// The cursor the writer committed once it handled what it was sent (its
  /// commit follows as a message of its own).
  int64_t committed_cursor() {
    for (int i = 0; i < 2; ++i)
      self->request(writer_, caf::infinite, atom::get_v, atom::status_v)
        .receive([](status_map&) {}, [](caf::error& err) { FAIL(render(err)); });
    auto c = store::get_sync_cursor(*db.store, "s");
    REQUIRE(c);
    return *c ? (*c)->created_at : 0;
  }

  /// The remote's NIP-11 `max_limit` (0: none).
  uint64_t remote_max_limit = 0;
  /// Changes the definition and the dependencies `start` made.
  std::function<void(sync_server&, relay_connection_deps&)> adjust;
  std::vector<nostr::event> events;
  net::test::server_fixture remote;
  store::test::store_fixture db;
  std::shared_ptr<net::io_runtime> io = std::make_shared<net::io_runtime>(1);
  writer_actor writer_;
  verifier_actor verifier;
  relay_connection_actor connection;
  size_t seen = 0;
  size_t reqs = 0;
};

} // namespace

// Before, full_catchup_started_ms was set by any complete catch-up from the
// beginning, though an event it got was refused for now: a cluster member
// took it as "everything the remote held is stored here" and confirmed
// other members' cursor claims by it.
TEST_CASE_METHOD(fixture, "a catch-up from the beginning that leaves an event "
                          "unstored is no full catch-up",
                 "[relay_catchup]") {
  const bool refused = GENERATE(false, true);
  CAPTURE(refused);
  hold(5, 1000);
  std::set<nostr::bytes32> refuse;
  if (refused)
    refuse.insert(at(1002).id);
  start(0, 10, refuse);
  // The live tail's first page, then pages until one comes back empty.
  serve_until_caught_up(3);
  auto full_started = caf::get_or(status(), "full_catchup_started_ms", int64_t{0});
  if (refused) {
    CHECK(full_started == 0);
    CHECK(committed_cursor() == 1001);
  } else {
    CHECK(full_started > 0);
    CHECK(committed_cursor() == 1004);
  }
}

// A remote that holds one subscription of ours: the live tail closes while
// the catch-up pages, and a catch-up from the paging's end opens it again,
// reading its first page only. One event the paging got was refused for
// now, so that one starts from it, and its first page (full) does not reach
// back to it. Before, its end cleared what the store failed to take, and
// the cursor passed the event: no later catch-up asked for it again.
TEST_CASE_METHOD(fixture, "a catch-up that opens the live tail again keeps "
                          "the cursor below what it did not reach back to",
                 "[relay_catchup]") {
  hold(6, 1000);
  start(1, 2, {at(1001).id});
  // The live tail's first page, six pages (the last one empty), and the
  // live tail again.
  serve_until_caught_up(8);
  INFO(frames_text());
  auto frames = remote.frames();
  CHECK(std::count_if(frames.begin(), frames.end(), [](const auto& frame) {
          return frame.rfind("[\"REQ\",\"ferry-live\"", 0) == 0;
        })
        == 2);
  CHECK(committed_cursor() == 1000);
  CHECK(caf::get_or(status(), "full_catchup_started_ms", int64_t{1}) == 0);
}

// A remote holding thousands of events this node lacks announces them a
// round at a time. Before, every round was answered at once and its ids
// queued to be fetched, so against a remote of millions the ids still to
// fetch piled up in memory without bound. Now the next round waits while
// `max_fetch_backlog` ids or more are still to ask for: whenever the remote
// gets a NEG-MSG, fewer than that of the ids it announced are unasked.
TEST_CASE_METHOD(fixture, "a NIP-77 catch-up holds its next round while the "
                          "ids it found missing wait to be fetched",
                 "[relay_catchup]") {
  namespace neg = nostr::negentropy;
  constexpr size_t backlog = 50;
  hold(3000, 1000);
  remote_max_limit = 10; // fetch REQs of 10 ids, at most 4 open
  adjust = [](sync_server& def, relay_connection_deps& deps) {
    def.mode = sync_mode::negentropy;
    def.reconcile_when_empty = true;
    def.filters.front().limit.reset();
    deps.max_fetch_backlog = backlog;
  };
  start(0, 10, {});
  std::map<std::string, std::unique_ptr<neg::server>> sessions;
  std::set<nostr::bytes32> announced;
  std::set<nostr::bytes32> requested;
  size_t neg_msgs = 0;
  size_t worst_unasked = 0;
  // Answers NIP-77 frames as a relay would (a frame limit of 4 KiB: ~120
  // ids an answer) and fetch REQs from `events`.
  // In the order the remote got them: the fetch REQs sent before a NEG-MSG
  // count for it. (`serve` answers the REQs.)
  size_t neg_seen = 0;
  auto answer_negentropy = [&] {
    auto frames = remote.frames();
    for (; neg_seen < frames.size(); ++neg_seen) {
      const auto& frame = frames[neg_seen];
      if (frame.rfind("[\"REQ\"", 0) == 0) {
        auto req = boost::json::parse(frame).as_array();
        for (size_t i = 2; i < req.size(); ++i)
          if (auto* ids = req[i].as_object().if_contains("ids"))
            for (const auto& id : ids->as_array()) {
              nostr::bytes32 x;
              REQUIRE(nostr::from_hex(std::string_view{id.as_string()}, x));
              requested.insert(x);
            }
        continue;
      }
      if (frame.rfind("[\"NEG-", 0) != 0)
        continue;
      auto msg = boost::json::parse(frame).as_array();
      std::string verb{msg[0].as_string()};
      std::string sub{msg[1].as_string()};
      std::string query_hex;
      if (verb == "NEG-OPEN") {
        nostr::filter f;
        REQUIRE(nostr::parse_filter(boost::json::serialize(msg[2]), f).empty());
        std::vector<neg::item> items;
        for (const auto& ev : events)
          if (f.matches(ev))
            items.push_back({static_cast<uint64_t>(ev.created_at), ev.id});
        sessions[sub] = std::make_unique<neg::server>(
          std::make_shared<const neg::item_set>(std::move(items)), 4096);
        query_hex = std::string{msg[3].as_string()};
      } else if (verb == "NEG-MSG") {
        ++neg_msgs;
        size_t unasked = 0;
        for (const auto& id : announced)
          unasked += requested.count(id) == 0 ? 1 : 0;
        worst_unasked = std::max(worst_unasked, unasked);
        query_hex = std::string{msg[2].as_string()};
      } else {
        sessions.erase(sub);
        continue;
      }
      std::string query, response;
      REQUIRE(neg::decode_hex(query_hex, query));
      REQUIRE(sessions.at(sub)->reconcile(query, response).empty());
      neg::message decoded;
      std::string reason;
      REQUIRE(neg::decode(response, decoded, reason) == neg::decode_status::ok);
      for (const auto& range : decoded.ranges)
        announced.insert(range.ids.begin(), range.ids.end());
      remote.connection(remote.opened() - 1)
        ->send(std::make_shared<const std::string>(
          R"(["NEG-MSG",")" + sub + R"(",")" + neg::encode_hex(response)
          + R"("])"));
    }
  };
  bool done = net::test::wait_until(
    [&] {
      answer_negentropy();
      serve();
      return caf::get_or(status(), "catchup_complete", false);
    },
    20s);
  INFO(neg_msgs << " NEG-MSGs, " << requested.size() << " ids asked for");
  REQUIRE(done);
  CHECK(neg_msgs > 5);
  CHECK(announced.size() == 3000);
  CHECK(worst_unasked < backlog);
  CHECK(caf::get_or(status(), "neg_rounds_held", int64_t{0}) > 0);
  // Every event announced was asked for (the verifier here answers
  // "stored" without a write).
  CHECK(requested == announced);
  CHECK(caf::get_or(status(), "neg_need", int64_t{0}) == 3000);
}

// A remote that lost what this node sent it up long ago: the up cursor is
// past every event, so only a reconciliation finds what the remote lacks.
// Before, every id it found was kept until the up stream had sent it, 32
// bytes each, so a remote lacking millions held that much of the node's
// memory for as long as sending took. Now at most `max_have_backlog` are
// kept: the connection sends those, then reconciles again for the rest.
TEST_CASE_METHOD(fixture, "a NIP-77 reconciliation keeps at most "
                          "max_have_backlog ids the remote lacks and "
                          "reconciles again for the rest",
                 "[relay_catchup]") {
  namespace neg = nostr::negentropy;
  constexpr size_t backlog = 100;
  constexpr size_t stored = 300;
  auto keys = nostr::generate_keypair();
  std::set<nostr::bytes32> local;
  for (size_t i = 0; i < stored; ++i) {
    auto in = store::test::make_event(keys, 1, 1000 + static_cast<int64_t>(i),
                                      {}, "note " + std::to_string(i));
    db.write(in);
    local.insert(in.ev.id);
  }
  sync_runtime_state runtime;
  runtime.up_cursor = store::last_change_seq(*db.store);
  REQUIRE(!store::put_sync_runtime(*db.store, "s", runtime));
  adjust = [](sync_server& def, relay_connection_deps& deps) {
    def.mode = sync_mode::negentropy;
    def.direction = sync_direction::up;
    def.filters.front().limit.reset();
    deps.max_have_backlog = backlog;
  };
  start(0, 10, {});
  // The remote: NIP-77 over what it holds (4 KiB frames), and every EVENT
  // taken and answered OK.
  std::map<nostr::bytes32, int64_t> remote_holds;
  std::map<std::string, std::unique_ptr<neg::server>> sessions;
  size_t events_sent = 0;
  int64_t most_waiting = 0;
  size_t handled = 0;
  auto act_as_remote = [&] {
    auto frames = remote.frames();
    for (; handled < frames.size(); ++handled) {
      auto msg = boost::json::parse(frames[handled]).as_array();
      std::string verb{msg[0].as_string()};
      std::string reply;
      if (verb == "EVENT") {
        ++events_sent;
        const auto& ev = msg[1].as_object();
        std::string id_hex{ev.at("id").as_string()};
        nostr::bytes32 id;
        REQUIRE(nostr::from_hex(id_hex, id));
        remote_holds[id] = ev.at("created_at").to_number<int64_t>();
        reply = R"(["OK",")" + id_hex + R"(",true,""])";
      } else if (verb == "NEG-OPEN" || verb == "NEG-MSG") {
        std::string sub{msg[1].as_string()};
        if (verb == "NEG-OPEN") {
          std::vector<neg::item> items;
          for (const auto& [id, created_at] : remote_holds)
            items.push_back({static_cast<uint64_t>(created_at), id});
          sessions[sub] = std::make_unique<neg::server>(
            std::make_shared<const neg::item_set>(std::move(items)), 4096);
        }
        std::string query, response;
        REQUIRE(neg::decode_hex(
          std::string{msg[verb == "NEG-OPEN" ? 3 : 2].as_string()}, query));
        REQUIRE(sessions.at(sub)->reconcile(query, response).empty());
        reply = R"(["NEG-MSG",")" + sub + R"(",")" + neg::encode_hex(response)
                + R"("])";
      } else if (verb == "NEG-CLOSE") {
        sessions.erase(std::string{msg[1].as_string()});
      }
      if (!reply.empty())
        remote.connection(remote.opened() - 1)
          ->send(std::make_shared<const std::string>(std::move(reply)));
    }
  };
  status_map last;
  bool done = net::test::wait_until(
    [&] {
      last = status();
      most_waiting = std::max(most_waiting,
                              caf::get_or(last, "neg_have_waiting", int64_t{0}));
      act_as_remote();
      return remote_holds.size() == stored
             && caf::get_or(last, "catchup_complete", false)
             && caf::get_or(last, "neg_have_waiting", int64_t{-1}) == 0;
    },
    20s);
  INFO(remote_holds.size() << " events at the remote, " << events_sent
                           << " sent; frames:\n" << frames_text());
  REQUIRE(done);
  CHECK(most_waiting > 0);
  CHECK(most_waiting <= static_cast<int64_t>(backlog));
  // Three reconciliations, each finding a backlog's worth more: 200 ids
  // left for later by the first, 100 by the second, none by the third.
  CHECK(caf::get_or(last, "neg_have_deferred", int64_t{0}) == 300);
  CHECK(caf::get_or(last, "neg_reconciled_again", int64_t{0}) == 2);
  // Each event went up once, and the remote holds what the node does.
  CHECK(events_sent == stored);
  std::set<nostr::bytes32> at_remote;
  for (const auto& [id, created_at] : remote_holds)
    at_remote.insert(id);
  CHECK(at_remote == local);
}

// A reconciliation that left ids the remote lacks for later does not move
// the up cursor past them: only a reconciliation of everything finds them
// again. So a reconnect's catch-up reconciles everything while that holds,
// though a short outage would otherwise reconcile from the cursor minus the
// overlap, which misses them.
TEST_CASE("after a reconciliation left ids the remote lacks for later, the "
          "next catch-up reconciles everything",
          "[relay_catchup]") {
  store::test::store_fixture db;
  REQUIRE(!store::put_sync_cursor(*db.store, "s", sync_cursor{10'000, {}, 0}));
  relay_connection_state st;
  st.deps.store = db.store.get();
  st.def.id = "s";
  st.def.mode = sync_mode::negentropy;
  st.def.overlap_window_seconds = 600;
  CHECK(relay_conn::catchup_since(st, resume_mode::resume) == 9'400);
  CHECK(relay_conn::catchup_since(st, resume_mode::full_catchup) == 0);
  st.neg.have_overflow = true;
  CHECK(relay_conn::catchup_since(st, resume_mode::resume) == 0);
  // A remote that proved it cannot do NIP-77 is paged from the cursor.
  st.neg.unsupported = "NEG-OPEN refused";
  CHECK(relay_conn::catchup_since(st, resume_mode::resume) == 9'400);
}
