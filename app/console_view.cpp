#include "app/console_view.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <caf/config_value.hpp>
#include <caf/uri.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <sstream>
#include <type_traits>
#include <utility>

namespace ferry::console {

namespace {

namespace json = boost::json;

using pairs = std::vector<std::pair<std::string, std::string>>;

/// A timespan in the largest unit that keeps it exact: "250ms", "2s".
std::string format_timespan(caf::timespan x) {
  auto ns = x.count();
  static constexpr std::pair<int64_t, const char*> units[]
    = {{1'000'000'000, "s"}, {1'000'000, "ms"}, {1'000, "us"}};
  for (auto& [factor, unit] : units)
    if (ns != 0 && ns % factor == 0)
      return std::to_string(ns / factor) + unit;
  return std::to_string(ns) + "ns";
}

/// The last part of a dotted path: the field's own name.
std::string_view leaf_of(std::string_view path) {
  auto dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

/// Appends `prefix.key = value` for every leaf of `status`, in key order;
/// integer times relative to `now`.
void flatten(const status_map& status, const std::string& prefix, int64_t now,
             pairs& out) {
  for (auto& [key, value] : status) {
    auto path = prefix.empty() ? key : prefix + "." + key;
    if (auto nested = caf::get_if<caf::config_value::dictionary>(&value))
      flatten(*nested, path, now, out);
    else if (auto number = caf::get_if<caf::config_value::integer>(&value);
             number && is_time_key(key))
      out.emplace_back(std::move(path),
                       format_ago(unix_seconds_of(key, *number), now));
    else
      out.emplace_back(std::move(path), format_value(value));
  }
}

/// How deep each actor sits below the first actor without a known parent.
std::vector<size_t> depths(const std::vector<actor_info>& actors) {
  std::map<std::string, size_t> by_name;
  std::vector<size_t> result;
  result.reserve(actors.size());
  for (auto& info : actors) {
    auto parent = by_name.find(info.parent);
    auto depth = parent == by_name.end() ? 0 : parent->second + 1;
    by_name[info.name] = depth;
    result.push_back(depth);
  }
  return result;
}

std::string or_dash(const std::string& x) {
  return x.empty() ? "-" : x;
}

std::string mailbox_text(int64_t mailbox) {
  return mailbox < 0 ? "?" : std::to_string(mailbox);
}

/// Uptime only means something for a running incarnation.
std::string uptime_text(const actor_info& info) {
  return info.state == child_state::running ? format_duration(info.uptime)
                                            : "-";
}

json::value value_to_json(const std::string& key, const caf::config_value& x) {
  return caf::visit(
    [&key](const auto& value) -> json::value {
      using type = std::decay_t<decltype(value)>;
      if constexpr (std::is_same_v<type, caf::config_value::integer>) {
        if (is_time_key(key))
          return value == 0
                   ? json::value(nullptr)
                   : json::value(format_time(unix_seconds_of(key, value)));
        return value;
      } else if constexpr (std::is_same_v<type, caf::config_value::boolean>
                           || std::is_same_v<type, caf::config_value::real>) {
        return value;
      } else if constexpr (std::is_same_v<type, caf::config_value::string>) {
        return json::string{value};
      } else if constexpr (std::is_same_v<type, caf::config_value::list>) {
        json::array result;
        for (auto& item : value)
          result.push_back(value_to_json({}, item));
        return result;
      } else if constexpr (std::is_same_v<type,
                                          caf::config_value::dictionary>) {
        return to_json(value);
      } else {
        return json::string{format_value(caf::config_value{value})};
      }
    },
    x);
}

/// One JSON value as people read it: strings unquoted, null and empty
/// values as "-", lists as "[a, b]", times (under `key`) relative to `now`.
std::string json_text(const json::value& x, std::string_view key, int64_t now) {
  if (x.is_int64() && is_time_key(key))
    return format_ago(unix_seconds_of(key, x.as_int64()), now);
  if (x.is_string())
    return or_dash(std::string{x.as_string()});
  if (x.is_null() || (x.is_object() && x.as_object().empty()))
    return "-";
  if (x.is_array()) {
    if (x.as_array().empty())
      return "-";
    std::string out = "[";
    for (auto& item : x.as_array()) {
      if (out.size() > 1)
        out += ", ";
      out += json_text(item, {}, now);
    }
    return out + "]";
  }
  return json::serialize(x);
}

/// Whether `x` is a non-empty array of objects: a table, not a value.
bool is_table(const json::value& x) {
  if (!x.is_array() || x.as_array().empty())
    return false;
  auto& items = x.as_array();
  return std::all_of(items.begin(), items.end(),
                     [](const json::value& item) { return item.is_object(); })
         && std::any_of(items.begin(), items.end(), [](const json::value& item) {
              return !item.as_object().empty();
            });
}

/// Appends `prefix.key = value` for every leaf of `x`, objects flattened;
/// lists of objects go to `tables` under their path instead.
void flatten_json(const json::value& x, const std::string& prefix, int64_t now,
                  pairs& out,
                  std::vector<std::pair<std::string, const json::value*>>&
                    tables) {
  if (!x.is_object()) {
    out.emplace_back(prefix.empty() ? "value" : prefix,
                     json_text(x, leaf_of(prefix), now));
    return;
  }
  for (auto& [key, value] : x.as_object()) {
    auto path = prefix.empty() ? std::string{key}
                               : prefix + "." + std::string{key};
    if (value.is_object() && !value.as_object().empty())
      flatten_json(value, path, now, out, tables);
    else if (is_table(value))
      tables.emplace_back(std::move(path), &value);
    else
      out.emplace_back(std::move(path), json_text(value, key, now));
  }
}

/// `x[key]` (or `x[key][sub]`) as text; "-" when missing or empty.
std::string field_text(const json::object& x, std::string_view key,
                       std::string_view sub = {}, int64_t now = 0) {
  auto v = x.if_contains(key);
  if (v && !sub.empty())
    v = v->is_object() ? v->as_object().if_contains(sub) : nullptr;
  if (!v)
    return "-";
  return json_text(*v, sub.empty() ? key : sub, now);
}

/// A column heading from a field name: "last_error" reads "LAST-ERROR".
std::string heading(std::string_view key) {
  std::string out;
  for (auto c : key)
    out += c == '_' ? '-' : static_cast<char>(std::toupper(c));
  return out;
}

/// A table of any array of objects: one column per field, in the order
/// the fields first appear.
std::string generic_table(const json::array& items, int64_t now) {
  std::vector<std::string> columns;
  for (auto& item : items)
    for (auto& [key, value] : item.as_object())
      if (std::find(columns.begin(), columns.end(), key) == columns.end())
        columns.emplace_back(key);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  for (auto& column : columns)
    header.push_back(heading(column));
  rows.push_back(std::move(header));
  for (auto& item : items) {
    std::vector<std::string> row;
    for (auto& column : columns)
      row.push_back(field_text(item.as_object(), column, {}, now));
    rows.push_back(std::move(row));
  }
  return render_rows(rows);
}

/// A table with one line per object of the JSON array `items` (`row` makes
/// it), or `none` for an empty array; anything else as a key/value view.
std::string render_table(
  const json::value& items, const char* none, std::vector<std::string> header,
  const std::function<std::vector<std::string>(const json::object&)>& row) {
  if (!items.is_array())
    return render_json(items, 0);
  if (items.as_array().empty())
    return std::string{none} + "\n";
  std::vector<std::vector<std::string>> rows{std::move(header)};
  for (auto& item : items.as_array())
    if (item.is_object())
      rows.push_back(row(item.as_object()));
  return render_rows(rows);
}

/// `status` without the entry at the dotted `path` (CAF's dictionary has
/// no erase).
status_map without(const status_map& status, std::string_view path) {
  auto dot = path.find('.');
  auto first = path.substr(0, dot);
  status_map result;
  for (auto& [key, value] : status) {
    if (key != first) {
      result.emplace(key, value);
      continue;
    }
    if (dot == std::string_view::npos)
      continue;
    if (auto nested = caf::get_if<caf::config_value::dictionary>(&value))
      result.emplace(key, caf::config_value{
                            without(*nested, path.substr(dot + 1))});
    else
      result.emplace(key, value);
  }
  return result;
}

/// `text` with a title line above it and a blank line before the title.
std::string section(const std::string& title, const std::string& text) {
  return "\n" + title + "\n" + text;
}

} // namespace

std::string format_duration(int64_t seconds) {
  if (seconds < 0)
    return "-";
  auto two_units = [](int64_t big, const char* big_unit, int64_t small,
                      const char* small_unit) {
    char buf[48];
    std::snprintf(buf, sizeof(buf), "%lld%s%02lld%s",
                  static_cast<long long>(big), big_unit,
                  static_cast<long long>(small), small_unit);
    return std::string{buf};
  };
  if (seconds < 60)
    return std::to_string(seconds) + "s";
  if (seconds < 3600)
    return two_units(seconds / 60, "m", seconds % 60, "s");
  if (seconds < 86400)
    return two_units(seconds / 3600, "h", seconds % 3600 / 60, "m");
  return two_units(seconds / 86400, "d", seconds % 86400 / 3600, "h");
}

std::string format_time(int64_t unix_seconds) {
  if (unix_seconds == 0)
    return "-";
  auto t = static_cast<std::time_t>(unix_seconds);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

std::string format_ago(int64_t unix_seconds, int64_t now) {
  if (unix_seconds <= 0)
    return "-";
  auto delta = now - unix_seconds;
  auto span = delta < 0 ? -delta : delta;
  if (span < 5)
    return "just now";
  std::string amount;
  if (span < 60)
    amount = std::to_string(span) + " s";
  else if (span < 3600)
    amount = std::to_string(span / 60) + " min";
  else if (span < 86400)
    amount = std::to_string(span / 3600) + " h";
  else if (span < 2 * 86400)
    amount = "1 day";
  else
    amount = std::to_string(span / 86400) + " days";
  return delta < 0 ? "in " + amount : amount + " ago";
}

namespace {

/// The cluster's membership keeps wall-clock times in milliseconds.
bool is_millisecond_time_key(std::string_view key) {
  return key == "last_heartbeat" || key == "last_refused";
}

} // namespace

bool is_time_key(std::string_view key) {
  auto ends_with_at = key.size() > 3 && key.substr(key.size() - 3) == "_at";
  return ends_with_at || key == "at" || key == "last_connected"
         || key == "connected_since" || key == "cursor" || key == "up_cursor"
         || key == "last_seen" || key == "last_reload"
         || key == "last_catchup_completed" || is_millisecond_time_key(key);
}

int64_t unix_seconds_of(std::string_view key, int64_t value) {
  return is_millisecond_time_key(key) ? value / 1000 : value;
}

std::string format_value(const caf::config_value& x) {
  return caf::visit(
    [](const auto& value) -> std::string {
      using type = std::decay_t<decltype(value)>;
      if constexpr (std::is_same_v<type, caf::config_value::string>) {
        return or_dash(value);
      } else if constexpr (std::is_same_v<type, caf::config_value::boolean>) {
        return value ? "true" : "false";
      } else if constexpr (std::is_same_v<type, caf::config_value::integer>) {
        return std::to_string(value);
      } else if constexpr (std::is_same_v<type, caf::config_value::real>) {
        std::ostringstream out;
        out << value;
        return out.str();
      } else if constexpr (std::is_same_v<type, caf::config_value::timespan>) {
        return format_timespan(value);
      } else if constexpr (std::is_same_v<type, caf::config_value::list>) {
        if (value.empty())
          return "-";
        std::string out = "[";
        for (auto& item : value) {
          if (out.size() > 1)
            out += ", ";
          out += format_value(item);
        }
        return out + "]";
      } else if constexpr (std::is_same_v<type,
                                          caf::config_value::dictionary>) {
        pairs leaves;
        flatten(value, "", 0, leaves);
        std::string out = "{";
        for (auto& [key, text] : leaves) {
          if (out.size() > 1)
            out += ", ";
          out += key + " = " + text;
        }
        return out + "}";
      } else {
        // Atoms and URIs.
        return to_string(value);
      }
    },
    x);
}

std::string render_rows(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line.append(widths[i] - row[i].size() + 2, ' ');
    }
    // The last column is not padded: lines carry no trailing blanks.
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

std::string render_pairs(const pairs& leaves) {
  if (leaves.empty())
    return "(empty)\n";
  std::vector<std::vector<std::string>> rows;
  for (auto& [key, text] : leaves)
    rows.push_back({key, text});
  return render_rows(rows);
}

std::string render_actors(const std::vector<actor_info>& actors) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NAME", "KIND", "STATE", "MAILBOX", "RESTARTS", "UPTIME",
                  "LAST-ERROR"});
  auto levels = depths(actors);
  for (size_t i = 0; i < actors.size(); ++i) {
    auto& info = actors[i];
    rows.push_back({std::string(2 * levels[i], ' ') + info.name, info.kind,
                    to_string(info.state), mailbox_text(info.mailbox),
                    std::to_string(info.restarts), uptime_text(info),
                    or_dash(info.last_error)});
  }
  return render_rows(rows);
}

