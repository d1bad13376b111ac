#pragma once

#include <optional>
#include <string>
#include <string_view>

/// Event replication between cluster members: every member keeps one sync
/// server per other member, pointed at that member's relay (NIP-77 catch-up,
/// then a live tail). These names tie the pieces together: the cluster
/// manager defines the servers, the sync manager runs them on every member
/// whatever the ownership hash says, their events enter as `peer:NAME`, and
/// a relay session does not send an event back to the member it came from.
namespace ferry::cluster {

/// The id prefix of replication servers; operators' servers never use it
/// (the cluster manager owns every id under it).
inline constexpr std::string_view replication_prefix = "cluster.";

/// The prefix of the ingest source of replicated events.
inline constexpr std::string_view peer_source_prefix = "peer:";

/// The sync server id replicating from member `name`.
inline std::string replication_server_id(std::string_view name) {
  return std::string{replication_prefix} + std::string{name};
}

/// The member a replication server id names; nothing for any other id.
inline std::optional<std::string>
replicated_member(std::string_view server_id) {
  if (server_id.size() <= replication_prefix.size()
      || server_id.substr(0, replication_prefix.size()) != replication_prefix)
    return std::nullopt;
  return std::string{server_id.substr(replication_prefix.size())};
}

/// The ingest source of events replicated from member `name`.
inline std::string peer_source(std::string_view name) {
  return std::string{peer_source_prefix} + std::string{name};
}

/// Whether an ingest source is another member.
inline bool is_peer_source(std::string_view source) {
  return source.substr(0, peer_source_prefix.size()) == peer_source_prefix;
}

} // namespace ferry::cluster
