#include "config/config.hpp"

#include "config/policy_readers.hpp"
#include "config/readers.hpp"
#include "messages/error.hpp"
#include "messages/nostr/negentropy.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

namespace ferry::config {

namespace {

using namespace readers;

/// Largest negentropy memory budget in MiB (1 TiB): far above any machine,
/// and its bytes fit a `size_t` with room to add to.
constexpr int64_t max_memory_mb = int64_t{1} << 20;

/// A default limit above the maximum would be clamped on every REQ; refusing
/// it points at the key the operator actually wrote.
section_rule default_within_max(const relay_limits& limits) {
  return [&limits](const toml::table& table,
                   const std::string& path) -> problem {
    if (limits.default_limit <= limits.max_limit)
      return std::nullopt;
    if (auto node = table.get("default_limit"))
      return mismatch(child_path(path, "default_limit"),
                      "at most " + child_path(path, "max_limit") + " ("
                        + std::to_string(limits.max_limit) + ")",
                      *node);
    return mismatch(child_path(path, "max_limit"),
                    "at least " + child_path(path, "default_limit") + " ("
                      + std::to_string(limits.default_limit) + ")",
                    *table.get("max_limit"));
  };
}

/// `[relay.tls]`: a certificate and its key go together, and a client CA
/// means nothing without TLS. Whether the files are usable is checked when
/// the node starts, where they are opened.
section_rule tls_pair(const relay_tls_config& tls) {
  return [&tls](const toml::table&, const std::string& path) -> problem {
    // The key at fault is the empty one, whether left out or written "".
    auto missing = [&path](std::string_view key, const std::string& what) {
      return child_path(path, key) + ": expected " + what + ", got \"\"";
    };
    if (!tls.certfile.empty() && tls.keyfile.empty())
      return missing("keyfile", "the path of the certificate's PEM private "
                                "key when " + child_path(path, "certfile")
                                  + " is set");
    if (tls.certfile.empty() && !tls.keyfile.empty())
      return missing("certfile", "the path of a PEM certificate when "
                                   + child_path(path, "keyfile") + " is set");
    if (tls.certfile.empty() && !tls.client_ca_file.empty())
      return missing("certfile",
                     "the path of a PEM certificate when "
                       + child_path(path, "client_ca_file")
                       + " is set (client certificates need TLS)");
    return std::nullopt;
  };
}

/// The inspection port speaks CAF's BASP in the clear, and CAF 0.17 allocates
/// whatever payload size a message header announces before any handshake (one
/// 30-byte header grew a node to 3.8 GB), and routes messages to any actor a
/// logged-in console was shown. A shared secret cannot guard that, so the port
/// stays on loopback until it speaks TLS.
section_rule console_on_loopback(const console_config& console) {
  return [&console](const toml::table& table,
                    const std::string& path) -> problem {
    if (is_loopback(console.address))
      return std::nullopt;
    return mismatch(child_path(path, "address"),
                    "a loopback address (127.0.0.1 or ::1): the console port "
                    "has no TLS yet, so it may not listen off loopback; reach "
                    "it through an SSH tunnel",
                    *table.get("address"));
  };
}

/// `[grasp]`: a service domain when enabled, and a reconciliation range
/// that is one.
section_rule grasp_rules(const grasp_config& grasp) {
  return [&grasp](const toml::table& table,
                  const std::string& path) -> problem {
    if (grasp.enabled && grasp.service_domain.empty())
      return mismatch(child_path(path, "service_domain"),
                      "a host name or host:port when grasp.enabled = true",
                      table.get("service_domain") ? *table.get("service_domain")
                                                  : *table.get("enabled"));
    if (grasp.reconcile_min > grasp.reconcile_max) {
      if (auto node = table.get("reconcile_max_seconds"))
        return mismatch(child_path(path, "reconcile_max_seconds"),
                        "at least " + child_path(path, "reconcile_min_seconds")
                          + " (" + std::to_string(grasp.reconcile_min.count())
                          + ")",
                        *node);
      return mismatch(child_path(path, "reconcile_min_seconds"),
                      "at most " + child_path(path, "reconcile_max_seconds")
                        + " (" + std::to_string(grasp.reconcile_max.count())
                        + ")",
                      *table.get("reconcile_min_seconds"));
    }
    return std::nullopt;
  };
}

/// A management API needs the domain to name the relays' hosts, and a cap
/// below the base would shrink the first retry.
section_rule infra_consistent(const infra_config& infra) {
  return [&infra](const toml::table& table,
                  const std::string& path) -> problem {
    if (!infra.api_url.empty() && infra.relay_domain.empty())
      return child_path(path, "relay_domain")
             + ": expected a DNS name when infra.api_url is set, got \"\"";
    if (infra.retry_cap_ms < infra.retry_base_ms)
      return mismatch(child_path(path, "retry_cap_ms"),
                      "at least infra.retry_base_ms ("
                        + std::to_string(infra.retry_base_ms) + ")",
                      table.get("retry_cap_ms") ? *table.get("retry_cap_ms")
                                                : *table.get("retry_base_ms"));
    return std::nullopt;
  };
}

/// The whole file, bound to the fields of `cfg` that each key fills.
std::vector<field> schema(config& cfg) {
  auto& relay = cfg.relay;
  auto& limits = relay.limits;
  return {
    section("relay",
            {
              leaf("address", address(relay.address)),
              leaf("port", port(relay.port)),
              leaf("name", text(relay.name)),
              leaf("description", text(relay.description)),
              leaf("contact", text(relay.contact)),
              leaf("icon", text(relay.icon)),
              leaf("operator_pubkey", pubkey(relay.operator_pubkey)),
              leaf("public_url", relay_url_text(relay.public_url)),
              leaf("auth_required", boolean(relay.auth_required)),
              leaf("compression", boolean(relay.compression)),
              leaf("read_ahead_mb",
                   integer(relay.read_ahead_mb, 0, max_memory_mb,
                           "an integer in 0.." + std::to_string(max_memory_mb))),
              section(
                "limits",
                {
                  leaf("max_frame_bytes", positive(limits.max_frame_bytes)),
                  leaf("max_subscriptions",
                       positive(limits.max_subscriptions)),
                  leaf("max_filters", positive(limits.max_filters)),
                  leaf("max_limit", positive(limits.max_limit)),
                  leaf("default_limit", positive(limits.default_limit)),
                  leaf("max_count_scan", positive(limits.max_count_scan)),
                  leaf("max_subscription_id_length",
                       positive(limits.max_subscription_id_length)),
                  leaf("max_future_seconds",
                       integer(limits.max_future_seconds, 1, max_seconds,
                               "an integer in 1.."
                                 + std::to_string(max_seconds))),
                  leaf("max_outbound_bytes",
                       positive(limits.max_outbound_bytes)),
                  leaf("max_inflight_messages",
                       positive(limits.max_inflight_messages)),
                  leaf("max_connections", positive(limits.max_connections)),
                  leaf("max_connections_per_ip",
                       integer(limits.max_connections_per_ip, 0, max_int64,
                               "a non-negative integer (0: no cap)")),
                  leaf("max_outbound_total_mb",
                       integer(limits.max_outbound_total_mb, 1, max_memory_mb,
                               "an integer in 1.."
                                 + std::to_string(max_memory_mb))),
                  leaf("max_inbound_total_mb",
                       integer(limits.max_inbound_total_mb, 1, max_memory_mb,
                               "an integer in 1.."
                                 + std::to_string(max_memory_mb))),
                },
                default_within_max(limits)),
              section(
                "negentropy",
                {
                  leaf("enabled", boolean(relay.negentropy.enabled)),
                  leaf("max_items", positive(relay.negentropy.max_items)),
                  leaf("max_sessions_per_connection",
                       positive(relay.negentropy.max_sessions_per_connection)),
                  leaf("idle_timeout_seconds",
                       seconds(relay.negentropy.idle_timeout)),
                  leaf("frame_size_limit",
                       integer(relay.negentropy.frame_size_limit,
                               nostr::negentropy::min_frame_size_limit,
                               max_int64,
                               "an integer of at least "
                                 + std::to_string(
                                   nostr::negentropy::min_frame_size_limit))),
                  leaf("max_memory_mb",
                       integer(relay.negentropy.max_memory_mb, 1,
                               max_memory_mb,
                               "an integer in 1.."
                                 + std::to_string(max_memory_mb))),
                }),
              section("tls",
                      {
                        leaf("certfile", text(relay.tls.certfile)),
                        leaf("keyfile", text(relay.tls.keyfile)),
                        leaf("client_ca_file", text(relay.tls.client_ca_file)),
                      },
                      tls_pair(relay.tls)),
            }),
    section("admin",
            {
              leaf("address", address(cfg.admin.address)),
              leaf("port", port(cfg.admin.port)),
              leaf("token", text(cfg.admin.token)),
              leaf("nip98_pubkeys", pubkeys(cfg.admin.nip98_pubkeys)),
              leaf("public_health", boolean(cfg.admin.public_health)),
            }),
    section("console",
            {
              leaf("address", address(cfg.console.address)),
              leaf("port", port(cfg.console.port)),
              leaf("secret", text(cfg.console.secret)),
              leaf("fault_injection", boolean(cfg.console.fault_injection)),
            },
            console_on_loopback(cfg.console)),
    section("health",
            {
              leaf("sync_failing_attempts",
                   integer(cfg.health.sync_failing_attempts, 1, 1000000,
                           "an integer in 1..1000000")),
              leaf("sync_max_lag_seconds",
                   integer(cfg.health.sync_max_lag_seconds, 0, max_seconds,
                           "a non-negative integer (0: no lag check)")),
              leaf("grasp_failing_attempts",
                   integer(cfg.health.grasp_failing_attempts, 1, 1000000,
                           "an integer in 1..1000000")),
              leaf("grasp_max_lag_seconds",
                   integer(cfg.health.grasp_max_lag_seconds, 0, max_seconds,
                           "a non-negative integer (0: no lag check)")),
              leaf("infra_failing_attempts",
                   integer(cfg.health.infra_failing_attempts, 1, 1000,
                           "an integer in 1..1000")),
            }),
    section("supervision",
            {
              leaf("base_ms", integer(cfg.supervision.base_ms, 1, max_seconds,
                                      "a positive integer")),
              leaf("cap_ms", integer(cfg.supervision.cap_ms, 1, max_seconds,
                                     "a positive integer")),
              leaf("jitter", fraction(cfg.supervision.jitter)),
              leaf("stable_after_seconds",
                   integer(cfg.supervision.stable_after_seconds, 1,
                           max_seconds, "a positive integer")),
              leaf("max_restarts", integer(cfg.supervision.max_restarts, 1,
                                           max_int64, "a positive integer")),
              leaf("window_seconds",
                   integer(cfg.supervision.window_seconds, 1, max_seconds,
                           "a positive integer")),
            }),
    section("store",
            {
              leaf("path", non_empty(cfg.store.path, "a non-empty path")),
              leaf("block_cache_mb", positive(cfg.store.block_cache_mb)),
              leaf("write_buffer_mb", positive(cfg.store.write_buffer_mb)),
              leaf("sync_writes", boolean(cfg.store.sync_writes)),
              leaf("purge_interval_seconds",
                   seconds(cfg.store.purge_interval)),
              leaf("reserve_mb", integer(cfg.store.reserve_mb, 0, 1 << 30,
                                         "MiB in 0..1073741824 (0: no reserve)")),
            }),
    section("ingest",
            {
              leaf("verifiers",
                   integer(cfg.ingest.verifiers, 0, max_int64,
                           "a non-negative integer")),
              leaf("writer_batch_max", positive(cfg.ingest.writer_batch_max)),
            }),
    policy_section(cfg.policy),
    section("log",
            {
              leaf("level", log_level(cfg.log.level)),
            }),
    section("node",
            {
              leaf("key_file", non_empty(cfg.node.key_file, "a non-empty path")),
            }),
    section("grasp",
            {
              leaf("enabled", boolean(cfg.grasp.enabled)),
              leaf("service_domain", service_domain(cfg.grasp.service_domain)),
              leaf("bootstrap_relays", relay_urls(cfg.grasp.bootstrap_relays)),
              leaf("batch_window_ms", milliseconds(cfg.grasp.batch_window)),
              leaf("tick_seconds", seconds(cfg.grasp.tick)),
              leaf("resync_after_seconds", seconds(cfg.grasp.resync_after)),
              leaf("overlap_window_seconds",
                   seconds(cfg.grasp.overlap_window)),
              leaf("reconcile_min_seconds", seconds(cfg.grasp.reconcile_min)),
              leaf("reconcile_max_seconds", seconds(cfg.grasp.reconcile_max)),
              leaf("group_size",
                   integer(cfg.grasp.group_size, 1, 1000,
                           "an integer in 1..1000")),
              leaf("max_filters_per_subscription",
                   positive(cfg.grasp.max_filters_per_subscription)),
              leaf("max_filters_per_relay",
                   positive(cfg.grasp.max_filters_per_relay)),
              leaf("batch_timeout_seconds", seconds(cfg.grasp.batch_timeout)),
            },
            grasp_rules(cfg.grasp)),
    section("sync",
            {
              leaf("server", sync_servers(cfg.sync.servers)),
            }),
    section(
      "infra",
      {
        leaf("enabled", boolean(cfg.infra.enabled)),
        leaf("api_url", management_url(cfg.infra.api_url)),
        leaf("relay_domain", dns_name_or_empty(cfg.infra.relay_domain)),
        leaf("roles", infra_roles(cfg.infra.roles_json)),
        leaf("request_timeout_ms",
             integer(cfg.infra.request_timeout_ms, 1, 600000,
                     "an integer in 1..600000")),
        leaf("retry_base_ms",
             integer(cfg.infra.retry_base_ms, 1, max_seconds,
                     "a positive integer")),
        leaf("retry_cap_ms", integer(cfg.infra.retry_cap_ms, 1, max_seconds,
                                     "a positive integer")),
        leaf("max_attempts", integer(cfg.infra.max_attempts, 1, 1000,
                                     "an integer in 1..1000")),
        section("blossom",
                {
                  leaf("endpoint", text(cfg.infra.blossom.endpoint)),
                  leaf("region", text(cfg.infra.blossom.region)),
                  leaf("bucket", text(cfg.infra.blossom.bucket)),
                  leaf("access_key", text(cfg.infra.blossom.access_key)),
                  leaf("secret_key", text(cfg.infra.blossom.secret_key)),
                }),
        section("livekit",
                {
                  leaf("server_url", text(cfg.infra.livekit.server_url)),
                  leaf("api_key", text(cfg.infra.livekit.api_key)),
                  leaf("api_secret", text(cfg.infra.livekit.api_secret)),
                }),
      },
      infra_consistent(cfg.infra)),
    cluster_section(cfg.cluster),
    federation_section(cfg.federation),
  };
}

/// Reads `node` as a table of `fields`, stopping at the first problem so the
/// operator fixes one thing at a time.
problem read_section(const toml::node& node, const std::string& path,
                     const std::vector<field>& fields,
                     const section_rule& rule) {
  auto table = node.as_table();
  if (!table)
    return mismatch(path, "a table", node);
  for (auto&& [key, value] : *table) {
    auto key_path = child_path(path, key.str());
    auto match = std::find_if(fields.begin(), fields.end(),
                              [&key = key](const field& candidate) {
                                return candidate.key == key.str();
                              });
    if (match == fields.end())
      return key_path
             + (value.is_table() ? ": unknown section" : ": unknown key");
    auto failure = match->read
                     ? match->read(value, key_path)
                     : read_section(value, key_path, match->fields,
                                    match->rule);
    if (failure)
      return failure;
  }
  return rule ? rule(*table, path) : std::nullopt;
}

void collect_paths(const std::vector<field>& fields, const std::string& path,
                   std::vector<std::string>& out) {
  for (const auto& entry : fields) {
    auto entry_path = child_path(path, entry.key);
    if (entry.read)
      out.push_back(std::move(entry_path));
    else
      collect_paths(entry.fields, entry_path, out);
  }
}

} // namespace

caf::expected<config> load_string(std::string_view text,
                                  const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view{source_name});
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    return caf::make_error(ec::invalid_configuration,
                           source_name + ":" + std::to_string(where.line) + ":"
                             + std::to_string(where.column) + ": "
                             + std::string{error.description()});
  }
  config result;
  if (auto failure = read_section(root, "", schema(result), {}))
    return caf::make_error(ec::invalid_configuration,
                           source_name + ": " + *failure);
  return result;
}