std::string render_actor(const actor_info& info, int64_t now) {
  auto out = render_pairs({
    {"name", info.name},
    {"kind", info.kind},
    {"parent", or_dash(info.parent)},
    {"state", to_string(info.state)},
    {"mailbox", mailbox_text(info.mailbox)},
    {"restarts", std::to_string(info.restarts)},
    {"uptime", uptime_text(info)},
    {"last error", or_dash(info.last_error)},
    {"last error at", format_ago(info.last_error_at, now)},
  });
  // The mailbox is a field above; the status repeats it for the metrics.
  return out
         + section("STATUS", render_status(without(info.status, "mailbox"),
                                           now));
}

std::string render_status(const status_map& status, int64_t now) {
  pairs leaves;
  flatten(status, "", now, leaves);
  return render_pairs(leaves);
}

std::string render_health(const health_report& report) {
  auto out = report.status + "\n";
  for (auto& reason : report.reasons)
    out += "  - " + reason + "\n";
  return out;
}

std::string render_sync_lag(const status_map& stats) {
  auto servers = caf::get_if<caf::config_value::dictionary>(&stats,
                                                             "sync.servers");
  if (!servers || servers->empty())
    return {};
  std::vector<std::vector<std::string>> rows{
    {"SERVER", "STATE", "LAG", "ATTEMPTS", "LAST-ERROR"}};
  for (auto& [id, value] : *servers) {
    auto entry = caf::get_if<caf::config_value::dictionary>(&value);
    if (!entry)
      continue;
    auto lag = caf::get_if<int64_t>(entry, "lag_seconds");
    rows.push_back(
      {id, or_dash(caf::get_or(*entry, "status", std::string{})),
       lag ? format_duration(*lag) : "-",
       std::to_string(caf::get_or(*entry, "attempts", int64_t{0})),
       or_dash(caf::get_or(*entry, "last_error", std::string{}))});
  }
  return render_rows(rows);
}

