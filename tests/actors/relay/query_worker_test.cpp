#include "actors/relay/query_worker.hpp"

#include "messages/nostr/hex.hpp"
#include "messages/nostr/wire.hpp"
#include "store/expiry_window.hpp"
#include "tests/store/store_fixture.hpp"

#include <limits>

using namespace ferry;
using namespace ferry::store::test;

namespace {

/// A connection that keeps every frame it is handed, in order, as the
/// client would read them.
class recording_connection : public net::ws_connection {
public:
  std::vector<std::string> frames;
  /// Frames per `send_batch` call: the chunks a slice hands to the socket.
  std::vector<size_t> batches;

  void send(std::shared_ptr<const std::string> frame) override {
    frames.push_back(*frame);
  }

  void send_all(std::vector<std::string> batch) override {
    for (auto& frame : batch)
      frames.push_back(std::move(frame));
  }

  void send_batch(net::frame_batch batch) override {
    batches.push_back(batch.size());
    size_t begin = 0;
    for (auto end : batch.ends) {
      frames.push_back(batch.bytes.substr(begin, end - begin));
      begin = end;
    }
  }

  size_t queued_bytes() const override {
    return queued;
  }

  /// What the connection reports as still queued for the socket.
  size_t queued = 0;

  void frame_done(size_t) override {
    // nop
  }

  void close(std::string) override {
    // nop
  }

  const std::string& remote_address() const override {
    return address_;
  }

private:
  std::string address_ = "127.0.0.1:1";
};

/// A store with `n` notes, one second apart, and a REQ job over it.
struct fixture : store_fixture {
  nostr::keypair keys = nostr::generate_keypair();
  std::vector<nostr::bytes32> newest_first;
  std::shared_ptr<recording_connection> conn
    = std::make_shared<recording_connection>();
  query_worker_config config;

  /// `per_second` > 1 gives ties on created_at (then `newest_first` is not
  /// the order served).
  explicit fixture(size_t n, size_t per_second = 1) {
    for (size_t i = 0; i < n; ++i) {
      auto ev = make_event(keys, 1,
                           default_now - 1000
                             + static_cast<int64_t>(i / per_second),
                           {}, "note " + std::to_string(i));
      write(ev);
      newest_first.insert(newest_first.begin(), ev.ev.id);
    }
  }

  query_job_ptr job(const std::vector<std::string>& filter_json) {
    auto filters = std::make_shared<std::vector<nostr::filter>>();
    for (const auto& json : filter_json) {
      nostr::filter f;
      REQUIRE(nostr::parse_filter(json, f).empty());
      filters->push_back(std::move(f));
    }
    auto result = std::make_shared<query_job>();
    result->conn = conn;
    result->sub_id = "s";
    result->filters = std::move(filters);
    result->now = default_now;
    return result;
  }

  /// The ids of the EVENT frames received so far, and whether the last
  /// frame is the EOSE.
  std::vector<nostr::bytes32> event_ids() const {
    std::vector<nostr::bytes32> ids;
    const auto prefix = nostr::event_message_prefix("s");
    for (const auto& frame : conn->frames) {
      if (frame.rfind(prefix, 0) != 0)
        continue;
      nostr::event ev;
      REQUIRE(nostr::parse_event(frame.substr(prefix.size(),
                                              frame.size() - prefix.size() - 1),
                                 ev)
                .empty());
      ids.push_back(ev.id);
    }
    return ids;
  }

  bool ends_with_eose() const {
    return !conn->frames.empty()
           && conn->frames.back() == nostr::eose_message("s");
  }

  /// Runs a slice of at most `max_events` events that must finish `job`
  /// with its EOSE. @returns the events it sent.
  size_t finished_by_one_slice(query_job& job, size_t max_events) {
    auto slice = run_slice(*store, config, job, max_events);
    CHECK(slice.done);
    CHECK(ends_with_eose());
    return slice.events;
  }
};

} // namespace

