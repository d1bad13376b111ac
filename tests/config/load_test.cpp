#include "config/config.hpp"

#include "config_test_util.hpp"
#include "messages/error.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace ferry::config;
using ferry::config::test::error_text;
using ferry::config::test::load_error;

namespace {

/// A scratch directory removed when the test ends, unique per process so
/// parallel ctest runs do not collide.
struct scratch_dir {
  std::filesystem::path path = std::filesystem::temp_directory_path()
                               / ("ferry_config_test_" + std::to_string(getpid()));
  scratch_dir() {
    std::filesystem::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string write(const std::string& name, const std::string& text) {
    auto file = path / name;
    std::ofstream{file} << text;
    return file.string();
  }
};

} // namespace

TEST_CASE("an empty file gives the defaults", "[config]") {
  auto result = load_string("", "ferry.toml");
  REQUIRE(result);
  CHECK(*result == config{});
  CHECK(result->source.empty());
  CHECK(result->relay.address == "127.0.0.1");
  CHECK(result->relay.port == 7447);
  CHECK(result->admin.port == 7448);
  CHECK(result->console.port == 7449);
  CHECK(result->store.path == "./ferry-data");
  CHECK(result->store.purge_interval == std::chrono::seconds{300});
  CHECK(result->relay.limits.default_limit == 500);
  CHECK(result->relay.limits.max_connections == 10000);
  CHECK(result->relay.limits.max_connections_per_ip == 0);
  CHECK(result->relay.limits.max_outbound_total_mb == 512);
  CHECK(result->relay.limits.max_inbound_total_mb == 32);
  CHECK(result->log.level == "info");
}

TEST_CASE("every section and key parses", "[config]") {
  auto result = load_string(R"(
[relay]
address = "0.0.0.0"
port = 8000
name = "mirror"
description = "a test relay"
contact = "mailto:ops@example.org"
icon = "https://example.org/icon.png"
operator_pubkey = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"

[relay.limits]
max_frame_bytes = 1000
max_subscriptions = 2
max_filters = 3
max_limit = 40
default_limit = 40
max_subscription_id_length = 5
max_future_seconds = 6
max_outbound_bytes = 7000
max_inflight_messages = 8

[admin]
address = "::1"
port = 8001

[console]
address = "::1"
port = 8002
secret = "hunter2"

[store]
path = "/var/lib/ferry"
block_cache_mb = 9
write_buffer_mb = 10
sync_writes = true
purge_interval_seconds = 11

[ingest]
verifiers = 12
writer_batch_max = 13

[log]
level = "debug"

[node]
key_file = "/etc/ferry/node.key"
)",
                            "ferry.toml");
  REQUIRE(result);
  const auto& relay = result->relay;
  CHECK(relay.address == "0.0.0.0");
  CHECK(relay.port == 8000);
  CHECK(relay.name == "mirror");
  CHECK(relay.description == "a test relay");
  CHECK(relay.contact == "mailto:ops@example.org");
  CHECK(relay.icon == "https://example.org/icon.png");
  CHECK(relay.operator_pubkey
        == "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");
  const auto& limits = relay.limits;
  CHECK(limits.max_frame_bytes == 1000);
  CHECK(limits.max_subscriptions == 2);
  CHECK(limits.max_filters == 3);
  CHECK(limits.max_limit == 40);
  CHECK(limits.default_limit == 40);
  CHECK(limits.max_subscription_id_length == 5);
  CHECK(limits.max_future_seconds == 6);
  CHECK(limits.max_outbound_bytes == 7000);
  CHECK(limits.max_inflight_messages == 8);
  CHECK(result->admin.address == "::1");
  CHECK(result->admin.port == 8001);
  CHECK(result->console.address == "::1");
  CHECK(result->console.port == 8002);
  CHECK(result->store.path == "/var/lib/ferry");
  CHECK(result->store.block_cache_mb == 9);
  CHECK(result->store.write_buffer_mb == 10);
  CHECK(result->store.sync_writes);
  CHECK(result->store.purge_interval == std::chrono::seconds{11});
  CHECK(result->ingest.verifiers == 12);
  CHECK(result->ingest.writer_batch_max == 13);
  CHECK(result->log.level == "debug");
  CHECK(result->node.key_file == "/etc/ferry/node.key");
}