std::string render_stats(const status_map& stats, int64_t now) {
  auto out = render_status(without(stats, "sync.servers"), now);
  if (auto sync = render_sync_lag(stats); !sync.empty())
    out += section("SYNC", sync);
  return out;
}

std::string render_watch(const watch_screen& view, size_t width,
                         size_t height) {
  std::string screen = "ferry console  " + view.node + "  " + view.clock
                       + "  (q to quit)\n\n";
  if (!view.problem.empty())
    screen += "! " + view.problem + "\n\n";
  screen += "HEALTH " + render_health(view.health) + "\n";
  screen += render_actors(view.actors);
  screen += section("STATS", render_stats(view.stats, view.now));
  std::istringstream lines{screen};
  std::string out;
  size_t count = 0;
  for (std::string line; count < height && std::getline(lines, line);
       ++count) {
    if (line.size() > width) {
      line.resize(width);
      while (!line.empty() && line.back() == ' ')
        line.pop_back();
    }
    out += line;
    out += '\n';
  }
  return out;
}

std::string render_servers(const json::value& servers, int64_t now) {
  return render_table(
    servers, "(no sync servers)",
    {"ID", "URL", "ENABLED", "RUNNING", "STATE", "RECEIVED", "ACCEPTED",
     "CURSOR", "LAST-CONNECTED", "LAST-ERROR"},
    [now](const json::object& x) {
      return std::vector<std::string>{
        field_text(x, "id"),
        field_text(x, "url"),
        field_text(x, "enabled"),
        field_text(x, "running"),
        field_text(x, "runtime", "state"),
        field_text(x, "runtime", "received"),
        field_text(x, "runtime", "accepted"),
        field_text(x, "runtime", "cursor", now),
        field_text(x, "runtime", "last_connected", now),
        field_text(x, "runtime", "last_error")};
    });
}