TEST_CASE("a slice that reads a REQ's last event finishes it with the EOSE",
          "[query_worker]") {
  // A session serves a `limit 500` page in one slice of 500: it must not
  // need a second slice (at a worker) only to learn that it is done.
  SECTION("the slice reads exactly the limit") {
    fixture fx{30};
    auto job = fx.job({R"({"limit":10})"});
    CHECK(fx.finished_by_one_slice(*job, 10) == 10);
    CHECK(fx.event_ids()
          == std::vector<nostr::bytes32>(fx.newest_first.begin(),
                                         fx.newest_first.begin() + 10));
  }
  SECTION("the store holds fewer matches than the limit") {
    fixture fx{7};
    auto job = fx.job({R"({"limit":10})"});
    CHECK(fx.finished_by_one_slice(*job, 10) == 7);
  }
  SECTION("the last of several filters reaches its limit") {
    fixture fx{30};
    auto job = fx.job({R"({"limit":4})", R"({"kinds":[1],"limit":6})"});
    // The second filter's newest four were sent for the first: two are new.
    CHECK(fx.finished_by_one_slice(*job, 10) == 6);
  }
}

TEST_CASE("a slice stops at its budget and the next one goes on from there",
          "[query_worker]") {
  fixture fx{30};
  auto job = fx.job({R"({"limit":25})"});
  auto first = run_slice(*fx.store, fx.config, *job, 10);
  CHECK_FALSE(first.done);
  CHECK(first.events == 10);
  CHECK_FALSE(fx.ends_with_eose());
  CHECK_FALSE(run_slice(*fx.store, fx.config, *job, 10).done);
  CHECK(fx.finished_by_one_slice(*job, 10) == 5);
  CHECK(fx.event_ids()
        == std::vector<nostr::bytes32>(fx.newest_first.begin(),
                                       fx.newest_first.begin() + 25));
}

TEST_CASE("a slice examines a bounded number of candidates, and the next "
          "goes on after the last it examined, though it sent nothing",
          "[query_worker]") {
  // 40 notes newer than the fixture's 30 have expired by the time of the
  // REQ: candidates its index yields that no slice may send. A filter its
  // index does not cover meets such runs (one tag of several, say); a
  // slice that examined them all held the worker from every other
  // connection's job.
  fixture fx{30};
  for (int i = 0; i < 40; ++i)
    fx.write(make_event(fx.keys, 1, default_now - 500 + i,
                        {{"expiration", std::to_string(default_now + 50)}}));
  fx.config.slice_examined = 8;
  auto job = fx.job({R"({"limit":12})"});
  job->now = default_now + 100;
  auto first = run_slice(*fx.store, fx.config, *job, 1000);
  CHECK_FALSE(first.done);
  CHECK(first.events == 0);
  size_t slices = 1;
  while (!run_slice(*fx.store, fx.config, *job, 1000).done)
    REQUIRE(++slices < 100);
  ++slices;
  // 40 expired and 12 sent, 8 examined a slice: the 6th slice sends the
  // first notes, the 7th examines the last 4 the limit needs.
  CHECK(slices == 7);
  CHECK(fx.ends_with_eose());
  CHECK(fx.event_ids()
        == std::vector<nostr::bytes32>(fx.newest_first.begin(),
                                       fx.newest_first.begin() + 12));
}

TEST_CASE("a cancelled job's last slice sends no EOSE", "[query_worker]") {
  fixture fx{5};
  auto job = fx.job({R"({"limit":10})"});
  job->cancelled = true;
  CHECK(run_slice(*fx.store, fx.config, *job, 10).done);
  CHECK_FALSE(fx.ends_with_eose());
}

TEST_CASE("a slice's chunks grow, and shrink again towards the job's end",
          "[query_worker]") {
  // The last chunk is written only once it is read whole, and the client
  // waits for it before it asks for its next page: it stays small.
  fixture fx{150};
  auto job = fx.job({R"({"limit":100})"});
  CHECK(fx.finished_by_one_slice(*job, 100) == 100);
  const auto& chunks = fx.conn->batches;
  REQUIRE(chunks.size() >= 3);
  CHECK(chunks.front() == fx.config.first_chunk_events);
  CHECK(chunks[1] == 2 * fx.config.first_chunk_events);
  // The last chunk carries the EOSE behind its events.
  CHECK(chunks.back() <= fx.config.first_chunk_events + 1);
}

