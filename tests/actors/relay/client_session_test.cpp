#include "actors/relay/client_session.hpp"

#include "messages/clock.hpp"
#include "messages/nostr/nip42.hpp"
#include "messages/nostr/wire.hpp"
#include "tests/fixtures/threaded_actor_system.hpp"
#include "tests/store/store_fixture.hpp"

#include <caf/send.hpp>
#include <catch2/catch.hpp>
#include <rocksdb/db.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

using namespace ferry;
using namespace ferry::store::test;

namespace {

/// The session's side of a client connection: keeps the frames the session
/// queues and counts the client messages it finishes. The session runs on
/// the actor system's threads, the test waits on its own.
class watched_connection : public net::ws_connection {
public:
  void send(std::shared_ptr<const std::string> frame) override {
    std::lock_guard<std::mutex> guard{mtx_};
    frames_.push_back(*frame);
    changed_.notify_all();
  }

  void send_all(std::vector<std::string> batch) override {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& frame : batch)
      frames_.push_back(std::move(frame));
    changed_.notify_all();
  }

  void send_batch(net::frame_batch batch) override {
    std::lock_guard<std::mutex> guard{mtx_};
    size_t begin = 0;
    for (auto end : batch.ends) {
      frames_.push_back(batch.bytes.substr(begin, end - begin));
      begin = end;
    }
    changed_.notify_all();
  }

  size_t queued_bytes() const override {
    return queued;
  }

  /// What the connection reports as still queued for the socket.
  std::atomic<size_t> queued{0};

  void frame_done(size_t frame_bytes) override {
    std::lock_guard<std::mutex> guard{mtx_};
    ++finished_;
    finished_bytes_ += frame_bytes;
    changed_.notify_all();
  }

  void close(std::string) override {
    // nop
  }

  const std::string& remote_address() const override {
    return address_;
  }

  /// The `n`-th frame queued (from 0), once it is there; empty after 5 s.
  std::string frame(size_t n) {
    std::unique_lock<std::mutex> guard{mtx_};
    changed_.wait_for(guard, std::chrono::seconds(5),
                      [&] { return frames_.size() > n; });
    return frames_.size() > n ? frames_[n] : std::string{};
  }

  /// Client messages finished so far.
  size_t finished() {
    std::lock_guard<std::mutex> guard{mtx_};
    return finished_;
  }

  /// Client messages finished, once there are `n` of them (or after 5 s).
  size_t finished_when(size_t n) {
    std::unique_lock<std::mutex> guard{mtx_};
    changed_.wait_for(guard, std::chrono::seconds(5),
                      [&] { return finished_ >= n; });
    return finished_;
  }

  /// The sizes the finished messages were given back with, summed: what
  /// the connection's inbound budget gets back.
  size_t finished_bytes() {
    std::lock_guard<std::mutex> guard{mtx_};
    return finished_bytes_;
  }

private:
  std::mutex mtx_;
  std::condition_variable changed_;
  std::vector<std::string> frames_;
  size_t finished_ = 0;
  size_t finished_bytes_ = 0;
  std::string address_ = "127.0.0.1:1";
};

/// What a query worker holding jobs has been handed, for the test to wait on.
struct handed_jobs {
  std::mutex mtx;
  std::condition_variable changed;
  size_t count = 0;
  std::vector<query_job_ptr> queries;

  void one_more(query_job_ptr query = nullptr) {
    std::lock_guard<std::mutex> guard{mtx};
    ++count;
    if (query)
      queries.push_back(std::move(query));
    changed.notify_all();
  }

  /// The `n`-th query job handed (from 0); the worker no longer touches it.
  query_job_ptr query(size_t n) {
    std::lock_guard<std::mutex> guard{mtx};
    return n < queries.size() ? queries[n] : nullptr;
  }

  bool reached(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return changed.wait_for(guard, std::chrono::seconds(5),
                            [&] { return count >= n; });
  }
};

