#include "messages/nostr/sha256.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

namespace ferry::nostr {

namespace {

// SHA-256 is always available in OpenSSL's default provider, so a failure here
// means a broken installation; no caller could recover from it.
[[noreturn]] void digest_failure() {
  std::fputs("ferry: OpenSSL SHA-256 failed\n", stderr);
  std::abort();
}

// The one-shot SHA256() fetches the algorithm on every call; fetching it once
// and reusing a context halves the cost per event.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr)
    digest_failure();
  return md;
}

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* ctx) const {
    EVP_MD_CTX_free(ctx);
  }
};

EVP_MD_CTX* thread_ctx() {
  thread_local std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx{EVP_MD_CTX_new()};
  if (!ctx)
    digest_failure();
  return ctx.get();
}

} // namespace

bytes32 sha256(std::string_view data) {
  bytes32 out;
  auto* ctx = thread_ctx();
  unsigned int len = 0;
  if (EVP_DigestInit_ex2(ctx, sha256_md(), nullptr) != 1
      || EVP_DigestUpdate(ctx, data.data(), data.size()) != 1
      || EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != out.size())
    digest_failure();
  return out;
}

} // namespace ferry::nostr