TEST_CASE("a slice on a store just opened reads its events from the files",
          "[query_worker]") {
  // Nothing is cached yet: every index and event block comes off the disk.
  fixture fx{300};
  fx.settle();
  fx.reopen();
  SECTION("an index scan") {
    auto job = fx.job({R"({"kinds":[1],"limit":200})"});
    auto slice = run_slice(*fx.store, fx.config, *job, 500);
    CHECK(slice.done);
    CHECK(slice.events == 200);
    CHECK(fx.ends_with_eose());
    CHECK(fx.event_ids()
          == std::vector<nostr::bytes32>(fx.newest_first.begin(),
                                         fx.newest_first.begin() + 200));
  }
  SECTION("ids, newest first") {
    auto job = fx.job({R"({"ids":[")" + nostr::to_hex(fx.newest_first[3])
                       + R"(",")" + nostr::to_hex(fx.newest_first[1]) + R"("]})"});
    CHECK(run_slice(*fx.store, fx.config, *job, 500).done);
    CHECK(fx.ends_with_eose());
    CHECK(fx.event_ids()
          == std::vector<nostr::bytes32>{fx.newest_first[1], fx.newest_first[3]});
  }
}

namespace {

/// Runs a REQ job the way a worker does with read-ahead on: the page read
/// ahead answers it as far as it can, the job reads on from there if the
/// page was not complete, and once the job is done the next page is read
/// ahead, `read_ahead_steps` steps of it (0: whole).
/// @returns true when the page read ahead answered it, in whole or in part.
bool run_paged(fixture& fx, query_job& job, size_t read_ahead_steps = 0) {
  note_query(*job.paging, job);
  bool answered = job.paging->ready
                  && answer_from_page(*fx.store, fx.config, job,
                                      std::move(job.paging->ready))
                       .has_value();
  if (job.filter_index < job.filters->size())
    while (!run_slice(*fx.store, fx.config, job, 1000).done) {
      // next slice
    }
  if (note_finished(*job.paging, job, fx.config)) {
    auto page = next_page(*fx.store, *job.paging, job.now);
    for (size_t step = 0; page && !page->complete
                          && (read_ahead_steps == 0 || step < read_ahead_steps);
         ++step)
      if (!read_more(*fx.store, fx.config, *page, fx.config.read_ahead_step_events))
        page.reset();
    job.paging->ready = std::move(page);
  }
  return answered;
}

/// The frames a REQ for `filter_json` at `now` gets read afresh (no
/// read-ahead).
std::vector<std::string> read_afresh(fixture& fx, const std::string& filter_json,
                                     int64_t now = default_now) {
  auto saved = std::move(fx.conn->frames);
  fx.conn->frames.clear();
  auto job = fx.job({filter_json});
  job->now = now;
  // Slices that examine as much as they like: the reference.
  auto config = fx.config;
  config.slice_examined = std::numeric_limits<size_t>::max();
  while (!run_slice(*fx.store, config, *job, 1000).done) {
    // next slice
  }
  auto frames = std::move(fx.conn->frames);
  fx.conn->frames = std::move(saved);
  return frames;
}

int64_t created_at_of(const std::string& frame) {
  auto prefix = nostr::event_message_prefix("s");
  nostr::event ev;
  REQUIRE(nostr::parse_event(frame.substr(prefix.size(), frame.size() - prefix.size() - 1), ev)
            .empty());
  return ev.created_at;
}

/// A client paging `{"kinds":[1],"limit":N}` with `until` = the oldest
/// created_at of its last page plus `step`, as nostr-fetch does (step 0,
/// and the repeated events dropped by id) or one second earlier (-1).
struct paging_client {
  fixture& fx;
  int64_t step;
  size_t limit;
  paging_state_ptr paging = std::make_shared<paging_state>();
  std::optional<int64_t> until;
  /// The node's clock when the next REQ comes.
  int64_t now = default_now;

  paging_client(fixture& fx, int64_t step, size_t limit)
      : fx(fx), step(step), limit(limit) {
    // nop
  }

  std::string filter() const {
    auto json = R"({"kinds":[1],"limit":)" + std::to_string(limit);
    if (until)
      json += ",\"until\":" + std::to_string(*until);
    return json + "}";
  }

  struct page {
    bool from_memory = false;
    std::vector<std::string> frames;
  };

