// What an operator alerts on and graphs: /health with the [health]
// thresholds against a sync server that keeps failing, the real sync lag in
// /metrics, and the Grafana dashboard in docs/ naming only metrics a running
// node serves. Real `ferry node` processes on loopback; the failing remote
// is a port nothing listens on.

#include "net/simple_client.hpp"
#include "tests/fixtures/node_process.hpp"
#include "tests/fixtures/paths.hpp"
#include "tests/integration/sync_helpers.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <catch2/catch.hpp>


#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

/// A node with one sync server ("down") at a closed port and the given
/// [health] lines.
struct failing_sync_node {
  explicit failing_sync_node(const std::string& health)
    : config(test::node_config(
      dir, {},
      "[health]\n" + health + "\n[[sync.server]]\nid = \"down\"\nurl = "
        "\"ws://127.0.0.1:"
        + std::to_string(test::free_port()) + "\"\nfilters = [{}]\n")),
      process({"node", "--config", config}) {
    auto port = test::wait_for_admin_port(process);
    INFO(test::output_tail(process));
    REQUIRE(port);
    admin = *port;
  }

  net::http_result get(const std::string& path) {
    return net::simple_http_request("127.0.0.1", admin, "GET", path, {}, "");
  }

  /// Polls /health until a reason contains `text`; the last answer.
  boost::json::value health_with(const std::string& text) {
    boost::json::value last;
    test::poll_until(
      [&] {
        auto r = get("/health");
        if (!r.error.empty())
          return false;
        last = boost::json::parse(r.response.body);
        for (auto& reason : last.at("reasons").as_array())
          if (std::string{reason.as_string()}.find(text) != std::string::npos)
            return r.response.status == 503;
        return false;
      },
      15s);
    return last;
  }

  test::temp_dir dir;
  std::string config;
  test::ferry_process process;
  uint16_t admin = 0;
};

bool has_reason(const boost::json::value& health, const std::string& text) {
  if (!health.is_object() || !health.as_object().contains("reasons"))
    return false;
  for (auto& reason : health.at("reasons").as_array())
    if (std::string{reason.as_string()}.find(text) != std::string::npos)
      return true;
  return false;
}

/// The value of the sample `name{labels}` in a Prometheus text, if any.
std::optional<double> sample(const std::string& text, const std::string& name,
                             const std::string& labels) {
  auto head = name + "{" + labels + "} ";
  auto at = text.find("\n" + head);
  if (at == std::string::npos)
    return std::nullopt;
  return std::stod(text.substr(at + 1 + head.size()));
}

} // namespace

TEST_CASE("/health names a sync server failing its [health] threshold",
          "[integration][health]") {
  failing_sync_node n{"sync_failing_attempts = 1\nsync_max_lag_seconds = 0"};
  auto health = n.health_with("sync server down fails");
  INFO(boost::json::serialize(health) << "\n" << test::output_tail(n.process));
  CHECK(health.at("status").as_string() == "degraded");
  CHECK(has_reason(health, "sync server down fails: tcp"));
  CHECK(has_reason(health, "1 attempt(s) in a row"));
  // The lag check is off: no lag reason.
  CHECK_FALSE(has_reason(health, "behind"));
}

TEST_CASE("/health says a sync server is behind by more than its lag limit",
          "[integration][health]") {
  failing_sync_node n{"sync_failing_attempts = 1000\nsync_max_lag_seconds = 1"};
  auto health = n.health_with("sync server down is ");
  INFO(boost::json::serialize(health) << "\n" << test::output_tail(n.process));
  CHECK(health.at("status").as_string() == "degraded");
  CHECK(has_reason(health, "s behind (not caught up since then; limit 1 s)"));
  // Failing below its attempt threshold: no failure reason.
  CHECK_FALSE(has_reason(health, "sync server down fails"));
  // The same lag is in /metrics: since the server was first tried, never
  // caught up; a real lag in seconds, not the age of some event.
  auto metrics = n.get("/metrics");
  REQUIRE(metrics.error.empty());
  auto lag = sample(metrics.response.body, "ferry_sync_lag_seconds",
                    "server=\"down\"");
  REQUIRE(lag);
  CHECK(*lag >= 1);
  CHECK(*lag < 120);
}

