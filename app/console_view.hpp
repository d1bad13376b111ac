#pragma once

#include "messages/inspector.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// What `ferry console` prints, as pure functions of the inspector's replies,
/// so the layout can be tested without a node.
namespace ferry::console {

/// Renders a duration in seconds with its two largest units: "45s", "3m07s",
/// "2h05m", "3d04h". Negative values render as "-".
std::string format_duration(int64_t seconds);

/// Renders a Unix time (s) as UTC ISO 8601, e.g. "2024-05-01T12:00:00Z";
/// 0 renders as "-".
std::string format_time(int64_t unix_seconds);

/// Renders a Unix time (s) relative to `now` the way people read it:
/// "just now", "42 s ago", "3 min ago", "5 h ago", "2 days ago", or
/// "in 3 min" for a time ahead; 0 (never) renders as "-".
std::string format_ago(int64_t unix_seconds, int64_t now);

/// Whether a field named `key` holds a Unix time: "at", "*_at",
/// "last_connected", "connected_since", "cursor", "up_cursor", "last_seen",
/// "last_reload", "last_catchup_completed", and the cluster's millisecond
/// times "last_heartbeat" and "last_refused". The text views show those
/// with `format_ago`, the JSON views as ISO 8601.
bool is_time_key(std::string_view key);

/// The Unix seconds of a time field `key` holding `value` (the cluster's
/// times are in milliseconds).
int64_t unix_seconds_of(std::string_view key, int64_t value);

/// Renders one status value the way people read it: strings unquoted, lists
/// as "[a, b]" ("-" when empty), timespans with their unit.
std::string format_value(const caf::config_value& x);

/// A key/value view: one line per pair, keys padded to one column and two
/// spaces before the value; "(empty)" when there is nothing. Every key/value
/// view of the console goes through here.
std::string render_pairs(
  const std::vector<std::pair<std::string, std::string>>& pairs);

/// A table: the header, then one line per row, columns padded two spaces
/// apart. Every table of the console goes through here.
std::string render_rows(const std::vector<std::vector<std::string>>& rows);

/// The `actors` table: a header, then one line per actor in the given (depth
/// first) order, the NAME column indented two spaces per level below the
/// actor's parent.
std::string render_actors(const std::vector<actor_info>& actors);

/// The `actor NAME` view: its fields, then its own status report under
/// STATUS (without the mailbox, which the fields show).
std::string render_actor(const actor_info& info, int64_t now);

/// A status map as a key/value view, nested keys joined with dots, in key
/// order; times (see `is_time_key`) relative to `now`.
std::string render_status(const status_map& status, int64_t now);

/// The `stats` view: the figures as a key/value view, then the SYNC table
/// of `render_sync_lag`.
std::string render_stats(const status_map& stats, int64_t now);

/// The `health` view: "ok" or "degraded", then one "- reason" line each.
std::string render_health(const health_report& report);

/// What one screen of `watch` shows.
struct watch_screen {
  /// HOST:PORT of the node, and the local time for the header.
  std::string node;
  std::string clock;
  health_report health;
  std::vector<actor_info> actors;
  /// The inspector's `stats`; its `sync.servers` make the SYNC table.
  status_map stats;
  /// Why the last refresh failed (shown above the stale data); empty if not.
  std::string problem;
  /// Unix time of the refresh.
  int64_t now = 0;
};

/// One screen of `watch`: a header naming the node and the time, the health
/// with its reasons, the actors table, and the `stats` view (with each sync
/// server's state and lag). Each line is cut to `width` columns and the screen to
/// `height` lines, so the terminal never wraps or scrolls.
std::string render_watch(const watch_screen& screen, size_t width,
                         size_t height);

/// The SYNC table of `watch` and `stats`: one line per sync server (and
/// GRASP relay) from the `sync.servers` part of the stats (id -> status,
/// lag_seconds, attempts, last_error), with its state, lag and failed
/// attempts in a row; empty when there is none.
std::string render_sync_lag(const status_map& stats);

/// The `servers` table from the sync manager's JSON array: one line per sync
/// server with its id, URL, whether it is enabled and running, the
/// connection state, counters, cursor and last error; "(no sync servers)"
/// for an empty array. Missing fields show as "-".
std::string render_servers(const boost::json::value& servers, int64_t now);

/// The `repos` table from GRASP SYNC's JSON array: one line per wanted
/// repository with its address, root events, the relays its announcement
/// lists, and those where it is confirmed and pending; "(no repositories)"
/// for an empty array.
std::string render_repos(const boost::json::value& repos);

/// The `relays` table from the relay registry's JSON array: one line per
/// hosted relay with its id, subdomain, schema, status, whether it is synced,
/// its failed attempts (with "given up" when so) and its sync error;
/// "(no hosted relays)" for an empty array. Missing fields show as "-".
std::string render_relays(const boost::json::value& relays);

/// The `cluster` view from the cluster manager's JSON: this node and the live
/// set, a MEMBERS table (name, state, incarnation, heartbeat age, relay URL,
/// pubkey), a RELAYS table (sync server, URL, owner, whether it runs here),
/// a HOSTED RELAYS table when there are any (id, owner, whether this node
/// pushes it) and the refused nodes with their reasons.
std::string render_cluster(const boost::json::value& cluster);

/// The `refused` table from the node's JSON array: one line per refused
/// event, newest first, with when, its source, id and reason;
/// "(no refused events)" for an empty array.
std::string render_refused(const boost::json::value& refused, int64_t now);

/// Any JSON answer (`server ID`, `relay ID`, `repo ADDRESS`, ...): its
/// scalar fields as a key/value view (nested objects flattened with dots,
/// lists of plain values as "[a, b]", empty ones as "-", times relative to
/// `now`), then each list of objects as a table under the field's name in
/// capitals (e.g. ACTIVITY, RELAYS).
std::string render_json(const boost::json::value& x, int64_t now);

/// `x` with every time field (see `is_time_key`) as ISO 8601 text (null for
/// 0, never): what `--json` prints.
boost::json::value with_iso_times(const boost::json::value& x);

/// A status map as a JSON object with typed values: integers, reals and
/// booleans as JSON numbers and booleans, nested keys as nested objects,
/// lists as arrays; timespans, atoms and URIs as their text (e.g. "250ms");
/// times as ISO 8601.
boost::json::value to_json(const status_map& status);

/// One actor as a JSON object with every field; `mailbox` is null when the
/// actor did not answer in time, `last_error_at` ISO 8601 (null: never).
boost::json::value to_json(const actor_info& info);

/// The `actors` reply as a JSON array of objects, in the node's order.
boost::json::value to_json(const std::vector<actor_info>& actors);

/// `{"status": "ok"|"degraded", "reasons": [...]}`.
boost::json::value to_json(const health_report& report);

} // namespace ferry::console
