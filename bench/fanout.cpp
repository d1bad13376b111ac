// bench_fanout: how fast a node hands live events to many subscribers
// (issue 13, goal 2).
//
// 1,000 subscribers on their own WebSocket connections hold live
// subscriptions (`limit 0`) with mixed filters: one author, mentions of one
// author (#p), one topic (#t), one rare kind, and a few that take every note.
// One publisher sends signed events at 2,000 events/s. For every delivery it
// prints the time from the publisher's OK to the subscriber's receipt (p50,
// p99), checks that each subscriber got exactly the events its filter
// matches, and prints the node's CPU per delivered event.
// Everything runs on loopback; the subscribers and the publisher share one
// thread of this process, which competes with the node for the 2 cores.
// Lines starting with "goal-row|" feed the goal table bench/run.sh prints.

#include "bench/bench_util.hpp"

#include "messages/nostr/filter.hpp"
#include "net/simple_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <ctime>
#include <map>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ferry::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

constexpr size_t subscriber_count = 1000;
constexpr double publish_rate = 2000;
/// 10 s of publishing; `--events` may ask for fewer.
constexpr size_t max_published = 20000;
constexpr double goal_p99_ms = 20;
/// How long stragglers may take after the last OK.
constexpr auto drain_time = std::chrono::seconds{3};

std::string node_config(const fs::path& data) {
  return "[relay]\naddress = \"127.0.0.1\"\nport = 0\n\n[admin]\naddress = "
         "\"127.0.0.1\"\nport = 0\n\n[console]\nport = 0\n\n[store]\npath = "
         + toml_string(data.string()) + "\n\n[log]\nlevel = \"info\"\n";
}

/// The buckets of Prometheus histogram `name` in `metrics` (text format), in
/// the order served (ascending bounds): the bound as written, and the count
/// of observations up to it.
std::vector<std::pair<std::string, double>> histogram(const std::string& metrics,
                                                      const std::string& name) {
  std::vector<std::pair<std::string, double>> buckets;
  const auto prefix = name + "_bucket{le=\"";
  for (auto pos = metrics.find(prefix); pos != std::string::npos;
       pos = metrics.find(prefix, pos + 1)) {
    auto bound_begin = pos + prefix.size();
    auto bound_end = metrics.find('"', bound_begin);
    auto value = metrics.find("} ", bound_end);
    if (bound_end == std::string::npos || value == std::string::npos)
      break;
    buckets.emplace_back(metrics.substr(bound_begin, bound_end - bound_begin),
                         std::strtod(metrics.c_str() + value + 2, nullptr));
  }
  return buckets;
}

/// The bound of the first bucket holding fraction `q` of the observations.
std::string bucket_bound(const std::vector<std::pair<std::string, double>>& buckets,
                         double q) {
  if (buckets.empty())
    return "?";
  for (const auto& [bound, count] : buckets)
    if (count >= q * buckets.back().second)
      return bound;
  return buckets.back().first;
}

/// How the writer's commits went (the OK of an event waits for its commit):
/// from the node's /metrics, or why not.
std::string writer_commits(uint16_t admin_port) {
  auto res = net::simple_http_request("127.0.0.1", admin_port, "GET", "/metrics");
  if (!res.error.empty() || res.response.status != 200)
    return "no /metrics: " + (res.error.empty() ? std::to_string(res.response.status)
                                                : res.error);
  const auto& text = res.response.body;
  auto commits = metric_sample(text, "ferry_writer_commit_seconds_count").value_or(0);
  if (commits == 0)
    return "no commits in /metrics";
  auto seconds = histogram(text, "ferry_writer_commit_seconds");
  char line[256];
  std::snprintf(line, sizeof line,
                "%.0f commits of %.1f events on average, commit time mean %.2f ms, p50 <= %s s, "
                "p99 <= %s s, max <= %s s",
                commits, metric_sample(text, "ferry_writer_batch_events_sum").value_or(0) / commits,
                1e3 * metric_sample(text, "ferry_writer_commit_seconds_sum").value_or(0) / commits,
                bucket_bound(seconds, 0.5).c_str(), bucket_bound(seconds, 0.99).c_str(),
                bucket_bound(seconds, 1.0).c_str());
  return line;
}