TEST_CASE("relay.read_ahead_mb is read and checked", "[config]") {
  CHECK(relay_config{}.read_ahead_mb == 32);
  auto result = load_string("[relay]\nread_ahead_mb = 8\n", "ferry.toml");
  REQUIRE(result);
  CHECK(result->relay.read_ahead_mb == 8);
  // 0 turns read-ahead off.
  result = load_string("[relay]\nread_ahead_mb = 0\n", "ferry.toml");
  REQUIRE(result);
  CHECK(result->relay.read_ahead_mb == 0);
  CHECK(load_error("[relay]\nread_ahead_mb = -1\n")
        == "ferry.toml: relay.read_ahead_mb: expected an integer in "
           "0..1048576, got -1");
  CHECK(load_error("[relay]\nread_ahead_mb = true\n")
        == "ferry.toml: relay.read_ahead_mb: expected an integer in "
           "0..1048576, got true");
}

TEST_CASE("the negentropy section is read and checked", "[config]") {
  auto result = load_string(R"([relay.negentropy]
enabled = false
max_items = 10
max_sessions_per_connection = 2
idle_timeout_seconds = 3
frame_size_limit = 4096
max_memory_mb = 64
)",
                            "ferry.toml");
  REQUIRE(result);
  const auto& neg = result->relay.negentropy;
  CHECK(neg.max_memory_mb == 64);
  CHECK(negentropy_config{}.max_memory_mb == 256);
  CHECK_FALSE(neg.enabled);
  CHECK(neg.max_items == 10);
  CHECK(neg.max_sessions_per_connection == 2);
  CHECK(neg.idle_timeout == std::chrono::seconds{3});
  CHECK(neg.frame_size_limit == 4096);
  CHECK(load_error("[relay.negentropy]\nframe_size_limit = 4095\n")
        == "ferry.toml: relay.negentropy.frame_size_limit: expected an "
           "integer of at least 4096, got 4095");
  CHECK(load_error("[relay.negentropy]\nmax_items = 0\n")
        == "ferry.toml: relay.negentropy.max_items: expected a positive "
           "integer, got 0");
  CHECK(load_error("[relay.negentropy]\nmax_memory_mb = 0\n")
        == "ferry.toml: relay.negentropy.max_memory_mb: expected an integer "
           "in 1..1048576, got 0");
  CHECK(load_error("[relay.negentropy]\nmax_memory_mb = \"1G\"\n")
        == "ferry.toml: relay.negentropy.max_memory_mb: expected an integer "
           "in 1..1048576, got \"1G\"");
  CHECK(load_error("[relay.negentropy]\nenabled = \"yes\"\n")
        == "ferry.toml: relay.negentropy.enabled: expected a boolean, got "
           "\"yes\"");
  CHECK(load_error("[relay.negentropy]\nidle_timeout = 5\n")
        == "ferry.toml: relay.negentropy.idle_timeout: unknown key");
}

TEST_CASE("the relay tls section is read and its pairs checked", "[config]") {
  auto result = load_string(R"([relay.tls]
certfile = "/etc/ferry/cert.pem"
keyfile = "/etc/ferry/key.pem"
client_ca_file = "/etc/ferry/clients.pem"
)",
                            "ferry.toml");
  REQUIRE(result);
  const auto& tls = result->relay.tls;
  CHECK(tls.enabled());
  CHECK(tls.certfile == "/etc/ferry/cert.pem");
  CHECK(tls.keyfile == "/etc/ferry/key.pem");
  CHECK(tls.client_ca_file == "/etc/ferry/clients.pem");
  CHECK_FALSE(config{}.relay.tls.enabled());
  CHECK(load_error("[relay.tls]\ncertfile = \"cert.pem\"\n")
        == "ferry.toml: relay.tls.keyfile: expected the path of the "
           "certificate's PEM private key when relay.tls.certfile is set, "
           "got \"\"");
  CHECK(load_error("[relay.tls]\ncertfile = \"cert.pem\"\nkeyfile = \"\"\n")
        == "ferry.toml: relay.tls.keyfile: expected the path of the "
           "certificate's PEM private key when relay.tls.certfile is set, "
           "got \"\"");
  CHECK(load_error("[relay.tls]\nkeyfile = \"key.pem\"\n")
        == "ferry.toml: relay.tls.certfile: expected the path of a PEM "
           "certificate when relay.tls.keyfile is set, got \"\"");
  CHECK(load_error("[relay.tls]\nclient_ca_file = \"ca.pem\"\n")
        == "ferry.toml: relay.tls.certfile: expected the path of a PEM "
           "certificate when relay.tls.client_ca_file is set (client "
           "certificates need TLS), got \"\"");
  CHECK(load_error("[relay.tls]\ncertfile = 1\n")
        == "ferry.toml: relay.tls.certfile: expected a string, got 1");
  CHECK(load_error("[relay.tls]\ncafile = \"x\"\n")
        == "ferry.toml: relay.tls.cafile: unknown key");
}

