// A driven (GRASP) relay connection against a scripted remote: what it
// reports to GRASP SYNC waits for the ingest path.

#include "actors/runtime/logging.hpp"
#include "actors/sync/relay_connection.hpp"
#include "messages/error.hpp"
#include "messages/nostr/keys.hpp"
#include "messages/type_ids.hpp"
#include "tests/fixtures/threaded_actor_system.hpp"
#include "tests/net/net_fixture.hpp"
#include "tests/store/store_fixture.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <mutex>
#include <numeric>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

/// What the connection told GRASP SYNC, in order.
struct told_log {
  std::mutex mtx;
  std::vector<std::string> lines;

  void add(std::string line) {
    std::lock_guard<std::mutex> guard{mtx};
    lines.push_back(std::move(line));
  }

  std::vector<std::string> get() {
    std::lock_guard<std::mutex> guard{mtx};
    return lines;
  }

  bool has(const std::string& line) {
    auto xs = get();
    return std::find(xs.begin(), xs.end(), line) != xs.end();
  }
};

struct listener_state {
  std::shared_ptr<told_log> told;
  static inline constexpr const char* name = "recording-grasp-sync";
};

grasp_driver_listener_actor::behavior_type
recording_listener(grasp_driver_listener_actor::stateful_pointer<listener_state> self,
                   std::shared_ptr<told_log> told) {
  self->state.told = std::move(told);
  return {
    [self](atom::connected, const std::string&) {
      self->state.told->add("connected");
    },
    [self](atom::lost, const std::string&, const std::string& why) {
      self->state.told->add("lost " + why);
    },
    [self](atom::eose, const std::string&, const std::string& sub) {
      self->state.told->add("eose " + sub);
    },
    [self](atom::closed, const std::string&, const std::string& sub,
           const std::string&) {
      self->state.told->add("closed " + sub);
    },
    [self](atom::done, const std::string&, uint64_t serial) {
      self->state.told->add("done " + std::to_string(serial));
    },
  };
}

/// A verifier that holds every event until told to `flush`, as a busy
/// ingest path does; then answers each as stored.
using holding_verifier_actor = verifier_actor::extend<caf::reacts_to<atom::flush>>;

/// The sizes of the batches a verifier was given, in order.
struct batch_log {
  std::mutex mtx;
  std::vector<size_t> sizes;

  void add(size_t size) {
    std::lock_guard<std::mutex> guard{mtx};
    sizes.push_back(size);
  }

  std::vector<size_t> get() {
    std::lock_guard<std::mutex> guard{mtx};
    return sizes;
  }
};

struct verifier_state {
  std::vector<caf::typed_response_promise<ingest_result>> held;
  std::vector<std::pair<caf::typed_response_promise<ingest_results>, size_t>>
    held_batches;
  std::shared_ptr<std::atomic<int>> received;
  std::shared_ptr<batch_log> batches;
  static inline constexpr const char* name = "holding-verifier";
};

holding_verifier_actor::behavior_type
holding_verifier(holding_verifier_actor::stateful_pointer<verifier_state> self,
                 std::shared_ptr<std::atomic<int>> received,
                 std::shared_ptr<batch_log> batches) {
  self->state.received = std::move(received);
  self->state.batches = std::move(batches);
  return {
    [self](atom::ingest, const ingest_item_ptr&) {
      ++*self->state.received;
      auto promise = self->make_response_promise<ingest_result>();
      self->state.held.push_back(promise);
      return promise;
    },
    [self](atom::ingest, const ingest_batch& batch) {
      self->state.batches->add(batch.size());
      *self->state.received += static_cast<int>(batch.size());
      auto promise = self->make_response_promise<ingest_results>();
      self->state.held_batches.emplace_back(promise, batch.size());
      return promise;
    },
    [self](atom::get, atom::status) { return status_map{}; },
    [self](atom::flush) {
      for (auto& promise : self->state.held)
        promise.deliver(ingest_result{ingest_status::stored, ""});
      self->state.held.clear();
      for (auto& [promise, events] : self->state.held_batches)
        promise.deliver(ingest_results(events, ingest_result{ingest_status::stored, ""}));
      self->state.held_batches.clear();
    },
  };
}

