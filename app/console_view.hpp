#pragma once

#include "messages/inspector.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
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

/// Renders one status value the way people read it: strings unquoted, lists
/// as "[a, b]", timespans with their unit.
std::string format_value(const caf::config_value& x);

/// The `actors` table: a header, then one line per actor in the given (depth
/// first) order, the NAME column indented two spaces per level below the
/// actor's parent.
std::string render_actors(const std::vector<actor_info>& actors);

/// The `actor NAME` view: every field, then every status key with its value.
std::string render_actor(const actor_info& info);

/// A status map as aligned `key = value` lines, nested keys joined with dots,
/// in key order; "(empty)" when there is nothing.
std::string render_status(const status_map& status);

/// The `health` view: "ok" or "degraded", then one "- reason" line each.
std::string render_health(const health_report& report);

/// One screen of `watch`: a header naming the node and the time, the actors
/// table, the stats, and `problem` (if not empty) in place of stale data.
/// Each line is cut to `width` columns and the screen to `height` lines, so
/// the terminal never wraps or scrolls.
std::string render_watch(const std::string& node, const std::string& clock,
                         const std::vector<actor_info>& actors,
                         const status_map& stats, const std::string& problem,
                         size_t width, size_t height);

/// The `servers` table from the sync manager's JSON array: one line per sync
/// server with its id, URL, whether it is enabled and running, the
/// connection state, counters, cursor and last error; "(no sync servers)"
/// for an empty array. Missing fields show as "-".
std::string render_servers(const boost::json::value& servers);

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
/// pubkey), a RELAYS table (sync server, URL, owner, whether it runs here)
/// and the refused nodes with their reasons.
std::string render_cluster(const boost::json::value& cluster);
/// The `refused` table from the node's JSON array: one line per refused
/// event, newest first, with its time (UTC), source, id and reason;
/// "(no refused events)" for an empty array.
std::string render_refused(const boost::json::value& refused);

/// Any JSON answer (`server ID`, `sync-now ID`, ...) as aligned
/// `key = value` lines, nested keys joined with dots, arrays as
/// `[a, b]`; strings unquoted.
std::string render_json(const boost::json::value& x);

/// A status map as a JSON object with typed values: integers, reals and
/// booleans as JSON numbers and booleans, nested keys as nested objects,
/// lists as arrays; timespans, atoms and URIs as their text (e.g. "250ms").
boost::json::value to_json(const status_map& status);

/// One actor as a JSON object with every field; `mailbox` is null when the
/// actor did not answer in time.
boost::json::value to_json(const actor_info& info);

/// The `actors` reply as a JSON array of objects, in the node's order.
boost::json::value to_json(const std::vector<actor_info>& actors);

/// `{"status": "ok"|"degraded", "reasons": [...]}`.
boost::json::value to_json(const health_report& report);

} // namespace ferry::console
