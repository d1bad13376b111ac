#include "actors/runtime/inspector.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/error.hpp"
#include "messages/secret.hpp"
#include "messages/type_ids.hpp"
#include "tests/fixtures/quiet_log.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

struct gate_fixture {
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    add_message_types(cfg);
    return cfg;
  }

  gate_fixture() : sys(init(cfg)), self(sys) {
    // Any actor will do as the inspector: the gate only hands it out.
    // The unused int: CAF 0.17 binds a reference to a null argument tuple
    // for an actor function that takes none, which UBSan aborts on.
    stand_in = sys.spawn([](int) -> caf::behavior { return {[](int) {}}; }, 0);
    slot->set(caf::actor_cast<inspector_actor>(stand_in));
  }

  ~gate_fixture() {
    caf::anon_send_exit(stand_in, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(gate, caf::exit_reason::user_shutdown);
  }

  void start(std::string secret) {
    gate = sys.spawn(console_gate, slot, std::move(secret));
  }

  /// Logs in with `secret`: the inspector handed out, or the refusal.
  std::string login(const std::string& secret) {
    std::string outcome;
    self->request(gate, 5s, atom::login_v, secret)
      .receive(
        [&](inspector_actor& handle) {
          outcome = handle == caf::actor_cast<inspector_actor>(stand_in)
                      ? "in"
                      : "some other actor";
        },
        [&](caf::error& err) { outcome = render(err); });
    return outcome;
  }

  int64_t counter(const std::string& key) {
    int64_t value = -1;
    self->request(gate, 5s, atom::get_v, atom::status_v)
      .receive([&](status_map& st) { value = caf::get_or(st, key, int64_t{-1}); },
               [](caf::error&) {});
    return value;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor stand_in;
  handle_slot_ptr<inspector_actor> slot
    = std::make_shared<handle_slot<inspector_actor>>();
  console_gate_actor gate;
  ferry::test::quiet_log quiet;
};

} // namespace

TEST_CASE("secrets compare equal only when equal", "[console_gate]") {
  CHECK(secret_equal("s3cret", "s3cret"));
  CHECK(secret_equal("", ""));
  CHECK_FALSE(secret_equal("s3cret", "s3creT"));
  CHECK_FALSE(secret_equal("s3cre", "s3cret"));
  CHECK_FALSE(secret_equal(std::string{"s3cret\0x", 8}, "s3cret"));
  CHECK_FALSE(secret_equal("", "s3cret"));
}

TEST_CASE_METHOD(gate_fixture, "the console gate hands out the inspector "
                               "only for the right secret",
                 "[console_gate]") {
  const std::string secret = "gate-secret-0123";
  start(secret);
  for (const auto& wrong :
       {std::string{}, std::string{"gate-secret-0124"},
        std::string{"gate-secret-012"}, std::string{"gate-secret-01234"},
        std::string{"GATE-SECRET-0123"}, secret + std::string(1, '\0'),
        std::string{"gate-secret-012\0", 16}, std::string(1 << 20, 'g'),
        std::string{"gate-secret-0123\n"}}) {
    INFO("secret of " << wrong.size() << " bytes");
    CHECK(login(wrong) == "wrong console secret");
  }
  CHECK(counter("refused") == 9);
  CHECK(counter("logins") == 0);
  CHECK(login(secret) == "in");
  CHECK(counter("logins") == 1);
  // While the inspector restarts, the right secret gets a clear answer.
  slot->set(inspector_actor{});
  CHECK(login(secret) == "the inspector is restarting; try again");
}

TEST_CASE_METHOD(gate_fixture, "without a secret only the empty one logs in",
                 "[console_gate]") {
  start("");
  CHECK(login("") == "in");
  CHECK(login("x") == "wrong console secret");
}
