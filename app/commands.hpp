#pragma once

#include "config/config.hpp"

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

/// `ferry keygen`: writes a new node key and prints its public key.
int run_keygen(const config::config& cfg, const std::string& out, bool force);

/// `ferry console [--node HOST:PORT] [--secret S] [--json] [COMMAND ARGS...]`:
/// connects to a node's inspection port; runs `command` and prints its
/// result, or opens the `ferry> ` prompt when `command` is empty. An empty
/// `secret` falls back to $FERRY_CONSOLE_SECRET.
/// @returns 0, or 1 when the node is unreachable or refuses the command.
int run_console(const std::string& node, const std::string& secret, bool json,
                std::vector<std::string> command);

} // namespace ferry::app
