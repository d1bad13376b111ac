#include "actors/federation/peer_gate.hpp"

#include <catch2/catch.hpp>

using namespace ferry;

namespace {

nostr::filter parsed(std::string_view json) {
  nostr::filter f;
  REQUIRE(nostr::parse_filter(json, f).empty());
  return f;
}

} // namespace

TEST_CASE("a filter lies within a bound when every condition of the bound "
          "is at least as narrow in it",
          "[federation][peer_gate]") {
  auto bound = parsed(R"({"kinds":[0,30023],"#t":["a","b"],"since":100})");
  CHECK(within(parsed(R"({"kinds":[0],"#t":["a"],"since":100})"), bound));
  CHECK(within(parsed(R"({"kinds":[30023],"#t":["a","b"],"since":200,)"
                      R"("until":300,"authors":[")"
                      + std::string(64, 'a') + R"("],"limit":5})"),
               bound));
  CHECK_FALSE(within(parsed(R"({"kinds":[0,1],"#t":["a"],"since":100})"), bound));
  CHECK_FALSE(within(parsed(R"({"#t":["a"],"since":100})"), bound));
  CHECK_FALSE(within(parsed(R"({"kinds":[0],"since":100})"), bound));
  CHECK_FALSE(within(parsed(R"({"kinds":[0],"#t":["c"],"since":100})"), bound));
  CHECK_FALSE(within(parsed(R"({"kinds":[0],"#t":["a"]})"), bound));
  CHECK_FALSE(within(parsed(R"({"kinds":[0],"#t":["a"],"since":99})"), bound));
  CHECK(within(parsed(R"({"kinds":[1]})"), parsed("{}")));
  CHECK_FALSE(within(parsed("{}"), parsed(R"({"until":10})")));
}

TEST_CASE("the gate limits a limited key to its filters and leaves other "
          "keys alone",
          "[federation][peer_gate]") {
  peer_gate gate;
  nostr::bytes32 peer{};
  peer[0] = 1;
  nostr::bytes32 client{};
  client[0] = 2;
  std::vector<nostr::filter> notes{parsed(R"({"kinds":[1]})")};
  std::vector<nostr::filter> everything{parsed("{}")};
  CHECK_FALSE(gate.exceeds({peer}, everything));
  gate.assign_limits({{peer, {parsed(R"({"kinds":[1]})"),
                              parsed(R"({"kinds":[0]})")}}});
  CHECK_FALSE(gate.exceeds({peer}, notes));
  CHECK_FALSE(gate.exceeds({peer}, {parsed(R"({"kinds":[0]})"),
                                    parsed(R"({"kinds":[1]})")}));
  // Each filter must fit one bound: kinds 0 and 1 together fit neither.
  CHECK(gate.exceeds({peer}, {parsed(R"({"kinds":[0,1]})")}));
  CHECK(gate.exceeds({peer}, everything));
  CHECK(gate.exceeds({client, peer}, everything));
  CHECK_FALSE(gate.exceeds({client}, everything));
  CHECK_FALSE(gate.exceeds({}, everything));
  CHECK(gate.read_refusal({peer}).empty());
  gate.assign_limits({});
  CHECK_FALSE(gate.exceeds({peer}, everything));
}

TEST_CASE("the gate refuses reads and writes of a key apart, with the reason",
          "[federation][peer_gate]") {
  peer_gate gate;
  nostr::bytes32 reader{};
  reader[0] = 1;
  nostr::bytes32 writer{};
  writer[0] = 2;
  nostr::bytes32 client{};
  client[0] = 3;
  gate.assign({{reader, "restricted: no reads"}},
              {{writer, "restricted: no writes"}});
  CHECK(gate.read_refusal({reader}) == "restricted: no reads");
  CHECK(gate.write_refusal({reader}).empty());
  CHECK(gate.write_refusal({writer}) == "restricted: no writes");
  CHECK(gate.read_refusal({writer}).empty());
  CHECK(gate.read_refusal({client, reader}) == "restricted: no reads");
  CHECK(gate.read_refusal({client}).empty());
  CHECK(gate.write_refusal({}).empty());
  gate.assign({}, {});
  CHECK(gate.read_refusal({reader}).empty());
  CHECK(gate.write_refusal({writer}).empty());
}
