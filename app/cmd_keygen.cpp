#include "actors/runtime/node_key.hpp"
#include "app/commands.hpp"
#include "messages/error.hpp"
#include "messages/nostr/bech32.hpp"

#include <cstdio>

namespace ferry::app {

namespace {

void print_identity(std::FILE* out, const nostr::keypair& keys) {
  std::fprintf(out, "pubkey %s\nnpub   %s\n",
               nostr::to_hex(keys.pubkey).c_str(),
               nostr::to_npub(keys.pubkey).c_str());
}

} // namespace

int run_keygen(const config::config& cfg, const std::string& out, bool force) {
  auto path = out.empty() ? node_key_path(cfg) : out;
  auto keys = nostr::generate_keypair();
  if (auto failure = write_node_key(path, keys, force)) {
    std::fprintf(stderr, "ferry keygen: %s\n", render(failure).c_str());
    // Whoever tried to make a key wants to know which one is there.
    if (auto existing = read_node_key(path)) {
      std::fprintf(stderr, "the key there is:\n");
      print_identity(stderr, *existing);
    }
    return 1;
  }
  std::printf("wrote %s\n", path.c_str());
  print_identity(stdout, keys);
  return 0;
}

int run_id(const config::config& cfg) {
  auto path = node_key_path(cfg);
  auto keys = read_node_key(path);
  if (!keys) {
    std::fprintf(stderr,
                 "ferry id: %s\n(a node makes its key at its first start; "
                 "`ferry keygen` makes one now)\n",
                 render(keys.error()).c_str());
    return 1;
  }
  print_identity(stdout, *keys);
  std::printf("key    %s\n", path.c_str());
  return 0;
}

} // namespace ferry::app