TEST_CASE("keys left out keep their defaults", "[config]") {
  auto result = load_string("[relay]\nport = 9000\n", "ferry.toml");
  REQUIRE(result);
  auto expected = config{};
  expected.relay.port = 9000;
  CHECK(*result == expected);
}

TEST_CASE("dotted keys and inline tables work like sections", "[config]") {
  auto result = load_string(
    "relay.limits.max_limit = 100\nrelay.limits.default_limit = 10\n"
    "admin = { port = 9001 }\n",
    "ferry.toml");
  REQUIRE(result);
  CHECK(result->relay.limits.max_limit == 100);
  CHECK(result->relay.limits.default_limit == 10);
  CHECK(result->admin.port == 9001);
  CHECK(result->admin.address == "127.0.0.1");
}

TEST_CASE("errors carry the invalid_configuration code", "[config]") {
  auto result = load_string("[relay]\nport = 70000\n", "ferry.toml");
  REQUIRE_FALSE(result);
  CHECK(result.error() == caf::make_error(ferry::ec::invalid_configuration));
}

TEST_CASE("an unknown key or section is named", "[config]") {
  CHECK(load_error("[relay]\nprot = 7447\n")
        == "ferry.toml: relay.prot: unknown key");
  CHECK(load_error("[relay.limits]\nmax_limt = 1\n")
        == "ferry.toml: relay.limits.max_limt: unknown key");
  CHECK(load_error("verbose = true\n") == "ferry.toml: verbose: unknown key");
  CHECK(load_error("[relays]\nport = 1\n")
        == "ferry.toml: relays: unknown section");
  CHECK(load_error("[relay.limit]\nmax_limit = 1\n")
        == "ferry.toml: relay.limit: unknown section");
  CHECK(load_error("[relay]\n\"a.b\" = 1\n")
        == "ferry.toml: relay.\"a.b\": unknown key");
  CHECK(load_error("[sync]\nservers = []\n")
        == "ferry.toml: sync.servers: unknown key");
}

TEST_CASE("a wrong type names the key, the expectation and the value",
          "[config]") {
  CHECK(load_error("[relay]\nport = \"abc\"\n")
        == "ferry.toml: relay.port: expected an integer in 0..65535 (0: any free port), got \"abc\"");
  CHECK(load_error("[relay]\nname = 5\n")
        == "ferry.toml: relay.name: expected a string, got 5");
  CHECK(load_error("[store]\nsync_writes = 1\n")
        == "ferry.toml: store.sync_writes: expected a boolean, got 1");
  CHECK(load_error("[store]\nsync_writes = \"yes\"\n")
        == "ferry.toml: store.sync_writes: expected a boolean, got \"yes\"");
  CHECK(load_error("[relay.limits]\nmax_limit = 1.5\n")
        == "ferry.toml: relay.limits.max_limit: expected a positive integer, "
           "got 1.5");
  CHECK(load_error("[admin]\nport = [7448]\n")
        == "ferry.toml: admin.port: expected an integer in 0..65535 (0: any free port), got an "
           "array");
  CHECK(load_error("relay = 5\n")
        == "ferry.toml: relay: expected a table, got 5");
  CHECK(load_error("[log]\nlevel = { name = \"info\" }\n")
        == "ferry.toml: log.level: expected one of trace, debug, info, warn, "
           "error, critical or off, got a table");
}

