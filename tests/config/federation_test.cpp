#include "config/config.hpp"

#include "config_test_util.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace ferry;
using namespace ferry::config;
using ferry::config::test::load_error;

namespace {

const std::string peer_table = "[[federation.peer]]\nname = \"b\"\n"
                               "endpoint = \"ws://127.0.0.1:7447\"\n"
                               "admin_url = \"http://127.0.0.1:7448\"\n"
                               "filters = [{ kinds = [1] }]\n";

} // namespace

TEST_CASE("federation is off by default", "[config][federation]") {
  auto cfg = load_string("", "ferry.toml");
  REQUIRE(cfg);
  CHECK_FALSE(cfg->federation.enabled);
  CHECK(cfg->federation.incoming == incoming_policy::require_approval);
  CHECK(cfg->federation.interval == std::chrono::seconds{30});
  CHECK(cfg->federation.max_pending_links == 100);
  CHECK(cfg->federation.max_incoming_links == 100);
  CHECK(cfg->federation.peers.empty());
}

TEST_CASE("the federation section reads peers, collections and a hashed "
          "password",
          "[config][federation]") {
  auto cfg = load_string(
    "[federation]\nenabled = true\nmode = \"publish\"\ninterval_seconds = 5\n"
    "incoming = \"require_password\"\npassword = \"hunter2\"\n"
    "max_pending_links = 7\nmax_incoming_links = 9\n"
    + peer_table + "collections = [\"repos\"]\n"
    + "[[federation.collection]]\nname = \"repos\"\n"
      "filters = [{ kinds = [30617, 30618] }]\n",
    "ferry.toml");
  if (!cfg)
    FAIL(test::error_text(cfg.error()));
  const auto& fed = cfg->federation;
  CHECK(fed.enabled);
  CHECK(fed.mode == federation_mode::publish);
  CHECK(fed.interval == std::chrono::seconds{5});
  CHECK(fed.public_admin_url.empty());
  CHECK(fed.max_pending_links == 7);
  CHECK(fed.max_incoming_links == 9);
  REQUIRE(fed.peers.size() == 1);
  CHECK(fed.peers[0].name == "b");
  CHECK(fed.peers[0].collections == std::vector<std::string>{"repos"});
  REQUIRE(fed.collections.size() == 1);
  CHECK(fed.collections[0].filters.size() == 1);
  // Only the hash is kept.
  CHECK(fed.password_hash.find("hunter2") == std::string::npos);
  CHECK(password_matches("hunter2", fed.password_hash));
}

TEST_CASE("bad federation settings name the file, the key and what was "
          "expected",
          "[config][federation]") {
  CHECK(load_error("[federation]\nincoming = \"maybe\"\n")
        == "ferry.toml: federation.incoming: expected one of \"auto_accept\", "
           "\"require_approval\", \"require_password\", \"deny\", got "
           "\"maybe\"");
  CHECK(load_error("[federation]\nincoming = \"require_password\"\n")
        == "ferry.toml: federation.password: expected a password (or "
           "password_hash) when federation.incoming = \"require_password\"");
  CHECK(load_error("[federation]\npassword = \"x\"\npassword_hash = \""
                   + hash_password("x") + "\"\n")
        == "ferry.toml: federation.password_hash: expected either password "
           "or password_hash, not both");
  CHECK(load_error("[federation]\npassword_hash = \"plain\"\n")
          .rfind("ferry.toml: federation.password_hash: expected a hash", 0)
        == 0);
  CHECK(load_error("[federation]\nmode = \"both\"\n")
          .rfind("ferry.toml: federation.mode: expected one of", 0)
        == 0);
  CHECK(load_error("[[federation.peer]]\nname = \"b\"\n"
                   "endpoint = \"ws://127.0.0.1:7447\"\n"
                   "admin_url = \"ftp://x\"\nfilters = [{}]\n")
          .rfind("ferry.toml: federation.peer[0].admin_url: expected an "
                 "http:// or https:// URL",
                 0)
        == 0);
  CHECK(load_error(peer_table + peer_table)
        == "ferry.toml: federation.peer[1].name: duplicate name \"b\", also "
           "in federation.peer[0]");
  CHECK(load_error(peer_table + "collections = [\"nope\"]\n")
        == "ferry.toml: federation.peer[0].collections: expected names of "
           "[[federation.collection]] tables, got \"nope\"");
  CHECK(load_error("[[federation.collection]]\nname = \"r\"\nfilters = []\n")
        == "ferry.toml: federation.collection[0].filters: expected at least "
           "one filter");
  CHECK(load_error("[federation]\npublic_admin_url = \"https://b.example/api\"\n")
        == "ferry.toml: federation.public_admin_url: expected an http:// or "
           "https:// URL of this node's admin API as peers reach it (scheme, "
           "host and port only), or an empty string, got "
           "\"https://b.example/api\"");
  CHECK(load_error("[federation]\npublic_admin_url = \"ws://b.example\"\n")
          .rfind("ferry.toml: federation.public_admin_url: expected an http://",
                 0)
        == 0);
  CHECK(load_error("[federation]\nsecret = 1\n")
        == "ferry.toml: federation.secret: unknown key");
  CHECK(load_error("[federation]\nmax_pending_links = 0\n")
        == "ferry.toml: federation.max_pending_links: expected an integer in "
           "1..1000000, got 0");
  CHECK(load_error("[federation]\nmax_incoming_links = 0\n")
        == "ferry.toml: federation.max_incoming_links: expected an integer in "
           "1..1000000, got 0");
  CHECK(load_error("[federation]\nmax_pending_links = \"many\"\n")
        == "ferry.toml: federation.max_pending_links: expected an integer in "
           "1..1000000, got \"many\"");
}

