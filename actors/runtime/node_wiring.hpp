#pragma once

#include "actors/grasp/grasp_sync.hpp"
#include "actors/infra/relay_registry.hpp"
#include "actors/relay/client_session.hpp"
#include "actors/runtime/config_reloader.hpp"
#include "actors/runtime/handle_slot.hpp"
#include "actors/runtime/supervisor.hpp"
#include "actors/sync/health_tracker.hpp"
#include "actors/sync/pending_batches.hpp"
#include "actors/sync/sync_manager.hpp"
#include "config/config.hpp"
#include "messages/cluster.hpp"
#include "messages/control_plane.hpp"
#include "messages/federation.hpp"
#include "messages/inspector.hpp"
#include "messages/nostr/keys.hpp"
#include "net/io_runtime.hpp"
#include "store/event_store.hpp"

#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <memory>

namespace ferry {

/// What the subsystems of one node share: the config, the store, the node's
/// identity and I/O threads, and a slot for every actor that another
/// subsystem talks to. A slot follows restarts, so restarting a whole
/// subsystem never leaves a stale handle in another one. Built once by the
/// node before anything starts; subsystem restarts reuse it.
struct node_wiring {
  config::config cfg;
  store::event_store* store = nullptr;
  nostr::keypair keys;
  std::shared_ptr<net::io_runtime> io;
  /// What every client session shares; holds the hub, verifier and query
  /// worker slots.
  std::shared_ptr<relay_context> relay;
  /// Set when the relay serves TLS (checked before anything starts).
  std::shared_ptr<boost::asio::ssl::context> relay_tls;
  /// Where the relay server reports its bound port.
  std::atomic<uint16_t>* relay_port = nullptr;
  /// The root supervisor, for the inspector's walks (set once it runs).
  handle_slot_ptr<supervisor_actor> root;
  handle_slot_ptr<writer_actor> writer;
  handle_slot_ptr<health_tracker_actor> health;
  handle_slot_ptr<pending_batches_actor> batches;
  handle_slot_ptr<sync_manager_actor> sync_manager;
  /// Set only when GRASP sync is on.
  handle_slot_ptr<grasp_sync_actor> grasp;
  infra_handles infra;
  handle_slot_ptr<inspector_actor> inspector;
  handle_slot_ptr<control_plane_actor> control_plane;
  handle_slot_ptr<config_reloader_actor> reloader;
  /// The config as applied: `cfg` at start, then each reload's live keys.
  running_config_ptr running_config;
  /// `[policy]` as the POLICY step applies it (a reload replaces its rules).
  live_value_ptr<config::policy_config> policy;
  /// `[grasp]` and `[infra]` as their actors apply them (a reload replaces
  /// the keys that apply live; a restarted actor starts from them).
  live_value_ptr<config::grasp_config> grasp_settings;
  live_value_ptr<config::infra_config> infra_settings;
  /// Set only when the cluster is enabled.
  handle_slot_ptr<membership_actor> membership;
  handle_slot_ptr<cluster_manager_actor> cluster;
  /// Set only when federation is enabled.
  handle_slot_ptr<federation_actor> federation;
};

/// A child spec whose incarnations land in `slot`.
template <class Handle, class Start>
child_spec slotted(std::string name, std::string kind,
                   handle_slot_ptr<Handle> slot, Start start) {
  child_spec spec;
  spec.name = std::move(name);
  spec.kind = std::move(kind);
  spec.start = [start](caf::local_actor* self) {
    return caf::actor_cast<caf::actor>(start(self));
  };
  spec.on_started = [slot](const caf::actor& handle) {
    slot->set(caf::actor_cast<Handle>(handle));
  };
  return spec;
}

} // namespace ferry
