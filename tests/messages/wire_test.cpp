// The relay-to-client messages byte for byte, escapes included: clients and
// the interop tests compare them as text.

#include "messages/nostr/wire.hpp"

#include <catch2/catch.hpp>

using namespace ferry;

TEST_CASE("relay messages serialize exactly", "[wire]") {
  nostr::bytes32 id{};
  id[0] = 0xab;
  auto hex = std::string{"ab"} + std::string(62, '0');
  CHECK(nostr::event_message("s", R"({"id":"x"})")
        == R"(["EVENT","s",{"id":"x"}])");
  CHECK(nostr::ok_message(id, true, "") == R"(["OK",")" + hex + R"(",true,""])");
  CHECK(nostr::ok_message(id, false, "invalid: \"x\"")
        == R"(["OK",")" + hex + R"(",false,"invalid: \"x\""])");
  CHECK(nostr::eose_message("s\"1") == R"(["EOSE","s\"1"])");
  CHECK(nostr::closed_message("s", "a\nb") == R"(["CLOSED","s","a\nb"])");
  CHECK(nostr::notice_message("back\\slash") == R"(["NOTICE","back\\slash"])");
  CHECK(nostr::count_message("s", 42) == R"(["COUNT","s",{"count":42}])");
  CHECK(nostr::neg_msg_message("s", "61ff") == R"(["NEG-MSG","s","61ff"])");
  CHECK(nostr::neg_err_message("s", "closed: x")
        == R"(["NEG-ERR","s","closed: x"])");
}