std::string render_repos(const json::value& repos) {
  return render_table(
    repos, "(no repositories)",
    {"ADDRESS", "ROOTS", "RELAYS", "CONFIRMED-ON", "PENDING-ON"},
    [](const json::object& x) {
      return std::vector<std::string>{
        field_text(x, "address"), field_text(x, "roots"),
        field_text(x, "relays"), field_text(x, "confirmed_on"),
        field_text(x, "pending_on")};
    });
}

std::string render_relays(const json::value& relays) {
  return render_table(
    relays, "(no hosted relays)",
    {"ID", "SUBDOMAIN", "SCHEMA", "STATUS", "SYNCED", "FAILURES", "SYNC-ERROR"},
    [](const json::object& x) {
      auto failures = field_text(x, "failed_attempts");
      if (auto given_up = x.if_contains("given_up");
          given_up && given_up->is_bool() && given_up->as_bool())
        failures += " (given up)";
      return std::vector<std::string>{
        field_text(x, "id"),     field_text(x, "subdomain"),
        field_text(x, "schema"), field_text(x, "status"),
        field_text(x, "synced"), failures,
        field_text(x, "sync_error")};
    });
}

namespace {

/// This node's replication link from member `m`: "in sync", "lag N s"
/// (with the link's last error when it is down) or "none yet".
std::string replication_text(const json::object& m) {
  auto link = m.if_contains("replication");
  if (!link || !link->is_object())
    return "none yet";
  auto& x = link->as_object();
  auto lag = x.if_contains("lag_seconds");
  std::string text = !lag || !lag->is_number() ? std::string{"not caught up"}
                     : lag->to_number<int64_t>() == 0
                       ? std::string{"in sync"}
                       : "lag " + field_text(x, "lag_seconds") + " s";
  if (auto err = x.if_contains("last_error");
      err && err->is_string() && !err->as_string().empty())
    text += " (" + std::string{err->as_string()} + ")";
  return text;
}

} // namespace