/// The filter of subscriber `i`: a mix of narrow and broad live filters over
/// the generator's authors, topics and kinds.
std::string filter_for(size_t i, const std::vector<std::string>& authors) {
  const auto& author = authors[i % authors.size()];
  static const char* rare_kinds[] = {"0", "3", "30023", "10002"};
  if (i % 100 == 99)
    return R"({"kinds":[1],"limit":0})";
  switch (i % 4) {
    case 0:
      return R"({"authors":[")" + author + R"("],"limit":0})";
    case 1:
      return R"({"#p":[")" + author + R"("],"limit":0})";
    case 2:
      return R"({"#t":["topic)" + std::to_string(i % 50) + R"("],"limit":0})";
    default:
      return std::string(R"({"kinds":[)") + rare_kinds[i / 4 % 4] + R"(],"limit":0})";
  }
}

/// The 64 hex digits after `"id":"` (the first key of a serialized event),
/// or "" when `frame` is not an EVENT/OK frame with one.
std::string_view event_id_in(std::string_view frame) {
  constexpr std::string_view key = "\"id\":\"";
  auto pos = frame.find(key);
  if (pos == std::string_view::npos || frame.size() < pos + key.size() + 64)
    return {};
  return frame.substr(pos + key.size(), 64);
}

struct delivery {
  uint32_t event = 0;
  clock_type::time_point at;
};

/// A blocking connect and handshake; the session then runs asynchronously on
/// `ioc`.
std::unique_ptr<websocket::stream<tcp::socket>> connect_ws(asio::io_context& ioc,
                                                            uint16_t port) {
  auto ws = std::make_unique<websocket::stream<tcp::socket>>(ioc);
  ws->next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
  ws->next_layer().set_option(tcp::no_delay(true));
  ws->handshake("127.0.0.1:" + std::to_string(port), "/");
  ws->text(true);
  return ws;
}

struct subscriber {
  std::unique_ptr<websocket::stream<tcp::socket>> ws;
  beast::flat_buffer buffer;
  size_t filter = 0;
};

class fanout_run {
public:
  fanout_run(uint16_t port, std::vector<nostr::event> events,
             const std::vector<std::string>& filters_of_subscribers)
      : port_(port), events_(std::move(events)), timer_(ioc_) {
    frames_.reserve(events_.size());
    ids_.reserve(events_.size());
    for (size_t i = 0; i < events_.size(); ++i) {
      frames_.push_back("[\"EVENT\"," + nostr::to_json(events_[i]) + "]");
      ids_.push_back(nostr::to_hex(events_[i].id));
    }
    // Views into ids_, which no longer grows: a receipt looks its event up
    // without allocating.
    for (size_t i = 0; i < ids_.size(); ++i)
      index_.emplace(ids_[i], static_cast<uint32_t>(i));
    std::map<std::string, size_t> filter_index;
    for (const auto& json : filters_of_subscribers) {
      auto [it, fresh] = filter_index.emplace(json, filters_.size());
      if (fresh) {
        nostr::filter f;
        if (auto reason = nostr::parse_filter(json, f); !reason.empty())
          throw std::runtime_error("bad bench filter " + json + ": " + reason);
        filters_.push_back(std::move(f));
        subscribers_per_filter_.push_back(0);
      }
      ++subscribers_per_filter_[it->second];
      subscribers_.push_back({nullptr, {}, it->second});
    }
    for (const auto& ev : events_)
      for (size_t f = 0; f < filters_.size(); ++f)
        if (filters_[f].matches(ev))
          matching_ += subscribers_per_filter_[f];
    sent_at_.resize(events_.size());
    ok_at_.resize(events_.size());
    accepted_.resize(events_.size());
    deliveries_.reserve(matching_ + 1024);
  }

