// The admin API's access rules against a real node, with raw request lines
// over TCP (HTTP clients normalise targets, so they could not send the odd
// ones): every route x every credential variant x odd targets. Only valid
// credentials on canonical paths may reach a handler; every refusal is
// 400/401/404 with the JSON error body, and changes nothing.

#include "actors/runtime/admin_route.hpp"
#include "messages/nostr/nip98.hpp"
#include "net/request_target.hpp"
#include "tests/fixtures/node_process.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

constexpr const char* admin_token = "auth-matrix-token";

/// One answer read off a raw socket.
struct raw_answer {
  std::string error;
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

/// Sends `bytes` as they are to the admin port and reads until the server
/// closes (every request says `Connection: close`).
raw_answer raw_exchange(uint16_t port, const std::string& bytes) {
  raw_answer result;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    result.error = "socket failed";
    return result;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    result.error = "connect failed";
    return result;
  }
  // The server may answer (and stop reading) before all is sent.
  for (size_t sent = 0; sent < bytes.size();) {
    auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      break;
    sent += static_cast<size_t>(n);
  }
  std::string text;
  char buf[16384];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0)
    text.append(buf, static_cast<size_t>(n));
  ::close(fd);
  auto head_end = text.find("\r\n\r\n");
  if (text.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) {
    result.error = "no HTTP answer: '" + text.substr(0, 200) + "'";
    return result;
  }
  result.status = static_cast<unsigned>(std::stoul(text.substr(9, 3)));
  auto head = text.substr(0, head_end);
  std::string lower_head;
  for (auto c : head)
    lower_head += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (auto pos = lower_head.find("\r\ncontent-type: "); pos != std::string::npos) {
    auto start = pos + 16;
    result.content_type = head.substr(start, head.find("\r\n", start) - start);
  }
  result.body = text.substr(head_end + 4);
  return result;
}

/// The bytes of one request, with a target sent exactly as given; `host`
/// replaces the Host header naming the admin port.
std::string request_bytes(uint16_t port, const std::string& method,
                          const std::string& target,
                          const std::map<std::string, std::string>& headers,
                          const std::string& body,
                          const std::string& host = {}) {
  std::string text = method + " " + target + " HTTP/1.1\r\nHost: "
                     + (host.empty() ? "127.0.0.1:" + std::to_string(port)
                                     : host)
                     + "\r\nConnection: close\r\n";
  for (const auto& [name, value] : headers)
    text += name + ": " + value + "\r\n";
  if (!body.empty())
    text += "Content-Type: application/json\r\n";
  text += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return text;
}

// -- credentials ----------------------------------------------------------------

enum class cred {
  none,
  wrong_bearer,
  bearer,
  nip98_foreign_key,
  nip98_wrong_url,
  nip98_wrong_method,
  nip98_wrong_payload,
  nip98_stale,
  nip98,
};

const std::vector<cred> every_cred{
  cred::none,          cred::wrong_bearer,       cred::bearer,
  cred::nip98_foreign_key, cred::nip98_wrong_url, cred::nip98_wrong_method,
  cred::nip98_wrong_payload, cred::nip98_stale,   cred::nip98};

const char* name_of(cred c) {
  switch (c) {
    case cred::none:
      return "no credentials";
    case cred::wrong_bearer:
      return "wrong bearer";
    case cred::bearer:
      return "right bearer";
    case cred::nip98_foreign_key:
      return "NIP-98 from a key not allowed";
    case cred::nip98_wrong_url:
      return "NIP-98 with a wrong u tag";
    case cred::nip98_wrong_method:
      return "NIP-98 with a wrong method";
    case cred::nip98_wrong_payload:
      return "NIP-98 with a wrong payload hash";
    case cred::nip98_stale:
      return "NIP-98 with a stale created_at";
    case cred::nip98:
      return "valid NIP-98";
  }
  return "?";
}

bool is_valid(cred c) {
  return c == cred::bearer || c == cred::nip98;
}

/// A real node with a token and one NIP-98 admin key; `extra` goes at the
/// end of its config.
struct admin_node {
  explicit admin_node(const std::string& extra = {})
    : config(make_config(extra)), process({"node", "--config", config}) {
    REQUIRE(process.wait_for_port());
    auto admin = test::wait_for_admin_port(process);
    REQUIRE(admin);
    port = *admin;
    // Logged once every subsystem has started: the state the tests compare
    // must not still be growing.
    REQUIRE(test::wait_for_identity(process));
  }

