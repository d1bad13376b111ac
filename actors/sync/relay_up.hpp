#pragma once

// The RELAY CONNECTION's up direction: per session an up_stream (the pure
// part: change log → EVENT frames, cursor, window) driven over the socket,
// woken by the hub's change feed, answered by the remote's OKs, watched for
// OKs that never come. Internal to actors/sync/relay_*.

#include "actors/sync/relay_connection_self.hpp"
#include "actors/sync/up_stream.hpp"
#include "messages/sync.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace ferry {

/// The up part of a RELAY CONNECTION's state.
struct relay_up {
  /// The stream of the current session (none while disconnected) and the
  /// totals of earlier sessions.
  std::optional<up_stream> stream;
  uint64_t sent_before = 0;
  uint64_t sent_ok_before = 0;
  uint64_t sent_refused_before = 0;
  uint64_t echoes_skipped_before = 0;
  uint64_t cursor = 0;
  /// The up stream's cursor as last persisted.
  uint64_t cursor_persisted = 0;
  /// Events the remote refused with auth-required:, sent again after AUTH.
  bool resend_after_auth = false;
  /// A check for unanswered events is in the mailbox.
  bool check_scheduled = false;

  /// Over all sessions.
  uint64_t sent() const;
  uint64_t sent_ok() const;
  uint64_t sent_refused() const;
  uint64_t echoes_skipped() const;
};

namespace relay_conn {

bool sends_up(const sync_server& def);

/// Opens the up stream of a fresh session: from the persisted cursor, woken
/// by the hub's change feed.
void start_up(self_pointer self);

/// Ends the session's up stream, keeping its cursor and totals.
void stop_up(self_pointer self);

/// Sends what the change log has for the remote, within the window.
void pump_up(self_pointer self);

/// The remote's OK for an event we sent up.
void on_up_ok(self_pointer self, const std::string& id, bool ok,
              const std::string& reason);

/// AUTH succeeded: what was refused for want of it goes again.
void resend_up_after_auth(self_pointer self);

/// Sends again from the cursor whatever is unanswered (sync-now, up only).
void resend_unanswered_up(self_pointer self);

/// The periodic check that the remote answers what we sent up.
void on_up_check(self_pointer self, uint64_t gen);

} // namespace relay_conn

} // namespace ferry
