#include "actors/runtime/node_key.hpp"
#include "app/commands.hpp"
#include "messages/error.hpp"

#include <cstdio>

namespace ferry::app {

int run_keygen(const config::config& cfg, const std::string& out, bool force) {
  auto path = out.empty() ? node_key_path(cfg) : out;
  auto keys = nostr::generate_keypair();
  if (auto failure = write_node_key(path, keys, force)) {
    std::fprintf(stderr, "ferry keygen: %s\n", render(failure).c_str());
    return 1;
  }
  std::printf("wrote %s\npubkey %s\n", path.c_str(),
              nostr::to_hex(keys.pubkey).c_str());
  return 0;
}

} // namespace ferry::app
