#include "messages/nostr/keys.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

#include <cstdio>
#include <cstdlib>

namespace ferry::nostr {

namespace {

// Without secure randomness no key or signature may be produced at all, and
// these functions have no error channel: stop loudly instead.
[[noreturn]] void random_failure() {
  std::fputs("ferry: OpenSSL RAND_bytes failed\n", stderr);
  std::abort();
}

// Randomizing a context blinds its secret-key arithmetic against side
// channels, and mutates it, so each thread signs with its own.
class signing_context {
public:
  signing_context() : ctx_(secp256k1_context_create(SECP256K1_CONTEXT_NONE)) {
    uint8_t seed[32];
    random_bytes(seed, sizeof(seed));
    if (!secp256k1_context_randomize(ctx_, seed))
      std::abort();
    OPENSSL_cleanse(seed, sizeof(seed));
  }

  ~signing_context() {
    secp256k1_context_destroy(ctx_);
  }

  signing_context(const signing_context&) = delete;
  signing_context& operator=(const signing_context&) = delete;

  secp256k1_context* get() const {
    return ctx_;
  }

private:
  secp256k1_context* ctx_;
};

secp256k1_context* thread_signing_context() {
  thread_local signing_context ctx;
  return ctx.get();
}

bytes32 xonly_pubkey_of(secp256k1_context* ctx, const secp256k1_keypair& pair) {
  secp256k1_xonly_pubkey pubkey;
  bytes32 out{};
  // Cannot fail for a keypair that secp256k1_keypair_create accepted.
  if (!secp256k1_keypair_xonly_pub(ctx, &pubkey, nullptr, &pair))
    std::abort();
  secp256k1_xonly_pubkey_serialize(ctx, out.data(), &pubkey);
  return out;
}

} // namespace

void random_bytes(uint8_t* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1)
    random_failure();
}

keypair generate_keypair() {
  auto* ctx = thread_signing_context();
  keypair keys;
  secp256k1_keypair pair;
  // About one in 2^128 random strings is not a valid scalar; draw again then.
  do {
    random_bytes(keys.secret.data(), keys.secret.size());
  } while (!secp256k1_keypair_create(ctx, &pair, keys.secret.data()));
  keys.pubkey = xonly_pubkey_of(ctx, pair);
  OPENSSL_cleanse(&pair, sizeof(pair));
  return keys;
}

std::optional<keypair> keypair_from_secret(const bytes32& secret) {
  auto* ctx = thread_signing_context();
  secp256k1_keypair pair;
  if (!secp256k1_keypair_create(ctx, &pair, secret.data()))
    return std::nullopt;
  keypair keys;
  keys.secret = secret;
  keys.pubkey = xonly_pubkey_of(ctx, pair);
  OPENSSL_cleanse(&pair, sizeof(pair));
  return keys;
}

bytes64 sign_hash(const bytes32& hash, const keypair& keys) {
  auto* ctx = thread_signing_context();
  bytes64 sig{};
  secp256k1_keypair pair;
  // A secret that is not a valid scalar can only come from a hand-built
  // keypair; it yields the all-zero signature, which never verifies.
  if (!secp256k1_keypair_create(ctx, &pair, keys.secret.data()))
    return sig;
  uint8_t aux[32];
  random_bytes(aux, sizeof(aux));
  if (!secp256k1_schnorrsig_sign32(ctx, sig.data(), hash.data(), &pair, aux))
    sig.fill(0);
  OPENSSL_cleanse(&pair, sizeof(pair));
  return sig;
}

void sign_event(event& ev, const keypair& keys) {
  ev.pubkey = keys.pubkey;
  ev.id = compute_id(ev);
  ev.sig = sign_hash(ev.id, keys);
}

} // namespace ferry::nostr