TEST_CASE("a value out of range is refused", "[config]") {
  CHECK(load_error("[console]\nport = 65536\n")
        == "ferry.toml: console.port: expected an integer in 0..65535 (0: any free port), got "
           "65536");
  CHECK(load_error("[admin]\nport = -1\n")
        == "ferry.toml: admin.port: expected an integer in 0..65535 (0: any free port), got -1");
  CHECK(load_error("[relay.limits]\nmax_filters = 0\n")
        == "ferry.toml: relay.limits.max_filters: expected a positive integer, "
           "got 0");
  CHECK(load_error("[relay.limits]\nmax_connections = 0\n")
        == "ferry.toml: relay.limits.max_connections: expected a positive "
           "integer, got 0");
  CHECK(load_error("[relay.limits]\nmax_connections_per_ip = -1\n")
        == "ferry.toml: relay.limits.max_connections_per_ip: expected a "
           "non-negative integer (0: no cap), got -1");
  CHECK(load_error("[relay.limits]\nmax_outbound_total_mb = 0\n")
        == "ferry.toml: relay.limits.max_outbound_total_mb: expected an integer "
           "in 1..1048576, got 0");
  CHECK(load_error("[relay.limits]\nmax_inbound_total_mb = 2000000\n")
        == "ferry.toml: relay.limits.max_inbound_total_mb: expected an integer "
           "in 1..1048576, got 2000000");
  CHECK(load_error("[store]\nblock_cache_mb = -5\n")
        == "ferry.toml: store.block_cache_mb: expected a positive integer, got "
           "-5");
  CHECK(load_error("[store]\npurge_interval_seconds = 0\n")
        == "ferry.toml: store.purge_interval_seconds: expected an integer in "
           "1..3153600000, got 0");
  CHECK(load_error("[relay.limits]\nmax_future_seconds = 9999999999\n")
        == "ferry.toml: relay.limits.max_future_seconds: expected an integer "
           "in 1..3153600000, got 9999999999");
  CHECK(load_error("[ingest]\nverifiers = -1\n")
        == "ferry.toml: ingest.verifiers: expected a non-negative integer, got "
           "-1");
  CHECK(load_error("[store]\npath = \"\"\n")
        == "ferry.toml: store.path: expected a non-empty path, got \"\"");
  CHECK(load_error("[node]\nkey_file = \"\"\n")
        == "ferry.toml: node.key_file: expected a non-empty path, got \"\"");
  CHECK(load_error("[log]\nlevel = \"verbose\"\n")
        == "ferry.toml: log.level: expected one of trace, debug, info, warn, "
           "error, critical or off, got \"verbose\"");
}

TEST_CASE("default_limit may not exceed max_limit", "[config]") {
  CHECK(load_error("[relay.limits]\ndefault_limit = 6000\n")
        == "ferry.toml: relay.limits.default_limit: expected at most "
           "relay.limits.max_limit (5000), got 6000");
  CHECK(load_error("[relay.limits]\nmax_limit = 100\n")
        == "ferry.toml: relay.limits.max_limit: expected at least "
           "relay.limits.default_limit (500), got 100");
  CHECK(load_error("[relay.limits]\nmax_limit = 100\ndefault_limit = 200\n")
        == "ferry.toml: relay.limits.default_limit: expected at most "
           "relay.limits.max_limit (100), got 200");
}

TEST_CASE("addresses must be IP literals", "[config]") {
  for (auto good : {"127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1"}) {
    INFO(good);
    CHECK(load_error(std::string{"[relay]\naddress = \""} + good + "\"\n")
          == "no error");
  }
  CHECK(load_error("[relay]\naddress = \"localhost\"\n")
        == "ferry.toml: relay.address: expected an IPv4 or IPv6 address, got "
           "\"localhost\"");
  CHECK(load_error("[admin]\naddress = \"127.0.0.256\"\n")
        == "ferry.toml: admin.address: expected an IPv4 or IPv6 address, got "
           "\"127.0.0.256\"");
  CHECK(load_error("[console]\naddress = \"[::1]\"\n")
        == "ferry.toml: console.address: expected an IPv4 or IPv6 address, got "
           "\"[::1]\"");
  CHECK(load_error("[relay]\naddress = \"\"\n")
        == "ferry.toml: relay.address: expected an IPv4 or IPv6 address, got "
           "\"\"");
}

TEST_CASE("strings in errors are quoted and escaped", "[config]") {
  CHECK(load_error("[relay]\naddress = \"a\\\"b\\n\"\n")
        == "ferry.toml: relay.address: expected an IPv4 or IPv6 address, got "
           "\"a\\\"b\\n\"");
}