caf::expected<config> load_file(const std::string& path) {
  auto cannot = [&path](const std::string& why) {
    return caf::make_error(ec::invalid_configuration,
                           path + ": cannot read the config file: " + why);
  };
  // A directory opens fine on Linux and only fails on read, with an
  // exception from the stream buffer; catch it up front.
  std::error_code status;
  if (std::filesystem::is_directory(path, status))
    return cannot("it is a directory");
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return cannot(std::generic_category().message(errno));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad())
    return cannot("read error");
  auto result = load_string(content.str(), path);
  if (result)
    result->source = path;
  return result;
}

std::vector<std::string> key_paths() {
  config scratch;
  std::vector<std::string> out;
  collect_paths(schema(scratch), "", out);
  return out;
}

bool operator==(const relay_limits& x, const relay_limits& y) {
  return x.max_frame_bytes == y.max_frame_bytes
         && x.max_subscriptions == y.max_subscriptions
         && x.max_filters == y.max_filters && x.max_limit == y.max_limit
         && x.default_limit == y.default_limit
         && x.max_count_scan == y.max_count_scan
         && x.max_subscription_id_length == y.max_subscription_id_length
         && x.max_future_seconds == y.max_future_seconds
         && x.max_outbound_bytes == y.max_outbound_bytes
         && x.max_inflight_messages == y.max_inflight_messages
         && x.max_connections == y.max_connections
         && x.max_connections_per_ip == y.max_connections_per_ip
         && x.max_outbound_total_mb == y.max_outbound_total_mb
         && x.max_inbound_total_mb == y.max_inbound_total_mb;
}

