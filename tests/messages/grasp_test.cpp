#include "messages/grasp.hpp"

#include "messages/error.hpp"
#include "messages/nostr/keys.hpp"

#include <catch2/catch.hpp>

using namespace ferry;
using namespace ferry::grasp;

namespace {

nostr::event announcement(std::vector<nostr::tag> tags) {
  static auto keys = nostr::generate_keypair();
  nostr::event ev;
  ev.kind = kind_announcement;
  ev.created_at = 1'700'000'000;
  ev.tags = std::move(tags);
  nostr::sign_event(ev, keys);
  return ev;
}

} // namespace

TEST_CASE("an announcement's address is 30617:pubkey:d", "[grasp]") {
  auto ev = announcement({{"d", "ferry"}});
  auto address = address_of(ev);
  CHECK(address == "30617:" + nostr::to_hex(ev.pubkey) + ":ferry");
  CHECK(is_repo_address(address));
  CHECK(is_repo_address(address_of(announcement({}))));
  CHECK_FALSE(is_repo_address("30618:" + nostr::to_hex(ev.pubkey) + ":x"));
  CHECK_FALSE(is_repo_address("30617:abc:x"));
  CHECK_FALSE(is_repo_address("30617:" + nostr::to_hex(ev.pubkey)));
}

TEST_CASE("announced relays come from every relays tag, normalized",
          "[grasp]") {
  auto ev = announcement({{"d", "x"},
                          {"relays", "wss://B.example/", "not a url",
                           "ws://a.example:80"},
                          {"relays", "wss://b.example"},
                          {"clone", "https://c.example/x.git"}});
  CHECK(announced_relays(ev)
        == std::vector<std::string>{"ws://a.example", "wss://b.example"});
  CHECK(announced_relays(announcement({{"d", "x"}})).empty());
}

TEST_CASE("the service is recognised by domain, port and public URL",
          "[grasp]") {
  service_identity by_host{"git.example.com", ""};
  CHECK(is_service(by_host, "wss://git.example.com"));
  CHECK(is_service(by_host, "ws://git.example.com:7447/nostr"));
  CHECK_FALSE(is_service(by_host, "wss://other.example.com"));
  CHECK_FALSE(is_service(by_host, "wss://sub.git.example.com"));
  service_identity by_port{"127.0.0.1:7447", ""};
  CHECK(is_service(by_port, "ws://127.0.0.1:7447"));
  CHECK_FALSE(is_service(by_port, "ws://127.0.0.1:7448"));
  CHECK_FALSE(is_service(by_port, "ws://127.0.0.1"));
  service_identity v6{"[::1]:7447", ""};
  CHECK(is_service(v6, "ws://[::1]:7447"));
  CHECK_FALSE(is_service(v6, "ws://[::1]:7448"));
  service_identity by_url{"", "wss://relay.example.com/git"};
  CHECK(is_service(by_url, "wss://relay.example.com/git"));
  CHECK_FALSE(is_service(by_url, "wss://relay.example.com"));
  CHECK_FALSE(is_service(service_identity{}, "wss://relay.example.com"));
}

TEST_CASE("repo_sync and relay_sync records round-trip as JSON", "[grasp]") {
  repo_sync_entry repo;
  repo.address = "30617:" + std::string(64, 'a') + ":x";
  repo.relays = {"wss://a.example", "wss://b.example"};
  repo.roots = {std::string(64, '1')};
  repo.announcement_id = std::string(64, 'f');
  repo.announcement_created_at = 1700000000;
  auto repo_back = parse_repo_sync(repo.address, to_json(repo));
  REQUIRE(repo_back);
  CHECK(*repo_back == repo);
  relay_sync_entry relay;
  relay.url = "wss://a.example";
  relay.repos = {repo.address};
  relay.roots = repo.roots;
  relay.is_bootstrap = true;
  relay.status = link_status::connected;
  relay.last_connected = 10;
  relay.disconnected_at = 5;
  relay.full_sync_at = 3;
  relay.reconcile_at = 90000;
  auto relay_back = parse_relay_sync(relay.url, to_json(relay));
  REQUIRE(relay_back);
  CHECK(*relay_back == relay);
  // Missing keys keep their defaults.
  auto sparse = parse_relay_sync("wss://b.example", "{}");
  REQUIRE(sparse);
  CHECK(sparse->status == link_status::disconnected);
  CHECK(sparse->repos.empty());
}

TEST_CASE("broken records name the field", "[grasp]") {
  auto message = [](const caf::error& err) { return render(err); };
  auto bad_roots = parse_repo_sync("k", R"({"roots":[1]})");
  REQUIRE_FALSE(bad_roots);
  CHECK(message(bad_roots.error()) == "roots: expected an array of strings");
  auto bad_status = parse_relay_sync("k", R"({"status":"asleep"})");
  REQUIRE_FALSE(bad_status);
  CHECK(message(bad_status.error())
        == "status: expected connected or disconnected");
  auto bad_flag = parse_relay_sync("k", R"({"is_bootstrap":1})");
  REQUIRE_FALSE(bad_flag);
  CHECK(message(bad_flag.error()) == "is_bootstrap: expected a boolean");
  CHECK_FALSE(parse_repo_sync("k", "[]"));
  CHECK_FALSE(parse_relay_sync("k", "{"));
}