TEST_CASE("operator_pubkey is empty or 64 lowercase hex", "[config]") {
  auto upper = std::string(64, 'A');
  CHECK(load_error("[relay]\noperator_pubkey = \"" + upper + "\"\n")
        == "ferry.toml: relay.operator_pubkey: expected 64 lowercase hex "
           "characters or an empty string, got \""
             + upper + "\"");
  CHECK(load_error("[relay]\noperator_pubkey = \"abc\"\n")
        == "ferry.toml: relay.operator_pubkey: expected 64 lowercase hex "
           "characters or an empty string, got \"abc\"");
  CHECK(load_error("[relay]\noperator_pubkey = \"\"\n") == "no error");
}

TEST_CASE("a syntax error names the file, line and column", "[config]") {
  CHECK_THAT(load_error("[relay]\nport = = 1\n"),
             Catch::Matchers::StartsWith("ferry.toml:2:8: "));
  CHECK_THAT(load_error("[relay]\nport = 1\nport = 2\n"),
             Catch::Matchers::StartsWith("ferry.toml:3:")
               && Catch::Matchers::Contains("port"));
  CHECK_THAT(load_error("[relay\n"),
             Catch::Matchers::StartsWith("ferry.toml:1:"));
}

TEST_CASE("load_file reads a file and names it in errors", "[config]") {
  scratch_dir dir;
  SECTION("a good file") {
    auto path = dir.write("good.toml", "[log]\nlevel = \"warn\"\n");
    auto result = load_file(path);
    REQUIRE(result);
    CHECK(result->log.level == "warn");
    CHECK(result->source == path);
  }
  SECTION("a bad value") {
    auto path = dir.write("bad.toml", "[relay]\nport = 70000\n");
    auto result = load_file(path);
    REQUIRE_FALSE(result);
    CHECK(error_text(result.error())
          == path + ": relay.port: expected an integer in 0..65535 (0: any free port), got 70000");
  }
  SECTION("a syntax error") {
    auto path = dir.write("syntax.toml", "\n\n[relay\n");
    auto result = load_file(path);
    REQUIRE_FALSE(result);
    CHECK_THAT(error_text(result.error()),
               Catch::Matchers::StartsWith(path + ":3:"));
  }
  SECTION("a missing file") {
    auto path = (dir.path / "missing.toml").string();
    auto result = load_file(path);
    REQUIRE_FALSE(result);
    CHECK(error_text(result.error())
          == path
               + ": cannot read the config file: No such file or directory");
  }
  SECTION("a directory") {
    auto path = dir.path.string();
    auto result = load_file(path);
    REQUIRE_FALSE(result);
    CHECK(error_text(result.error())
          == path + ": cannot read the config file: it is a directory");
  }
}

TEST_CASE("admin auth, console secret and supervision keys parse", "[config]") {
  auto result = load_string(
    "[admin]\ntoken = \"t0k\"\nnip98_pubkeys = [\""
      + std::string(64, 'a')
      + "\"]\npublic_health = true\n[console]\naddress = \"127.0.0.2\"\n"
        "secret = \"s3\"\nfault_injection = true\n[supervision]\nbase_ms = 50\n"
        "cap_ms = 1000\njitter = 0.5\nstable_after_seconds = 5\n"
        "max_restarts = 3\nwindow_seconds = 10\n",
    "ferry.toml");
  REQUIRE(result);
  CHECK(result->admin.token == "t0k");
  CHECK(result->admin.nip98_pubkeys == std::vector<std::string>{std::string(64, 'a')});
  CHECK(result->admin.public_health);
  CHECK(result->console.secret == "s3");
  CHECK(result->console.fault_injection);
  CHECK(result->supervision.base_ms == 50);
  CHECK(result->supervision.jitter == 0.5);
  CHECK(result->supervision.max_restarts == 3);
}

TEST_CASE("the console stays on loopback, secret or not", "[config]") {
  const std::string expected
    = "ferry.toml: console.address: expected a loopback address (127.0.0.1 "
      "or ::1): the console port has no TLS yet, so it may not listen off "
      "loopback; reach it through an SSH tunnel, got ";
  CHECK(load_error("[console]\naddress = \"0.0.0.0\"\n")
        == expected + "\"0.0.0.0\"");
  CHECK(load_error("[console]\naddress = \"10.1.2.3\"\nsecret = \"s3\"\n")
        == expected + "\"10.1.2.3\"");
  CHECK(load_string("[console]\naddress = \"::1\"\n", "ferry.toml"));
  CHECK(load_error("[admin]\nnip98_pubkeys = [\"ABC\"]\n")
        == "ferry.toml: admin.nip98_pubkeys[0]: expected 64 lowercase hex "
           "characters or an empty string, got \"ABC\"");
  CHECK(load_error("[supervision]\njitter = 1.5\n")
        == "ferry.toml: supervision.jitter: expected a number in 0..1, got 1.5");
}