std::string render_cluster(const json::value& cluster) {
  if (!cluster.is_object())
    return render_json(cluster, 0);
  auto& x = cluster.as_object();
  auto out = render_pairs({{"this node", field_text(x, "self")},
                           {"live", field_text(x, "live")}});
  auto empty = json::value(json::array{});
  auto at = [&](std::string_view key) -> const json::value& {
    auto v = x.if_contains(key);
    return v ? *v : empty;
  };
  out += section(
    "MEMBERS",
    render_table(at("members"), "(no members)",
                 {"NAME", "STATE", "INCARNATION", "HEARTBEAT-AGE",
                  "REPLICATION", "RELAY", "PUBKEY"},
                 [](const json::object& m) {
                   auto self = m.if_contains("self");
                   auto is_self = self && self->is_bool() && self->as_bool();
                   auto age = is_self
                                ? std::string{"(this node)"}
                                : field_text(m, "heartbeat_age_ms") + " ms";
                   return std::vector<std::string>{
                     field_text(m, "name"),
                     field_text(m, "state"),
                     field_text(m, "incarnation"),
                     age,
                     is_self ? std::string{"-"} : replication_text(m),
                     field_text(m, "relay_url"),
                     field_text(m, "pubkey")};
                 }));
  out += section("RELAYS",
                 render_table(at("relays"), "(no sync servers)",
                              {"ID", "URL", "OWNER", "HERE"},
                              [](const json::object& r) {
                                return std::vector<std::string>{
                                  field_text(r, "id"), field_text(r, "url"),
                                  field_text(r, "owner"),
                                  field_text(r, "running_here")};
                              }));
  auto& hosted = at("hosted_relays");
  if (hosted.is_array() && !hosted.as_array().empty())
    out += section("HOSTED RELAYS",
                   render_table(hosted, "", {"ID", "OWNER", "PUSHED-HERE"},
                                [](const json::object& r) {
                                  return std::vector<std::string>{
                                    field_text(r, "id"),
                                    field_text(r, "owner"),
                                    field_text(r, "pushed_here")};
                                }));
  auto& refused = at("refused");
  if (refused.is_array() && !refused.as_array().empty())
    out += section("REFUSED",
                   render_table(refused, "",
                                {"NAME", "PUBKEY", "TIMES", "REASON"},
                                [](const json::object& r) {
                                  return std::vector<std::string>{
                                    field_text(r, "name"),
                                    field_text(r, "pubkey"),
                                    field_text(r, "times"),
                                    field_text(r, "reason")};
                                }));
  return out;
}

