#pragma once

#include "messages/cluster/version_vector.hpp"

#include <caf/expected.hpp>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::cluster {

/// One replicated control-plane record: a definition every member holds the
/// same version of (today the sync servers), with the version vector of its
/// edits. A deletion stays as a tombstone, so it replicates like an edit and
/// an older version met later cannot bring the record back.
struct control_record {
  /// What the record is: "sync_server".
  std::string kind;
  /// Its id within the kind.
  std::string id;
  /// Its history and the digest of its content (`content_digest`).
  record_version version;
  /// A tombstone: the record was deleted.
  bool deleted = false;
  /// The definition's canonical JSON; empty for a tombstone.
  std::string body;

  bool operator==(const control_record& other) const {
    return kind == other.kind && id == other.id && version == other.version
           && deleted == other.deleted && body == other.body;
  }
};

/// The SHA-256 of a record's content: the canonical body, or the text
/// "deleted" for a tombstone (no canonical JSON body equals it).
nostr::bytes32 content_digest(bool deleted, std::string_view body);

/// The version vector as JSON text: `{"counters":{NAME:N,...},"retired":N}`.
std::string to_json(const version_vector& x);

/// Records as a JSON array; each element
/// `{"kind","id","clock":{...},"digest":HEX,"deleted":bool,"body":TEXT}`.
std::string to_json(const std::vector<control_record>& records);

/// Reads what `to_json(const std::vector<control_record>&)` wrote. A record
/// whose digest does not match its content, or any malformed field, fails
/// the whole batch with ec::invalid_input naming the record and field: a
/// member that sends such a thing is out of protocol.
caf::expected<std::vector<control_record>>
parse_control_records(std::string_view json);

/// What members send each other: records, and every member the sender has
/// folded away as forgotten. The receiver folds those too (version_vector
/// rule 2), also when it is one of them itself: a member that returns after
/// the cluster forgot it never sees itself forgotten in its own view, and
/// an edit it made before it heard from its peers would otherwise meet
/// their folded versions unfolded and look concurrent with them.
struct control_message {
  std::vector<control_record> records;
  std::set<std::string> forgotten;
};

/// `{"records":[...as to_json(records)],"forgotten":[NAME,...]}`.
std::string to_json(const control_message& message);

/// Reads what `to_json(const control_message&)` wrote, or a bare records
/// array (a member of an earlier version: nothing forgotten). Fails like
/// `parse_control_records`, or with ec::invalid_input naming `forgotten`.
caf::expected<control_message> parse_control_message(std::string_view json);

} // namespace ferry::cluster
