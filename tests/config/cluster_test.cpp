#include "config/config.hpp"

#include "config_test_util.hpp"

#include <catch2/catch.hpp>

using namespace ferry::config;
using ferry::config::test::load_error;

namespace {

const std::string key_a
  = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

} // namespace

TEST_CASE("the cluster section loads every key", "[config][cluster]") {
  auto result = load_string(R"(
[cluster]
enabled = true
name = "node-a"
address = "10.0.0.5"
port = 7451
seeds = ["10.0.0.6:7450", "node-c.internal:7450", "10.0.0.6:7450"]
members = [")" + key_a + R"("]
failure_timeout_ms = 2000
heartbeat_ms = 250
handover_timeout_ms = 8000
forget_after_ms = 60000
reconcile_interval_ms = 20000
[cluster.tls]
certfile = "node-a.pem"
keyfile = "node-a.key"
cafile = "ca.pem"
)",
                            "ferry.toml");
  if (!result)
    FAIL(ferry::config::test::error_text(result.error()));
  auto& c = result->cluster;
  CHECK(c.enabled);
  CHECK(c.name == "node-a");
  CHECK(c.address == "10.0.0.5");
  CHECK(c.port == 7451);
  // A seed given twice is dialled once.
  CHECK(c.seeds
        == std::vector<std::string>{"10.0.0.6:7450", "node-c.internal:7450"});
  CHECK(c.members == std::vector<std::string>{key_a});
  CHECK(c.failure_timeout == std::chrono::milliseconds{2000});
  CHECK(c.heartbeat == std::chrono::milliseconds{250});
  CHECK(c.handover_timeout == std::chrono::milliseconds{8000});
  CHECK(c.forget_after == std::chrono::milliseconds{60000});
  CHECK(c.reconcile_interval == std::chrono::milliseconds{20000});
  CHECK(c.tls.enabled());
  CHECK(c.tls.cafile == "ca.pem");
}

TEST_CASE("the cluster is off by default, on port 7450 with 5 s / 1 s timing",
          "[config][cluster]") {
  auto result = load_string("", "ferry.toml");
  REQUIRE(result);
  CHECK_FALSE(result->cluster.enabled);
  CHECK(result->cluster.port == 7450);
  CHECK(result->cluster.failure_timeout == std::chrono::milliseconds{5000});
  CHECK(result->cluster.heartbeat == std::chrono::milliseconds{1000});
  CHECK(result->cluster.handover_timeout == std::chrono::milliseconds{5000});
  CHECK(result->cluster.forget_after == std::chrono::milliseconds{3600000});
  CHECK(result->cluster.reconcile_interval == std::chrono::milliseconds{60000});
}

TEST_CASE("cluster config errors name the file, the key and the expectation",
          "[config][cluster]") {
  CHECK(load_error("[cluster]\nenabled = true\n")
        == "ferry.toml: cluster.name: expected a node name when "
           "cluster.enabled = true, got \"\"");
  CHECK(load_error("[cluster]\nname = \"a b\"\n")
        == "ferry.toml: cluster.name: expected 1 to 56 lowercase letters, "
           "digits, '-', '_' or '.', starting with a letter or digit, got "
           "\"a b\"");
  // Upper case and a leading '.' are refused: the name is part of a sync
  // server id (`cluster.NAME`).
  auto name_error = [](const std::string& name) {
    return load_error("[cluster]\nname = \"" + name + "\"\n");
  };
  CHECK(name_error("Node").find("cluster.name: expected") != std::string::npos);
  CHECK(name_error(".n").find("cluster.name: expected") != std::string::npos);
  CHECK(name_error(std::string(57, 'n')).find("cluster.name: expected")
        != std::string::npos);
  CHECK(name_error(std::string(56, 'n')) == "no error");
  CHECK(name_error("node-a.eu_1") == "no error");
  CHECK(load_error("[cluster]\nseeds = [\"10.0.0.1\"]\n")
        == "ferry.toml: cluster.seeds[0]: expected \"host:port\" with a port "
           "in 1..65535, got \"10.0.0.1\"");
  CHECK(load_error("[cluster]\nseeds = [\"h:70000\"]\n")
        == "ferry.toml: cluster.seeds[0]: expected \"host:port\" with a port "
           "in 1..65535, got \"h:70000\"");
  CHECK(load_error("[cluster]\nmembers = [\"abc\"]\n")
        .rfind("ferry.toml: cluster.members[0]: expected", 0)
        == 0);
  CHECK(load_error("[cluster]\nheartbeat_ms = 5000\n")
        == "ferry.toml: cluster.heartbeat_ms: expected less than "
           "cluster.failure_timeout_ms (5000), got 5000");
  CHECK(load_error("[cluster]\nfailure_timeout_ms = 500\n")
        == "ferry.toml: cluster.failure_timeout_ms: expected more than "
           "cluster.heartbeat_ms (1000), got 500");
  CHECK(load_error("[cluster]\nhandover_timeout_ms = 30001\n")
        == "ferry.toml: cluster.handover_timeout_ms: expected at most 30000, "
           "got 30001");
  CHECK(load_error("[cluster]\nforget_after_ms = 5000\n")
        == "ferry.toml: cluster.forget_after_ms: expected more than "
           "cluster.failure_timeout_ms (5000), got 5000");
  CHECK(load_error("[cluster]\nfailure_timeout_ms = 3600000\n")
        == "ferry.toml: cluster.failure_timeout_ms: expected less than "
           "cluster.forget_after_ms (3600000), got 3600000");
  CHECK(load_error("[cluster]\nbogus = 1\n")
        == "ferry.toml: cluster.bogus: unknown key");
}

TEST_CASE("the cluster port needs mutual TLS off loopback",
          "[config][cluster]") {
  CHECK(load_error("[cluster]\naddress = \"0.0.0.0\"\n")
        == "ferry.toml: cluster.address: expected a loopback address "
           "(127.0.0.1 or ::1) unless cluster.tls sets certfile, keyfile and "
           "cafile: the cluster port must not speak in the clear off "
           "loopback, got \"0.0.0.0\"");
  CHECK(load_error("[cluster]\n[cluster.tls]\ncertfile = \"a.pem\"\n")
        == "ferry.toml: cluster.tls.keyfile: expected a PEM file path when "
           "any of cluster.tls is set (mutual TLS needs certificate, key and "
           "CA), got \"\"");
  CHECK(load_error("[cluster]\n[cluster.tls]\ncertfile = \"a.pem\"\nkeyfile "
                   "= \"a.key\"\n")
        == "ferry.toml: cluster.tls.cafile: expected a PEM file path when "
           "any of cluster.tls is set (mutual TLS needs certificate, key and "
           "CA), got \"\"");
  CHECK(load_error("[cluster]\naddress = \"::1\"\n") == "no error");
}
