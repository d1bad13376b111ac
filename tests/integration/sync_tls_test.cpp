// Outbound sync over TLS between two real `ferry node` processes: node A serves
// its relay over wss:// with a certificate from a CA made when the test runs,
// node B syncs from it with the [[sync.server]] `tls` settings (CA file, SPKI
// pins, client certificate) and must mirror A, or refuse with the right error
// and hold nothing.

#include "net/io_runtime.hpp"
#include "net/ws_client.hpp"
#include "tests/fixtures/tls_pki.hpp"
#include "tests/integration/sync_helpers.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <mutex>
#include <utility>

using namespace ferry;
using namespace ferry::sync_test;
using namespace std::chrono_literals;

namespace {

/// Node A's config: the relay serves TLS with the PKI's server certificate;
/// with `client_ca`, clients need a certificate signed by it.
std::string tls_node_config(const test::temp_dir& dir,
                            const test::test_pki& pki,
                            const std::string& client_ca = {}) {
  test::node_settings s;
  s.extra = "[relay.tls]\ncertfile = \"" + pki.server_cert_file()
            + "\"\nkeyfile = \"" + pki.server_key_file() + "\"\n";
  if (!client_ca.empty())
    s.extra += "client_ca_file = \"" + client_ca + "\"\n";
  return test::node_config_with(dir, s);
}

/// TLS options of a client that trusts the test CA.
net::tls_options trusting(const test::test_pki& pki) {
  net::tls_options tls;
  tls.ca_certfile = pki.ca_file();
  return tls;
}

/// Publishes `events` over wss:// and requires an accepting OK for each.
void publish_tls(uint16_t port, const net::tls_options& tls,
                 const std::vector<nostr::event>& events) {
  struct inbox {
    std::mutex mtx;
    bool open = false;
    bool closed = false;
    std::string close_reason;
    std::vector<std::string> oks;
  };
  auto box = std::make_shared<inbox>();
  net::ws_client_callbacks callbacks;
  callbacks.on_open = [box] {
    std::lock_guard<std::mutex> guard{box->mtx};
    box->open = true;
  };
  callbacks.on_frame = [box](std::string frame) {
    std::lock_guard<std::mutex> guard{box->mtx};
    if (frame.rfind("[\"OK\"", 0) == 0)
      box->oks.push_back(std::move(frame));
  };
  callbacks.on_close = [box](net::failure_kind kind, const std::string& why) {
    std::lock_guard<std::mutex> guard{box->mtx};
    box->closed = true;
    box->close_reason = net::to_string(kind) + ": " + why;
  };
  net::io_runtime io{1};
  auto conn = net::connect_ws(io.context(),
                              "wss://127.0.0.1:" + std::to_string(port), tls,
                              std::move(callbacks));
  for (auto& ev : events)
    conn->send(std::make_shared<const std::string>(event_frame(ev)));
  auto all_answered = test::poll_until(
    [&] {
      std::lock_guard<std::mutex> guard{box->mtx};
      return box->closed || box->oks.size() == events.size();
    },
    10s);
  std::lock_guard<std::mutex> guard{box->mtx};
  INFO("closed: " << box->close_reason);
  REQUIRE(all_answered);
  REQUIRE(box->oks.size() == events.size());
  for (auto& ok : box->oks) {
    INFO(ok);
    CHECK(ok.find(",true,") != std::string::npos);
  }
  conn->close("done");
}

/// The NIP-11 document of a TLS relay, fetched over https://.
std::string relay_info_over_https(uint16_t port, const net::tls_options& tls) {
  net::io_runtime io{1};
  std::promise<net::http_get_result> got;
  net::http_get(io.context(), "https://localhost:" + std::to_string(port) + "/",
                tls, {{"Accept", "application/nostr+json"}},
                [&got](net::http_get_result r) {
                  got.set_value(std::move(r));
                });
  auto res = got.get_future().get();
  INFO(net::to_string(res.failure) << ": " << res.error);
  REQUIRE(res.failure == net::failure_kind::none);
  CHECK(res.status == 200);
  return res.body;
}

/// The `tls` table of a server definition that trusts the test CA, with
/// `pins` (already formatted as TOML inline tables) and `extra` keys.
std::string tls_table(const test::test_pki& pki, const std::string& pins,
                      const std::string& extra = {}) {
  return "{ mode = \"required\", ca_certfile = \"" + pki.ca_file()
         + "\", pins = [" + pins + "]" + extra + " }";
}

std::string pin(const std::string& value) {
  return "{ type = \"spki_sha256\", value = \"" + value + "\" }";
}

/// A valid pin that matches no key of the test PKI.
const std::string wrong_pin(64, '0');

/// A server definition for B pointing at A's wss:// URL.
server_options over_tls(uint16_t a_port, const std::string& tls,
                        const std::string& host = "127.0.0.1") {
  server_options o;
  o.url = "wss://" + host + ":" + std::to_string(a_port);
  o.tls = tls;
  return o;
}

/// Waits until B's sync reports match `pattern`; fails with the reports and
/// both logs when they never do.
void require_reported(node& a, node& b, uint16_t b_admin,
                      const std::string& pattern) {
  std::regex re{pattern};
  std::string reports;
  bool seen = test::poll_until(
    [&] {
      reports = sync_reports(b_admin, "node-a");
      return std::regex_search(reports, re);
    },
    15s);
  if (!seen)
    FAIL("B's sync reports never matched /" << pattern << "/:\n"
                                            << reports
                                            << logs(&a.process, &b.process));
}

/// Node A serving wss:// with the test PKI's certificate and ten events, and
/// the directory of a node B that is to sync from it.
struct tls_remote : two_nodes {
  test::test_pki pki;
  node a{tls_node_config(dir_a, pki)};