  std::string make_config(const std::string& extra) {
    test::node_settings s;
    s.admin_extra = std::string{"token = \""} + admin_token
                    + "\"\nnip98_pubkeys = [\"" + nostr::to_hex(admin_keys.pubkey)
                    + "\"]\n";
    s.extra = extra;
    return test::node_config_with(dir, s);
  }

  std::string url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(port) + target;
  }

  std::map<std::string, std::string>
  headers(cred c, const std::string& method, const std::string& target,
          const std::string& body) const {
    auto now = test::unix_now();
    auto nip98 = [&](const nostr::keypair& keys, const std::string& u,
                     const std::string& m, const std::string& b, int64_t at) {
      return std::map<std::string, std::string>{
        {"Authorization", nostr::make_http_auth(keys, u, m, b, at)}};
    };
    switch (c) {
      case cred::none:
        return {};
      case cred::wrong_bearer:
        return {{"Authorization", std::string{"Bearer "} + admin_token + "x"}};
      case cred::bearer:
        return {{"Authorization", std::string{"Bearer "} + admin_token}};
      case cred::nip98_foreign_key:
        return nip98(nostr::generate_keypair(), url(target), method, body, now);
      case cred::nip98_wrong_url:
        return nip98(admin_keys, url("/api/v1/other"), method, body, now);
      case cred::nip98_wrong_method:
        return nip98(admin_keys, url(target), method == "GET" ? "POST" : "GET",
                     body, now);
      case cred::nip98_wrong_payload:
        return nip98(admin_keys, url(target), method, body + "tampered", now);
      case cred::nip98_stale:
        return nip98(admin_keys, url(target), method, body, now - 600);
      case cred::nip98:
        return nip98(admin_keys, url(target), method, body, now);
    }
    return {};
  }

  raw_answer send(const std::string& method, const std::string& target,
                  cred c, const std::string& body = {}) const {
    return raw_exchange(port, request_bytes(port, method, target,
                                            headers(c, method, target, body),
                                            body));
  }

  /// A GET with the token on a canonical path, parsed.
  boost::json::value get_json(const std::string& target) const {
    auto res = send("GET", target, cred::bearer);
    INFO(target << " -> " << res.status << " " << res.body << res.error);
    REQUIRE(res.status == 200);
    return boost::json::parse(res.body);
  }

  /// What a refused request could have changed: the actors' states and
  /// restart counts, the sync servers, the hosted relays.
  std::string observable_state() const {
    std::string text;
    auto actors = get_json("/api/v1/actors");
    for (const auto& a : actors.as_array())
      text += boost::json::serialize(a.at("name")) + "="
              + boost::json::serialize(a.at("state")) + "/"
              + boost::json::serialize(a.at("restarts")) + " ";
    auto sync = get_json("/api/v1/sync/servers");
    auto relays = get_json("/api/v1/relays");
    return text + "sync=" + boost::json::serialize(sync)
           + " relays=" + boost::json::serialize(relays);
  }

  test::temp_dir dir;
  nostr::keypair admin_keys = nostr::generate_keypair();
  std::string config;
  test::ferry_process process;
  uint16_t port = 0;
};

/// Checks that `res` is an error with the JSON body `{"error":{...}}`.
void check_json_error(const raw_answer& res, unsigned status) {
  INFO(res.status << " " << res.content_type << " " << res.body << res.error);
  REQUIRE(res.error.empty());
  CHECK(res.status == status);
  CHECK(res.content_type == "application/json");
  boost::json::error_code ec;
  auto v = boost::json::parse(res.body, ec);
  REQUIRE_FALSE(ec);
  CHECK(v.at("error").at("code").as_int64() == status);
  CHECK_FALSE(v.at("error").at("message").as_string().empty());
}

struct route {
  std::string method;
  std::string target;
  std::string body;
};

std::string relay_body() {
  return R"({"id":"club","subdomain":"club","schema":"club_db","info":{"pubkey":")"
         + std::string(64, 'a') + R"("}})";
}

