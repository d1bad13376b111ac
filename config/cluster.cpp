// The `[cluster]` section: this node's membership in a cluster of ferry
// nodes, read and checked as one section so a bad combination names the key
// the operator has to change.

#include "config/readers.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace ferry::config::readers {

namespace {

/// Node names travel in logs, URLs and the console, and name the sync
/// server that replicates from the node (`cluster.NAME`, a sync server id):
/// keep them to what such an id allows.
bool is_node_name(const std::string& name) {
  auto plain = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  };
  return !name.empty() && name.size() <= 56 && plain(name.front())
         && std::all_of(name.begin(), name.end(), [&](char c) {
              return plain(c) || c == '-' || c == '_' || c == '.';
            });
}

leaf_reader seeds(std::vector<std::string>& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    auto list = node.as_array();
    if (!list)
      return mismatch(path, "an array of \"host:port\" strings", node);
    std::vector<std::string> result;
    for (size_t i = 0; i < list->size(); ++i) {
      auto item = list->get(i)->as_string();
      if (!item || !is_host_port(item->get()))
        return mismatch(path + "[" + std::to_string(i) + "]",
                        "\"host:port\" with a port in 1..65535",
                        *list->get(i));
      if (std::find(result.begin(), result.end(), item->get()) == result.end())
        result.push_back(item->get());
    }
    out = std::move(result);
    return std::nullopt;
  };
}

/// The longest a graceful leave may wait for the hand-over.
constexpr std::chrono::milliseconds max_handover_timeout{30000};

/// A name when enabled, a heartbeat shorter than the failure timeout, all
/// three TLS files or none, and TLS off loopback: the cluster port speaks
/// CAF's BASP, which must not cross a network in the clear.
section_rule cluster_rules(const cluster_config& cluster) {
  return [&cluster](const toml::table& table,
                    const std::string& path) -> problem {
    if (cluster.enabled && cluster.name.empty())
      return child_path(path, "name")
             + ": expected a node name when cluster.enabled = true, got \"\"";
    if (cluster.failure_timeout <= cluster.heartbeat) {
      if (table.get("failure_timeout_ms"))
        return mismatch(child_path(path, "failure_timeout_ms"),
                        "more than cluster.heartbeat_ms ("
                          + std::to_string(cluster.heartbeat.count()) + ")",
                        *table.get("failure_timeout_ms"));
      return mismatch(child_path(path, "heartbeat_ms"),
                      "less than cluster.failure_timeout_ms ("
                        + std::to_string(cluster.failure_timeout.count())
                        + ")",
                      *table.get("heartbeat_ms"));
    }
    // A leave holds up a stop (and the console's or admin API's answer) for
    // this long at most.
    if (cluster.handover_timeout > max_handover_timeout)
      return mismatch(child_path(path, "handover_timeout_ms"),
                      "at most "
                        + std::to_string(max_handover_timeout.count()),
                      *table.get("handover_timeout_ms"));
    // Folding a member that could still come back with edits would hide
    // them: it has to be gone for longer than a failure takes to detect.
    if (cluster.forget_after <= cluster.failure_timeout) {
      if (table.get("forget_after_ms"))
        return mismatch(child_path(path, "forget_after_ms"),
                        "more than cluster.failure_timeout_ms ("
                          + std::to_string(cluster.failure_timeout.count())
                          + ")",
                        *table.get("forget_after_ms"));
      return mismatch(child_path(path, "failure_timeout_ms"),
                      "less than cluster.forget_after_ms ("
                        + std::to_string(cluster.forget_after.count()) + ")",
                      *table.get("failure_timeout_ms"));
    }
    auto tls_path = child_path(path, "tls");
    const auto& tls = cluster.tls;
    auto any = !tls.certfile.empty() || !tls.keyfile.empty()
               || !tls.cafile.empty();
    if (any)
      for (auto [key, value] :
           {std::pair<std::string_view, const std::string*>{"certfile",
                                                             &tls.certfile},
            {"keyfile", &tls.keyfile},
            {"cafile", &tls.cafile}})
        if (value->empty())
          return child_path(tls_path, key)
                 + ": expected a PEM file path when any of cluster.tls is "
                   "set (mutual TLS needs certificate, key and CA), got \"\"";
    if (!is_loopback(cluster.address) && !any)
      return mismatch(child_path(path, "address"),
                      "a loopback address (127.0.0.1 or ::1) unless "
                      "cluster.tls sets certfile, keyfile and cafile: the "
                      "cluster port must not speak in the clear off loopback",
                      *table.get("address"));
    return std::nullopt;
  };
}

} // namespace

bool is_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return false;
  auto port = text.substr(colon + 1);
  if (!std::all_of(port.begin(), port.end(),
                   [](char c) { return c >= '0' && c <= '9'; })
      || port.size() > 5)
    return false;
  auto n = std::strtol(port.c_str(), nullptr, 10);
  return n >= 1 && n <= 65535;
}

field cluster_section(cluster_config& cluster) {
  return section(
    "cluster",
    {
      leaf("enabled", boolean(cluster.enabled)),
      // Empty is "not set"; the section rule requires it when enabled.
      leaf("name", string_if(cluster.name,
                             "1 to 56 lowercase letters, digits, '-', '_' or '.', "
                             "starting with a letter or digit",
                             [](const std::string& name) {
                               return name.empty() || is_node_name(name);
                             })),
      leaf("address", address(cluster.address)),
      leaf("port", port(cluster.port)),
      leaf("seeds", seeds(cluster.seeds)),
      section("tls",
              {
                leaf("certfile", text(cluster.tls.certfile)),
                leaf("keyfile", text(cluster.tls.keyfile)),
                leaf("cafile", text(cluster.tls.cafile)),
              }),
      leaf("members", pubkeys(cluster.members)),
      leaf("failure_timeout_ms", milliseconds(cluster.failure_timeout)),
      leaf("heartbeat_ms", milliseconds(cluster.heartbeat)),
      leaf("handover_timeout_ms", milliseconds(cluster.handover_timeout)),
      leaf("forget_after_ms", milliseconds(cluster.forget_after)),
      leaf("reconcile_interval_ms", milliseconds(cluster.reconcile_interval)),
    },
    cluster_rules(cluster));
}

} // namespace ferry::config::readers
