#include "crypto/hmac_key.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <memory>

#include "crypto/random.h"

namespace kes::crypto {
namespace {

// Fetched once: an explicit fetch avoids OpenSSL 3's per-call implicit lookup.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};

// A per-thread HMAC-SHA256 context: the MAC is fetched once and the digest
// set once, so a call neither looks anything up by name under OpenSSL's
// global lock nor allocates. nullptr if OpenSSL cannot provide one.
EVP_MAC_CTX* ThreadHmacCtx() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  thread_local std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx = []() {
    std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> c(mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr);
    if (c == nullptr) return c;
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(c.get(), params) != 1) c.reset();
    return c;
  }();
  return ctx.get();
}

// The one-shot path, kept for when the EVP_MAC context is unavailable.
std::array<uint8_t, 32> OneShotHmacSha256(std::span<const uint8_t> key,
                                          std::span<const uint8_t> message) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  static const uint8_t kEmpty = 0;
  HMAC(Sha256Md(), key.empty() ? &kEmpty : key.data(), static_cast<int>(key.size()),
       message.empty() ? &kEmpty : message.data(), message.size(), out.data(), &len);
  return out;
}

}  // namespace

Result<HMACKey> HMACKey::Make(std::span<const uint8_t> bytes) {
  if (bytes.size() != 32) {
    return Status::Invalid("crypto: invalid HMAC key length '" + std::to_string(bytes.size()) +
                           "'");
  }
  return HMACKey(bytes.first<32>());
}

Result<HMACKey> HMACKey::Generate() {
  SecretArray<32> key;
  KES_TRY(RandomBytes(key.span()));
  return HMACKey(key.span());
}

HMACKey HMACKey::Clone() const { return HMACKey(key_.span()); }

std::array<uint8_t, 32> HMACKey::Sum(std::span<const uint8_t> message) const {
  return HmacSha256(key_.span(), message);
}

std::array<uint8_t, 32> HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> message) {
  EVP_MAC_CTX* ctx = ThreadHmacCtx();
  // EVP_MAC_init treats a null key as "keep the previous key", so an empty
  // key must be passed as a non-null pointer with length 0.
  static const uint8_t kEmpty = 0;
  std::array<uint8_t, 32> out{};
  size_t len = 0;
  if (ctx != nullptr &&
      EVP_MAC_init(ctx, key.empty() ? &kEmpty : key.data(), key.size(), nullptr) == 1 &&
      EVP_MAC_update(ctx, message.empty() ? &kEmpty : message.data(), message.size()) == 1 &&
      EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size()) {
    return out;
  }
  return OneShotHmacSha256(key, message);
}

std::array<uint8_t, 32> Sha256(std::span<const uint8_t> data) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  static const uint8_t kEmpty = 0;
  EVP_Digest(data.empty() ? &kEmpty : data.data(), data.size(), out.data(), &len, Sha256Md(),
             nullptr);
  return out;
}

}  // namespace kes::crypto