const std::string sync_body
  = R"({"url":"ws://127.0.0.1:1","tls":{"mode":"disabled"},)"
    R"("filters":[{"kinds":[1]}]})";

/// Every admin route, in an order where each mutating one finds what it
/// needs (created before it is used, deleted last).
std::vector<route> every_route() {
  return {
    {"GET", "/health", ""},
    {"GET", "/metrics", ""},
    {"GET", "/status", ""},
    {"GET", "/api/v1/actors", ""},
    {"GET", "/api/v1/actors/writer", ""},
    {"POST", "/api/v1/actors/writer/restart", ""},
    {"POST", "/api/v1/actors/writer/stop", ""},
    {"POST", "/api/v1/actors/writer/start", ""},
    {"POST", "/api/v1/config/reload", ""},
    {"PUT", "/api/v1/sync/servers/probe", sync_body},
    {"GET", "/api/v1/sync/servers", ""},
    {"GET", "/api/v1/sync/servers/probe", ""},
    {"GET", "/api/v1/sync/servers/probe/stats", ""},
    {"POST", "/api/v1/sync/servers/probe/stop", ""},
    {"POST", "/api/v1/sync/servers/probe/start", ""},
    {"POST", "/api/v1/sync/servers/probe/sync-now", ""},
    {"GET", "/api/v1/sync/stats", ""},
    {"GET", "/api/v1/sync/health", ""},
    // A one-shot dry run against a closed port: it fails at once, in a 200
    // that carries its exit code.
    {"POST", "/api/v1/sync/run",
     R"({"url":"ws://127.0.0.1:1","dry_run":true,"timeout_seconds":1})"},
    {"GET", "/api/v1/sync/run/probe", ""},
    {"DELETE", "/api/v1/sync/servers/probe", ""},
    {"GET", "/api/v1/grasp/repos", ""},
    {"GET", "/api/v1/grasp/repos/30617%3Aab%3Ax", ""},
    {"GET", "/api/v1/cluster", ""},
    {"POST", "/api/v1/cluster/leave", ""},
    {"POST", "/api/v1/relays", relay_body()},
    {"GET", "/api/v1/relays", ""},
    {"GET", "/api/v1/relays/club", ""},
    {"PUT", "/api/v1/relays/club", relay_body()},
    {"PATCH", "/api/v1/relays/club", R"({"schema":"club_db"})"},
    {"POST", "/api/v1/relays/club/deactivate", ""},
    {"POST", "/api/v1/relays/club/activate", ""},
    {"GET", "/api/v1/relays/club/activity", ""},
    {"GET", "/api/v1/relays/club/members", ""},
    {"DELETE", "/api/v1/relays/club", ""},
    // Federation is off on this node: every federation route answers 503
    // once access is granted.
    {"GET", "/api/v1/federation/status", ""},
    {"POST", "/api/v1/federation/status", R"({"status":"active","version":{}})"},
    {"POST", "/api/v1/federation/register", "{}"},
    {"GET", "/api/v1/federation/link", ""},
    {"DELETE", "/api/v1/federation/link", ""},
    {"GET", "/api/v1/federation/peers", ""},
    {"GET", "/api/v1/federation/peers/b", ""},
    {"PUT", "/api/v1/federation/peers/b", "{}"},
    {"DELETE", "/api/v1/federation/peers/b", ""},
    {"POST", "/api/v1/federation/peers/b/reset", ""},
    {"POST", "/api/v1/federation/peers/b/pause", ""},
    {"POST", "/api/v1/federation/peers/b/resume", ""},
    {"POST", "/api/v1/federation/peers/b/approve", ""},
    {"POST", "/api/v1/federation/peers/b/status", R"({"status":"active"})"},
    {"POST", "/api/v1/federation/peers/b/pull", R"({"collection":"x"})"},
    {"PUT", "/api/v1/federation/peers/b/collections", R"({"collections":[]})"},
    {"GET", "/api/v1/federation/our-collections", ""},
    {"GET", "/api/v1/federation/collections", ""},
    {"GET", "/api/v1/federation/collections/x/events?limit=1", ""},
  };
}

bool is_open(const route& r) {
  return r.target == "/health" || r.target == "/metrics"
         || r.target == "/status";
}

/// The routes other operators' nodes call: any valid NIP-98 signature gets
/// in (its key identifies the caller), and nothing else does.
bool is_peer(const route& r) {
  return r.target.rfind("/api/v1/federation/", 0) == 0
         && r.target.rfind("/api/v1/federation/peers", 0) != 0
         && r.target != "/api/v1/federation/our-collections";
}

/// The route of the one route table that `r` reaches; null when none.
const admin_route* table_route(const route& r) {
  auto parsed = net::parse_request_target(r.target);
  auto target = std::get_if<net::request_target>(&parsed);
  if (!target)
    return nullptr;
  return admin_routes().resolve(r.method, target->segments).route;
}

/// A target that must never reach a handler, and what it gets without and
/// with valid credentials.
struct odd_target {
  std::string method;
  std::string target;
  std::string body;
  unsigned without_auth;
  unsigned with_auth;
};

std::vector<odd_target> odd_targets() {
  return {
    // The reported bypass: no leading '/'.
    {"GET", "xapi/v1/actors", "", 400, 400},
    {"POST", "xapi/v1/actors/writer/stop", "", 400, 400},
    {"PUT", "xapi/v1/sync/servers/evil", sync_body, 400, 400},
    {"POST", "xapi/v1/relays", relay_body(), 400, 400},
    {"GET", "xhealth", "", 400, 400},
    // Other spellings of the same routes.
    {"GET", "//api/v1/actors", "", 400, 400},
    {"POST", "//api/v1/actors/writer/stop", "", 400, 400},
    {"GET", "/./api/v1/actors", "", 400, 400},
    {"PUT", "/./api/v1/sync/servers/evil", sync_body, 400, 400},
    {"GET", "/api/v1/../v1/actors", "", 400, 400},
    {"GET", "%2Fapi/v1/actors", "", 400, 400},
    {"GET", "/%61pi/v1/actors", "", 400, 400},
    {"POST", "/api/v1/actors/writer/st%6Fp", "", 400, 400},
    {"GET", "http://127.0.0.1/api/v1/actors", "", 400, 400},
    {"POST", "http://127.0.0.1/api/v1/relays", relay_body(), 400, 400},
    {"GET", "*", "", 400, 400},
    {"GET", "127.0.0.1:7448", "", 400, 400},
    {"GET", "/api/v1/actors#x", "", 400, 400},
    {"GET", "/api/v1/actors?x", "", 400, 400},
    {"POST", "/api/v1/relays?x", relay_body(), 400, 400},
    {"GET", "/api/v1/actors/", "", 400, 400},
    {"PUT", "/api/v1/sync/servers/evil/", sync_body, 400, 400},
    {"GET", "/health/", "", 400, 400},
    {"GET", "/health?x", "", 400, 400},
    {"GET", "/api/v1/actors/%zz", "", 400, 400},
    {"GET", "/api/v1/actors/a%00b", "", 400, 400},
    // Well-formed but no route: still no entry without credentials.
    {"GET", "/API/v1/actors", "", 401, 404},
    {"POST", "/API/v1/relays", relay_body(), 401, 404},
    {"GET", "/Health", "", 401, 404},
    {"GET", "/metrics/x", "", 401, 404},
    {"GET", "/api", "", 401, 404},
    {"GET", "/", "", 401, 404},
    {"GET", "/nothing", "", 401, 404},
    // An escaped '/' is no segment boundary: one segment, no route.
    {"POST", "/api/v1/actors%2Fwriter%2Fstop", "", 401, 404},
  };
}

} // namespace

