// `ferry keygen` and `ferry id`: the node's identity, shown wherever an
// operator looks for it, beside a running node too.
#include "messages/nostr/bech32.hpp"
#include "messages/nostr/hex.hpp"
#include "tests/fixtures/node_process.hpp"

#include <catch2/catch.hpp>

#include <regex>

using namespace ferry;

namespace {

/// Runs `ferry ARGS...` to its end: exit status and output.
std::pair<int, std::string> run_ferry(std::vector<std::string> args) {
  test::ferry_process run{std::move(args)};
  auto status = run.wait();
  return {status, run.output()};
}

/// The pubkey and npub lines of an identity print.
std::pair<std::string, std::string> identity_in(const std::string& out) {
  static const std::regex pubkey{"pubkey ([0-9a-f]{64})"};
  static const std::regex npub{"npub   (npub1[0-9a-z]+)"};
  std::smatch m;
  std::pair<std::string, std::string> result;
  if (std::regex_search(out, m, pubkey))
    result.first = m[1].str();
  if (std::regex_search(out, m, npub))
    result.second = m[1].str();
  return result;
}

} // namespace

TEST_CASE("keygen prints the new identity and names the one it will not "
          "replace, and id prints it beside a running node",
          "[integration][identity]") {
  test::temp_dir dir;
  auto config = test::node_config(dir);
  auto [status, out] = run_ferry({"keygen", "--config", config});
  INFO(out);
  REQUIRE(status == 0);
  auto [pubkey, npub] = identity_in(out);
  REQUIRE(pubkey.size() == 64);
  nostr::bytes32 key;
  REQUIRE(nostr::from_hex(pubkey, key));
  CHECK(npub == nostr::to_npub(key));

  auto again = run_ferry({"keygen", "--config", config});
  INFO(again.second);
  CHECK(again.first == 1);
  CHECK_THAT(again.second, Catch::Contains("exists already"));
  CHECK(identity_in(again.second) == std::make_pair(pubkey, npub));

  test::ferry_process node{{"node", "--config", config}};
  auto logged = test::wait_for_identity(node);
  REQUIRE(logged);
  CHECK(*logged == pubkey);
  auto shown = run_ferry({"id", "--config", config});
  INFO(shown.second);
  CHECK(shown.first == 0);
  CHECK(identity_in(shown.second) == std::make_pair(pubkey, npub));
  CHECK_THAT(shown.second, Catch::Contains(dir.file("data")));
}

TEST_CASE("id without a key says how to make one", "[integration][identity]") {
  test::temp_dir dir;
  auto [status, out] = run_ferry({"id", "--config", test::node_config(dir)});
  INFO(out);
  CHECK(status == 1);
  CHECK_THAT(out, Catch::Contains("cannot read the node key")
                    && Catch::Contains("ferry keygen"));
}
