#include "app/console_view.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <caf/config_value.hpp>
#include <caf/uri.hpp>

#include <algorithm>
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

/// Appends `prefix.key = value` for every leaf of `status`, in key order.
void flatten(const status_map& status, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out) {
  for (auto& [key, value] : status) {
    auto path = prefix.empty() ? key : prefix + "." + key;
    if (auto nested = caf::get_if<caf::config_value::dictionary>(&value))
      flatten(*nested, path, out);
    else
      out.emplace_back(std::move(path), format_value(value));
  }
}

/// Lines of text padded into left-aligned columns, two spaces apart; the
/// last column is not padded so lines carry no trailing blanks.
std::string layout(const std::vector<std::vector<std::string>>& rows) {
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
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
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

json::value value_to_json(const caf::config_value& x) {
  return caf::visit(
    [](const auto& value) -> json::value {
      using type = std::decay_t<decltype(value)>;
      if constexpr (std::is_same_v<type, caf::config_value::integer>
                    || std::is_same_v<type, caf::config_value::boolean>
                    || std::is_same_v<type, caf::config_value::real>) {
        return value;
      } else if constexpr (std::is_same_v<type, caf::config_value::string>) {
        return json::string{value};
      } else if constexpr (std::is_same_v<type, caf::config_value::list>) {
        json::array result;
        for (auto& item : value)
          result.push_back(value_to_json(item));
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

/// One JSON value as people read it: strings unquoted, the rest as JSON.
std::string json_text(const json::value& x) {
  if (x.is_string())
    return std::string{x.as_string()};
  if (x.is_null())
    return "-";
  if (x.is_array()) {
    std::string out = "[";
    for (auto& item : x.as_array()) {
      if (out.size() > 1)
        out += ", ";
      out += json_text(item);
    }
    return out + "]";
  }
  return json::serialize(x);
}

/// Appends `prefix.key = value` for every leaf of `x`, objects flattened.
void flatten_json(const json::value& x, const std::string& prefix,
                  std::vector<std::pair<std::string, std::string>>& out) {
  if (!x.is_object()) {
    out.emplace_back(prefix.empty() ? "value" : prefix, json_text(x));
    return;
  }
  for (auto& [key, value] : x.as_object()) {
    auto path = prefix.empty() ? std::string{key}
                               : prefix + "." + std::string{key};
    if (value.is_object() && !value.as_object().empty())
      flatten_json(value, path, out);
    else
      out.emplace_back(std::move(path), json_text(value));
  }
}

/// `x[key]` (or `x[key][sub]`) as text; "-" when missing or empty.
std::string field_text(const json::object& x, std::string_view key,
                       std::string_view sub = {}) {
  auto v = x.if_contains(key);
  if (v && !sub.empty())
    v = v->is_object() ? v->as_object().if_contains(sub) : nullptr;
  if (!v)
    return "-";
  auto text = json_text(*v);
  return text.empty() ? "-" : text;
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

std::string format_value(const caf::config_value& x) {
  return caf::visit(
    [](const auto& value) -> std::string {
      using type = std::decay_t<decltype(value)>;
      if constexpr (std::is_same_v<type, caf::config_value::string>) {
        return value;
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
        std::string out = "[";
        for (auto& item : value) {
          if (out.size() > 1)
            out += ", ";
          out += format_value(item);
        }
        return out + "]";
      } else if constexpr (std::is_same_v<type,
                                          caf::config_value::dictionary>) {
        std::vector<std::pair<std::string, std::string>> leaves;
        flatten(value, "", leaves);
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
  return layout(rows);
}

std::string render_actor(const actor_info& info) {
  std::vector<std::vector<std::string>> rows{
    {"name", info.name},
    {"kind", info.kind},
    {"parent", or_dash(info.parent)},
    {"state", to_string(info.state)},
    {"mailbox", mailbox_text(info.mailbox)},
    {"restarts", std::to_string(info.restarts)},
    {"uptime", uptime_text(info)},
    {"last error", or_dash(info.last_error)},
    {"last error at", format_time(info.last_error_at)},
  };
  auto out = layout(rows);
  out += "status:\n";
  std::istringstream lines{render_status(info.status)};
  for (std::string line; std::getline(lines, line);)
    out += "  " + line + "\n";
  return out;
}

/// One `key = value` line per leaf.
std::string render_leaves(
  const std::vector<std::pair<std::string, std::string>>& leaves) {
  if (leaves.empty())
    return "(empty)\n";
  std::vector<std::vector<std::string>> rows;
  for (auto& [key, text] : leaves)
    rows.push_back({key, "= " + text});
  return layout(rows);
}

/// A table with one line per object of the JSON array `items` (`row` makes
/// it), or `none` for an empty array; anything else is shown as JSON.
std::string render_table(
  const json::value& items, const char* none, std::vector<std::string> header,
  const std::function<std::vector<std::string>(const json::object&)>& row) {
  if (!items.is_array())
    return render_json(items);
  if (items.as_array().empty())
    return std::string{none} + "\n";
  std::vector<std::vector<std::string>> rows{std::move(header)};
  for (auto& item : items.as_array())
    if (item.is_object())
      rows.push_back(row(item.as_object()));
  return layout(rows);
}

std::string render_status(const status_map& status) {
  std::vector<std::pair<std::string, std::string>> leaves;
  flatten(status, "", leaves);
  return render_leaves(leaves);
}

std::string render_health(const health_report& report) {
  auto out = report.status + "\n";
  for (auto& reason : report.reasons)
    out += "  - " + reason + "\n";
  return out;
}

std::string render_watch(const std::string& node, const std::string& clock,
                         const std::vector<actor_info>& actors,
                         const status_map& stats, const std::string& problem,
                         size_t width, size_t height) {
  std::string screen = "ferry console  " + node + "  " + clock
                       + "  (q to quit)\n\n";
  if (!problem.empty())
    screen += "! " + problem + "\n\n";
  screen += render_actors(actors);
  screen += "\nSTATS\n";
  screen += render_status(stats);
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

std::string render_servers(const json::value& servers) {
  return render_table(
    servers, "(no sync servers)",
    {"ID", "URL", "ENABLED", "RUNNING", "STATE", "RECEIVED", "ACCEPTED",
     "CURSOR", "LAST-ERROR"},
    [](const json::object& x) {
      return std::vector<std::string>{
        field_text(x, "id"),
        field_text(x, "url"),
        field_text(x, "enabled"),
        field_text(x, "running"),
        field_text(x, "runtime", "state"),
        field_text(x, "runtime", "received"),
        field_text(x, "runtime", "accepted"),
        field_text(x, "runtime", "cursor"),
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

std::string render_cluster(const json::value& cluster) {
  if (!cluster.is_object())
    return render_json(cluster);
  auto& x = cluster.as_object();
  std::string live;
  if (auto list = x.if_contains("live"); list && list->is_array())
    for (auto& name : list->as_array())
      live += (live.empty() ? "" : ", ") + json_text(name);
  auto out = "this node: " + field_text(x, "self") + "\nlive: "
             + (live.empty() ? "-" : live) + "\n\nMEMBERS\n";
  auto empty = json::value{json::array{}};
  auto at = [&](std::string_view key) -> const json::value& {
    auto v = x.if_contains(key);
    return v ? *v : empty;
  };
  out += render_table(
    at("members"), "(no members)",
    {"NAME", "STATE", "INCARNATION", "HEARTBEAT-AGE", "RELAY", "PUBKEY"},
    [](const json::object& m) {
      auto self = m.if_contains("self");
      auto age = self && self->is_bool() && self->as_bool()
                   ? std::string{"(this node)"}
                   : field_text(m, "heartbeat_age_ms") + " ms";
      return std::vector<std::string>{
        field_text(m, "name"),        field_text(m, "state"),
        field_text(m, "incarnation"), age,
        field_text(m, "relay_url"),   field_text(m, "pubkey")};
    });
  out += "\nRELAYS\n";
  out += render_table(at("relays"), "(no sync servers)",
                      {"ID", "URL", "OWNER", "HERE"},
                      [](const json::object& r) {
                        return std::vector<std::string>{
                          field_text(r, "id"), field_text(r, "url"),
                          field_text(r, "owner"),
                          field_text(r, "running_here")};
                      });
  auto& refused = at("refused");
  if (refused.is_array() && !refused.as_array().empty()) {
    out += "\nREFUSED\n";
    out += render_table(refused, "", {"NAME", "PUBKEY", "TIMES", "REASON"},
                        [](const json::object& r) {
                          return std::vector<std::string>{
                            field_text(r, "name"), field_text(r, "pubkey"),
                            field_text(r, "times"), field_text(r, "reason")};
                        });
  }
  return out;
}

std::string render_refused(const json::value& refused) {
  return render_table(
    refused, "(no refused events)", {"TIME (UTC)", "SOURCE", "ID", "REASON"},
    [](const json::object& x) {
      std::string when = "-";
      if (auto at = x.if_contains("at"); at && at->is_int64()) {
        std::time_t t = at->as_int64();
        std::tm utc{};
        gmtime_r(&t, &utc);
        char buf[32];
        std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &utc);
        when = buf;
      }
      return std::vector<std::string>{when, field_text(x, "source"),
                                      field_text(x, "id"),
                                      field_text(x, "reason")};
    });
}

std::string render_json(const json::value& x) {
  std::vector<std::pair<std::string, std::string>> leaves;
  flatten_json(x, "", leaves);
  return render_leaves(leaves);
}

json::value to_json(const status_map& status) {
  json::object result;
  for (auto& [key, value] : status)
    result[key] = value_to_json(value);
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
  result["last_error_at"] = info.last_error_at;
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