  /// Connects every subscriber and waits for each one's EOSE.
  void subscribe(const std::vector<std::string>& filters_of_subscribers) {
    for (size_t i = 0; i < subscribers_.size(); ++i) {
      auto& s = subscribers_[i];
      s.ws = connect_ws(ioc_, port_);
      s.ws->write(asio::buffer("[\"REQ\",\"s" + std::to_string(i) + "\","
                               + filters_of_subscribers[i] + "]"));
    }
    for (auto& s : subscribers_) {
      s.ws->read(s.buffer);
      auto text = beast::buffers_to_string(s.buffer.data());
      if (text.rfind("[\"EOSE\"", 0) != 0)
        throw std::runtime_error("subscriber expected EOSE, got " + text.substr(0, 200));
      s.buffer.consume(s.buffer.size());
    }
    publisher_ = connect_ws(ioc_, port_);
  }

  /// Publishes every event at the rate, until every OK is in and the
  /// deliveries are complete (or stragglers had `drain_time`).
  void run() {
    for (auto& s : subscribers_)
      read_subscriber(s);
    read_publisher();
    start_ = clock_type::now();
    tick();
    ioc_.run();
  }

  double seconds() const {
    return std::chrono::duration<double>(last_ok_ - start_).count();
  }

  size_t oks() const {
    return oks_;
  }
  /// Events the node did not store (mostly older versions of replaceable
  /// events).
  size_t refused() const {
    return static_cast<size_t>(std::count(accepted_.begin(), accepted_.end(), false));
  }
  /// Deliveries the accepted events owe the subscribers; known once every
  /// OK is in.
  size_t expected() {
    if (!expected_) {
      expected_ = 0;
      for (size_t i = 0; i < events_.size(); ++i)
        if (accepted_[i])
          for (size_t f = 0; f < filters_.size(); ++f)
            if (filters_[f].matches(events_[i]))
              *expected_ += subscribers_per_filter_[f];
    }
    return *expected_;
  }
  /// The most events sent (or queued to send) and not yet answered at one
  /// tick: the relay reads no more than `max_inflight_messages` (256) of one
  /// connection's messages ahead of their answers.
  size_t most_awaiting_ok() const {
    return most_awaiting_ok_;
  }
  size_t closed_subscribers() const {
    return closed_;
  }
  const std::vector<delivery>& deliveries() const {
    return deliveries_;
  }
  clock_type::time_point ok_at(uint32_t event) const {
    return ok_at_[event];
  }
  clock_type::time_point sent_at(uint32_t event) const {
    return sent_at_[event];
  }

private:
  void read_subscriber(subscriber& s) {
    s.ws->async_read(s.buffer, [this, &s](beast::error_code ec, size_t) {
      if (ec) {
        ++closed_;
        return;
      }
      auto now = clock_type::now();
      std::string_view text{static_cast<const char*>(s.buffer.data().data()),
                            s.buffer.size()};
      if (text.rfind("[\"EVENT\"", 0) == 0) {
        auto it = index_.find(event_id_in(text));
        if (it != index_.end())
          deliveries_.push_back({it->second, now});
      }
      s.buffer.consume(s.buffer.size());
      read_subscriber(s);
    });
  }

  void read_publisher() {
    publisher_->async_read(publisher_buffer_, [this](beast::error_code ec, size_t) {
      if (ec)
        throw std::runtime_error("publisher connection ended: " + ec.message());
      auto now = clock_type::now();
      std::string_view text{static_cast<const char*>(publisher_buffer_.data().data()),
                            publisher_buffer_.size()};
      // ["OK","<id>",true,""]
      if (text.rfind("[\"OK\",\"", 0) == 0 && text.size() > 71) {
        auto it = index_.find(text.substr(7, 64));
        if (it != index_.end()) {
          ok_at_[it->second] = last_ok_ = now;
          ++oks_;
          // Only a stored event is broadcast: `true` with a message (an
          // older version of a replaceable event) is not.
          accepted_[it->second] = text.substr(73) == "true,\"\"]";
        }
      }
      publisher_buffer_.consume(publisher_buffer_.size());
      read_publisher();
    });
  }