  /// Asks for the next page, the one after it read ahead `read_ahead_steps`
  /// steps (0: whole); checks it equals the same REQ read afresh.
  page next(size_t read_ahead_steps = 0) {
    page result;
    fx.conn->frames.clear();
    auto job = fx.job({filter()});
    job->paging = paging;
    job->now = now;
    result.from_memory = run_paged(fx, *job, read_ahead_steps);
    result.frames = fx.conn->frames;
    CHECK(result.frames == read_afresh(fx, filter(), now));
    // A live event must not come again once the page sent it.
    for (const auto& id : fx.event_ids())
      CHECK(job->sent.contains(id));
    if (result.frames.size() > 1)
      until = created_at_of(result.frames[result.frames.size() - 2]) + step;
    return result;
  }
};

} // namespace

TEST_CASE("a paging client's pages come from memory, the same as read afresh",
          "[query_worker][read_ahead]") {
  // 12 events a second: pages of 25 end inside a second, so the next page
  // (until inclusive) repeats some events, as clients see it.
  fixture fx{300, 12};
  fx.config.read_ahead = std::make_shared<read_ahead_budget>(1 << 20);
  const int64_t step = GENERATE(0, -1);
  // Also when each step of the read (16 events) and each slice may examine
  // fewer candidates than it would send.
  fx.config.slice_examined = GENERATE(size_t{10000}, size_t{7});
  CAPTURE(step, fx.config.slice_examined);
  paging_client client{fx, step, 25};
  // The first two REQs show the step; every later page was read ahead.
  CHECK_FALSE(client.next().from_memory);
  CHECK_FALSE(client.next().from_memory);
  size_t pages = 2;
  for (;;) {
    auto page = client.next();
    ++pages;
    CHECK(page.from_memory);
    if (page.frames.size() < 26) // 25 events and the EOSE: the last page
      break;
    REQUIRE(pages < 100);
  }
  CHECK(pages >= 8);
  // The last page was short: nothing more is read ahead, nothing is held.
  CHECK_FALSE(client.paging->ready);
  CHECK(fx.config.read_ahead->held() == 0);
}

TEST_CASE("a client paging across seconds gets each page as read afresh in "
          "its own second, from memory unless an event expired in between",
          "[query_worker][read_ahead]") {
  // 300 notes, 12 a second, and 100 more spread over the same seconds that
  // expire 20 at a time every third second of the client's paging, one
  // page a second.
  fixture fx{300, 12};
  fx.config.read_ahead = std::make_shared<read_ahead_budget>(1 << 20);
  for (int64_t i = 0; i < 100; ++i)
    fx.write(make_event(fx.keys, 1, default_now - 1000 + (i * 7) % 25,
                        {{"expiration", std::to_string(default_now + 3 * (1 + i / 20))}},
                        "expiring " + std::to_string(i)));
  paging_client client{fx, GENERATE(int64_t{0}, int64_t{-1}), 25};
  size_t from_memory = 0;
  size_t read_afresh_after_expiry = 0;
  for (size_t pages = 1;; ++pages) {
    REQUIRE(pages < 100);
    // Every page is compared with the same REQ read afresh at its second.
    const bool expired_since = pages > 2
                               && store::expires_within(*fx.store,
                                                        client.now - 1,
                                                        client.now);
    auto page = client.next();
    if (page.from_memory)
      ++from_memory;
    else if (expired_since)
      ++read_afresh_after_expiry;
    if (page.frames.size() < 26)
      break;
    ++client.now;
  }
  // Both happen: the rule is neither "never" nor "always".
  CHECK(from_memory > 0);
  CHECK(read_afresh_after_expiry > 0);
}

TEST_CASE("a REQ that comes while its page is read takes what was read and "
          "reads on from there",
          "[query_worker][read_ahead]") {
  fixture fx{300, 12};
  fx.config.read_ahead = std::make_shared<read_ahead_budget>(1 << 20);
  fx.config.read_ahead_step_events = 4;
  paging_client client{fx, 0, 25};
  client.next();
  // Each REQ finds its page read 2 steps of 4 events: 8 of its 25.
  client.next(2);
  REQUIRE(client.paging->ready);
  CHECK_FALSE(client.paging->ready->complete);
  CHECK(client.paging->ready->ends.size() == 8);
  for (int i = 0; i < 6; ++i)
    CHECK(client.next(2).from_memory); // and equal to the page read afresh
  SECTION("a write since the read began: read afresh") {
    fx.write(make_event(fx.keys, 1, default_now - 2000, {}, "older than all"));
    CHECK_FALSE(client.next().from_memory);
  }
}