struct fixture : test::threaded_actor_system {
  fixture() {
    remote.start();
    REQUIRE(remote.start_error().empty());
    verifier = sys.spawn(holding_verifier, received, batches);
    listener = sys.spawn(recording_listener, told);
    connection = sys.spawn(relay_connection, definition(),
                           deps(std::make_shared<handle_slot<verifier_actor>>(
                             caf::actor_cast<verifier_actor>(verifier))));
  }

  relay_connection_deps deps(handle_slot_ptr<verifier_actor> verifier_slot) {
    relay_connection_deps deps;
    deps.keys = nostr::generate_keypair();
    deps.io = io;
    deps.store = db.store.get();
    deps.verifiers = {std::move(verifier_slot)};
    deps.writer = std::make_shared<handle_slot<writer_actor>>();
    deps.health = std::make_shared<handle_slot<health_tracker_actor>>();
    deps.batches = std::make_shared<handle_slot<pending_batches_actor>>();
    deps.driver_listener = [l = listener] { return l; };
    return deps;
  }

  sync_server definition() {
    sync_server def;
    def.url = "ws://127.0.0.1:" + std::to_string(remote.port());
    def.id = "grasp:" + def.url;
    def.direction = sync_direction::down;
    def.relay_info = relay_info_mode::disabled;
    def.tls.mode = "disabled";
    return def;
  }

  /// Subscribes `s1` to kind 1 and waits until the remote has the REQ.
  void subscribe_s1() {
    self->send(connection, atom::subscribe_v,
               std::vector<grasp::subscription>{{"s1", {R"({"kinds":[1]})"}}});
    REQUIRE(net::test::wait_until([&] { return reqs() == 1; }, 5s));
    REQUIRE(net::test::wait_until([&] { return told->has("connected"); }, 5s));
  }

  /// `n` signed kind-1 events as the remote's EVENT frames on `s1`.
  static std::vector<std::string> event_frames(size_t n) {
    auto keys = nostr::generate_keypair();
    std::vector<std::string> frames;
    for (size_t i = 0; i < n; ++i) {
      nostr::event ev;
      ev.kind = 1;
      ev.created_at = 1'700'000'000 + static_cast<int64_t>(i);
      ev.content = "burst " + std::to_string(i);
      nostr::sign_event(ev, keys);
      frames.push_back("[\"EVENT\",\"s1\"," + nostr::to_json(ev) + "]");
    }
    return frames;
  }

  int64_t status_count(const char* key) {
    int64_t value = -1;
    self->request(connection, caf::infinite, atom::get_v, atom::status_v)
      .receive([&](status_map& status) { value = caf::get_or(status, key, int64_t{-1}); },
        [](caf::error& err) { FAIL(render(err)); });
    return value;
  }

  ~fixture() {
    self->send_exit(connection, caf::exit_reason::user_shutdown);
    self->send_exit(verifier, caf::exit_reason::user_shutdown);
    self->send_exit(listener, caf::exit_reason::user_shutdown);
    self->wait_for(connection, verifier, listener);
    io->stop();
  }

  /// The REQs the remote received, in order.
  size_t reqs() {
    size_t n = 0;
    for (const auto& frame : remote.frames())
      n += frame.rfind("[\"REQ\"", 0) == 0 ? 1 : 0;
    return n;
  }

  /// Waits until the connection has handled every message sent so far.
  void settle_mailbox() {
    self->request(connection, caf::infinite, atom::get_v, atom::status_v)
      .receive([](status_map&) {}, [](caf::error& err) { FAIL(render(err)); });
  }

  net::test::server_fixture remote;
  store::test::store_fixture db;
  std::shared_ptr<net::io_runtime> io = std::make_shared<net::io_runtime>(1);
  std::shared_ptr<std::atomic<int>> received
    = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<told_log> told = std::make_shared<told_log>();
  std::shared_ptr<batch_log> batches = std::make_shared<batch_log>();
  holding_verifier_actor verifier;
  grasp_driver_listener_actor listener;
  relay_connection_actor connection;
};

} // namespace

