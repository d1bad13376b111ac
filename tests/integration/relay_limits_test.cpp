#include "tests/fixtures/node_process.hpp"
#include "tests/fixtures/small_window_client.hpp"

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <fstream>
#include <set>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

/// The value of the unlabelled metric `name` in the node's /metrics.
std::optional<double> metric(uint16_t admin_port, const std::string& name) {
  auto r = net::simple_http_request("127.0.0.1", admin_port, "GET", "/metrics");
  auto at = r.response.body.find("\n" + name + " ");
  if (at == std::string::npos)
    return std::nullopt;
  return std::stod(r.response.body.substr(at + name.size() + 2));
}

/// Reads one REQ's answer: the number of EVENTs before its EOSE, and any
/// other frame.
struct req_answer {
  size_t events = 0;
  bool eose = false;
  std::vector<std::string> others;
};

req_answer read_answer(test::small_window_client& client) {
  req_answer answer;
  while (auto frame = client.receive()) {
    if (frame->rfind("[\"EVENT\"", 0) == 0) {
      ++answer.events;
    } else if (frame->rfind("[\"EOSE\"", 0) == 0) {
      answer.eose = true;
      break;
    } else {
      answer.others.push_back(*frame);
    }
  }
  return answer;
}

/// Lowers this process's soft open-file limit (which a node it starts
/// inherits) for its lifetime.
struct lowered_open_file_limit {
  rlimit saved{};

  explicit lowered_open_file_limit(rlim_t soft) {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    auto lowered = saved;
    lowered.rlim_cur = std::min(soft, saved.rlim_cur);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
  }

  ~lowered_open_file_limit() {
    ::setrlimit(RLIMIT_NOFILE, &saved);
  }
};

/// The soft open-file limit of process `pid`.
std::optional<uint64_t> soft_open_file_limit(pid_t pid) {
  std::ifstream limits{"/proc/" + std::to_string(pid) + "/limits"};
  std::string line;
  while (std::getline(limits, line))
    if (line.rfind("Max open files", 0) == 0)
      return std::stoull(line.substr(std::string{"Max open files"}.size()));
  return std::nullopt;
}

} // namespace

TEST_CASE("a node raises its open-file limit to fit relay.limits.max_connections, "
          "and warns when the hard limit is too low for it",
          "[integration][limits]") {
  const lowered_open_file_limit low{256};
  const auto hard = low.saved.rlim_max;
  const std::string warning = "fewer than relay.limits.max_connections";
  SECTION("within the hard limit") {
    if (hard != RLIM_INFINITY && hard < 3024) {
      WARN("not checked: the hard open-file limit is " << hard);
      return;
    }
    test::running_node node{"[relay.limits]\nmax_connections = 2000\n"};
    CHECK(soft_open_file_limit(node.process.pid()) == uint64_t{3024});
    CHECK(node.process.output().find(warning) == std::string::npos);
  }
  SECTION("beyond it") {
    if (hard == RLIM_INFINITY) {
      WARN("not checked: no hard open-file limit");
      return;
    }
    test::running_node node{"[relay.limits]\nmax_connections = "
                            + std::to_string(hard) + "\n"};
    CHECK(soft_open_file_limit(node.process.pid()) == uint64_t{hard});
    CHECK(node.process.output().find(warning) != std::string::npos);
  }
}

TEST_CASE("a node answers a WebSocket beyond relay.limits.max_connections "
          "with 503, counts it, and serves the others",
          "[integration][limits]") {
  test::running_node node{"[relay.limits]\nmax_connections = 2\n"};
  auto admin_port = test::wait_for_admin_port(node.process);
  REQUIRE(admin_port);
  net::simple_ws_client first;
  net::simple_ws_client second;
  REQUIRE(first.connect("127.0.0.1", node.port).empty());
  REQUIRE(second.connect("127.0.0.1", node.port).empty());
  net::simple_ws_client third;
  CHECK_FALSE(third.connect("127.0.0.1", node.port).empty());
  CHECK(metric(*admin_port, "ferry_relay_refused_connections_total"
                            "{limit=\"max_connections\"}")
        == 1.0);
  // NIP-11 is plain HTTP, answered as ever.
  auto info = net::simple_http_request("127.0.0.1", node.port, "GET", "/",
                                       {{"Accept", "application/nostr+json"}});
  CHECK(info.response.status == 200);
  REQUIRE(first.send(R"(["COUNT","c",{}])").empty());
  CHECK(test::receive_until(first, "[\"COUNT\"")
        == std::optional<std::string>{R"(["COUNT","c",{"count":0}])"});
  second.close();
  CHECK(test::poll_until(
    [&] { return third.connect("127.0.0.1", node.port).empty(); }));
}

