#include "messages/cluster/rendezvous.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace ferry::cluster;

namespace {

std::vector<std::string> relay_urls(size_t n) {
  std::vector<std::string> result;
  for (size_t i = 0; i < n; ++i)
    result.push_back("wss://relay" + std::to_string(i) + ".example.com/nostr");
  return result;
}

std::map<std::string, std::string>
owners(const std::vector<std::string>& keys,
       const std::vector<std::string>& members) {
  std::map<std::string, std::string> result;
  for (const auto& key : keys) {
    auto owner = rendezvous_owner(key, members);
    REQUIRE(owner);
    result[key] = *owner;
  }
  return result;
}

const std::vector<std::string> three = {"node-a", "node-b", "node-c"};

} // namespace

TEST_CASE("every key has exactly one owner among the members",
          "[rendezvous]") {
  auto keys = relay_urls(300);
  for (const auto& [key, owner] : owners(keys, three)) {
    CHECK(std::count(three.begin(), three.end(), owner) == 1);
    // The owner is the member of greatest weight.
    auto hashed = rendezvous_key(key);
    for (const auto& member : three)
      if (member != owner)
        CHECK(rendezvous_weight(hashed, member)
              < rendezvous_weight(hashed, owner));
  }
  CHECK_FALSE(rendezvous_owner("wss://relay.example.com", {}));
  CHECK(rendezvous_owner("wss://relay.example.com", {"solo"}) == "solo");
}

TEST_CASE("the order of the member list does not matter", "[rendezvous]") {
  auto keys = relay_urls(300);
  auto expected = owners(keys, three);
  auto members = three;
  while (std::next_permutation(members.begin(), members.end()))
    CHECK(owners(keys, members) == expected);
}

TEST_CASE("removing a member moves only that member's keys", "[rendezvous]") {
  auto keys = relay_urls(3000);
  auto before = owners(keys, three);
  for (const auto& gone : three) {
    std::vector<std::string> rest;
    std::copy_if(three.begin(), three.end(), std::back_inserter(rest),
                 [&](const std::string& x) { return x != gone; });
    auto after = owners(keys, rest);
    size_t moved = 0;
    for (const auto& key : keys) {
      if (before[key] == gone) {
        ++moved;
        CHECK(after[key] != gone);
      } else {
        CHECK(after[key] == before[key]);
      }
    }
    CHECK(moved > 0);
  }
}

TEST_CASE("adding a member moves keys only to the new member",
          "[rendezvous]") {
  auto keys = relay_urls(3000);
  auto before = owners(keys, three);
  auto four = three;
  four.push_back("node-d");
  auto after = owners(keys, four);
  size_t moved = 0;
  for (const auto& key : keys)
    if (after[key] != before[key]) {
      ++moved;
      CHECK(after[key] == "node-d");
    }
  // About a quarter move to it.
  CHECK(moved > 3000 / 4 - 150);
  CHECK(moved < 3000 / 4 + 150);
}

TEST_CASE("three members share 3000 relays evenly", "[rendezvous]") {
  // Each member's share is binomial(3000, 1/3): mean 1000, standard
  // deviation about 26. The tolerance of 10% (±100) is almost 4 deviations.
  std::map<std::string, size_t> counts;
  for (const auto& [key, owner] : owners(relay_urls(3000), three))
    ++counts[owner];
  for (const auto& member : three) {
    CAPTURE(member, counts[member]);
    CHECK(counts[member] >= 900);
    CHECK(counts[member] <= 1100);
  }
}

TEST_CASE("spellings of one relay have one owner", "[rendezvous]") {
  CHECK(rendezvous_key("WSS://Relay.Example.com:443/")
        == "wss://relay.example.com");
  CHECK(rendezvous_key("wss://relay.example.com/nostr//")
        == "wss://relay.example.com/nostr");
  CHECK(rendezvous_key("ws://relay.example.com:80/a?b=C")
        == "ws://relay.example.com/a?b=C");
  // Not a relay URL (a hosted relay's id): hashed as it is.
  CHECK(rendezvous_key("Hosted-Relay-7") == "Hosted-Relay-7");
  for (const auto& url : relay_urls(100)) {
    auto upper = url;
    std::transform(upper.begin(), upper.begin() + 6, upper.begin(), ::toupper);
    CHECK(rendezvous_owner(upper + "/", three) == rendezvous_owner(url, three));
  }
}

TEST_CASE("weights are fixed by SHA-256 and separate key from member",
          "[rendezvous]") {
  // Every node must compute the same weights: pin one value. It is the first
  // 8 bytes of SHA-256(00 00 00 00 00 00 00 01 'a' 'b').
  CHECK(rendezvous_weight("a", "b") == 0xbfd8d48c5ab028a9ULL);
  CHECK(rendezvous_weight("ab", "c") != rendezvous_weight("a", "bc"));
}
