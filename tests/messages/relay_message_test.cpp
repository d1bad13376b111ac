// Relay-to-client messages as `ferry sync` and a federation pull read them.

#include "messages/nostr/relay_message.hpp"
#include "messages/nostr/wire.hpp"
#include "tests/messages/test_vectors.hpp"

#include <catch2/catch.hpp>

using namespace ferry;

namespace {

nostr::relay_message parsed(std::string frame) {
  nostr::relay_message msg;
  REQUIRE(nostr::parse_relay_message(frame, msg));
  return msg;
}

} // namespace

TEST_CASE("parse_relay_message reads an EVENT's event from the frame",
          "[relay_message]") {
  auto json = test::read_vector_lines("real_events.jsonl").front();
  nostr::event expected;
  REQUIRE(nostr::parse_event(json, expected).empty());
  auto msg = parsed(nostr::event_message("sub \"1\"", json));
  CHECK(msg.verb == "EVENT");
  CHECK(msg.first == "sub \"1\"");
  CHECK(msg.event_error.empty());
  CHECK(test::same_event(msg.ev, expected));
  SECTION("an event that does not parse says why, the sub id still read") {
    auto bad = parsed(R"(["EVENT","s",{"id":"x"}])");
    CHECK(bad.first == "s");
    CHECK_FALSE(bad.event_error.empty());
    auto missing = parsed(R"(["EVENT","s"])");
    CHECK(missing.event_error == "no event object");
  }
}

TEST_CASE("parse_relay_message reads every other relay verb",
          "[relay_message]") {
  nostr::bytes32 id{};
  id[0] = 0xab;
  auto ok = parsed(nostr::ok_message(id, false, "blocked: no"));
  CHECK(ok.verb == "OK");
  CHECK(ok.first == nostr::to_hex(id));
  CHECK_FALSE(ok.accepted);
  CHECK(ok.second == "blocked: no");
  CHECK(parsed(nostr::ok_message(id, true, "")).accepted);
  // An OK whose flag is no boolean is no acceptance.
  CHECK_FALSE(parsed(R"(["OK","ab","yes"])").accepted);

  auto eose = parsed(nostr::eose_message("s"));
  CHECK((eose.verb == "EOSE" && eose.first == "s"));
  auto closed = parsed(nostr::closed_message("s", "auth-required: x"));
  CHECK((closed.verb == "CLOSED" && closed.first == "s"
         && closed.second == "auth-required: x"));
  auto notice = parsed(nostr::notice_message("slow down"));
  CHECK((notice.verb == "NOTICE" && notice.first == "slow down"));
  auto neg = parsed(nostr::neg_msg_message("n", "61ff"));
  CHECK((neg.verb == "NEG-MSG" && neg.first == "n" && neg.second == "61ff"));
  auto neg_err = parsed(nostr::neg_err_message("n", "closed: x"));
  CHECK((neg_err.verb == "NEG-ERR" && neg_err.second == "closed: x"));
  auto auth = parsed(R"(["AUTH","challenge-1"])");
  CHECK((auth.verb == "AUTH" && auth.first == "challenge-1"));
}

TEST_CASE("parse_relay_message refuses what is no relay message",
          "[relay_message]") {
  for (std::string frame :
       {"", "{}", "[]", "[1,\"s\"]", "not json", "[\"EOSE\",\"s\""}) {
    nostr::relay_message msg;
    INFO(frame);
    CHECK_FALSE(nostr::parse_relay_message(frame, msg));
  }
}
