#pragma once

#include "config/config.hpp"

#include <optional>
#include <string>

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

} // namespace ferry::app