struct holding_worker_state {
  std::vector<query_job_ptr> jobs;
  std::vector<neg_job_ptr> rounds;

  static inline constexpr const char* name = "holding-worker";
};

/// A query worker that takes every job and answers none: a worker busy with
/// them, or slow, at the moment it ends.
query_worker_actor::behavior_type
holding_worker(query_worker_actor::stateful_pointer<holding_worker_state> self,
               std::shared_ptr<handed_jobs> handed) {
  return {
    [self, handed](atom::query, query_job_ptr& job) {
      self->state.jobs.push_back(job);
      handed->one_more(std::move(job));
    },
    [](atom::resume, const query_job_ptr&) {
      // nop
    },
    [](atom::read_ahead, const paging_state_ptr&, uint64_t) {
      // nop
    },
    [self, handed](atom::neg, neg_job_ptr& job) {
      self->state.rounds.push_back(std::move(job));
      handed->one_more();
    },
    [](atom::get, atom::status) {
      return status_map{};
    },
  };
}

/// One client session over a real store, whose one query worker slot holds
/// a worker that keeps every job.
struct session_fixture : store_fixture, test::threaded_actor_system {
  std::shared_ptr<relay_context> ctx = std::make_shared<relay_context>();
  std::shared_ptr<watched_connection> conn
    = std::make_shared<watched_connection>();
  std::shared_ptr<handed_jobs> handed = std::make_shared<handed_jobs>();
  static inline const std::string auth_url = "ws://relay.test/";
  query_worker_actor holder;
  client_session_actor session;

  /// `announce_auth`: the session announces a NIP-42 challenge on connect,
  /// as its first frame, for the relay at `auth_url`.
  explicit session_fixture(bool announce_auth = false) {
    ctx->announce_auth = announce_auth;
    ctx->public_url = auth_url;
    ctx->limits.set(config::relay_limits{});
    ctx->negentropy.enabled = true;
    ctx->item_sets = std::make_shared<item_set_cache>(store_item_source(*store),
                                                      item_set_cache_config{});
    ctx->store = store.get();
    ctx->hub = std::make_shared<handle_slot<hub_actor>>();
    holder = sys.spawn(holding_worker, handed);
    ctx->query_workers.push_back(
      std::make_shared<handle_slot<query_worker_actor>>(holder));
    session = sys.spawn(client_session, conn, ctx);
  }

  ~session_fixture() {
    for (auto& slot : ctx->query_workers)
      if (auto worker = slot->get())
        self->send_exit(worker, caf::exit_reason::user_shutdown);
    self->send(session, atom::closed_v, std::string{"test over"});
    self->wait_for(session);
  }

  void client_sends(std::string frame) {
    self->send(session, atom::frame_v, std::move(frame));
  }

  /// The worker that held the jobs ends; a fresh one takes its slot, as its
  /// supervisor would start it.
  void restart_worker() {
    self->send_exit(holder, caf::exit_reason::kill);
    ctx->query_workers.front()->set(
      sys.spawn(query_worker, store.get(), query_worker_config{}));
  }
};

constexpr const char* worker_stopped = "error: the query worker stopped; try again";

} // namespace

TEST_CASE("a COUNT whose query worker ends is closed with an error, and the "
          "session's next COUNT is answered",
          "[relay][client_session]") {
  session_fixture f;
  f.write(make_event(nostr::generate_keypair(), 1, default_now, {}, "one"));
  const std::string lost = R"(["COUNT","lost",{"kinds":[1]}])";
  const std::string next = R"(["COUNT","next",{"kinds":[1]}])";
  f.client_sends(lost);
  // The session handed the message on before the worker saw it.
  REQUIRE(f.handed->reached(1));
  CHECK(f.conn->finished() == 0);
  f.restart_worker();
  CHECK(f.conn->frame(0)
        == std::string{R"(["CLOSED","lost",")"} + worker_stopped + "\"]");
  CHECK(f.conn->finished_when(1) == 1);
  // Each message gives back its own size, failed or answered.
  CHECK(f.conn->finished_bytes() == lost.size());
  f.client_sends(next);
  CHECK(f.conn->frame(1) == R"(["COUNT","next",{"count":1}])");
  CHECK(f.conn->finished_when(2) == 2);
  CHECK(f.conn->finished_bytes() == lost.size() + next.size());
}