TEST_CASE("/health names a hosted relay the management API keeps refusing",
          "[integration][health]") {
  test::temp_dir dir;
  test::node_settings settings;
  settings.admin_extra = "token = \"operator-test\"\n";
  // Nothing listens at the management API's port: every push fails.
  settings.extra = "[health]\ninfra_failing_attempts = 2\n[infra]\napi_url = "
                   "\"http://127.0.0.1:"
                   + std::to_string(test::free_port())
                   + "\"\nrelay_domain = \"relays.test\"\n"
                     "retry_base_ms = 100\nretry_cap_ms = 200\n";
  test::ferry_process process{
    {"node", "--config", test::node_config_with(dir, settings)}};
  auto admin = test::wait_for_admin_port(process);
  REQUIRE(admin);
  REQUIRE(test::wait_for_identity(process));
  auto created = test::create_hosted_relay(*admin, "operator-test", "club");
  REQUIRE(created.error.empty());
  REQUIRE(created.response.status == 201);
  boost::json::value health;
  auto names_club = [&] {
    auto r = net::simple_http_request("127.0.0.1", *admin, "GET", "/health",
                                      {}, "");
    if (!r.error.empty() || r.response.status != 503)
      return false;
    health = boost::json::parse(r.response.body);
    return has_reason(health, "hosted relay club fails to sync to the "
                              "management API (");
  };
  if (!test::poll_until(names_club, 20s))
    FAIL("/health does not name the failing hosted relay\n"
         << boost::json::serialize(health) << "\n"
         << test::output_tail(process));
  CHECK(health.at("status").as_string() == "degraded");
}

TEST_CASE("the Grafana dashboard names only metrics a running node serves",
          "[integration][metrics]") {
  std::ifstream in{test::source_dir() + "/docs/grafana-dashboard.json"};
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  auto dashboard = boost::json::parse(text.str());
  REQUIRE(dashboard.at("panels").as_array().size() >= 10);
  std::set<std::string> names;
  static const std::regex metric{"ferry_[a-z_]+"};
  for (auto& panel : dashboard.at("panels").as_array())
    for (auto& target : panel.at("targets").as_array()) {
      std::string expr{target.at("expr").as_string()};
      for (std::sregex_iterator i{expr.begin(), expr.end(), metric}, end;
           i != end; ++i)
        names.insert(i->str());
    }
  REQUIRE(names.size() >= 15);
  failing_sync_node n{"sync_max_lag_seconds = 1"};
  // Labelled families show once they have a series: one event in.
  auto relay = n.process.wait_for_port();
  REQUIRE(relay);
  sync_test::publish(*relay, {test::make_note(nostr::generate_keypair(),
                                              test::unix_now(), "dashboard")});
  // Wait for the failing server to report, so its families exist.
  n.health_with("sync server down is ");
  std::string exposed;
  REQUIRE(test::poll_until([&] {
    auto r = n.get("/metrics");
    exposed = r.error.empty() ? r.response.body : "";
    return exposed.find("ferry_sync_lag_seconds{") != std::string::npos;
  }));
  for (auto& name : names) {
    // A histogram's series carry a suffix of its family's name.
    auto family = std::regex_replace(name, std::regex{"_(bucket|sum|count)$"},
                                     "");
    INFO("metric " << name);
    CHECK((exposed.find("# TYPE " + name + " ") != std::string::npos
           || exposed.find("# TYPE " + family + " histogram")
                != std::string::npos));
    // Help texts are written for operators, not generated from keys.
    auto help = exposed.find("# HELP " + family + " ");
    REQUIRE(help != std::string::npos);
    CHECK(exposed.compare(help, 40, "# HELP " + family + " The inspector") != 0);
  }
  // One family per figure: the relay's connections are only
  // ferry_client_connections.
  CHECK(exposed.find("ferry_relay_connections") == std::string::npos);
  CHECK(exposed.find("The inspector's node statistic") == std::string::npos);
}