namespace {

/// 200 notes, 5 a second, and a client two pages of 20 into them: its third
/// page has been read ahead, whole.
struct two_pages_in {
  fixture fx{200, 5};
  paging_client client{fx, 0, 20};

  two_pages_in() {
    fx.config.read_ahead = std::make_shared<read_ahead_budget>(1 << 20);
    client.next();
    client.next();
    REQUIRE(client.paging->ready);
    REQUIRE(client.paging->ready->complete);
  }
};

} // namespace

TEST_CASE("a page read ahead is dropped, and the REQ read afresh, when the "
          "store changed or the REQ is another",
          "[query_worker][read_ahead]") {
  two_pages_in paged;
  auto& fx = paged.fx;
  auto& client = paged.client;
  CHECK(fx.config.read_ahead->held() > 0);
  SECTION("an event written since, inside the next page") {
    auto ev = make_event(fx.keys, 1, *client.until - 1, {}, "written since");
    fx.write(ev);
    auto page = client.next();
    CHECK_FALSE(page.from_memory);
    CHECK(std::count(page.frames.begin(), page.frames.end(),
                     nostr::event_message("s", ev.json))
          == 1);
  }
  SECTION("an event written since, outside the page: still read afresh") {
    fx.write(make_event(fx.keys, 7, default_now));
    CHECK_FALSE(client.next().from_memory);
  }
  SECTION("the next REQ asks for something else") {
    client.limit = 21;
    CHECK_FALSE(client.next().from_memory);
    // Not a next page of the last one: nothing is read ahead for it.
    CHECK_FALSE(client.paging->ready);
    CHECK(fx.config.read_ahead->held() == 0);
  }
  SECTION("the REQ runs in an earlier second (the clock went back)") {
    auto job = fx.job({client.filter()});
    job->paging = client.paging;
    job->now = default_now - 1;
    CHECK_FALSE(run_paged(fx, *job));
  }
  SECTION("a REQ of several filters") {
    auto job = fx.job({client.filter(), R"({"kinds":[7]})"});
    job->paging = client.paging;
    CHECK_FALSE(run_paged(fx, *job));
    CHECK_FALSE(client.paging->ready);
    CHECK(fx.config.read_ahead->held() == 0);
  }
}

TEST_CASE("a page read ahead in an earlier second answers the REQ unless an "
          "event expired (NIP-40) since",
          "[query_worker][read_ahead]") {
  // A client paging a large store crosses seconds: requiring the page's own
  // second dropped about one page read ahead a second. The third page of 20
  // holds a note that expires at `expires_at`; pages are asked for at
  // default_now, the third one second later.
  fixture fx{200, 5};
  fx.config.read_ahead = std::make_shared<read_ahead_budget>(1 << 20);
  const int64_t expires_at = GENERATE(default_now + 1, default_now + 2);
  CAPTURE(expires_at - default_now);
  auto expiring = make_event(fx.keys, 1, default_now - 1000 + 31,
                             {{"expiration", std::to_string(expires_at)}},
                             "expiring");
  fx.write(expiring);
  paging_client client{fx, 0, 20};
  client.next();
  client.next();
  REQUIRE(client.paging->ready);
  REQUIRE(client.paging->ready->complete);
  REQUIRE(client.paging->ready->json.find(expiring.json) != std::string::npos);
  const int64_t later = default_now + 1;
  const auto afresh = read_afresh(fx, client.filter(), later);
  fx.conn->frames.clear();
  auto job = fx.job({client.filter()});
  job->paging = client.paging;
  job->now = later;
  const bool from_memory = run_paged(fx, *job);
  // Either way the answer is the REQ's at its own second.
  CHECK(fx.conn->frames == afresh);
  const bool sent_expiring
    = std::count(afresh.begin(), afresh.end(),
                 nostr::event_message("s", expiring.json))
      == 1;
  if (expires_at == later) {
    // Expired in between: the page read ahead holds it, the answer not.
    CHECK_FALSE(from_memory);
    CHECK_FALSE(sent_expiring);
  } else {
    CHECK(from_memory);
    CHECK(sent_expiring);
  }
}