  tls_remote() {
    publish_tls(a.port, trusting(pki),
                make_events(keys, 10, test::unix_now() - 10, 1, "over tls"));
  }
};

/// B refused to sync: its own health fails with `reason` (where an
/// operator's alert looks) and it holds nothing.
void check_refused(node& b, uint16_t b_admin, const std::string& reason) {
  auto health = admin(b_admin, "GET", "/health");
  CHECK(health.response.status == 503);
  CHECK_THAT(health.response.body, Catch::Contains(reason));
  CHECK(count_of(b.port, "{}") == 0);
}

/// Waits (bounded) for a process that should stop on its own.
bool exits(test::ferry_process& p) {
  auto stopped = test::poll_until([&] { return !p.is_running(); }, 20s);
  if (!stopped)
    FAIL_CHECK("still running:\n" << test::output_tail(p));
  return stopped;
}

} // namespace

TEST_CASE("wss sync with the right SPKI pin mirrors the remote, also when "
          "only the second of two pins matches",
          "[integration][sync][tls]") {
  test::test_pki pki;
  test::temp_dir dir_a, dir_b1, dir_b2;
  auto keys = nostr::generate_keypair();
  auto now = test::unix_now();
  node a{tls_node_config(dir_a, pki)};
  auto a_identity = test::wait_for_identity(a.process);
  REQUIRE(a_identity);
  auto notes = make_events(keys, 40, now - 100, 1, "over tls");
  auto reactions = make_events(keys, 10, now - 50, 7, "+");
  publish_tls(a.port, trusting(pki), notes);
  publish_tls(a.port, trusting(pki), reactions);
  // NIP-11 is served over https:// on the same port, under the same name.
  CHECK(relay_info_over_https(a.port, trusting(pki)).find(
          "\"self\":\"" + *a_identity + "\"")
        != std::string::npos);

  // B1 checks A's identity through NIP-11 over the same TLS settings.
  auto right = over_tls(a.port, tls_table(pki, pin(pki.server_spki_hex())));
  right.relay_info_mode = "required";
  right.auth_pubkey = *a_identity;
  node b1{b_config(dir_b1, sync_server_toml(a.port, right))};
  // B2 reaches A by name, with a wrong pin first and the base64 form of the
  // right one second.
  auto second = over_tls(a.port,
                         tls_table(pki, pin(wrong_pin) + ", "
                                          + pin(pki.server_spki_base64())),
                         "localhost");
  node b2{b_config(dir_b2, sync_server_toml(a.port, second))};

  require_exactly(a, b1, kind1_all, id_set(notes));
  require_exactly(a, b2, kind1_all, id_set(notes));
  CHECK(count_of(b1.port, R"({"kinds":[7]})") == 0);

  // Live over TLS too.
  auto fresh = make_events(keys, 5, test::unix_now(), 1, "live over tls");
  publish_tls(a.port, trusting(pki), fresh);
  auto all = id_set(notes);
  for (auto& ev : fresh)
    all.insert(hex_id(ev));
  require_exactly(a, b1, kind1_all, all);
  require_exactly(a, b2, kind1_all, all);
  check_clean_shutdown(b1, b2, a);
}

