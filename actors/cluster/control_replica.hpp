#pragma once

#include "messages/cluster/control_record.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

/// Two edits of one record that neither member saw the other of, and how
/// the conflict rule (`cluster::resolve`) settled them.
struct control_conflict {
  std::string kind;
  std::string id;
  /// The version every member keeps, and the one dropped.
  cluster::control_record kept;
  cluster::control_record dropped;
  /// Unix seconds when this node detected it.
  int64_t detected_at = 0;
};

/// This node's replica of the replicated control plane: one record per
/// (kind, id) with its version vector. It turns local definitions into
/// versions (an edit here counts one more for this member) and merges the
/// members' versions with `cluster::resolve`, so every member that has seen
/// the same versions stores the same records, whatever the order they came
/// in. It does no I/O: the CLUSTER MANAGER feeds it, persists what changed,
/// sends records to the members and applies merged ones locally.
class control_replica {
public:
  /// The most recent conflicts kept for operators.
  static constexpr size_t max_conflicts = 32;

  explicit control_replica(std::string self_name);

  /// Takes the records persisted by an earlier run.
  void load(std::vector<cluster::control_record> stored);

  /// The local definitions of `kind` now (id → canonical JSON). A definition
  /// whose content differs from its record is a local edit, a record missing
  /// from `current` a local deletion: each gets this member's counter one
  /// higher (folded into `retired` when this member itself is among the
  /// forgotten). @returns the records that changed (to persist and send).
  std::vector<cluster::control_record>
  observe_local(const std::string& kind,
                const std::map<std::string, std::string>& current);

  struct merge_outcome {
    /// Records whose stored content changed: to persist and to apply to
    /// the local definitions (a tombstone: delete it).
    std::vector<cluster::control_record> changed;
    /// Records whose version changed but not their content (a merged
    /// vector): to persist only.
    std::vector<cluster::control_record> restamped;
    /// Conflicts found in this batch.
    std::vector<control_conflict> conflicts;
  };

  /// Merges versions from a member, each folded first by the forgotten
  /// members (see `forget`). `now` stamps conflicts.
  merge_outcome merge(const std::vector<cluster::control_record>& incoming,
                      int64_t now);

  /// The members the cluster forgot (dead or left for the forget period):
  /// their counters are folded out of every stored version vector now and
  /// out of every incoming one from now on (cluster::version_vector). The
  /// CLUSTER MANAGER passes every member forgotten since this node started
  /// or named forgotten by a member since, also those that came back and
  /// this node itself: a returning member's edits then count into `retired`
  /// and happen after the versions folded before, where unfolding it would
  /// make its first edit look concurrent with them.
  /// @returns the records whose version changed (to persist).
  std::vector<cluster::control_record>
  forget(const std::set<std::string>& names);

  /// Every record, tombstones included (what a member is sent).
  std::vector<cluster::control_record> all() const;

  /// One record; null when unknown.
  const cluster::control_record* find(const std::string& kind,
                                      const std::string& id) const;

  /// The member this replica counts local edits for.
  const std::string& self_name() const {
    return self_;
  }

  /// The most recent conflicts, oldest first.
  const std::vector<control_conflict>& conflicts() const {
    return conflicts_;
  }

private:
  using key = std::pair<std::string, std::string>;

  std::string self_;
  std::set<std::string> forgotten_;
  std::map<key, cluster::control_record> records_;
  std::vector<control_conflict> conflicts_;
};

} // namespace ferry
