#pragma once

#include "actors/relay/subscription_index.hpp"
#include "messages/relay.hpp"

#include <caf/actor_addr.hpp>

#include <string>
#include <unordered_map>

namespace ferry {

struct hub_state {
  /// Sessions with live subscriptions, by actor id.
  std::unordered_map<caf::actor_id, client_session_actor> sessions;

  /// Their live subscriptions.
  subscription_index subscriptions;

  /// One change-feed listener.
  struct feed_entry {
    feed_listener_actor handle;
    filter_set_ptr filters;
  };

  /// Feed listeners by actor id.
  std::unordered_map<caf::actor_id, feed_entry> feeds;
  uint64_t published = 0;
  uint64_t delivered = 0;

  /// Sends `item` once to every session with at least one matching
  /// subscription, naming the subscriptions, and to every matching feed.
  void fan_out(const ingest_item_ptr& item);

  static inline constexpr const char* name = "hub";
};

/// The HUB: the live side of every REQ. It watches the sessions it serves and
/// forgets them when they go down.
hub_actor::behavior_type hub(hub_actor::stateful_pointer<hub_state> self);

/// The HUB as a class: spawn it with `spawn<hub_impl>()`. CAF 0.17.6 spawns a
/// function that takes no arguments through a null argument tuple that it
/// dereferences (UBSan reports it on every start); the class form has none.
class hub_impl : public hub_actor::stateful_base<hub_state> {
public:
  using super = hub_actor::stateful_base<hub_state>;

  explicit hub_impl(caf::actor_config& cfg) : super(cfg) {
    // nop
  }

  behavior_type make_behavior() override {
    return hub(this);
  }
};

} // namespace ferry