bool operator==(const negentropy_config& x, const negentropy_config& y) {
  return x.enabled == y.enabled && x.max_items == y.max_items
         && x.max_sessions_per_connection == y.max_sessions_per_connection
         && x.idle_timeout == y.idle_timeout
         && x.frame_size_limit == y.frame_size_limit
         && x.max_memory_mb == y.max_memory_mb;
}

bool operator==(const relay_tls_config& x, const relay_tls_config& y) {
  return x.certfile == y.certfile && x.keyfile == y.keyfile
         && x.client_ca_file == y.client_ca_file;
}

bool operator==(const relay_config& x, const relay_config& y) {
  return x.address == y.address && x.port == y.port && x.name == y.name
         && x.description == y.description && x.contact == y.contact
         && x.icon == y.icon && x.operator_pubkey == y.operator_pubkey
         && x.public_url == y.public_url && x.auth_required == y.auth_required
         && x.compression == y.compression
         && x.read_ahead_mb == y.read_ahead_mb
         && x.limits == y.limits && x.negentropy == y.negentropy
         && x.tls == y.tls;
}

bool operator==(const admin_config& x, const admin_config& y) {
  return x.address == y.address && x.port == y.port && x.token == y.token
         && x.nip98_pubkeys == y.nip98_pubkeys
         && x.public_health == y.public_health;
}