TEST_CASE("the route list here reaches every route of the table once",
          "[integration][admin][auth]") {
  std::set<const admin_route*> reached;
  for (const auto& r : every_route()) {
    INFO(r.method << " " << r.target);
    auto x = table_route(r);
    REQUIRE(x != nullptr);
    CHECK(reached.insert(x).second);
    // Which routes are open is this test's own expectation, not the table's.
    CHECK((x->access == admin_access::open_health) == is_open(r));
    CHECK((x->access == admin_access::signed_peer) == is_peer(r));
  }
  for (const auto& x : admin_routes().routes()) {
    INFO(x.method << " " << x.pattern);
    CHECK(reached.count(&x) == 1);
  }
}

TEST_CASE("the admin API lets only valid credentials on canonical paths in",
          "[integration][admin][auth]") {
  admin_node node;
  const auto before = node.observable_state();

  SECTION("bad credentials on every route are refused with 401 and change "
          "nothing") {
    for (const auto& r : every_route()) {
      for (auto c : every_cred) {
        if (is_valid(c))
          continue;
        INFO(r.method << " " << r.target << " with " << name_of(c));
        auto res = node.send(r.method, r.target, c, r.body);
        if (is_open(r)) {
          // Open on loopback, whatever the request carries.
          CHECK(res.status == 200);
          continue;
        }
        if (is_peer(r) && c == cred::nip98_foreign_key) {
          // A peer's own key: in, and told federation is off.
          check_json_error(res, 503);
          continue;
        }
        check_json_error(res, 401);
      }
    }
    CHECK(node.observable_state() == before);
  }

  SECTION("odd targets never reach a handler, with or without credentials") {
    for (const auto& t : odd_targets()) {
      for (auto c : {cred::none, cred::wrong_bearer, cred::bearer,
                     cred::nip98}) {
        INFO(t.method << " " << t.target << " with " << name_of(c));
        auto res = node.send(t.method, t.target, c, t.body);
        check_json_error(res, is_valid(c) ? t.with_auth : t.without_auth);
      }
    }
    CHECK(node.observable_state() == before);
  }

  SECTION("valid credentials on every route reach its handler") {
    for (auto c : {cred::bearer, cred::nip98}) {
      for (const auto& r : every_route()) {
        INFO(r.method << " " << r.target << " with " << name_of(c));
        auto res = node.send(r.method, r.target, c, r.body);
        INFO(res.status << " " << res.body << res.error);
        if (is_peer(r) && c == cred::bearer) {
          // A token is the operator's, not a peer's signature.
          check_json_error(res, 401);
          continue;
        }
        REQUIRE(res.error.empty());
        CHECK(res.status != 400);
        CHECK(res.status != 401);
        // A handler may answer 404 for what it does not know, never the
        // router's "not found".
        CHECK(res.body.find(R"("message":"not found")") == std::string::npos);
      }
    }
  }

  SECTION("a valid request has its effect; the same one refused has none") {
    // The reported bypass, then the real thing.
    check_json_error(node.send("POST", "xapi/v1/actors/writer/stop", cred::none),
                     400);
    check_json_error(node.send("PUT", "xapi/v1/sync/servers/evil", cred::none,
                               sync_body),
                     400);
    check_json_error(node.send("POST", "xapi/v1/relays", cred::none,
                               relay_body()),
                     400);
    CHECK(node.observable_state() == before);
    auto stopped = node.send("POST", "/api/v1/actors/writer/stop", cred::bearer);
    CHECK(stopped.status == 200);
    CHECK(node.get_json("/api/v1/actors/writer").at("state") != "running");
    CHECK(node.send("POST", "/api/v1/actors/writer/start", cred::nip98).status
          == 200);
    CHECK(node.get_json("/api/v1/actors/writer").at("state") == "running");
    CHECK(node.send("PUT", "/api/v1/sync/servers/probe", cred::nip98, sync_body)
            .status
          == 201);
    CHECK(node.get_json("/api/v1/sync/servers").as_array().size() == 1);
    CHECK(node.send("POST", "/api/v1/relays", cred::bearer, relay_body()).status
          == 201);
    CHECK(node.get_json("/api/v1/relays").as_array().size() == 1);
  }
}