TEST_CASE("a negentropy round whose query worker ends is answered NEG-ERR, "
          "and its session is closed",
          "[relay][client_session][negentropy]") {
  session_fixture f;
  // NIP-77's initial message of a client with an empty set: the protocol
  // version byte and one range to the end that holds no ids.
  const std::string open = R"(["NEG-OPEN","sync",{},"6100000200"])";
  const std::string msg = R"(["NEG-MSG","sync","6100000200"])";
  f.client_sends(open);
  // The item set is built off the actor threads; the round then reaches the
  // worker.
  REQUIRE(f.handed->reached(1));
  CHECK(f.conn->finished() == 0);
  f.restart_worker();
  CHECK(f.conn->frame(0)
        == std::string{R"(["NEG-ERR","sync",")"} + worker_stopped + "\"]");
  CHECK(f.conn->finished_when(1) == 1);
  CHECK(f.conn->finished_bytes() == open.size());
  // The session is gone with its round: a NEG-MSG for it is refused.
  f.client_sends(msg);
  CHECK(f.conn->frame(1)
        == R"(["NEG-ERR","sync","closed: no open negentropy session with this id"])");
  CHECK(f.conn->finished_when(2) == 2);
  CHECK(f.conn->finished_bytes() == open.size() + msg.size());
}

TEST_CASE("a paging client's next REQ is answered by its session from the "
          "page its worker handed over, before the worker has the job",
          "[relay][client_session][read_ahead]") {
  session_fixture f;
  f.ctx->queries.read_ahead = std::make_shared<read_ahead_budget>(1 << 20);
  auto keys = nostr::generate_keypair();
  for (int i = 0; i < 30; ++i)
    f.write(make_event(keys, 1, default_now - 100 + i, {},
                       "note " + std::to_string(i)));
  f.client_sends(R"(["REQ","p1",{"kinds":[1],"limit":10}])");
  REQUIRE(f.handed->reached(1));
  // The test plays the worker for the first page (the holder answers none).
  auto first = f.handed->query(0);
  REQUIRE(first->paging);
  while (!run_slice(*f.store, f.ctx->queries, *first, 1000).done) {
    // next slice
  }
  caf::anon_send(f.session, atom::eose_v, first->sub_id, first->job_id);
  REQUIRE(f.conn->finished_when(1) == 1);
  REQUIRE(f.conn->frame(10) == nostr::eose_message("p1"));
  const auto next_filter = R"({"kinds":[1],"limit":10,"until":)"
                           + std::to_string(first->oldest_in_first_filter) + "}";
  // The next page, read whole and handed over as the worker does; then the
  // REQ for it. A page is only good in the second it was read (NIP-40), so
  // a REQ that lands in the next second is dropped and tried once more.
  auto hand_over_and_ask = [&](size_t n) {
    auto page = std::make_unique<read_ahead_page>();
    REQUIRE(nostr::parse_filter(next_filter, page->filter).empty());
    page->now = unix_now();
    page->default_limit = first->default_limit;
    page->max_limit = first->max_limit;
    page->sequence = f.store->db()->GetLatestSequenceNumber();
    REQUIRE(read_more(*f.store, f.ctx->queries, *page, 100));
    REQUIRE(page->complete);
    const auto read_at = page->now;
    first->paging->hand_over(std::move(page));
    f.client_sends(R"(["REQ","p2",)" + next_filter + "]");
    REQUIRE(f.handed->reached(n + 1));
    auto job = f.handed->query(n);
    if (job->page_use != read_ahead_use::dropped || job->now == read_at)
      return job;
    caf::anon_send(f.session, atom::eose_v, job->sub_id, job->job_id);
    REQUIRE(f.conn->finished_when(n + 1) == n + 1);
    return query_job_ptr{};
  };
  SECTION("its frames and EOSE are out while the worker holds the job") {
    size_t asked = 1;
    auto second = hand_over_and_ask(asked);
    if (!second)
      second = hand_over_and_ask(++asked);
    REQUIRE(second);
    CHECK(second->page_use == read_ahead_use::served);
    CHECK(second->events_from_page == 10);
    // Until its worker answers, the message stays in flight.
    CHECK(f.conn->finished() == asked);
    for (size_t i = 11; i < 21; ++i)
      CHECK(f.conn->frame(i).rfind(nostr::event_message_prefix("p2"), 0) == 0);
    CHECK(f.conn->frame(21) == nostr::eose_message("p2"));
    CHECK_FALSE(first->paging->take_handed());
  }
  SECTION("the connection's queue is full: the page waits for the worker") {
    f.conn->queued = f.ctx->queries.high_water_bytes + 1;
    auto second = hand_over_and_ask(1);
    REQUIRE(second);
    CHECK(second->page_use == read_ahead_use::none);
    CHECK(first->paging->take_handed());
  }
}