TEST_CASE("collection tables name the file, the key and what was expected",
          "[config][federation]") {
  const std::string table = "[[federation.collection]]\n";
  auto cfg = load_string(table + "name = \"repos\"\nfilters = [{ kinds = "
                                 "[30617] }, { kinds = [1617], limit = 5 }]\n"
                         + table + "name = \"notes.v2\"\nfilters = [{}]\n"
                         + peer_table + "collections = [\"notes.v2\"]\n",
                         "ferry.toml");
  if (!cfg)
    FAIL(test::error_text(cfg.error()));
  const auto& fed = cfg->federation;
  REQUIRE(fed.collections.size() == 2);
  CHECK(fed.collections[0].name == "repos");
  CHECK(fed.collections[0].filters.size() == 2);
  CHECK(fed.collections[1].name == "notes.v2");
  CHECK(fed.peers[0].collections == std::vector<std::string>{"notes.v2"});

  CHECK(load_error(table + "name = \"Repos\"\nfilters = [{}]\n")
        == "ferry.toml: federation.collection[0].name: expected 1 to 48 "
           "characters of a-z, 0-9, '.', '_' or '-', starting with a letter "
           "or digit");
  CHECK(load_error(table + "filters = [{}]\n")
          .rfind("ferry.toml: federation.collection[0].name: expected", 0)
        == 0);
  CHECK(load_error(table + "name = \"r\"\n")
        == "ferry.toml: federation.collection[0].filters: required");
  CHECK(load_error(table + "name = \"r\"\nfilters = [{ kinds = [\"x\"] }]\n")
          .rfind("ferry.toml: federation.collection[0].filters[0].kinds", 0)
        == 0);
  CHECK(load_error(table + "name = \"r\"\nfilters = [{}]\n" + table
                   + "name = \"r\"\nfilters = [{}]\n")
        == "ferry.toml: federation.collection[1].name: duplicate name \"r\"");
  CHECK(load_error(table + "name = \"r\"\nfilters = [{}]\nkinds = [1]\n")
        == "ferry.toml: federation.collection[0].kinds: unknown key");
  CHECK(load_error("[federation]\ncollection = { name = \"r\" }\n")
          .rfind("ferry.toml: federation.collection: expected an array of "
                 "tables",
                 0)
        == 0);
}

TEST_CASE("public_admin_url is where peers call this node back",
          "[config][federation]") {
  auto cfg = load_string("[federation]\nenabled = true\n"
                         "public_admin_url = \"https://ferry.b.example:8443/\"\n",
                         "ferry.toml");
  if (!cfg)
    FAIL(test::error_text(cfg.error()));
  CHECK(cfg->federation.public_admin_url == "https://ferry.b.example:8443/");
}