std::string render_refused(const json::value& refused, int64_t now) {
  return render_table(refused, "(no refused events)",
                      {"WHEN", "SOURCE", "ID", "REASON"},
                      [now](const json::object& x) {
                        return std::vector<std::string>{
                          field_text(x, "at", {}, now),
                          field_text(x, "source"), field_text(x, "id"),
                          field_text(x, "reason")};
                      });
}

std::string render_json(const json::value& x, int64_t now) {
  if (is_table(x))
    return generic_table(x.as_array(), now);
  pairs leaves;
  std::vector<std::pair<std::string, const json::value*>> tables;
  flatten_json(x, "", now, leaves, tables);
  auto out = leaves.empty() && !tables.empty() ? std::string{}
                                               : render_pairs(leaves);
  for (auto& [path, items] : tables) {
    auto text = generic_table(items->as_array(), now);
    out += out.empty() ? heading(path) + "\n" + text
                       : section(heading(path), text);
  }
  return out;
}

json::value with_iso_times(const json::value& x) {
  if (x.is_array()) {
    json::array result;
    for (auto& item : x.as_array())
      result.push_back(with_iso_times(item));
    return result;
  }
  if (!x.is_object())
    return x;
  json::object result;
  for (auto& [key, value] : x.as_object()) {
    if (value.is_int64() && is_time_key(key))
      // Parentheses: braces would pick value's initializer-list
      // constructor and make a one-element array.
      result[key] = value.as_int64() == 0
                      ? json::value(nullptr)
                      : json::value(format_time(
                          unix_seconds_of(key, value.as_int64())));
    else
      result[key] = with_iso_times(value);
  }
  return result;
}

json::value to_json(const status_map& status) {
  json::object result;
  for (auto& [key, value] : status)
    result[key] = value_to_json(key, value);
  return result;
}

json::value to_json(const actor_info& info) {
  json::object result;
  result["name"] = info.name;
  result["kind"] = info.kind;
  result["parent"] = info.parent;
  result["state"] = to_string(info.state);
  if (info.mailbox < 0)
    result["mailbox"] = nullptr;
  else
    result["mailbox"] = info.mailbox;
  result["restarts"] = info.restarts;
  result["uptime"] = info.uptime;
  result["last_error"] = info.last_error;
  if (info.last_error_at == 0)
    result["last_error_at"] = nullptr;
  else
    result["last_error_at"] = format_time(info.last_error_at);
  result["status"] = to_json(info.status);
  return result;
}

json::value to_json(const std::vector<actor_info>& actors) {
  json::array result;
  for (auto& info : actors)
    result.push_back(to_json(info));
  return result;
}

json::value to_json(const health_report& report) {
  json::array reasons;
  for (auto& reason : report.reasons)
    reasons.push_back(json::string{reason});
  return json::object{{"status", report.status}, {"reasons", reasons}};
}

} // namespace ferry::console