TEST_CASE("beyond relay.limits.max_outbound_total_mb a subscriber that never "
          "reads is disconnected, and REQs for slow readers wait within "
          "their share instead",
          "[integration][limits][backpressure]") {
  test::running_node node{"[relay.limits]\nmax_outbound_total_mb = 1\n"
                    "max_limit = 5000\n"};
  auto admin_port = test::wait_for_admin_port(node.process);
  REQUIRE(admin_port);
  test::small_window_client never_reads{node.port};
  never_reads.send(R"(["REQ","live",{"kinds":[1],"limit":0}])");
  REQUIRE(never_reads.receive() == std::string(R"(["EOSE","live"])"));
  // 6 MB of events: far more than the budget, all for the subscriber.
  constexpr size_t stored = 1500;
  {
    net::simple_ws_client writer;
    REQUIRE(writer.connect("127.0.0.1", node.port).empty());
    auto keys = nostr::generate_keypair();
    auto now = test::unix_now();
    for (size_t i = 0; i < stored; ++i) {
      auto ev = test::make_note(keys, now - static_cast<int64_t>(stored - i),
                                std::string(4000, 'a' + static_cast<char>(i % 26)));
      REQUIRE(writer.send("[\"EVENT\"," + nostr::to_json(ev) + "]").empty());
      if (i % 500 == 499)
        for (int j = 0; j < 500; ++j)
          REQUIRE(test::receive_until(writer, "[\"OK\""));
    }
  }
  std::optional<std::string> notice;
  size_t live_events = 0;
  while (auto frame = never_reads.receive(5s)) {
    if (frame->rfind("[\"NOTICE\"", 0) == 0)
      notice = frame;
    else
      ++live_events;
  }
  REQUIRE(notice);
  CHECK(*notice
        == "[\"NOTICE\",\"error: disconnected: the relay holds more than 1 "
           "MiB for its clients, and more than its share of it for this "
           "connection (read faster)\"]");
  CHECK(live_events < stored);
  CHECK(metric(*admin_port, "ferry_relay_overflow_disconnects_total"
                            "{limit=\"max_outbound_total_mb\"}")
        == 1.0);
  CHECK(metric(*admin_port, "ferry_relay_overflow_disconnects_total"
                            "{limit=\"max_outbound_bytes\"}")
        == 0.0);
  // Two readers ask for everything and read nothing until the node's
  // writes to them stall: a query worker pushing each to its own
  // high-water mark (4 MiB) would take both past their share and end them.
  test::small_window_client first{node.port};
  test::small_window_client second{node.port};
  first.send(R"(["REQ","all",{"kinds":[1],"limit":5000}])");
  second.send(R"(["REQ","all",{"kinds":[1],"limit":5000}])");
  first.wait_until_socket_stalls();
  second.wait_until_socket_stalls();
  for (auto* reader : {&first, &second}) {
    auto answer = read_answer(*reader);
    CHECK(answer.others == std::vector<std::string>{});
    CHECK(answer.events == stored);
    CHECK(answer.eose);
  }
}

TEST_CASE("beyond relay.limits.max_inbound_total_mb a client that sends "
          "faster than the node works is read more slowly, and every event "
          "it sent is answered and stored",
          "[integration][limits][backpressure]") {
  test::running_node node{"[relay.limits]\nmax_inbound_total_mb = 1\n"};
  auto admin_port = test::wait_for_admin_port(node.process);
  REQUIRE(admin_port);
  // 12 MB of events sent at once, 100 KB each: a hundred times the budget,
  // and within max_inflight_messages (256).
  constexpr size_t sent = 120;
  net::simple_ws_client writer;
  REQUIRE(writer.connect("127.0.0.1", node.port).empty());
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  std::set<std::string> ids;
  for (size_t i = 0; i < sent; ++i) {
    auto ev = test::make_note(keys, now - static_cast<int64_t>(sent - i),
                              std::string(100'000, 'a' + static_cast<char>(i % 26)));
    ids.insert(nostr::to_hex(ev.id));
    REQUIRE(writer.send("[\"EVENT\"," + nostr::to_json(ev) + "]").empty());
  }
  std::set<std::string> accepted;
  for (size_t i = 0; i < sent; ++i) {
    auto ok = test::receive_until(writer, "[\"OK\"");
    REQUIRE(ok);
    CHECK(ok->find("\",true,") != std::string::npos);
    accepted.insert(ok->substr(7, 64));
  }
  CHECK(accepted == ids);
  // Nothing is held once every message is answered.
  CHECK(test::poll_until([&] {
    return metric(*admin_port, "ferry_relay_inbound_held_bytes") == 0.0;
  }));
  REQUIRE(writer.send(R"(["COUNT","c",{}])").empty());
  CHECK(test::receive_until(writer, "[\"COUNT\"")
        == std::optional<std::string>{"[\"COUNT\",\"c\",{\"count\":"
                                      + std::to_string(sent) + "}]"});
}