TEST_CASE_METHOD(fixture, "a driven connection reports EOSE and flushes only "
                          "once every event received before them is stored",
                 "[grasp][relay_connection]") {
  self->send(connection, atom::subscribe_v,
             std::vector<grasp::subscription>{{"s1", {R"({"kinds":[1]})"}},
                                              {"s2", {R"({"kinds":[2]})"}}});
  REQUIRE(net::test::wait_until([&] { return reqs() == 2; }, 5s));
  REQUIRE(net::test::wait_until([&] { return told->has("connected"); }, 5s));
  nostr::event ev;
  ev.kind = 1;
  ev.created_at = 1'700'000'000;
  ev.content = "held in the verifier";
  nostr::sign_event(ev, nostr::generate_keypair());
  // The CLOSED of s2 comes after s1's EOSE: once it is reported, the EOSE
  // has been handled.
  remote.connection()->send_all({"[\"EVENT\",\"s1\"," + nostr::to_json(ev) + "]",
                                 R"(["EOSE","s1"])",
                                 R"(["CLOSED","s2","error: test"])"});
  REQUIRE(net::test::wait_until([&] { return told->has("closed s2"); }, 5s));
  // The verifier is an actor of its own: the CLOSED reported says the event
  // was sent to it, not that it has been read from its mailbox yet.
  REQUIRE(net::test::wait_until([&] { return *received == 1; }, 5s));
  self->send(connection, atom::flush_v, uint64_t{7});
  settle_mailbox();
  CHECK_FALSE(told->has("eose s1"));
  CHECK_FALSE(told->has("done 7"));
  self->send(verifier, atom::flush_v);
  REQUIRE(net::test::wait_until([&] { return told->has("done 7"); }, 5s));
  auto lines = told->get();
  auto eose = std::find(lines.begin(), lines.end(), "eose s1");
  auto done = std::find(lines.begin(), lines.end(), "done 7");
  REQUIRE(eose != lines.end());
  CHECK(eose < done);
  // Nothing in flight: a flush is answered at once.
  self->send(connection, atom::flush_v, uint64_t{8});
  CHECK(net::test::wait_until([&] { return told->has("done 8"); }, 5s));
}

TEST_CASE_METHOD(fixture, "a connection hands a burst of events to its verifier "
                          "in batches and reports a flush only once every "
                          "batch is stored",
                 "[grasp][relay_connection]") {
  subscribe_s1();
  const size_t burst = 300;
  auto frames = event_frames(burst);
  frames.push_back(R"(["EOSE","s1"])");
  remote.connection()->send_all(std::move(frames));
  REQUIRE(net::test::wait_until(
    [&] { return *received == static_cast<int>(burst); }, 5s));
  self->send(connection, atom::flush_v, uint64_t{9});
  settle_mailbox();
  CHECK_FALSE(told->has("eose s1"));
  CHECK_FALSE(told->has("done 9"));
  CHECK(status_count("in_flight") == static_cast<int64_t>(burst));
  // Every event went in a batch (none alone), at most 64 to a batch, and
  // the frames that were waiting together shared one.
  auto sizes = batches->get();
  CHECK(std::accumulate(sizes.begin(), sizes.end(), size_t{0}) == burst);
  CHECK(*std::max_element(sizes.begin(), sizes.end()) <= 64);
  CHECK(sizes.size() < burst);
  self->send(verifier, atom::flush_v);
  REQUIRE(net::test::wait_until([&] { return told->has("done 9"); }, 5s));
  CHECK(told->has("eose s1"));
  CHECK(status_count("accepted") == static_cast<int64_t>(burst));
  CHECK(status_count("in_flight") == 0);
}

TEST_CASE_METHOD(fixture, "a connection whose verifiers are all restarting "
                          "counts the events it gathered as rejected and "
                          "holds no flush for them",
                 "[grasp][relay_connection]") {
  // This fixture's connection is replaced by one with an empty verifier slot.
  self->send_exit(connection, caf::exit_reason::user_shutdown);
  self->wait_for(connection);
  connection = sys.spawn(relay_connection, definition(),
                         deps(std::make_shared<handle_slot<verifier_actor>>()));
  subscribe_s1();
  remote.connection()->send_all(event_frames(100));
  REQUIRE(net::test::wait_until([&] { return status_count("rejected") == 100; },
                                5s));
  CHECK(status_count("in_flight") == 0);
  CHECK(status_count("accepted") == 0);
  self->send(connection, atom::flush_v, uint64_t{3});
  CHECK(net::test::wait_until([&] { return told->has("done 3"); }, 5s));
  CHECK(*received == 0);
}
