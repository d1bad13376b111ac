#include "store/expiry_window.hpp"

#include "tests/store/store_fixture.hpp"

using namespace ferry;
using namespace ferry::store::test;

TEST_CASE("expires_within finds an event expiring after one second and at "
          "or before another",
          "[store][expiration]") {
  store_fixture fx;
  auto keys = nostr::generate_keypair();
  const int64_t at = default_now + 10;
  fx.write(make_event(keys, 1, default_now - 5, {}, "lasting"));
  fx.write(make_event(keys, 1, default_now - 5,
                      {{"expiration", std::to_string(at)}}, "expiring"));
  auto check = [&] {
    CHECK(store::expires_within(*fx.store, at - 1, at));
    CHECK(store::expires_within(*fx.store, default_now, at + 100));
    // After: the event had expired already; before: not yet.
    CHECK_FALSE(store::expires_within(*fx.store, at, at + 100));
    CHECK_FALSE(store::expires_within(*fx.store, default_now, at - 1));
    // No time passed, or the clock went back.
    CHECK_FALSE(store::expires_within(*fx.store, at - 1, at - 1));
    CHECK_FALSE(store::expires_within(*fx.store, at, at - 1));
  };
  SECTION("in the memtable") {
    check();
  }
  SECTION("in the files") {
    fx.settle();
    check();
  }
}