/// The message of a JSON error answer.
std::string message_of(const raw_answer& res) {
  return std::string{
    boost::json::parse(res.body).at("error").at("message").as_string()};
}

TEST_CASE("a NIP-98 event authorizes one request: sent again it is refused",
          "[integration][admin][auth]") {
  admin_node node;
  auto once = [&](const std::string& method, const std::string& target,
                  const nostr::keypair& keys) {
    return request_bytes(
      node.port, method, target,
      {{"Authorization", nostr::make_http_auth(keys, node.url(target), method,
                                               "", test::unix_now())}},
      "");
  };
  // An operator's route.
  auto request = once("GET", "/api/v1/actors", node.admin_keys);
  CHECK(raw_exchange(node.port, request).status == 200);
  auto again = raw_exchange(node.port, request);
  check_json_error(again, 401);
  CHECK_THAT(message_of(again), Catch::Matchers::Contains("was used before"));
  // A peer's route, signed by any key (federation is off here: 503 once in).
  request = once("DELETE", "/api/v1/federation/link",
                 nostr::generate_keypair());
  check_json_error(raw_exchange(node.port, request), 503);
  again = raw_exchange(node.port, request);
  check_json_error(again, 401);
  CHECK_THAT(message_of(again), Catch::Matchers::Contains("was used before"));
  // A new event for the same request is a new authorization.
  CHECK(node.send("GET", "/api/v1/actors", cred::nip98).status == 200);
  CHECK(node.send("GET", "/api/v1/actors", cred::nip98).status == 200);
}

