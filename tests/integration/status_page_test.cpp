// The status page against a real `ferry node`: GET /status answers one
// self-contained HTML document (no resource of another host, and a
// Content-Security-Policy that makes the browser refuse them too) with a
// section for each view, and every path its script reads is a GET route of
// the admin API. How it renders is checked in a real browser
// (tests/interop/status_page.test.mjs).

#include "actors/runtime/admin_route.hpp"
#include "net/request_target.hpp"
#include "net/simple_client.hpp"
#include "tests/fixtures/node_process.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <set>
#include <string>
#include <variant>

using namespace ferry;

namespace {

constexpr const char* admin_token = "status-page-token";

/// A node on loopback ports whose admin API wants `admin_token`.
struct status_node {
  status_node() : process({"node", "--config", write_config()}) {
    auto port = test::wait_for_admin_port(process);
    INFO(test::output_tail(process));
    REQUIRE(port);
    admin = *port;
  }

  std::string write_config() {
    auto path = dir.file("ferry.toml");
    test::write_file(path, std::string{"[relay]\nport = 0\n"}
                             + "[admin]\naddress = \"127.0.0.1\"\nport = 0\n"
                             + "token = \"" + admin_token + "\"\n"
                             + "[console]\nport = 0\n"
                             + "[store]\npath = \"" + dir.file("data")
                             + "\"\n");
    return path;
  }

  net::http_result request(const std::string& method,
                           const std::string& target,
                           std::map<std::string, std::string> headers = {}) {
    return net::simple_http_request("127.0.0.1", admin, method, target,
                                    headers);
  }

  test::temp_dir dir;
  test::ferry_process process;
  uint16_t admin = 0;
};

std::string header_of(const net::http_result& r, const std::string& name) {
  auto i = r.response.headers.find(name);
  return i == r.response.headers.end() ? std::string{} : i->second;
}

/// The quoted API paths the page's script asks, e.g. '/api/v1/actors'.
std::set<std::string> paths_read(const std::string& page) {
  std::set<std::string> result;
  std::regex quoted{"'(/health|/api/v1/[a-z0-9/_-]+)'"};
  for (auto i = std::sregex_iterator(page.begin(), page.end(), quoted);
       i != std::sregex_iterator(); ++i)
    result.insert((*i)[1].str());
  return result;
}

} // namespace

TEST_CASE("GET /status answers the self-contained status page",
          "[integration][admin][status]") {
  status_node node;
  // Open on loopback like /health: the page holds no data.
  auto r = node.request("GET", "/status");
  INFO(r.error << " " << r.response.status << " "
                << r.response.body.substr(0, 300));
  REQUIRE(r.error.empty());
  CHECK(r.response.status == 200);
  CHECK(r.response.content_type == "text/html; charset=utf-8");
  const auto& page = r.response.body;
  CHECK(page.rfind("<!doctype html>", 0) == 0);
  for (auto section : {"health", "actors", "sync-servers", "grasp-repos",
                       "hosted-relays", "cluster", "federation"}) {
    INFO(section);
    CHECK(page.find("<section id=\"" + std::string{section} + "\">")
          != std::string::npos);
  }
  // The token travels only in the Authorization header, from the fragment
  // or the field, kept for the tab.
  CHECK(page.find("'Bearer ' + token") != std::string::npos);
  CHECK(page.find("location.hash") != std::string::npos);
  CHECK(page.find("sessionStorage") != std::string::npos);
  CHECK(page.find("not in a cluster") != std::string::npos);

  SECTION("nothing comes from another host") {
    auto icase = std::regex::icase;
    CHECK_FALSE(std::regex_search(page, std::regex{"https?://", icase}));
    // No protocol-relative URL, no external script, stylesheet or image.
    CHECK(page.find("\"//") == std::string::npos);
    CHECK(page.find("'//") == std::string::npos);
    CHECK_FALSE(std::regex_search(page, std::regex{"<script[^>]+src", icase}));
    CHECK_FALSE(
      std::regex_search(page, std::regex{"<img|@import|url\\(", icase}));
    std::smatch links;
    auto rest = page;
    for (std::regex link{"<link[^>]*>"}; std::regex_search(rest, links, link);
         rest = links.suffix())
      CHECK(links.str() == "<link rel=\"icon\" href=\"data:,\">");
    auto policy = header_of(r, "content-security-policy");
    CHECK(policy.find("default-src 'none'") != std::string::npos);
    CHECK(policy.find("connect-src 'self'") != std::string::npos);
    CHECK(header_of(r, "cache-control") == "no-store");
  }

  SECTION("every path the script reads is a GET route of the admin API") {
    auto paths = paths_read(page);
    CHECK(paths.size() == 8);
    for (const auto& path : paths) {
      INFO(path);
      auto target = net::parse_request_target(path);
      REQUIRE(std::holds_alternative<net::request_target>(target));
      auto resolved = admin_routes().resolve(
        "GET", std::get<net::request_target>(target).segments);
      CHECK(resolved.route != nullptr);
      // And the node answers it with JSON given the token (a 404 or 503 for
      // a subsystem that is off is JSON too).
      auto answer = node.request(
        "GET", path, {{"Authorization", std::string{"Bearer "} + admin_token}});
      REQUIRE(answer.error.empty());
      CHECK(answer.response.content_type == "application/json");
      CHECK(answer.response.status != 401);
    }
  }

  SECTION("the page is read-only: only GET reaches it") {
    auto post = node.request("POST", "/status");
    REQUIRE(post.error.empty());
    CHECK(post.response.status == 405);
  }
}