bool operator==(const console_config& x, const console_config& y) {
  return x.address == y.address && x.port == y.port && x.secret == y.secret
         && x.fault_injection == y.fault_injection;
}

bool operator==(const supervision_config& x, const supervision_config& y) {
  return x.base_ms == y.base_ms && x.cap_ms == y.cap_ms && x.jitter == y.jitter
         && x.stable_after_seconds == y.stable_after_seconds
         && x.max_restarts == y.max_restarts
         && x.window_seconds == y.window_seconds;
}

bool operator==(const store_config& x, const store_config& y) {
  return x.path == y.path && x.block_cache_mb == y.block_cache_mb
         && x.write_buffer_mb == y.write_buffer_mb
         && x.sync_writes == y.sync_writes
         && x.purge_interval == y.purge_interval
         && x.reserve_mb == y.reserve_mb;
}

bool operator==(const ingest_config& x, const ingest_config& y) {
  return x.verifiers == y.verifiers && x.writer_batch_max == y.writer_batch_max;
}

bool operator==(const log_config& x, const log_config& y) {
  return x.level == y.level;
}

bool operator==(const node_config& x, const node_config& y) {
  return x.key_file == y.key_file;
}

bool operator==(const sync_config& x, const sync_config& y) {
  return x.servers == y.servers;
}

