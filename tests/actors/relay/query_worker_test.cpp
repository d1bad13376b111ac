#include "actors/relay/query_worker.hpp"

#include "messages/nostr/hex.hpp"
#include "messages/nostr/wire.hpp"
#include "tests/store/store_fixture.hpp"

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
    return 0;
  }

  void frame_done() override {
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

  explicit fixture(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      auto ev = make_event(keys, 1, default_now - 1000 + static_cast<int64_t>(i));
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