TEST_CASE("with a public admin URL, a NIP-98 u tag must name it, whatever "
          "the Host header says",
          "[integration][admin][auth]") {
  const std::string public_url = "https://admin.c.example";
  admin_node node{"[federation]\npublic_admin_url = \"" + public_url
                  + "/\"\n"};
  auto signed_for = [&](const std::string& url, const std::string& method,
                        const std::string& target, const nostr::keypair& keys,
                        const std::string& host = {}) {
    return raw_exchange(
      node.port,
      request_bytes(node.port, method, target,
                    {{"Authorization",
                      nostr::make_http_auth(keys, url + target, method, "",
                                            test::unix_now())}},
                    "", host));
  };
  // Peer B forwards what A signed for B to C, naming B in the Host header:
  // refused, on an operator's route and on a peer's.
  const std::string b_url = "http://b.example:7448";
  auto forged = signed_for(b_url, "GET", "/api/v1/actors", node.admin_keys,
                           "b.example:7448");
  check_json_error(forged, 401);
  CHECK_THAT(message_of(forged), Catch::Matchers::Contains("u tag"));
  forged = signed_for(b_url, "DELETE", "/api/v1/federation/link",
                      nostr::generate_keypair(), "b.example:7448");
  check_json_error(forged, 401);
  CHECK_THAT(message_of(forged), Catch::Matchers::Contains("u tag"));
  // The URL of this node's port, as the Host header names it, is not its
  // public URL either.
  check_json_error(signed_for("http://127.0.0.1:" + std::to_string(node.port),
                              "GET", "/api/v1/actors", node.admin_keys),
                   401);
  // Signed for the public URL: in, whatever the Host (a proxy may rewrite
  // it).
  CHECK(signed_for(public_url, "GET", "/api/v1/actors", node.admin_keys)
          .status
        == 200);
  CHECK(signed_for(public_url, "GET", "/api/v1/actors", node.admin_keys,
                   "b.example:7448")
          .status
        == 200);
  check_json_error(signed_for(public_url, "DELETE", "/api/v1/federation/link",
                              nostr::generate_keypair()),
                   503);
  // Bearer tokens are untouched.
  CHECK(node.send("GET", "/api/v1/actors", cred::bearer).status == 200);
}

TEST_CASE("the admin port answers oversize and malformed requests with JSON",
          "[integration][admin]") {
  admin_node node;
  auto bearer = std::string{"Authorization: Bearer "} + admin_token + "\r\n";
  SECTION("a body over the limit: 413") {
    std::string body(2 * 1024 * 1024, 'x');
    auto res = raw_exchange(
      node.port, "PUT /api/v1/sync/servers/big HTTP/1.1\r\nHost: x\r\n" + bearer
                   + "Content-Length: " + std::to_string(body.size())
                   + "\r\n\r\n" + body);
    check_json_error(res, 413);
  }
  SECTION("header fields over the limit: 431") {
    auto res = raw_exchange(node.port,
                            "GET /api/v1/actors HTTP/1.1\r\nHost: x\r\nX-Big: "
                              + std::string(64 * 1024, 'a') + "\r\n\r\n");
    check_json_error(res, 431);
  }
  SECTION("a broken request line: 400") {
    for (auto line : {"GET /api/v1/actors HTTP/9\r\n\r\n",
                      "GET /api/v1 actors HTTP/1.1\r\n\r\n",
                      "G(T /api/v1/actors HTTP/1.1\r\n\r\n"}) {
      INFO(line);
      check_json_error(raw_exchange(node.port, line), 400);
    }
  }
  // The node still serves.
  CHECK(node.send("GET", "/api/v1/actors", cred::bearer).status == 200);
}
