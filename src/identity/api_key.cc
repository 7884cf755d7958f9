#include "identity/api_key.h"

#include <array>

#include "crypto/encoding.h"
#include "crypto/hmac_key.h"
#include "crypto/random.h"
#include "identity/certificate.h"

namespace kes::identity {
namespace {

constexpr std::string_view kPrefix = "kes:v1:";
constexpr size_t kSeedSize = 32;
constexpr uint8_t kTypeEd25519 = 0x00;

}  // namespace

Result<APIKey> APIKey::FromSeed(crypto::SecretBytes seed) {
  PrivateKeyPtr key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!key) return Status::Internal("kes: failed to derive Ed25519 key");
  return APIKey(std::move(seed), std::move(key));
}

Result<APIKey> APIKey::Generate() {
  crypto::SecretBytes seed(kSeedSize);
  KES_TRY(crypto::RandomBytes(seed.span()));
  return FromSeed(std::move(seed));
}

Result<APIKey> APIKey::Parse(std::string_view text) {
  if (text.substr(0, kPrefix.size()) == kPrefix) text.remove_prefix(kPrefix.size());
  auto raw = crypto::Base64DecodeWithError(text);
  if (!raw.ok()) return raw.status();
  crypto::SecretBytes bytes(*raw);
  crypto::Zeroize(raw->data(), raw->size());
  if (bytes.size() != 1 + kSeedSize) return Status::Invalid("invalid API key: invalid length");
  if (bytes.data()[0] != kTypeEd25519) return Status::Invalid("invalid API key: unsupported type");
  return FromSeed(crypto::SecretBytes(bytes.span().subspan(1)));
}

Result<APIKey> APIKey::FromPrivateKey(EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    return Status::Invalid("kes: unsupported private key: only ed25519 keys are supported");
  }
  crypto::SecretBytes seed(kSeedSize);
  size_t len = seed.size();
  if (EVP_PKEY_get_raw_private_key(key, seed.data(), &len) != 1 || len != kSeedSize) {
    return Status::Invalid("kes: invalid ed25519 private key");
  }
  return FromSeed(std::move(seed));
}

std::string APIKey::String() const {
  std::array<uint8_t, 1 + kSeedSize> raw{};
  raw[0] = kTypeEd25519;
  std::copy(seed_.data(), seed_.data() + seed_.size(), raw.begin() + 1);
  std::string out = std::string(kPrefix) + crypto::Base64Encode(raw);
  crypto::Zeroize(raw.data(), raw.size());
  return out;
}

std::string APIKey::Identity() const {
  // SPKI of an Ed25519 key: fixed 12-byte DER prefix || public key (api.md §2.2).
  std::array<uint8_t, 44> spki = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                  0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
  size_t len = 32;
  EVP_PKEY_get_raw_public_key(key_.get(), spki.data() + 12, &len);
  return crypto::HexEncode(crypto::Sha256(spki));
}

Result<CertificatePtr> APIKey::GenerateCertificate() const {
  CertificateOptions opts;
  opts.common_name = Identity();
  opts.lifetime = std::chrono::hours(24 * 90);
  opts.client_auth = true;
  opts.server_auth = false;
  return CreateSelfSignedCertificate(key_.get(), opts);
}

}  // namespace kes::identity