  /// Every 5 ms: queue the events due by now, and stop once done.
  void tick() {
    auto elapsed = seconds_since(start_);
    auto due = std::min(events_.size(), static_cast<size_t>(elapsed * publish_rate));
    while (queued_ < due)
      send(queued_++);
    most_awaiting_ok_ = std::max(most_awaiting_ok_, queued_ - oks_);
    bool all_ok = oks_ == events_.size();
    if (all_ok
        && (deliveries_.size() >= expected() || clock_type::now() - last_ok_ > drain_time)) {
      ioc_.stop();
      return;
    }
    if (elapsed > static_cast<double>(events_.size()) / publish_rate + 60) {
      ioc_.stop();
      return;
    }
    timer_.expires_after(std::chrono::milliseconds{5});
    timer_.async_wait([this](beast::error_code) { tick(); });
  }

  void send(size_t event) {
    outbox_.push_back(event);
    if (outbox_.size() == 1)
      write_next();
  }

  void write_next() {
    auto event = outbox_.front();
    sent_at_[event] = clock_type::now();
    publisher_->async_write(asio::buffer(frames_[event]), [this](beast::error_code ec, size_t) {
      if (ec)
        throw std::runtime_error("publisher write failed: " + ec.message());
      outbox_.pop_front();
      if (!outbox_.empty())
        write_next();
    });
  }

  // First, so that it goes last: the streams and the timer need it.
  asio::io_context ioc_;
  uint16_t port_;
  std::vector<nostr::event> events_;
  std::vector<std::string> frames_;
  std::vector<std::string> ids_;
  std::unordered_map<std::string_view, uint32_t> index_;
  std::vector<nostr::filter> filters_;
  std::vector<size_t> subscribers_per_filter_;
  std::vector<subscriber> subscribers_;
  /// Deliveries if every event is accepted: sizes the buffers.
  size_t matching_ = 0;
  std::optional<size_t> expected_;
  asio::steady_timer timer_;
  std::unique_ptr<websocket::stream<tcp::socket>> publisher_;
  beast::flat_buffer publisher_buffer_;
  std::deque<size_t> outbox_;
  size_t queued_ = 0;
  size_t oks_ = 0;
  size_t most_awaiting_ok_ = 0;
  size_t closed_ = 0;
  clock_type::time_point start_;
  clock_type::time_point last_ok_;
  std::vector<clock_type::time_point> sent_at_;
  std::vector<clock_type::time_point> ok_at_;
  std::vector<bool> accepted_;
  std::vector<delivery> deliveries_;
};

