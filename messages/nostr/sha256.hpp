#pragma once

#include "messages/nostr/hex.hpp"

#include <string_view>

namespace ferry::nostr {

/// SHA-256 of `data` (OpenSSL 3 EVP, with the digest fetched once per process
/// and one reused context per thread).
bytes32 sha256(std::string_view data);

} // namespace ferry::nostr
