#include "actors/runtime/node_key.hpp"

#include "messages/error.hpp"

#include <filesystem>
#include <fstream>
#include <sys/stat.h>

namespace ferry {

namespace fs = std::filesystem;

std::string node_key_path(const config::config& cfg) {
  fs::path key = cfg.node.key_file;
  if (key.is_absolute())
    return key.string();
  return (fs::path{cfg.store.path} / key).string();
}

caf::expected<nostr::keypair> read_node_key(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return caf::make_error(ec::invalid_configuration,
                           path + ": cannot read the node key");
  std::string hex;
  std::getline(in, hex);
  nostr::bytes32 secret;
  if (!nostr::from_hex(hex, secret))
    return caf::make_error(ec::invalid_configuration,
                           path + ": expected 64 lowercase hex characters");
  auto keys = nostr::keypair_from_secret(secret);
  if (!keys)
    return caf::make_error(ec::invalid_configuration,
                           path + ": not a valid secp256k1 secret key");
  return *keys;
}

caf::error write_node_key(const std::string& path, const nostr::keypair& keys,
                          bool overwrite) {
  std::error_code err;
  if (!overwrite && fs::exists(path, err))
    return caf::make_error(ec::invalid_configuration,
                           path + ": exists already (use --force to replace it)");
  auto parent = fs::path{path}.parent_path();
  if (!parent.empty())
    fs::create_directories(parent, err);
  auto old_mask = ::umask(077);
  std::ofstream out{path, std::ios::trunc};
  ::umask(old_mask);
  if (!out)
    return caf::make_error(ec::invalid_configuration,
                           path + ": cannot write the node key");
  out << nostr::to_hex(keys.secret) << '\n';
  out.close();
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write,
                  fs::perm_options::replace, err);
  if (!out)
    return caf::make_error(ec::invalid_configuration,
                           path + ": cannot write the node key");
  return caf::none;
}

caf::expected<nostr::keypair> load_or_create_node_key(const std::string& path) {
  std::error_code err;
  if (fs::exists(path, err))
    return read_node_key(path);
  auto keys = nostr::generate_keypair();
  if (auto failure = write_node_key(path, keys, false))
    return failure;
  return keys;
}

} // namespace ferry
