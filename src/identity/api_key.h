// API keys (api.md §2.2): "kes:v1:" + base64(0x00 || Ed25519 seed). A
// client presents a self-signed Ed25519 certificate made from the key, so
// its identity is the SHA-256 of the Ed25519 SPKI.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/secret_bytes.h"

namespace kes::identity {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Deleter {
  void operator()(X509* c) const { X509_free(c); }
};
using PrivateKeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using CertificatePtr = std::unique_ptr<X509, X509Deleter>;

class APIKey {
 public:
  static Result<APIKey> Generate();
  // Accepts the text with or without the "kes:v1:" prefix. Errors:
  // "invalid API key: invalid length", "invalid API key: unsupported type".
  static Result<APIKey> Parse(std::string_view text);
  // From an Ed25519 private key (PKCS#8 file contents of `kes identity new`).
  static Result<APIKey> FromPrivateKey(EVP_PKEY* key);

  std::string String() const;    // "kes:v1:..."
  std::string Identity() const;  // 64 lowercase hex chars
  EVP_PKEY* private_key() const { return key_.get(); }

  // The in-memory client certificate of the SDK: CN = identity, 90 days,
  // digitalSignature, clientAuth, basicConstraints CA:FALSE, self-signed.
  Result<CertificatePtr> GenerateCertificate() const;

 private:
  static Result<APIKey> FromSeed(crypto::SecretBytes seed);
  APIKey(crypto::SecretBytes seed, PrivateKeyPtr key)
      : seed_(std::move(seed)), key_(std::move(key)) {}
  crypto::SecretBytes seed_;
  PrivateKeyPtr key_;
};

}  // namespace kes::identity
