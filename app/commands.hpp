#pragma once

#include "actors/sync/one_shot_sync.hpp"
#include "config/config.hpp"

#include <caf/error.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ferry::app {

/// Loads `--config FILE`, or the embedded default when no file is given.
/// Prints the error and returns nullopt on failure.
std::optional<config::config> load_config(const std::string& path);

/// `ferry node`: runs until SIGINT or SIGTERM. @returns the exit status.
int run_node(const config::config& cfg);

/// `ferry import [FILE|-]`: JSONL events through the ingest path.
int run_import(const config::config& cfg, const std::string& input);

/// `ferry export [--filter JSON]`: stored events as JSONL, newest first.
int run_export(const config::config& cfg, const std::string& filter_json);

/// A store that did not open, as a message; a held lock adds the hint that
/// a node may be running on it.
std::string store_hint(const caf::error& err);

/// The store did not open because RocksDB's lock is taken: a node (or
/// another writer) has it.
bool held_by_another_process(const caf::error& err);

/// Opens the store as its only writer, as a one-shot command does. RocksDB's
/// own log lines of the attempt are held back: dropped when the store is
/// held by another process (the command says so in its own words), passed on
/// otherwise. `bulk_import` opens it as `store_options::bulk_import` says.
caf::expected<std::unique_ptr<store::event_store>>
open_unless_held(const config::config& cfg, bool bulk_import = false);

/// Opens the store for a command that only reads it (`command` names it in
/// messages): a store a node holds opens beside it, as a secondary instance
/// (`store_options::beside_running_node`), and stderr says so.
/// @returns null after printing why the store did not open.
std::unique_ptr<store::event_store> open_for_reading(const config::config& cfg,
                                                     const char* command);

/// What `ferry sync` was asked to do (the node takes the same, as JSON).
using ferry::sync_options;

/// `ferry sync URL`: reconciles the store with a relay over NIP-77, then
/// fetches what we lack and/or sends what it lacks. Beside a node that holds
/// the store, a run that only reads opens it as a secondary instance, and
/// one that fetches is handed to the node (its admin API, with
/// `admin.token`), which prints the same and exits the same.
/// @returns 0 on success; 1 on a connection failure, NEG-ERR, a relay
///          without NIP-77, a timeout or a store error; 2 on bad arguments.
int run_sync(const config::config& cfg, const sync_options& opts);

/// `ferry keygen`: writes a new node key and prints its public key (hex and
/// npub). Refuses to replace a key without `force`, naming the key there.
int run_keygen(const config::config& cfg, const std::string& out, bool force);

/// `ferry id`: prints the node's identity (pubkey in hex and npub, and the
/// key file) from its key file; works beside a running node.
/// @returns 0, or 1 when there is no readable key.
int run_id(const config::config& cfg);

/// What `ferry console` was asked to do.
struct console_options {
  /// The node's inspection port, HOST:PORT.
  std::string node = "127.0.0.1:7449";
  /// Where `node` came from, in words for the hint when nothing answers
  /// there (e.g. "that address is the default: ...").
  std::string node_origin;
  /// The node's console.secret.
  std::string secret;
  /// Print JSON (times as ISO 8601) instead of tables.
  bool json = false;
  /// The command and its argument; empty: the `ferry> ` prompt.
  std::vector<std::string> command;
};

/// Where a console reaches the node of `console` (HOST:PORT): a node
/// listening on every address is asked on loopback.
std::string console_address(const config::console_config& console);

/// The console's commands, each with its help line, and its exit statuses:
/// what `help` prints and `ferry console --help` ends with. One table
/// makes both.
std::string console_help();

/// `ferry console [--config F] [--node HOST:PORT] [--secret S] [--json]
/// [COMMAND ARGS...]`: connects to a node's inspection port; runs `command`
/// and prints its result, or opens the `ferry> ` prompt when it is empty.
/// @returns 0; 1 when the node is unreachable, refuses or fails the
///          command; 2 for an unknown command or wrong arguments.
int run_console(const console_options& options);

} // namespace ferry::app
