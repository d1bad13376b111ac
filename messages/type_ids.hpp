#pragma once

#include "messages/atoms.hpp"
#include "messages/cluster.hpp"
#include "messages/federation.hpp"
#include "messages/grasp.hpp"
#include "messages/health.hpp"
#include "messages/infra.hpp"
#include "messages/ingest.hpp"
#include "messages/inspector.hpp"
#include "messages/pending_batches.hpp"
#include "messages/relay.hpp"
#include "messages/status.hpp"
#include "messages/supervisor.hpp"
#include "messages/sync_manager.hpp"

#include <caf/type_id.hpp>

namespace caf {
class actor_system_config;
} // namespace caf

// -- type announcements -------------------------------------------------------

CAF_BEGIN_TYPE_ID_BLOCK(ferry_types, caf::id_block::ferry_atoms_last_type_id + 1)

  CAF_ADD_TYPE_ID(ferry_types, (ferry::ingest_status))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::ingest_result))
  CAF_ADD_TYPE_ID(ferry_types, (std::vector<ferry::ingest_result>))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::child_state))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::child_info))
  CAF_ADD_TYPE_ID(ferry_types, (std::vector<ferry::child_info>))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::actor_info))
  CAF_ADD_TYPE_ID(ferry_types, (std::vector<ferry::actor_info>))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::health_report))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::supervisor_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::inspector_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::console_gate_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::relay_status))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::error_class))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::resume_mode))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::relay_health))
  CAF_ADD_TYPE_ID(ferry_types, (std::vector<ferry::relay_health>))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::health_tracker_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::sub_outcome))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::batch_subscription))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::batch_info))
  CAF_ADD_TYPE_ID(ferry_types, (std::vector<ferry::batch_info>))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::batch_listener_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::pending_batches_actor))

  CAF_ADD_TYPE_ID(ferry_types, (ferry::relay_connection_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::sync_manager_actor))

  CAF_ADD_TYPE_ID(ferry_types, (ferry::grasp::subscription))
  CAF_ADD_TYPE_ID(ferry_types, (std::vector<ferry::grasp::subscription>))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::grasp_driver_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::grasp_relay_driver_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::grasp_sync_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::hosted_status))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::activity_type))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::hosted_relay_info))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::hosted_relay))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::activity_entry))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::relay_sync_job))
  CAF_ADD_TYPE_ID(ferry_types, (std::vector<ferry::relay_sync_job>))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::pending_relays))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::infra_reconciler_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::relay_registry_actor))

  CAF_ADD_TYPE_ID(ferry_types, (ferry::cluster::version_vector))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::cluster::record_version))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::cluster::member_state))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::cluster::member_heartbeat))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::cluster::member_info))
  CAF_ADD_TYPE_ID(ferry_types, (std::vector<ferry::cluster::member_info>))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::cluster::refused_member))
  CAF_ADD_TYPE_ID(ferry_types, (std::vector<ferry::cluster::refused_member>))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::cluster::cluster_view))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::membership_listener_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::membership_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::cluster_gate_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::cluster_member_actor))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::cluster_manager_actor))
  // -- federation --
  CAF_ADD_TYPE_ID(ferry_types, (ferry::federation_call))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::federation_reply))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::federation_answer))
  CAF_ADD_TYPE_ID(ferry_types, (ferry::federation_actor))

CAF_END_TYPE_ID_BLOCK(ferry_types)

namespace ferry {

/// Registers every Ferry message type and the error category with `cfg`;
/// the node, the console and the tests all call it.
void add_message_types(caf::actor_system_config& cfg);

/// Scheduler settings for a node or tool process: CAF's work-stealing
/// workers spin-poll for a while before they sleep, which on a small machine
/// takes cores away from the detached verifiers doing the real work; and
/// their short sleeps are made short (the calling thread's timer slack, which
/// every thread made later inherits). Call it before the actor system exists.
void tune_scheduler(caf::actor_system_config& cfg);

} // namespace ferry