TEST_CASE_METHOD(tls_remote,
                 "wss sync with a wrong SPKI pin is refused with pin_mismatch",
                 "[integration][sync][tls]") {
  auto wrong = over_tls(a.port, tls_table(pki, pin(wrong_pin)));
  node b{b_config(dir_b, sync_server_toml(a.port, wrong))};
  auto b_admin = b.admin_port();
  // Classified as a pin failure, naming the key the remote presented.
  require_reported(a, b, b_admin,
                   "pin: pin_mismatch: " + pki.server_spki_hex());
  CHECK_THAT(sync_reports(b_admin, "node-a"),
             Catch::Contains("\"status\":\"degraded\""));
  // A pin mismatch does not pass by itself.
  check_refused(b, b_admin, "sync server node-a fails: pin: pin_mismatch");
  check_clean_shutdown(b, a);
}

TEST_CASE_METHOD(tls_remote,
                 "wss sync without the CA file fails certificate verification",
                 "[integration][sync][tls]") {
  // The system store does not know the test CA; the right pin alone does not
  // make an untrusted certificate acceptable.
  auto untrusted = over_tls(a.port, "{ mode = \"required\", pins = ["
                                      + pin(pki.server_spki_hex()) + "] }");
  node b{b_config(dir_b, sync_server_toml(a.port, untrusted))};
  auto b_admin = b.admin_port();
  require_reported(a, b, b_admin,
                   "tls: tls handshake: certificate verify failed");
  CHECK_THAT(sync_reports(b_admin, "node-a"),
             !Catch::Contains("pin_mismatch"));
  check_refused(b, b_admin, "sync server node-a fails: tls: tls handshake");
  check_clean_shutdown(b, a);
}

TEST_CASE("a remote requiring client certificates syncs to a node with one "
          "and refuses a node without",
          "[integration][sync][tls]") {
  test::test_pki pki;
  test::temp_dir dir_a, dir_with, dir_without;
  auto keys = nostr::generate_keypair();
  node a{tls_node_config(dir_a, pki, pki.ca_file())};
  auto with_cert = trusting(pki);
  with_cert.client_certfile = pki.client_cert_file();
  with_cert.client_keyfile = pki.client_key_file();
  auto notes = make_events(keys, 20, test::unix_now() - 10, 1, "mutual");
  publish_tls(a.port, with_cert, notes);

  auto client_keys = ", client_certfile = \"" + pki.client_cert_file()
                     + "\", client_keyfile = \"" + pki.client_key_file() + "\"";
  auto right_pin = pin(pki.server_spki_hex());
  auto with_keys = over_tls(a.port, tls_table(pki, right_pin, client_keys));
  auto without_keys = over_tls(a.port, tls_table(pki, right_pin));
  node with{b_config(dir_with, sync_server_toml(a.port, with_keys))};
  node without{b_config(dir_without, sync_server_toml(a.port, without_keys))};
  require_exactly(a, with, kind1_all, id_set(notes));
  auto without_admin = without.admin_port();
  // With TLS 1.3 the server judges the client's certificate after the client
  // finished its handshake: the refusal arrives as an alert on the first read.
  require_reported(a, without, without_admin,
                   "tls: [^\"]*(certificate required|handshake failure)");
  CHECK_THAT(sync_reports(without_admin, "node-a"),
             Catch::Contains("\"status\":\"degraded\""));
  CHECK(count_of(without.port, "{}") == 0);
  check_clean_shutdown(with, without, a);
}

TEST_CASE("a node whose TLS files are unusable does not start and names the "
          "key",
          "[integration][tls]") {
  test::test_pki pki;
  test::temp_dir dir;
  // Starts a node serving TLS with these files; it must exit with an error.
  // @returns its config's path and its output.
  auto failed_start = [&](const std::string& certfile,
                          const std::string& keyfile) {
    test::node_settings s;
    s.extra = "[relay.tls]\ncertfile = \"" + certfile + "\"\nkeyfile = \""
              + keyfile + "\"\n";
    auto config = test::node_config_with(dir, s);
    test::ferry_process p{{"node", "--config", config}};
    REQUIRE(exits(p));
    CHECK(p.wait() != 0);
    return std::make_pair(config, p.output());
  };
  SECTION("a key of another certificate") {
    auto [config, output]
      = failed_start(pki.server_cert_file(), pki.client_key_file());
    CHECK_THAT(output,
               Catch::Contains(config + ": relay.tls.keyfile: expected the "
                               "private key of the certificate in "
                               + pki.server_cert_file() + ", got "
                               + pki.client_key_file()));
  }
  SECTION("an unreadable certificate file") {
    auto missing = dir.file("missing.pem");
    auto [config, output] = failed_start(missing, pki.server_key_file());
    CHECK_THAT(output,
               Catch::Contains(config + ": relay.tls.certfile: expected a "
                               "readable PEM certificate (chain), got "
                               + missing + " (No such file or directory)"));
  }
}