TEST_CASE("the grasp section parses and normalizes its relays", "[config]") {
  auto result = load_string(R"(
[grasp]
enabled = true
service_domain = "git.example.com:8443"
bootstrap_relays = ["wss://Relay.Example/", "ws://127.0.0.1:7000"]
batch_window_ms = 250
tick_seconds = 30
resync_after_seconds = 600
overlap_window_seconds = 60
reconcile_min_seconds = 3600
reconcile_max_seconds = 7200
group_size = 50
max_filters_per_subscription = 4
max_filters_per_relay = 40
batch_timeout_seconds = 120
)",
                            "ferry.toml");
  if (!result)
    FAIL(error_text(result.error()));
  const auto& g = result->grasp;
  CHECK(g.enabled);
  CHECK(g.service_domain == "git.example.com:8443");
  CHECK(g.bootstrap_relays
        == std::vector<std::string>{"wss://relay.example", "ws://127.0.0.1:7000"});
  CHECK(g.batch_window == std::chrono::milliseconds{250});
  CHECK(g.tick == std::chrono::seconds{30});
  CHECK(g.resync_after == std::chrono::seconds{600});
  CHECK(g.overlap_window == std::chrono::seconds{60});
  CHECK(g.reconcile_min == std::chrono::seconds{3600});
  CHECK(g.reconcile_max == std::chrono::seconds{7200});
  CHECK(g.group_size == 50);
  CHECK(g.max_filters_per_subscription == 4);
  CHECK(g.max_filters_per_relay == 40);
  CHECK(g.batch_timeout == std::chrono::seconds{120});
}

TEST_CASE("bad grasp values name the key", "[config]") {
  CHECK(load_error("[grasp]\nenabled = true\n")
        == "ferry.toml: grasp.service_domain: expected a host name or "
           "host:port when grasp.enabled = true, got true");
  CHECK(load_error("[grasp]\nservice_domain = \"wss://git.example.com\"\n")
        == "ferry.toml: grasp.service_domain: expected a host name or "
           "host:port (e.g. \"git.example.com\"), or an empty string, got "
           "\"wss://git.example.com\"");
  CHECK(load_error("[grasp]\nbootstrap_relays = [\"https://x.example\"]\n")
        == "ferry.toml: grasp.bootstrap_relays[0]: expected a ws:// or wss:// "
           "URL, got \"https://x.example\"");
  CHECK(load_error("[grasp]\nbootstrap_relays = [\"wss://a.example\", "
                   "\"wss://A.example/\"]\n")
        == "ferry.toml: grasp.bootstrap_relays[1]: expected a URL not listed "
           "before, got \"wss://A.example/\"");
  CHECK(load_error("[grasp]\ngroup_size = 1001\n")
        == "ferry.toml: grasp.group_size: expected an integer in 1..1000, got "
           "1001");
  CHECK(load_error("[grasp]\nbatch_window_ms = 0\n")
        == "ferry.toml: grasp.batch_window_ms: expected an integer in "
           "1..3153600000000, got 0");
  CHECK(load_error("[grasp]\nreconcile_max_seconds = 3600\n")
        == "ferry.toml: grasp.reconcile_max_seconds: expected at least "
           "grasp.reconcile_min_seconds (82800), got 3600");
  CHECK(load_error("[grasp]\nreconcile_min_seconds = 99999\n")
        == "ferry.toml: grasp.reconcile_min_seconds: expected at most "
           "grasp.reconcile_max_seconds (90000), got 99999");
}

TEST_CASE("the disk space reserve is MiB, 0 turns it off", "[config]") {
  CHECK(load_string("", "ferry.toml")->store.reserve_mb == 64);
  CHECK(load_string("[store]\nreserve_mb = 0\n", "ferry.toml")->store.reserve_mb
        == 0);
  CHECK(load_string("[store]\nreserve_mb = 512\n", "ferry.toml")->store.reserve_mb
        == 512);
  CHECK(load_error("[store]\nreserve_mb = -1\n")
        == "ferry.toml: store.reserve_mb: expected MiB in 0..1073741824 (0: no "
           "reserve), got -1");
}
