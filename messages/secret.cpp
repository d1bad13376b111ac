#include "messages/secret.hpp"

#include "messages/nostr/sha256.hpp"

#include <openssl/crypto.h>

namespace ferry {

bool secret_equal(std::string_view given, std::string_view expected) {
  auto x = nostr::sha256(given);
  auto y = nostr::sha256(expected);
  return CRYPTO_memcmp(x.data(), y.data(), x.size()) == 0;
}

} // namespace ferry
