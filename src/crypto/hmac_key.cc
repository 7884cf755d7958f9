#include "crypto/hmac_key.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto/random.h"

namespace kes::crypto {
namespace {

// Fetched once: an explicit fetch avoids OpenSSL 3's per-call implicit lookup.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

}  // namespace

Result<HMACKey> HMACKey::Make(std::span<const uint8_t> bytes) {
  if (bytes.size() != 32) {
    return Status::Invalid("crypto: invalid HMAC key length '" + std::to_string(bytes.size()) +
                           "'");
  }
  return HMACKey(SecretBytes(bytes));
}

Result<HMACKey> HMACKey::Generate() {
  SecretBytes key(32);
  KES_TRY(RandomBytes(key.span()));
  return HMACKey(std::move(key));
}

HMACKey HMACKey::Clone() const { return HMACKey(key_.Clone()); }

std::array<uint8_t, 32> HMACKey::Sum(std::span<const uint8_t> message) const {
  return HmacSha256(key_.span(), message);
}

std::array<uint8_t, 32> HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> message) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  static const uint8_t kEmpty = 0;
  HMAC(Sha256Md(), key.empty() ? &kEmpty : key.data(), static_cast<int>(key.size()),
       message.empty() ? &kEmpty : message.data(), message.size(), out.data(), &len);
  return out;
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