int run(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  const size_t published = std::min(opts.events, max_published);
  std::printf("bench_fanout: %zu subscribers, %zu events at %.0f events/s, ferry %s\n",
              subscriber_count, published, publish_rate, opts.ferry.c_str());
  std::fflush(stdout);

  auto start = clock_type::now();
  event_generator generator{20, 600};
  auto events = generator.events(published, 2);
  std::vector<std::string> authors;
  {
    std::map<std::string, bool> seen;
    for (const auto& ev : events)
      if (seen.emplace(nostr::to_hex(ev.pubkey), true).second)
        authors.push_back(nostr::to_hex(ev.pubkey));
  }
  std::printf("signed %zu events of %zu authors in %.1f s\n", events.size(), authors.size(),
              seconds_since(start));

  temp_dir tmp{"ferry-bench-fanout"};
  auto config = tmp.path() / "ferry.toml";
  write_file(config, node_config(tmp.path() / "data"));
  node_process node{opts.ferry, config, tmp.path(), "node"};
  auto port = node.wait_for_relay_port();
  if (!port)
    throw std::runtime_error("node did not report its relay port; log tail:\n"
                             + node.log_tail());
  auto admin_port = node.wait_for_admin_port();
  if (!admin_port)
    throw std::runtime_error("node did not report its admin port; log tail:\n"
                             + node.log_tail());

  std::vector<std::string> filters;
  for (size_t i = 0; i < subscriber_count; ++i)
    filters.push_back(filter_for(i, authors));
  fanout_run fan{*port, std::move(events), filters};
  start = clock_type::now();
  fan.subscribe(filters);
  std::printf("%zu subscribers connected and subscribed in %.1f s\n", subscriber_count,
              seconds_since(start));
  std::fflush(stdout);

  auto pid = node.find_pid();
  auto node_cpu_start = process_cpu_seconds(pid);
  auto bench_cpu_start = std::clock();
  fan.run();
  double node_cpu = process_cpu_seconds(pid) - node_cpu_start;
  double bench_cpu = static_cast<double>(std::clock() - bench_cpu_start) / CLOCKS_PER_SEC;

  std::vector<double> from_ok_ms;
  std::vector<double> from_send_ms;
  std::vector<double> send_to_ok_ms;
  for (uint32_t i = 0; i < published; ++i)
    if (fan.ok_at(i) != clock_type::time_point{})
      send_to_ok_ms.push_back(
        std::chrono::duration<double, std::milli>(fan.ok_at(i) - fan.sent_at(i)).count());
  size_t before_ok = 0;
  for (const auto& d : fan.deliveries()) {
    auto ok = fan.ok_at(d.event);
    // The writer hands a stored event to the hub and the OK to its sender at
    // once: a subscriber may see it first. That counts as no delay.
    if (ok == clock_type::time_point{} || d.at < ok)
      ++before_ok;
    from_ok_ms.push_back(
      std::max(0.0, std::chrono::duration<double, std::milli>(d.at - ok).count()));
    from_send_ms.push_back(
      std::chrono::duration<double, std::milli>(d.at - fan.sent_at(d.event)).count());
  }
  const auto delivered = fan.deliveries().size();
  double p50 = percentile(from_ok_ms, 0.5);
  double p99 = percentile(from_ok_ms, 0.99);
  const auto expected = fan.expected();
  std::printf("published %zu events in %.1f s (%.0f OKs/s), %zu not stored (superseded)\n",
              fan.oks(), fan.seconds(), fan.oks() / fan.seconds(), fan.refused());
  std::printf("deliveries: %zu of %zu expected (%.1f per event), %zu before the OK, "
              "%zu subscribers disconnected\n",
              delivered, expected, static_cast<double>(expected) / published,
              before_ok, fan.closed_subscribers());
  std::printf("OK -> receipt:    p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", p50, p99,
              percentile(from_ok_ms, 1.0));
  std::printf("send -> receipt:  p50 %.2f ms  p99 %.2f ms\n", percentile(from_send_ms, 0.5),
              percentile(from_send_ms, 0.99));
  std::printf("send -> OK:       p50 %.2f ms  p99 %.2f ms; at most %zu events awaited their OK "
              "at once (the relay reads 256 ahead per connection)\n",
              percentile(send_to_ok_ms, 0.5), percentile(send_to_ok_ms, 0.99),
              fan.most_awaiting_ok());
  std::printf("writer: %s\n", writer_commits(*admin_port).c_str());
  double cpu_us = delivered ? node_cpu * 1e6 / static_cast<double>(delivered) : 0;
  std::printf("node CPU: %.2f s, %.1f us per delivered event; this client's CPU: %.0f%% of "
              "the run\n",
              node_cpu, cpu_us, 100 * bench_cpu / fan.seconds());

  bool complete = delivered == expected && fan.oks() == published;
  char measured[128];
  std::snprintf(measured, sizeof measured, "p50 %.1f ms, p99 %.1f ms, %.1f us CPU/delivery%s",
                p50, p99, cpu_us, complete ? "" : " (INCOMPLETE)");
  std::printf("goal-row|2 fan-out: 1,000 subscribers, 2,000 events/s, p99 <= 20 ms|%s|%s\n",
              measured, complete && p99 <= goal_p99_ms ? "met" : "not met");

  node.stop_cleanly();
  return 0;
}

} // namespace
} // namespace ferry::bench

int main(int argc, char** argv) {
  return ferry::bench::run_main("bench_fanout", ferry::bench::run, argc, argv);
}