bool operator==(const grasp_config& x, const grasp_config& y) {
  return x.enabled == y.enabled && x.service_domain == y.service_domain
         && x.bootstrap_relays == y.bootstrap_relays
         && x.batch_window == y.batch_window && x.tick == y.tick
         && x.resync_after == y.resync_after
         && x.overlap_window == y.overlap_window
         && x.reconcile_min == y.reconcile_min
         && x.reconcile_max == y.reconcile_max
         && x.group_size == y.group_size
         && x.max_filters_per_subscription == y.max_filters_per_subscription
         && x.max_filters_per_relay == y.max_filters_per_relay
         && x.batch_timeout == y.batch_timeout;
}

bool operator==(const infra_config& x, const infra_config& y) {
  return x.enabled == y.enabled && x.api_url == y.api_url
         && x.relay_domain == y.relay_domain && x.roles_json == y.roles_json
         && x.request_timeout_ms == y.request_timeout_ms
         && x.retry_base_ms == y.retry_base_ms
         && x.retry_cap_ms == y.retry_cap_ms
         && x.max_attempts == y.max_attempts
         && x.blossom.endpoint == y.blossom.endpoint
         && x.blossom.region == y.blossom.region
         && x.blossom.bucket == y.blossom.bucket
         && x.blossom.access_key == y.blossom.access_key
         && x.blossom.secret_key == y.blossom.secret_key
         && x.livekit.server_url == y.livekit.server_url
         && x.livekit.api_key == y.livekit.api_key
         && x.livekit.api_secret == y.livekit.api_secret;
}

