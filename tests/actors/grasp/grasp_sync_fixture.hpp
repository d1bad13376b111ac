#pragma once

// The GRASP SYNC tests' fixture: a deterministic actor system, a scratch
// store, and a recording relay driver that stands for the remote side.

#include "actors/grasp/grasp_sync.hpp"

#include "actors/relay/hub.hpp"
#include "actors/runtime/logging.hpp"
#include "actors/grasp/self_subscriber.hpp"
#include "messages/error.hpp"
#include "store/repo_sync_store.hpp"
#include "tests/fixtures/deterministic_actor_system.hpp"
#include "tests/fixtures/quiet_log.hpp"
#include "tests/store/store_fixture.hpp"

#include <caf/after.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

namespace ferry::grasp_sync_test {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

/// One command the relay driver received.
struct command {
  std::string verb;
  std::string relay;
  std::vector<grasp::subscription> subs;
  std::vector<std::string> closed;

  /// Every filter of every subscription, as one text.
  std::string filters() const {
    std::string out;
    for (const auto& sub : subs)
      for (const auto& f : sub.filters)
        out += f + "\n";
    return out;
  }
};

using command_log = std::vector<command>;

/// The flushes asked for: relay and serial.
using flush_log = std::vector<std::pair<std::string, uint64_t>>;

struct driver_state {
  std::shared_ptr<command_log> log;
  std::shared_ptr<flush_log> flushes;
  /// Answer flushes at once, as a connection with nothing in flight does.
  std::shared_ptr<bool> answer_flushes;
  static inline constexpr const char* name = "recording-driver";
};

/// Stands for the remote side: records what GRASP SYNC asks of the relays.
/// The tests answer as the relays would (connected, EOSE, lost).
inline grasp_driver_actor::behavior_type
recording_driver(grasp_driver_actor::stateful_pointer<driver_state> self,
                 std::shared_ptr<command_log> log,
                 std::shared_ptr<flush_log> flushes,
                 std::shared_ptr<bool> answer_flushes) {
  self->state.log = std::move(log);
  self->state.flushes = std::move(flushes);
  self->state.answer_flushes = std::move(answer_flushes);
  return {
    [self](atom::flush, const std::string& relay, uint64_t serial) {
      if (*self->state.answer_flushes)
        self->send(caf::actor_cast<grasp_sync_actor>(self->current_sender()),
                   atom::done_v, relay, serial);
      else
        self->state.flushes->emplace_back(relay, serial);
    },
    [self](atom::connect, const std::string& relay,
           const std::vector<grasp::subscription>& subs) {
      self->state.log->push_back({"connect", relay, subs, {}});
    },
    [self](atom::subscribe, const std::string& relay,
           const std::vector<grasp::subscription>& subs) {
      self->state.log->push_back({"subscribe", relay, subs, {}});
    },
    [self](atom::unsubscribe, const std::string& relay,
           const std::vector<std::string>& ids) {
      self->state.log->push_back({"unsubscribe", relay, {}, ids});
    },
    [self](atom::drop, const std::string& relay) {
      self->state.log->push_back({"drop", relay, {}, {}});
    },
  };
}

inline constexpr int64_t start_time = 1'700'000'000;
inline const std::string r1 = "wss://r1.example";
inline const std::string r2 = "wss://r2.example";

inline std::string address(const std::string& d) {
  return "30617:" + std::string(64, 'a') + ":" + d;
}

struct fixture : test::deterministic_actor_system {
  fixture() {
    driver = sys.spawn(recording_driver, commands, flushes, answer_flushes);
    driver_slot = std::make_shared<handle_slot<grasp_driver_actor>>(driver);
    config.clock = [this] { return wall; };
    config.seed = 42;
  }

  ~fixture() {
    stop();
    self->send_exit(driver, caf::exit_reason::user_shutdown);
    run();
  }

  /// Starts GRASP SYNC; `rebuilt`: then tells it the rebuild is done, as
  /// the SELF SUBSCRIBER does.
  void start(bool rebuilt = true) {
    aut = sys.spawn(grasp_sync, db.store.get(), driver_slot,
                    handle_slot_ptr<self_subscriber_actor>{}, config);
    run();
    if (rebuilt) {
      self->send(aut, atom::rebuild_v, atom::done_v);
      run();
    }
  }

  void stop() {
    if (!aut)
      return;
    self->send_exit(aut, caf::exit_reason::user_shutdown);
    run();
    aut = nullptr;
  }

  /// What the self-subscriber does: write repo_sync, then tell.
  void want(const std::string& d, std::vector<std::string> relays,
            std::vector<std::string> roots = {}) {
    grasp::repo_sync_entry entry;
    entry.address = address(d);
    entry.relays = std::move(relays);
    entry.roots = std::move(roots);
    REQUIRE_FALSE(store::write_repo_sync(*db.store, {entry}, {}));
    self->send(aut, atom::changed_v, std::vector<std::string>{entry.address});
    run();
  }

  void unwant(const std::string& d) {
    REQUIRE_FALSE(store::write_repo_sync(*db.store, {}, {address(d)}));
    self->send(aut, atom::changed_v, std::vector<std::string>{address(d)});
    run();
  }

  /// The commands since the last call.
  command_log take() {
    auto result = std::move(*commands);
    commands->clear();
    return result;
  }

  /// The relay answers every subscription of `cmd` with EOSE.
  void eose_all(const command& cmd) {
    for (const auto& sub : cmd.subs)
      self->send(aut, atom::eose_v, cmd.relay, sub.id);
    run();
  }

  void connected(const std::string& relay) {
    self->send(aut, atom::connected_v, relay);
    run();
  }

  void lost(const std::string& relay) {
    self->send(aut, atom::lost_v, relay, std::string{"connection reset"});
    run();
  }

  /// Moves wall time and the actor clock together.
  void pass(caf::timespan dt) {
    wall += std::chrono::duration_cast<std::chrono::seconds>(dt).count();
    advance(dt);
  }

  grasp::relay_sync_entry record(const std::string& relay) {
    auto entry = store::get_relay_sync(*db.store, relay);
    REQUIRE(entry);
    REQUIRE(*entry);
    return **entry;
  }

  template <class T, class... Ts>
  T ask(Ts... xs) {
    self->send(aut, xs...);
    run();
    T result;
    self->receive([&](T& x) { result = std::move(x); },
                  [&](caf::error& err) { FAIL(render(err)); },
                  caf::after(0s) >> [] { FAIL("no answer"); });
    return result;
  }

  /// Wants repository "a" on r1 and lets r1 confirm it fully.
  void synced_on_r1() {
    want("a", {r1});
    auto cmds = take();
    REQUIRE(cmds.size() == 1);
    connected(r1);
    eose_all(cmds[0]);
    REQUIRE(record(r1).repos == std::vector<std::string>{address("a")});
    take();
  }

  store::test::store_fixture db;
  std::shared_ptr<command_log> commands = std::make_shared<command_log>();
  std::shared_ptr<flush_log> flushes = std::make_shared<flush_log>();
  std::shared_ptr<bool> answer_flushes = std::make_shared<bool>(true);
  grasp_driver_actor driver;
  handle_slot_ptr<grasp_driver_actor> driver_slot;
  grasp_sync_config config;
  grasp_sync_actor aut;
  int64_t wall = start_time;
  ferry::test::quiet_log quiet;
};

} // namespace ferry::grasp_sync_test