TEST_CASE("a session answers a REQ from the page handed over, hands it back "
          "while the connection's queue is full, and drops it when stale",
          "[query_worker][read_ahead]") {
  two_pages_in paged;
  auto& fx = paged.fx;
  auto& client = paged.client;
  // As the worker does once the page is read whole.
  client.paging->hand_over(std::move(client.paging->ready));
  const auto afresh = read_afresh(fx, client.filter());
  fx.conn->frames.clear();
  auto job = fx.job({client.filter()});
  job->paging = client.paging;
  SECTION("the page is the REQ's answer: sent whole, EOSE included") {
    fx.conn->batches.clear();
    answer_from_handed_page(*fx.store, fx.config, *job);
    CHECK(job->page_use == read_ahead_use::served);
    CHECK(job->events_from_page == 20);
    CHECK(fx.conn->frames == afresh);
    // In chunks that start small and double, as a slice's.
    CHECK(fx.conn->batches
          == std::vector<size_t>{fx.config.first_chunk_events,
                                 20 - fx.config.first_chunk_events + 1});
    CHECK(job->filter_index == job->filters->size());
    for (const auto& id : fx.event_ids())
      CHECK(job->sent.contains(id));
    CHECK_FALSE(client.paging->take_handed());
    CHECK(fx.config.read_ahead->held() == 0);
  }
  SECTION("more than the high-water mark queued: the worker gets it back") {
    fx.conn->queued = fx.config.high_water_bytes + 1;
    answer_from_handed_page(*fx.store, fx.config, *job);
    CHECK(job->page_use == read_ahead_use::none);
    CHECK(fx.conn->frames.empty());
    CHECK(client.paging->take_handed());
  }
  SECTION("a write since the page was read: dropped, nothing sent") {
    fx.write(make_event(fx.keys, 1, *client.until - 1, {}, "written since"));
    answer_from_handed_page(*fx.store, fx.config, *job);
    CHECK(job->page_use == read_ahead_use::dropped);
    CHECK(fx.conn->frames.empty());
    CHECK(job->filter_index == 0);
    CHECK_FALSE(client.paging->take_handed());
    CHECK(fx.config.read_ahead->held() == 0);
  }
  SECTION("no page handed over: nothing happens") {
    client.paging->take_handed();
    answer_from_handed_page(*fx.store, fx.config, *job);
    CHECK(job->page_use == read_ahead_use::none);
    CHECK(fx.conn->frames.empty());
  }
}

TEST_CASE("pages read ahead stay within the node's read-ahead memory",
          "[query_worker][read_ahead]") {
  fixture fx{200, 5};
  SECTION("no budget: nothing is read ahead") {
    paging_client client{fx, 0, 20};
    for (int i = 0; i < 4; ++i)
      CHECK_FALSE(client.next().from_memory);
  }
  SECTION("a page larger than the room left is not read") {
    fx.config.read_ahead = std::make_shared<read_ahead_budget>(2000);
    paging_client client{fx, 0, 20};
    for (int i = 0; i < 4; ++i)
      CHECK_FALSE(client.next().from_memory);
    CHECK(fx.config.read_ahead->held() == 0);
  }
  SECTION("two clients share the budget; a page gives its bytes back") {
    fx.config.read_ahead = std::make_shared<read_ahead_budget>(1 << 20);
    paging_client first{fx, 0, 20};
    first.next();
    first.next();
    REQUIRE(first.paging->ready);
    const auto one_page = fx.config.read_ahead->held();
    auto budget = std::make_shared<read_ahead_budget>(one_page + one_page / 2);
    fx.config.read_ahead = budget;
    paging_client a{fx, 0, 20};
    paging_client b{fx, 0, 20};
    a.next();
    b.next();
    a.next();
    b.next();
    CHECK(a.paging->ready);
    CHECK_FALSE(b.paging->ready);
    CHECK(budget->held() <= budget->max_bytes());
    a.paging->ready.reset();
    CHECK(budget->held() == 0);
  }
}