bool operator==(const health_config& x, const health_config& y) {
  return x.sync_failing_attempts == y.sync_failing_attempts
         && x.sync_max_lag_seconds == y.sync_max_lag_seconds
         && x.grasp_failing_attempts == y.grasp_failing_attempts
         && x.grasp_max_lag_seconds == y.grasp_max_lag_seconds
         && x.infra_failing_attempts == y.infra_failing_attempts;
}

bool operator==(const cluster_config& x, const cluster_config& y) {
  return x.enabled == y.enabled && x.name == y.name && x.address == y.address
         && x.port == y.port && x.seeds == y.seeds
         && x.tls.certfile == y.tls.certfile && x.tls.keyfile == y.tls.keyfile
         && x.tls.cafile == y.tls.cafile && x.members == y.members
         && x.failure_timeout == y.failure_timeout
         && x.heartbeat == y.heartbeat
         && x.handover_timeout == y.handover_timeout
         && x.forget_after == y.forget_after
         && x.reconcile_interval == y.reconcile_interval;
}

bool operator==(const federation_config& x, const federation_config& y) {
  return x.enabled == y.enabled && x.name == y.name
         && x.public_admin_url == y.public_admin_url && x.mode == y.mode
         && x.interval == y.interval && x.incoming == y.incoming
         && x.max_pending_links == y.max_pending_links
         && x.max_incoming_links == y.max_incoming_links
         && x.password_hash == y.password_hash && x.peers == y.peers
         && x.collections == y.collections;
}

bool operator==(const config& x, const config& y) {
  return x.federation == y.federation && x.cluster == y.cluster
         && x.grasp == y.grasp && x.relay == y.relay && x.admin == y.admin
         && x.console == y.console && x.health == y.health
         && x.store == y.store && x.ingest == y.ingest && x.log == y.log
         && x.node == y.node && x.supervision == y.supervision
         && x.sync == y.sync && x.infra == y.infra && x.policy == y.policy
         && x.source == y.source;
}

} // namespace ferry::config
