#pragma once

#include "config/config.hpp"
#include "messages/nostr/keys.hpp"

#include <caf/expected.hpp>

#include <string>

namespace ferry {

/// Where the node's key lives: `node.key_file`, relative to `store.path`
/// unless absolute.
std::string node_key_path(const config::config& cfg);

/// Reads a key file (64 hex characters and an optional newline).
caf::expected<nostr::keypair> read_node_key(const std::string& path);

/// Writes `keys` to `path` with mode 0600. Refuses to overwrite an existing
/// file unless `overwrite` is set.
caf::error write_node_key(const std::string& path, const nostr::keypair& keys,
                          bool overwrite);

/// Reads the key at `path`, or creates one there when the file is missing.
caf::expected<nostr::keypair> load_or_create_node_key(const std::string& path);

} // namespace ferry