namespace {

/// A stored-and-published event as the hub hands it to sessions.
ingest_item_ptr published(store::incoming_event in) {
  auto item = std::make_shared<ingest_item>();
  item->data = std::move(in);
  item->source = "client";
  return item;
}

} // namespace

TEST_CASE("a refused REQ that names an open subscription ends that "
          "subscription",
          "[relay][client_session]") {
  session_fixture f;
  f.client_sends(R"(["REQ","s",{"kinds":[1]}])");
  REQUIRE(f.handed->reached(1));
  auto open = f.handed->query(0);
  CHECK_FALSE(open->cancelled);
  // NIP-01: the new REQ replaces "s", and its CLOSED says "s" is over.
  f.client_sends(R"(["REQ","s",{"kinds":"x"}])");
  CHECK(f.conn->frame(0).rfind(R"(["CLOSED","s","invalid: )", 0) == 0);
  CHECK(open->cancelled);
}

TEST_CASE("a live event the hub matched against a subscription's previous "
          "filters does not go out under the REQ that replaced them",
          "[relay][client_session]") {
  session_fixture f;
  auto keys = nostr::generate_keypair();
  f.client_sends(R"(["REQ","s",{"kinds":[1]}])");
  REQUIRE(f.handed->reached(1));
  auto first = f.handed->query(0);
  caf::anon_send(f.session, atom::eose_v, first->sub_id, first->job_id);
  REQUIRE(f.conn->finished_when(1) == 1);
  f.client_sends(R"(["REQ","s",{"kinds":[7]}])");
  REQUIRE(f.handed->reached(2));
  auto second = f.handed->query(1);
  // The hub matched this kind-1 event while "s" still asked for kind 1.
  auto note = make_event(keys, 1, default_now, {}, "matched the old filter");
  auto reaction = make_event(keys, 7, default_now, {}, "+");
  auto later = make_event(keys, 7, default_now + 1, {}, "-");
  caf::anon_send(f.session, atom::publish_v, published(note),
                 std::vector<std::string>{"s"});
  caf::anon_send(f.session, atom::publish_v, published(reaction),
                 std::vector<std::string>{"s"});
  caf::anon_send(f.session, atom::eose_v, second->sub_id, second->job_id);
  REQUIRE(f.conn->finished_when(2) == 2);
  caf::anon_send(f.session, atom::publish_v, published(later),
                 std::vector<std::string>{"s"});
  CHECK(f.conn->frame(0) == nostr::event_message("s", reaction.json));
  CHECK(f.conn->frame(1) == nostr::event_message("s", later.json));
}

TEST_CASE("AUTH: a malformed event is answered OK false for its id, and one "
          "connection authenticates at most 16 keys",
          "[relay][client_session][nip42]") {
  session_fixture f{true};
  auto announced = f.conn->frame(0);
  REQUIRE(announced.rfind(R"(["AUTH",")", 0) == 0);
  const auto challenge = announced.substr(9, 64);
  auto auth_frame = [&](const nostr::keypair& keys) {
    auto ev = nostr::make_auth_event(keys, session_fixture::auth_url, challenge,
                                     unix_now());
    return std::make_pair(ev.id, R"(["AUTH",)" + nostr::to_json(ev) + "]");
  };
  size_t frames = 1;
  auto answer = [&](const std::string& frame) {
    f.client_sends(frame);
    return f.conn->frame(frames++);
  };
  auto [bad_id, good_frame] = auth_frame(nostr::generate_keypair());
  auto with_extra_field = good_frame;
  with_extra_field.insert(with_extra_field.size() - 2, R"(,"extra":1)");
  auto malformed = answer(with_extra_field);
  CHECK(malformed.rfind(R"(["OK",")" + nostr::to_hex(bad_id) + R"(",false,"invalid: )", 0)
        == 0);
  std::vector<nostr::keypair> keys;
  for (int i = 0; i < 16; ++i) {
    keys.push_back(nostr::generate_keypair());
    auto [id, frame] = auth_frame(keys.back());
    CHECK(answer(frame) == nostr::ok_message(id, true, ""));
  }
  auto [refused_id, refused_frame] = auth_frame(nostr::generate_keypair());
  CHECK(answer(refused_frame).rfind(
          R"(["OK",")" + nostr::to_hex(refused_id) + R"(",false,"blocked: )", 0)
        == 0);
  // A key it holds may authenticate again.
  auto [again_id, again_frame] = auth_frame(keys.front());
  CHECK(answer(again_frame) == nostr::ok_message(again_id, true, ""));
}

TEST_CASE("a COUNT that would examine more than max_count_scan events is "
          "closed blocked, and a connection has at most max_subscriptions "
          "COUNTs at once",
          "[relay][client_session]") {
  session_fixture f;
  config::relay_limits limits;
  limits.max_count_scan = 3;
  limits.max_subscriptions = 2;
  f.ctx->limits.set(limits);
  auto keys = nostr::generate_keypair();
  for (int i = 0; i < 5; ++i)
    f.write(make_event(keys, 1, default_now - i, {}, "note " + std::to_string(i)));
  f.write(make_event(keys, 7, default_now, {}, "+"));
  SECTION("too much to count") {
    f.restart_worker();
    f.client_sends(R"(["COUNT","all",{"kinds":[1]}])");
    CHECK(f.conn->frame(0)
          == R"(["CLOSED","all","blocked: this count would examine more than 3 )"
             R"(stored events; narrow its filters"])");
    f.client_sends(R"(["COUNT","some",{"kinds":[7]}])");
    CHECK(f.conn->frame(1) == R"(["COUNT","some",{"count":1}])");
  }
  SECTION("too many at once") {
    f.client_sends(R"(["COUNT","a",{"kinds":[1]}])");
    f.client_sends(R"(["COUNT","b",{"kinds":[1]}])");
    REQUIRE(f.handed->reached(2));
    f.client_sends(R"(["COUNT","c",{"kinds":[1]}])");
    CHECK(f.conn->frame(0) == R"x(["CLOSED","c","blocked: too many COUNTs at once (max 2)"])x");
    // The same id again replaces its COUNT: the one before is cancelled.
    f.client_sends(R"(["COUNT","a",{"kinds":[7]}])");
    REQUIRE(f.handed->reached(3));
    CHECK(f.handed->query(0)->cancelled);
  }
}
